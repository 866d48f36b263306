// Optional OTLP/HTTP trace export: an OTLP receiver started by the test gets one trace per request, a server span
// with one client span per upstream attempt.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { OtlpSpan } from "../../src/observability/otlp-traces.ts";
import { postChat, useGateway, useMock } from "../helpers/e2e.ts";
import { startGatewayProcess } from "../helpers/gateway-process.ts";
import { chatCompletion, rateLimited } from "../helpers/mock-upstream.ts";
import { type OtlpExportSeen, otlpCollector } from "../helpers/otlp-collector.ts";
import { waitUntil } from "../helpers/sse-client.ts";

const CHAT = "POST /v1/chat/completions";

interface Export {
  readonly path: string;
  readonly contentType: string | undefined;
  readonly body: {
    resourceSpans: {
      resource: { attributes: { key: string; value: { stringValue?: string } }[] };
      scopeSpans: { spans: OtlpSpan[] }[];
    }[];
  };
}

/** An export as the tests read it: its body parsed. */
function parsed(found: OtlpExportSeen | undefined): Export | undefined {
  return found === undefined ? undefined : { ...found, body: JSON.parse(found.body) as Export["body"] };
}

function attributeOf(span: OtlpSpan | undefined, key: string): unknown {
  const value = span?.attributes.find((entry) => entry.key === key)?.value as Record<string, unknown> | undefined;
  return value === undefined ? undefined : Object.values(value)[0];
}

describe("OTLP trace export", () => {
  test("one trace per request: a server span and a client span per attempt, GenAI attributes", async (t) => {
    const receiver = await otlpCollector(t);
    const alpha = await useMock(t);
    const beta = await useMock(t);
    const gateway = await useGateway(
      t,
      `providers:
  - name: alpha
    base_url: ${alpha.baseUrl}
    api_key: sk-alpha
    retries: 0
    models:
      m: { id: alpha-m, priority: 10 }
  - name: beta
    base_url: ${beta.baseUrl}
    api_key: sk-beta
    retries: 0
    models:
      m: { id: beta-m, priority: 1 }
routing:
  max_wait_for_better_ms: 0
traces:
  otlp_endpoint: ${receiver.url}
`,
    );
    alpha.enqueue(CHAT, rateLimited({ retryAfter: "30" }));
    beta.enqueue(CHAT, { kind: "json", body: chatCompletion("hi", "beta-m") });
    beta.enqueue(CHAT, { kind: "json", body: chatCompletion("again", "beta-m") });
    const first = await postChat(gateway, { model: "m" });
    const second = await postChat(gateway, { model: "m" });
    assert.equal(first.status, 200);
    assert.equal(second.status, 200);
    await waitUntil(() => receiver.spans().length >= 5, "the spans to be exported", 5_000);

    assert.equal(receiver.exports[0]?.path, "/v1/traces");
    assert.match(receiver.exports[0]?.contentType ?? "", /^application\/json/);
    const resource = parsed(receiver.exports[0])?.body.resourceSpans[0]?.resource.attributes ?? [];
    assert.equal(resource.find((entry) => entry.key === "service.name")?.value.stringValue, "llm-gateway");

    const spans = receiver.spans();
    const roots = spans.filter((span) => span.parentSpanId === undefined);
    assert.equal(roots.length, 2, "one trace per request");
    assert.equal(new Set(roots.map((span) => span.traceId)).size, 2);
    const failover = roots.find(
      (span) => attributeOf(span, "llm_gateway.request_id") === first.headers["x-request-id"],
    );
    assert.ok(failover !== undefined);
    assert.equal(failover.kind, 2);
    assert.equal(failover.name, "chat m");
    assert.equal(attributeOf(failover, "gen_ai.request.model"), "m");
    assert.equal(attributeOf(failover, "gen_ai.response.model"), "beta-m");
    assert.equal(attributeOf(failover, "gen_ai.provider.name"), "beta");
    assert.equal(attributeOf(failover, "http.response.status_code"), "200");
    const children = spans.filter((span) => span.parentSpanId === failover.spanId);
    assert.deepEqual(
      children.map((span) => [
        span.traceId === failover.traceId,
        span.kind,
        attributeOf(span, "gen_ai.provider.name"),
        attributeOf(span, "llm_gateway.outcome"),
      ]),
      [
        [true, 3, "alpha", "rate_limited"],
        [true, 3, "beta", "success"],
      ],
    );
    assert.equal(children[0]?.status.code, 2, "a failed attempt is an error span");
    for (const span of spans) {
      assert.match(span.traceId, /^[0-9a-f]{32}$/);
      assert.match(span.spanId, /^[0-9a-f]{16}$/);
      assert.ok(BigInt(span.endTimeUnixNano) >= BigInt(span.startTimeUnixNano));
    }
    const secondChildren = spans.filter(
      (span) => span.parentSpanId === roots.find((root) => root !== failover)?.spanId,
    );
    assert.equal(secondChildren.length, 1);
  });

  test("OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_SERVICE_NAME set in .env turn the export on, as in the environment", async (t) => {
    const receiver = await otlpCollector(t);
    const alpha = await useMock(t);
    alpha.setDefault(CHAT, { kind: "json", body: chatCompletion("hi", "alpha-m") });
    const gateway = await startGatewayProcess(
      t,
      `providers:\n  - name: alpha\n    base_url: ${alpha.baseUrl}\n    api_key: sk-alpha\n    models:\n      m: { id: alpha-m }\n`,
      { dotEnv: `OTEL_EXPORTER_OTLP_ENDPOINT=${receiver.url}\nOTEL_SERVICE_NAME=gateway-from-dotenv\n` },
    );
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }] }),
    });
    assert.equal(response.status, 200, await response.text());
    await waitUntil(() => receiver.spans().length >= 2, "the spans to be exported", 5_000);
    assert.equal(receiver.exports[0]?.path, "/v1/traces");
    const resource = parsed(receiver.exports[0])?.body.resourceSpans[0]?.resource.attributes ?? [];
    assert.equal(resource.find((entry) => entry.key === "service.name")?.value.stringValue, "gateway-from-dotenv");
  });

  test("nothing is exported (or loaded) without an endpoint", async (t) => {
    const receiver = await otlpCollector(t);
    const alpha = await useMock(t);
    const gateway = await useGateway(
      t,
      `providers:\n  - name: alpha\n    base_url: ${alpha.baseUrl}\n    api_key: sk-alpha\n    models:\n      m: {}\n`,
    );
    assert.equal((await postChat(gateway, { model: "m" })).status, 200);
    await gateway.close();
    assert.equal(receiver.exports.length, 0);
    assert.equal(gateway.runtime.snapshot.config.traces.otlpEndpoint, undefined);
  });
});
