import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { parsePrometheusText, samplesOf, sumOf } from "../../test/helpers/prometheus-text.ts";
import { attempt, deployment, record } from "../../test/helpers/records.ts";
import { COOLDOWN_CAUSES as LIMITS_COOLDOWN_CAUSES } from "../limits/availability.ts";
import type { SkipCause } from "../router/route-types.ts";
import { COOLDOWN_CAUSES, staticLiveState } from "./live-state.ts";
import { GatewayMetrics, gatewayOverheadMs } from "./metrics.ts";

const NOW_MS = 1_000_000;

function metricsWith(options: { includeProcessMetrics?: boolean } = {}) {
  const live = staticLiveState(
    [
      deployment("alpha", "model-a", {
        cooldown: { cause: "rate_limited", untilMs: NOW_MS + 5_000, reason: "429", source: "provider" },
        budgets: [
          { scope: "provider:alpha", unit: "requests", window: "day", limit: 100, used: 40, remaining: 60 },
          { scope: "provider:alpha", unit: "tokens", window: "minute", limit: 6000, used: 1000, remaining: 5000 },
        ],
      }),
      deployment("beta", "model-b", { circuit: "open" }),
      deployment("gamma", "model-c", { isSuspect: true }),
    ],
    { modelNames: ["m", "best", "auto"], nowMs: () => NOW_MS },
  );
  return new GatewayMetrics(live, { includeProcessMetrics: options.includeProcessMetrics ?? false, version: "9.9.9" });
}

async function scrape(metrics: GatewayMetrics) {
  return parsePrometheusText((await metrics.render()).body);
}

