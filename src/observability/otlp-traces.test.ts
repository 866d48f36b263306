import assert from "node:assert/strict";
import { test } from "node:test";
import { otlpCollector } from "../../test/helpers/otlp-collector.ts";
import { attempt, record } from "../../test/helpers/records.ts";
import { otlpSettings } from "./otlp-settings.ts";
import { OtlpTraceExporter, spansOf, unixNano } from "./otlp-traces.ts";

test("unixNano keeps sub-millisecond precision without float overflow", () => {
  assert.equal(unixNano(1_767_225_600_000), "1767225600000000000");
  assert.equal(unixNano(1_767_225_600_000.5), "1767225600000500000");
});

test("a record becomes a server span and one client span per attempt", () => {
  let next = 0;
  const spans = spansOf(
    record({
      startedAtMs: 1_000,
      durationMs: 80,
      attempts: [
        attempt({ provider: "alpha", status: 500, outcome: "server_error", startedAtMs: 1_001, durationMs: 10 }),
        attempt({ provider: "beta", model: "model-b", startedAtMs: 1_012, durationMs: 60 }),
      ],
    }),
    undefined,
    { traceId: () => String(++next).padStart(32, "0"), spanId: () => String(++next).padStart(16, "0") },
  );
  assert.equal(spans.length, 3);
  const [root, failed, answered] = spans;
  assert.equal(root?.parentSpanId, undefined);
  assert.equal(failed?.parentSpanId, root?.spanId);
  assert.equal(answered?.traceId, root?.traceId);
  assert.equal(root?.endTimeUnixNano, "1080000000");
  assert.equal(failed?.status.code, 2);
  assert.equal(answered?.status.code, 0);
  assert.equal(answered?.name, "chat model-b");
});

test("an attempt whose tokens the gateway estimated (a broken stream segment) says so; a reported one does not", () => {
  const spans = spansOf(
    record({
      attempts: [
        attempt({ provider: "alpha", outcome: "stream_cut", tokensIn: 9, tokensOut: 40, isUsageEstimated: true }),
        attempt({ provider: "beta", role: "continuation", tokensIn: 49, tokensOut: 20 }),
      ],
    }),
  );
  const estimated = (index: number) =>
    spans[index]?.attributes.find((entry) => entry.key === "llm_gateway.usage_estimated")?.value;
  assert.deepEqual(estimated(1), { boolValue: true });
  assert.equal(estimated(2), undefined);
});

test("a request whose client was told an estimated usage says so on its span; one with a report does not", () => {
  const estimated = (isUsageEstimated: boolean) =>
    spansOf(
      record({ tokensIn: 9, tokensOut: 4, ...(isUsageEstimated ? { isUsageEstimated: true } : {}) }),
    )[0]?.attributes.find((entry) => entry.key === "llm_gateway.usage_estimated")?.value;
  assert.deepEqual(estimated(true), { boolValue: true });
  assert.equal(estimated(false), undefined);
});

test("the Responses and Messages front doors are GenAI chat operations; legacy completions are text_completion", () => {
  const operationOf = (endpoint: string) => spansOf(record({ endpoint, attempts: [] }))[0]?.name.split(" ")[0];
  assert.deepEqual(["chat", "responses", "messages", "completions", "embeddings"].map(operationOf), [
    "chat",
    "chat",
    "chat",
    "text_completion",
    "embeddings",
  ]);
});

test("audio and image requests, which GenAI's conventions name no operation for, are named by their endpoint (not chat)", () => {
  const operationOf = (endpoint: string) => spansOf(record({ endpoint, attempts: [] }))[0]?.name.split(" ")[0];
  assert.deepEqual(["transcriptions", "translations", "speech", "images"].map(operationOf), [
    "transcriptions",
    "translations",
    "speech",
    "images",
  ]);
});

test("a rerank or moderation request, which GenAI's conventions name no operation for, is named by its endpoint (not chat)", () => {
  for (const endpoint of ["rerank", "moderations"]) {
    const span = spansOf(record({ endpoint, attempts: [] }))[0];
    assert.equal(span?.name.split(" ")[0], endpoint);
    const operation = span?.attributes.find((item) => item.key === "gen_ai.operation.name")?.value;
    assert.deepEqual(operation, { stringValue: endpoint });
  }
});

test("the OTLP endpoint comes from OTEL_EXPORTER_OTLP_ENDPOINT, the traces endpoint, or the config", () => {
  assert.equal(otlpSettings(undefined, {}), undefined);
  assert.equal(
    otlpSettings("http://configured:4318", { OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/" })?.tracesUrl,
    "http://collector:4318/v1/traces",
  );
  assert.equal(
    otlpSettings(undefined, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://c:4318/custom" })?.tracesUrl,
    "http://c:4318/custom",
  );
  const configured = otlpSettings("http://local:4318", {
    OTEL_EXPORTER_OTLP_HEADERS: "x-token=abc,x-tenant=t1",
    OTEL_SERVICE_NAME: "edge-gateway",
  });
  assert.equal(configured?.tracesUrl, "http://local:4318/v1/traces");
  assert.deepEqual(configured?.headers, { "x-token": "abc", "x-tenant": "t1" });
  assert.equal(configured?.serviceName, "edge-gateway");
  assert.equal(otlpSettings("http://local:4318", {})?.serviceName, "llm-gateway");
});

test("OTEL_EXPORTER_OTLP_HEADERS: percent-encoded values decode; a literal `%` that does not decode is kept as written", () => {
  const settings = otlpSettings("http://local:4318", {
    OTEL_EXPORTER_OTLP_HEADERS: "x-token=abc%20def,x-raw=50%off,x%zz=1",
  });
  assert.deepEqual(settings?.headers, { "x-token": "abc def", "x-raw": "50%off", "x%zz": "1" });
});

test("an export is redacted of the gateway's secrets (read at each export), whatever record text carries them", async (t) => {
  const collector = await otlpCollector(t);
  const bodies = collector.bodies;
  // Not key-shaped: only the list says they are secrets. One with a quote, as a JSON string escapes it.
  let secrets = ["ClientKey8Zq7RkP2mWx9", 'Quoted"Key4Lt9Bv2Nc8', 'Quoted\\"Key4Lt9Bv2Nc8'];
  const exporter = new OtlpTraceExporter({
    url: collector.tracesUrl,
    serviceName: "test",
    serviceVersion: "0",
    flushIntervalMs: 60_000,
    secrets: () => secrets,
  });
  t.after(() => exporter.close());
  const echoed = 'upstream said ClientKey8Zq7RkP2mWx9 and Quoted"Key4Lt9Bv2Nc8';
  exporter.observe(
    record({ attempts: [attempt({ provider: "alpha", outcome: "server_error", status: 500, reason: echoed })] }),
  );
  await exporter.flush();
  // A key a reload brought in after the record was made is redacted too: the list is read at the export.
  secrets = [...secrets, "LaterKey3Wq5As4Df3Gh"];
  exporter.observe(
    record({
      attempts: [attempt({ provider: "alpha", outcome: "server_error", status: 500, reason: "LaterKey3Wq5As4Df3Gh" })],
    }),
  );
  await exporter.flush();
  assert.equal(bodies.length, 2);
  const sent = bodies.join("\n");
  assert.match(sent, /upstream said \[redacted\] and \[redacted\]/);
  for (const secret of ["ClientKey8Zq7RkP2mWx9", "Key4Lt9Bv2Nc8", "LaterKey3Wq5As4Df3Gh"]) {
    assert.ok(!sent.includes(secret), `an export leaks ${secret}: ${sent}`);
  }
  assert.doesNotThrow(() => bodies.map((body) => JSON.parse(body)), "each export is still JSON");
});

test("a route no door serves is named by its method and route, its operation by its family (not chat)", () => {
  const routed = record({
    endpoint: "conversations",
    clientProtocol: "openai-responses",
    route: "GET /v1/conversations/:id",
    requestedModel: "",
    attempts: [],
  });
  const spans = spansOf(routed);
  assert.equal(spans.length, 1, "no attempt spans");
  assert.equal(spans[0]?.name, "GET /v1/conversations/:id");
  const operation = spans[0]?.attributes.find((item) => item.key === "gen_ai.operation.name")?.value;
  assert.deepEqual(operation, { stringValue: "conversations" });
});