describe("GatewayMetrics", () => {
  test("a failover moves requests, attempts, failovers, tokens and latency histograms", async () => {
    const metrics = metricsWith();
    metrics.observe(
      record({
        attempts: [
          attempt({ provider: "alpha", status: 429, outcome: "rate_limited", durationMs: 20 }),
          attempt({ provider: "beta", model: "model-b", durationMs: 30 }),
        ],
        tokensIn: 12,
        tokensOut: 7,
        timeToHeadersMs: 55,
        durationMs: 55,
      }),
    );
    const text = await scrape(metrics);
    assert.equal(
      sumOf(text, "llm_gateway_requests_total", {
        endpoint: "chat",
        protocol: "openai-chat",
        model: "m",
        provider: "beta",
        upstream_model: "model-b",
        status_class: "2xx",
      }),
      1,
    );
    assert.equal(sumOf(text, "llm_gateway_attempts_total", { provider: "alpha", outcome: "rate_limited" }), 1);
    assert.equal(sumOf(text, "llm_gateway_attempts_total", { provider: "beta", outcome: "success" }), 1);
    assert.equal(sumOf(text, "llm_gateway_failovers_total", { provider: "alpha", outcome: "rate_limited" }), 1);
    assert.equal(sumOf(text, "llm_gateway_failovers_total"), 1);
    assert.equal(sumOf(text, "llm_gateway_tokens_total", { direction: "in", provider: "beta" }), 12);
    assert.equal(sumOf(text, "llm_gateway_tokens_total", { direction: "out", provider: "beta" }), 7);
    assert.equal(sumOf(text, "llm_gateway_request_duration_seconds_count", { endpoint: "chat", provider: "beta" }), 1);
    assert.equal(sumOf(text, "llm_gateway_time_to_headers_seconds_sum", { provider: "beta" }), 0.055);
    // 55 ms to headers, 20 + 30 ms of upstream time: 5 ms of gateway overhead.
    assert.equal(sumOf(text, "llm_gateway_overhead_seconds_sum"), 0.005);
    assert.equal(text.types.get("llm_gateway_overhead_seconds"), "histogram");
  });

  test("an estimated usage the client was told counts on its provider and its client as source=estimated", async () => {
    const metrics = metricsWith();
    metrics.observe(
      record({
        isStream: true,
        client: "ci",
        attempts: [attempt({ provider: "beta", model: "model-b" })],
        tokensIn: 12,
        tokensOut: 7,
        isUsageEstimated: true,
      }),
    );
    metrics.observe(
      record({ client: "ci", attempts: [attempt({ provider: "beta", model: "model-b" })], tokensIn: 3, tokensOut: 2 }),
    );
    const text = await scrape(metrics);
    const provider = { provider: "beta", upstream_model: "model-b" };
    assert.equal(sumOf(text, "llm_gateway_tokens_total", { ...provider, direction: "in", source: "estimated" }), 12);
    assert.equal(sumOf(text, "llm_gateway_tokens_total", { ...provider, direction: "out", source: "estimated" }), 7);
    assert.equal(sumOf(text, "llm_gateway_tokens_total", { ...provider, direction: "in", source: "reported" }), 3);
    assert.equal(sumOf(text, "llm_gateway_tokens_total", { ...provider, direction: "out", source: "reported" }), 2);
    const client = { client: "ci" };
    assert.equal(
      sumOf(text, "llm_gateway_client_tokens_total", { ...client, direction: "in", source: "estimated" }),
      12,
    );
    assert.equal(
      sumOf(text, "llm_gateway_client_tokens_total", { ...client, direction: "out", source: "estimated" }),
      7,
    );
    assert.equal(sumOf(text, "llm_gateway_client_tokens_total", { ...client, direction: "in", source: "reported" }), 3);
  });

  test("a broken segment's estimate counts as source=estimated, a reported segment's as reported", async () => {
    const metrics = metricsWith();
    metrics.observe(
      record({
        isStream: true,
        attempts: [
          attempt({ provider: "alpha", outcome: "stream_cut", tokensIn: 10, tokensOut: 4, isUsageEstimated: true }),
          attempt({
            provider: "beta",
            model: "model-b",
            role: "continuation",
            mode: "prefill",
            tokensIn: 14,
            tokensOut: 5,
          }),
        ],
        continuations: [{ provider: "beta", model: "model-b", afterChars: 9, reason: "cut", mode: "prefill" }],
        tokensIn: 10,
        tokensOut: 9,
      }),
    );
    const text = await scrape(metrics);
    assert.equal(sumOf(text, "llm_gateway_tokens_total", { provider: "alpha", source: "estimated" }), 14);
    assert.equal(sumOf(text, "llm_gateway_tokens_total", { provider: "alpha", source: "reported" }), 0);
    assert.equal(sumOf(text, "llm_gateway_tokens_total", { provider: "beta", source: "reported" }), 19);
    assert.equal(sumOf(text, "llm_gateway_tokens_total", { source: "estimated", provider: "beta" }), 0);
  });

  test("a retry on the same candidate is not a failover; a stream records time to first token and continuations", async () => {
    const metrics = metricsWith();
    metrics.observe(
      record({
        isStream: true,
        attempts: [
          attempt({ provider: "alpha", status: 500, outcome: "server_error" }),
          attempt({ provider: "alpha", outcome: "stream_cut", headersMs: 10, durationMs: 200 }),
          attempt({ provider: "beta", model: "model-b", role: "continuation", mode: "prefill" }),
        ],
        servedBy: { deploymentKey: "alpha/model-a", provider: "alpha", model: "model-a" },
        continuations: [{ provider: "beta", model: "model-b", afterChars: 12, reason: "cut", mode: "prefill" }],
        timeToFirstTokenMs: 80,
      }),
    );
    const text = await scrape(metrics);
    assert.equal(sumOf(text, "llm_gateway_failovers_total"), 0);
    assert.equal(sumOf(text, "llm_gateway_attempts_total", { role: "continuation", provider: "beta" }), 1);
    assert.equal(
      sumOf(text, "llm_gateway_stream_continuations_total", {
        provider: "beta",
        upstream_model: "model-b",
        mode: "prefill",
      }),
      1,
    );
    assert.equal(sumOf(text, "llm_gateway_time_to_first_token_seconds_count", { provider: "alpha" }), 1);
  });

  test("the cooldowns gauge's causes are the cooldowns' own list, not a copy that could drift from it", async () => {
    // One list (src/cooldown-causes.ts): a cause added to limits/ gets its 0 series without a second edit.
    assert.equal(COOLDOWN_CAUSES, LIMITS_COOLDOWN_CAUSES);
    const text = await scrape(metricsWith());
    const causes = samplesOf(text, "llm_gateway_cooldowns_active").map((sample) => sample.labels.cause);
    for (const cause of LIMITS_COOLDOWN_CAUSES) assert.ok(causes.includes(cause), `no series for ${cause}`);
  });

  test("live gauges: cooldowns by cause, circuit state, budgets left, queue, reloads", async () => {
    const text = await scrape(metricsWith());
    assert.equal(sumOf(text, "llm_gateway_cooldowns_active", { cause: "rate_limited" }), 1);
    assert.equal(sumOf(text, "llm_gateway_cooldowns_active", { cause: "invalid_key" }), 0);
    assert.equal(sumOf(text, "llm_gateway_circuit_state", { provider: "beta", state: "open" }), 1);
    assert.equal(sumOf(text, "llm_gateway_circuit_state", { provider: "beta", state: "closed" }), 0);
    assert.equal(sumOf(text, "llm_gateway_circuit_state", { provider: "alpha", state: "closed" }), 1);
    assert.equal(sumOf(text, "llm_gateway_deployment_suspect", { provider: "gamma", upstream_model: "model-c" }), 1);
    assert.equal(sumOf(text, "llm_gateway_deployment_suspect", { provider: "alpha" }), 0);
    assert.equal(sumOf(text, "llm_gateway_budget_remaining_requests", { scope: "provider:alpha", window: "day" }), 60);
    assert.equal(
      sumOf(text, "llm_gateway_budget_remaining_tokens", { scope: "provider:alpha", window: "minute" }),
      5000,
    );
    assert.equal(sumOf(text, "llm_gateway_budget_limit_requests", { scope: "provider:alpha", window: "day" }), 100);
    assert.equal(samplesOf(text, "llm_gateway_queue_depth_requests").length, 1);
    assert.equal(sumOf(text, "llm_gateway_config_reloads_total"), 0);
    assert.equal(sumOf(text, "llm_gateway_build_info", { version: "9.9.9" }), 1);
  });

  test("every plan skip cause of the router is its own route_skips_total label, paid included", async () => {
    const metrics = metricsWith();
    // Every SkipCause, checked by tsc: a cause added to the router without a label here fails the type check.
    const causes = Object.keys({
      cooldown: true,
      budget: true,
      context: true,
      tools: true,
      vision: true,
      json_schema: true,
      kind: true,
      paid: true,
      endpoint: true,
    } satisfies Record<SkipCause, true>);
    metrics.observe(
      record({
        skips: causes.map((cause) => ({
          deploymentKey: "beta/model-b",
          provider: "beta",
          model: "model-b",
          phase: "plan" as const,
          cause,
          reason: cause,
        })),
      }),
    );
    const text = await scrape(metrics);
    for (const cause of causes) assert.equal(sumOf(text, "llm_gateway_route_skips_total", { cause }), 1, cause);
    assert.equal(sumOf(text, "llm_gateway_route_skips_total", { cause: "other" }), 0);
  });

  test("two public names of one provider on one upstream id: one circuit and suspect series each, told apart", async () => {
    const live = staticLiveState([
      deployment("alpha", "shared-x", { deploymentKey: "alpha/m", publicName: "m", circuit: "open" }),
      deployment("alpha", "shared-x", { deploymentKey: "alpha/m2", publicName: "m2", isSuspect: true }),
    ]);
    const text = await scrape(new GatewayMetrics(live, { includeProcessMetrics: false }));
    for (const name of ["llm_gateway_circuit_state", "llm_gateway_deployment_suspect"]) {
      const series = samplesOf(text, name).map((sample) => JSON.stringify(Object.entries(sample.labels).sort()));
      assert.equal(new Set(series).size, series.length, `${name} has a duplicate series`);
    }
    assert.equal(sumOf(text, "llm_gateway_circuit_state", { deployment: "alpha/m", state: "open" }), 1);
    assert.equal(sumOf(text, "llm_gateway_circuit_state", { deployment: "alpha/m2", state: "closed" }), 1);
    assert.equal(
      sumOf(text, "llm_gateway_deployment_suspect", { deployment: "alpha/m2", upstream_model: "shared-x" }),
      1,
    );
    assert.equal(sumOf(text, "llm_gateway_deployment_suspect", { deployment: "alpha/m" }), 0);
  });

  test("every name is under llm_gateway_, process metrics included", async () => {
    const text = await scrape(metricsWith({ includeProcessMetrics: true }));
    assert.ok(text.samples.length > 20);
    for (const sample of text.samples) assert.match(sample.name, /^llm_gateway_/);
    assert.ok(samplesOf(text, "llm_gateway_process_cpu_user_seconds_total").length > 0);
  });

  test("docs/metrics.md lists exactly the gateway's own families, with their types and labels", async () => {
    const docs = readFileSync(join(import.meta.dirname, "..", "..", "docs", "metrics.md"), "utf8");
    const documented = new Map(
      [...docs.matchAll(/^\| `(llm_gateway_[a-z_]+)` \| ([a-z]+) \|([^|]*)\|/gm)].map((match) => [
        match[1] as string,
        {
          type: match[2] as string,
          labels: [...(match[3] as string).matchAll(/`([a-z_]+)`/g)].map((label) => label[1]),
        },
      ]),
    );
    const metrics = metricsWith();
    metrics.observe(
      record({
        attempts: [
          attempt({ provider: "alpha", status: 429, outcome: "rate_limited" }),
          attempt({ provider: "beta", model: "model-b" }),
        ],
      }),
    );
    const text = await scrape(metrics);
    const own = [...text.types].filter(([name]) => !/^llm_gateway_(process|nodejs)_/.test(name));
    assert.deepEqual(own.map(([name]) => name).sort(), [...documented.keys()].sort());
    for (const [name, type] of own) {
      assert.equal(type, documented.get(name)?.type, name);
      // A histogram's samples add `le`; a family without samples here has nothing to compare.
      const labels = new Set(
        text.samples.filter((sample) => sample.name.startsWith(name)).flatMap((sample) => Object.keys(sample.labels)),
      );
      labels.delete("le");
      if (labels.size > 0) assert.deepEqual([...labels].sort(), documented.get(name)?.labels.sort(), name);
    }
  });

  test("cardinality stays bounded: unknown client models, providers and outcomes become `other`", async () => {
    const metrics = metricsWith();
    for (let index = 0; index < 500; index++) {
      metrics.observe(
        record({
          requestedModel: `made-up-${index}`,
          endpoint: index % 2 === 0 ? "chat" : `/weird/${index}`,
          attempts: [
            attempt({ provider: `ghost-${index}`, model: `x-${index}`, status: 500, outcome: "server_error" }),
          ],
          skips: [
            {
              deploymentKey: "a/b",
              provider: "a",
              model: "b",
              phase: "attempt",
              cause: `free text ${index}`,
              reason: "",
            },
          ],
          status: 500 + (index % 3),
        }),
      );
    }
    const text = await scrape(metrics);
    const requestSeries = samplesOf(text, "llm_gateway_requests_total");
    assert.ok(requestSeries.length <= 2, `requests_total has ${requestSeries.length} series`);
    for (const sample of requestSeries) {
      assert.equal(sample.labels.model, "other");
      assert.ok(["chat", "other"].includes(sample.labels.endpoint ?? ""));
    }
    assert.equal(samplesOf(text, "llm_gateway_attempts_total").length, 1);
    assert.equal(samplesOf(text, "llm_gateway_attempts_total")[0]?.labels.provider, "other");
    assert.deepEqual(
      samplesOf(text, "llm_gateway_route_skips_total").map((sample) => sample.labels.cause),
      ["attempt"],
    );
    const seriesCount = text.samples.length;
    metrics.observe(record({ requestedModel: "yet-another" }));
    const after = await scrape(metrics);
    // A first 2xx answered by a known provider: its requests, tokens and client series, and three histograms' buckets
    // (43 samples); what matters is that it is a constant, not one per unknown model.
    assert.ok(
      after.samples.length <= seriesCount + 45,
      `one more unknown model must not add many series (${after.samples.length - seriesCount})`,
    );
    assert.equal(sumOf(after, "llm_gateway_requests_total", { model: "other" }), 501);
  });

  test("overhead: a stream counts the answering attempt only to its first content event", () => {
    // The response head goes out at the first content event: the 300 ms the upstream took between its headers and
    // its first token are upstream time, not the gateway's.
    const overhead = gatewayOverheadMs(
      record({
        isStream: true,
        attempts: [attempt({ provider: "alpha", headersMs: 30, firstTokenMs: 330, durationMs: 900 })],
        timeToHeadersMs: 334,
        queueWaitMs: 2,
      }),
    );
    assert.equal(overhead, 2);
  });

  test("overhead: a stream attempt recorded without a first token falls back to its headers", () => {
    const overhead = gatewayOverheadMs(
      record({
        isStream: true,
        attempts: [attempt({ provider: "alpha", headersMs: 30, durationMs: 900 })],
        timeToHeadersMs: 34,
        queueWaitMs: 2,
      }),
    );
    assert.equal(overhead, 2);
  });

  test("routes no door serves and unrouted refusals count under their fixed names; any other endpoint as other", async () => {
    const metrics = metricsWith();
    const routed = { requestedModel: "", attempts: [], status: 200, outcome: "success" as const, durationMs: 4 };
    metrics.observe(record({ ...routed, endpoint: "conversations", clientProtocol: "openai-responses" }));
    metrics.observe(record({ ...routed, endpoint: "files", clientProtocol: "openai-batch" }));
    metrics.observe(
      record({ ...routed, endpoint: "unknown", clientProtocol: "unknown", status: 431, outcome: "rejected" }),
    );
    metrics.observe(record({ ...routed, endpoint: "/v1/made-up", clientProtocol: "unknown" }));
    const text = await scrape(metrics);
    const counted = samplesOf(text, "llm_gateway_requests_total").map((sample) => [
      sample.labels.endpoint,
      sample.labels.protocol,
      sample.labels.provider,
      sample.labels.status_class,
    ]);
    assert.deepEqual(counted, [
      ["conversations", "openai-responses", "none", "2xx"],
      ["files", "openai-batch", "none", "2xx"],
      ["unknown", "unknown", "none", "4xx"],
      ["other", "unknown", "none", "2xx"],
    ]);
    assert.equal(sumOf(text, "llm_gateway_request_duration_seconds_count", { endpoint: "conversations" }), 1);
  });
});
