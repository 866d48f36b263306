// What the gateway's books say about a continued stream, besides the answer the client gets:
// - `llm_gateway_tokens_total` counts each segment on the deployment that produced (and billed) it, and the request
//   record carries each segment's tokens on its attempt (estimated, and marked so, for a segment that broke without
//   a usage report);
// - opening a continuation counts against `routing.max_stream_duration_ms`: a slow next candidate cannot make the
//   stream outlive it; the stream ends with the in-band `upstream_timeout` at the cap;
// - a candidate passed over for a limit when it was asked to continue leaves a skip in the record (phase
//   `continuation`), so the request log can say why the continuation went elsewhere, or failed.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import OpenAI from "openai";
import { countTextTokens, estimateChatPrompt } from "../../src/limits/token-estimate.ts";
import type { RequestRecord } from "../../src/observability/request-record.ts";
import { send, statsOf } from "../helpers/e2e.ts";
import { type DeploymentView, windowOf } from "../helpers/limits-scene.ts";
import { chatChunk, chatStream, type MockStep, rateLimited, type SseScript } from "../helpers/mock-upstream.ts";
import { parsePrometheusText, sumOf } from "../helpers/prometheus-text.ts";
import { waitUntil } from "../helpers/sse-client.ts";
import { CHAT_ROUTE, MODEL, startTwoProviders, type TwoProviders } from "../helpers/two-providers.ts";

const MESSAGES = [{ role: "user" as const, content: "Count from zero to twenty-nine, one word each." }];
const WORDS = Array.from({ length: 30 }, (_, index) => ` word${index}`);
const DELIVERED = WORDS.slice(0, 20).join("");
const FULL_TEXT = WORDS.join("");

/** The role chunk and the first 20 words, without a finish_reason. */
function firstTwenty(): SseScript[] {
  return chatStream(WORDS.slice(0, 20), MODEL).slice(0, 21);
}

const cutAfterTwenty: MockStep = { kind: "sse", events: firstTwenty(), end: "destroy" };
const stallAfterTwenty: MockStep = { kind: "sse", events: firstTwenty(), end: "hang" };

function recordsOf(scene: TwoProviders): RequestRecord[] {
  const records: RequestRecord[] = [];
  scene.gateway.runtime.onRecord((record) => records.push(record));
  return records;
}

/** Streams the answer with the official SDK; the text, and the in-band error if the stream ended in one. */
async function streamAnswer(
  scene: TwoProviders,
): Promise<{ text: string; error: InstanceType<typeof OpenAI.APIError> | undefined }> {
  const stream = await scene.client.chat.completions.create({ model: MODEL, messages: MESSAGES, stream: true });
  let text = "";
  try {
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
  } catch (thrown) {
    assert.ok(thrown instanceof OpenAI.APIError, `expected an APIError, got ${String(thrown)}`);
    return { text, error: thrown };
  }
  return { text, error: undefined };
}

async function tokensOf(scene: TwoProviders): Promise<Record<string, number>> {
  const response = await send(scene.gateway, "GET", "/metrics");
  assert.equal(response.status, 200, response.text);
  const metrics = parsePrometheusText(response.text);
  const out: Record<string, number> = {};
  for (const provider of ["alpha", "beta"]) {
    for (const direction of ["in", "out"]) {
      out[`${provider} ${direction}`] = sumOf(metrics, "llm_gateway_tokens_total", { provider, direction });
    }
  }
  return out;
}

describe("tokens of a continued stream are counted on the deployment that produced them", () => {
  const prompt = estimateChatPrompt(MESSAGES, undefined).promptTokens;
  const delivered = countTextTokens(DELIVERED);

  test("prefill: alpha's cut part (estimated) on alpha, beta's continuation (as it reported it) on beta", async (t) => {
    const scene = await startTwoProviders(t);
    const records = recordsOf(scene);
    scene.primary.enqueue(CHAT_ROUTE, cutAfterTwenty);
    // Beta was sent the prompt plus the delivered text, and generated the last ten words.
    scene.backup.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: chatStream(WORDS.slice(20), MODEL, { usage: { prompt_tokens: 77, completion_tokens: 10 } }),
    });
    const run = await streamAnswer(scene);
    assert.equal(run.error, undefined);
    assert.equal(run.text, FULL_TEXT);
    await waitUntil(() => records.length === 1, "the request record");
    const record = records[0] as RequestRecord;
    assert.deepEqual(
      record.attempts.map((attempt) => [
        attempt.provider,
        attempt.role,
        attempt.outcome,
        attempt.tokensIn,
        attempt.tokensOut,
        attempt.isUsageEstimated,
      ]),
      [
        ["alpha", "primary", "stream_cut", prompt, delivered, true],
        ["beta", "continuation", "success", 77, 10, undefined],
      ],
    );
    // The record's own totals stay what the client was told: the whole answer to the original prompt.
    assert.deepEqual([record.tokensIn, record.tokensOut], [prompt, delivered + 10]);
    assert.deepEqual(await tokensOf(scene), {
      "alpha in": prompt,
      "alpha out": delivered,
      "beta in": 77,
      "beta out": 10,
    });
  });

  test("replay: beta regenerated the whole answer and is counted for all of it; alpha for its cut part", async (t) => {
    const scene = await startTwoProviders(t, { backupModel: { prefill: false } });
    const records = recordsOf(scene);
    scene.primary.enqueue(CHAT_ROUTE, cutAfterTwenty);
    scene.backup.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: chatStream(WORDS, MODEL, { usage: { prompt_tokens: 12, completion_tokens: 30 } }),
    });
    const run = await streamAnswer(scene);
    assert.equal(run.text, FULL_TEXT);
    // The metrics read the record as it is published.
    await waitUntil(() => records.length === 1, "the request record");
    assert.deepEqual(await tokensOf(scene), {
      "alpha in": prompt,
      "alpha out": delivered,
      "beta in": 12,
      "beta out": 30,
    });
  });

  test("no usage anywhere: beta, which finished the answer, is counted with its estimate as alpha is", async (t) => {
    const scene = await startTwoProviders(t);
    const records = recordsOf(scene);
    scene.primary.enqueue(CHAT_ROUTE, cutAfterTwenty);
    // Beta continues from the delivered text and reports no usage (the usage chunk the client asked for is ignored).
    scene.backup.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(WORDS.slice(20), MODEL) });
    const stream = await scene.client.chat.completions.create({
      model: MODEL,
      messages: MESSAGES,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    assert.equal(text, FULL_TEXT);
    await waitUntil(() => records.length === 1, "the request record");
    const record = records[0] as RequestRecord;
    // Beta's prompt held the delivered text (prefill); its output is the last ten words.
    const betaIn = prompt + delivered;
    const betaOut = countTextTokens(WORDS.slice(20).join(""));
    assert.deepEqual(
      record.attempts.map((attempt) => [
        attempt.provider,
        attempt.outcome,
        attempt.tokensIn,
        attempt.tokensOut,
        attempt.isUsageEstimated,
      ]),
      [
        ["alpha", "stream_cut", prompt, delivered, true],
        ["beta", "success", betaIn, betaOut, true],
      ],
    );
    assert.equal(record.isUsageEstimated, true, "the client was told the gateway's estimate");
    assert.deepEqual(await tokensOf(scene), {
      "alpha in": prompt,
      "alpha out": delivered,
      "beta in": betaIn,
      "beta out": betaOut,
    });
    const beta = (await statsOf(scene.gateway)).get("beta/m");
    assert.deepEqual([beta?.tokens_in, beta?.tokens_out], [betaIn, betaOut], "/stats counts the same");
  });
});

describe("the record, the metrics and /stats agree on every segment", () => {
  const prompt = estimateChatPrompt(MESSAGES, undefined).promptTokens;
  const attemptsOf = (record: RequestRecord) =>
    record.attempts.map((attempt) => [
      attempt.provider,
      attempt.role,
      attempt.outcome,
      attempt.tokensIn,
      attempt.tokensOut,
      attempt.isUsageEstimated,
    ]);

  async function statsTokensOf(scene: TwoProviders): Promise<Record<string, number>> {
    const stats = await statsOf(scene.gateway);
    const out: Record<string, number> = {};
    for (const provider of ["alpha", "beta"]) {
      out[`${provider} in`] = stats.get(`${provider}/${MODEL}`)?.tokens_in ?? 0;
      out[`${provider} out`] = stats.get(`${provider}/${MODEL}`)?.tokens_out ?? 0;
    }
    return out;
  }

  /** Each deployment's tokens as the record's attempts carry them. */
  function recordedTokensOf(record: RequestRecord): Record<string, number> {
    const out: Record<string, number> = { "alpha in": 0, "alpha out": 0, "beta in": 0, "beta out": 0 };
    for (const attempt of record.attempts) {
      out[`${attempt.provider} in`] = (out[`${attempt.provider} in`] ?? 0) + (attempt.tokensIn ?? 0);
      out[`${attempt.provider} out`] = (out[`${attempt.provider} out`] ?? 0) + (attempt.tokensOut ?? 0);
    }
    return out;
  }

  const charged = (tokens: Record<string, number>, provider: string): number =>
    (tokens[`${provider} in`] ?? 0) + (tokens[`${provider} out`] ?? 0);

  test("continued twice (beta cut too, alpha finishes its own answer), no usage anywhere; budgets charged each once", async (t) => {
    // Only prompts are reserved (count_max_tokens: false): each segment's charge is then its estimate, above it.
    const budget = { limits: { tpm: 1_000_000 } };
    const scene = await startTwoProviders(t, {
      primary: { count_max_tokens: false },
      backup: { count_max_tokens: false },
      primaryModel: budget,
      backupModel: budget,
    });
    const records = recordsOf(scene);
    scene.primary.enqueue(CHAT_ROUTE, cutAfterTwenty);
    // Beta adds five words and is cut; alpha, asked last after a cut, finishes the answer without a usage.
    scene.backup.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: chatStream(WORDS.slice(20, 25), MODEL).slice(0, 6),
      end: "destroy",
    });
    scene.primary.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(WORDS.slice(25), MODEL) });
    const run = await streamAnswer(scene);
    assert.equal(run.error, undefined);
    assert.equal(run.text, FULL_TEXT);
    await waitUntil(() => records.length === 1, "the request record");
    const record = records[0] as RequestRecord;
    const first = countTextTokens(DELIVERED);
    const upTo25 = countTextTokens(WORDS.slice(0, 25).join(""));
    assert.deepEqual(attemptsOf(record), [
      ["alpha", "primary", "stream_cut", prompt, first, true],
      ["beta", "continuation", "stream_cut", prompt + first, countTextTokens(WORDS.slice(20, 25).join("")), true],
      ["alpha", "continuation", "success", prompt + upTo25, countTextTokens(WORDS.slice(25).join("")), true],
    ]);
    const recorded = recordedTokensOf(record);
    assert.deepEqual(await tokensOf(scene), recorded, "llm_gateway_tokens_total");
    assert.deepEqual(await statsTokensOf(scene), recorded, "/stats");
    // Every segment's estimate charged once to its own deployment's budget: no reservation left beside it.
    const stats = await statsOf(scene.gateway);
    const used = (provider: string): number =>
      windowOf(
        stats.get(`${provider}/${MODEL}`) as unknown as DeploymentView,
        `deployment:${provider}/${MODEL}`,
        "tokens",
        "minute",
      ).used;
    assert.deepEqual(
      { alpha: used("alpha"), beta: used("beta") },
      { alpha: charged(recorded, "alpha"), beta: charged(recorded, "beta") },
    );
  });

  test("the client left mid-continuation: beta's part is estimated, on the record, the metrics and /stats", async (t) => {
    const scene = await startTwoProviders(t);
    const records = recordsOf(scene);
    scene.primary.enqueue(CHAT_ROUTE, cutAfterTwenty);
    // Beta adds five words, then holds the stream open.
    scene.backup.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: chatStream(WORDS.slice(20, 25), MODEL).slice(0, 6),
      end: "hang",
    });
    const leave = new AbortController();
    const stream = await scene.client.chat.completions.create(
      { model: MODEL, messages: MESSAGES, stream: true },
      { signal: leave.signal },
    );
    const expected = WORDS.slice(0, 25).join("");
    let text = "";
    try {
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta.content ?? "";
        if (text === expected) leave.abort();
      }
    } catch {
      // The SDK reports the abort it was asked for.
    }
    assert.equal(text, expected);
    await waitUntil(() => records.length === 1, "the request record");
    const record = records[0] as RequestRecord;
    const first = countTextTokens(DELIVERED);
    assert.deepEqual(attemptsOf(record), [
      ["alpha", "primary", "stream_cut", prompt, first, true],
      ["beta", "continuation", "client_aborted", prompt + first, countTextTokens(WORDS.slice(20, 25).join("")), true],
    ]);
    const recorded = recordedTokensOf(record);
    assert.deepEqual(await tokensOf(scene), recorded, "llm_gateway_tokens_total");
    assert.deepEqual(await statsTokensOf(scene), recorded, "/stats");
  });
});

describe("opening a continuation counts against max_stream_duration_ms", () => {
  const MAX_DURATION_MS = 1200;
  const BETA_TIMEOUT_MS = 30_000;
  const cases: { name: string; step: MockStep }[] = [
    { name: "beta never answers", step: { kind: "hang" } },
    {
      name: "beta sends headers and a role chunk, then no content",
      step: { kind: "sse", events: [{ data: chatChunk("", MODEL, { role: true }) }], end: "hang" },
    },
  ];
  for (const { name, step } of cases) {
    test(`${name}: the stream ends at the cap with upstream_timeout, beta's call is abandoned unblamed`, async (t) => {
      // Beta's own timeouts (BETA_TIMEOUT_MS) are far longer than what is left of the stream's time when alpha breaks.
      const scene = await startTwoProviders(t, {
        routing: { max_stream_duration_ms: MAX_DURATION_MS },
        backup: { timeout_ms: BETA_TIMEOUT_MS, first_token_timeout_ms: BETA_TIMEOUT_MS },
      });
      const records = recordsOf(scene);
      scene.primary.enqueue(CHAT_ROUTE, cutAfterTwenty);
      scene.backup.enqueue(CHAT_ROUTE, step);
      const startedAtMs = performance.now();
      const run = await streamAnswer(scene);
      const elapsedMs = performance.now() - startedAtMs;
      assert.equal(run.text, DELIVERED);
      assert.equal(run.error?.code, "upstream_timeout", `got ${run.error?.code}: ${run.error?.message}`);
      assert.match(run.error?.message ?? "", /max_stream_duration_ms \(1200 ms\)/);
      assert.ok(elapsedMs >= MAX_DURATION_MS - 50, `ended after ${Math.round(elapsedMs)} ms, before the cap`);
      // A gateway that did not count the opening against the cap would wait out beta's timeouts (BETA_TIMEOUT_MS):
      // the bound lies far below them and far above the cap, so a loaded machine does not break it.
      assert.ok(elapsedMs < BETA_TIMEOUT_MS / 3, `ended after ${Math.round(elapsedMs)} ms, long past the cap`);
      await waitUntil(() => scene.backup.activeRequests() === 0, "beta's call to be aborted", BETA_TIMEOUT_MS / 3);
      await waitUntil(() => records.length === 1, "the request record");
      const record = records[0] as RequestRecord;
      assert.deepEqual([record.status, record.outcome, record.errorCode], [502, "stream_too_long", "upstream_timeout"]);
      const continuation = record.attempts.find((attempt) => attempt.role === "continuation");
      assert.equal(continuation?.provider, "beta");
      assert.equal(continuation?.outcome, "client_aborted", "abandoned by the gateway: nobody is blamed");
      assert.match(
        continuation?.reason ?? "",
        /max_stream_duration_ms .* ran out while the continuation was being opened/,
      );
      const beta = (await statsOf(scene.gateway)).get(`beta/${MODEL}`);
      assert.equal(beta?.failures, 0);
    });
  }
});

describe("the cap running out while a continuation streams", () => {
  test("ends the stream with the cap's upstream_timeout, not the earlier cut", async (t) => {
    // Before, the client got `stream_interrupted` naming alpha's cut, and the record `stream_cut`: a stream stopped by
    // the gateway's own duration cap was reported as a broken connection.
    const scene = await startTwoProviders(t, { routing: { max_stream_duration_ms: 800 } });
    const records = recordsOf(scene);
    scene.primary.enqueue(CHAT_ROUTE, cutAfterTwenty);
    scene.backup.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(WORDS.slice(20), MODEL, { delayMs: 200 }) });
    const run = await streamAnswer(scene);
    assert.ok(run.text.startsWith(`${DELIVERED} word20`), `the continuation streamed: ${run.text}`);
    assert.notEqual(run.text, FULL_TEXT);
    assert.equal(run.error?.code, "upstream_timeout", `got ${run.error?.code}: ${run.error?.message}`);
    assert.match(run.error?.message ?? "", /exceeded max_stream_duration_ms \(800 ms\)\.$/);
    await waitUntil(() => records.length === 1, "the request record");
    const record = records[0] as RequestRecord;
    assert.deepEqual([record.status, record.outcome, record.errorCode], [502, "stream_too_long", "upstream_timeout"]);
    assert.deepEqual(
      record.attempts.map((attempt) => `${attempt.provider} ${attempt.role} ${attempt.outcome}`),
      ["alpha primary stream_cut", "beta continuation stream_too_long"],
    );
  });
});

describe("a continuation candidate passed over for a limit leaves a skip in the record", () => {
  test("beta cooling down (a 429 asking for a minute): skipped when asked to continue, and the record says so", async (t) => {
    const scene = await startTwoProviders(t, { primary: { stream_idle_timeout_ms: 300 } });
    const records = recordsOf(scene);
    scene.backup.enqueue(CHAT_ROUTE, rateLimited({ retryAfter: "60" }));
    await assert.rejects(
      scene.client.chat.completions.create({ model: `beta/${MODEL}`, messages: MESSAGES }),
      (error: unknown) => error instanceof OpenAI.APIError && error.status === 429,
    );
    scene.primary.enqueue(CHAT_ROUTE, stallAfterTwenty);
    const run = await streamAnswer(scene);
    assert.equal(run.text, DELIVERED);
    assert.equal(run.error?.code, "upstream_timeout", "the stall's error: nobody could continue");
    await waitUntil(() => records.length === 2, "the request records");
    const record = records[1] as RequestRecord;
    assert.deepEqual(
      record.skips.map((skip) => `${skip.deploymentKey} ${skip.phase} ${skip.cause} ${skip.isLimit}`),
      [`beta/${MODEL} plan cooldown true`, `beta/${MODEL} continuation attempt true`],
    );
    const skip = record.skips[1];
    assert.match(skip?.reason ?? "", /429/, "the cooldown's reason");
    assert.ok(skip?.untilMs !== undefined && skip.untilMs > Date.now() + 30_000, "until the cooldown ends");
    assert.equal(scene.backup.requests.length, 1, "beta was not asked again");
  });

  test("beta over its rpm budget: skipped when asked to continue, and the record says so", async (t) => {
    const scene = await startTwoProviders(t, {
      primary: { stream_idle_timeout_ms: 300 },
      backupModel: { limits: { rpm: 1 } },
    });
    const records = recordsOf(scene);
    await scene.client.chat.completions.create({ model: `beta/${MODEL}`, messages: MESSAGES });
    scene.primary.enqueue(CHAT_ROUTE, stallAfterTwenty);
    const run = await streamAnswer(scene);
    assert.equal(run.text, DELIVERED);
    assert.equal(run.error?.code, "upstream_timeout");
    await waitUntil(() => records.length === 2, "the request records");
    assert.deepEqual(
      records[1]?.skips.map((skip) => `${skip.deploymentKey} ${skip.phase} ${skip.cause} ${skip.isLimit}`),
      [`beta/${MODEL} plan budget true`, `beta/${MODEL} continuation attempt true`],
    );
    assert.equal(scene.backup.requests.length, 1, "beta was not asked again");
  });

  test("beta at its concurrency limit: the skip is recorded, and /metrics counts it as an attempt-time skip", async (t) => {
    const scene = await startTwoProviders(t, {
      primary: { stream_idle_timeout_ms: 300 },
      backupModel: { limits: { concurrency: 1 } },
    });
    const records = recordsOf(scene);
    // Beta's one slot is held by a stream of its own that does not end while the test runs.
    scene.backup.enqueue(CHAT_ROUTE, { kind: "sse", events: firstTwenty(), end: "hang" });
    const holder = new AbortController();
    t.after(() => holder.abort());
    const held = await scene.client.chat.completions.create(
      { model: `beta/${MODEL}`, messages: MESSAGES, stream: true },
      { signal: holder.signal },
    );
    const heldChunks = held[Symbol.asyncIterator]();
    await heldChunks.next();
    scene.primary.enqueue(CHAT_ROUTE, stallAfterTwenty);
    const run = await streamAnswer(scene);
    assert.equal(run.text, DELIVERED);
    assert.equal(run.error?.code, "upstream_timeout");
    await waitUntil(() => records.length === 1, "the stream's record");
    const skips = records[0]?.skips ?? [];
    const continuationSkips = skips.filter((skip) => skip.phase === "continuation");
    assert.ok(continuationSkips.length >= 1, `no continuation skip in ${JSON.stringify(skips)}`);
    for (const skip of continuationSkips) {
      assert.equal(skip.deploymentKey, `beta/${MODEL}`);
      assert.match(skip.reason, /concurrency/);
    }
    const metrics = parsePrometheusText((await send(scene.gateway, "GET", "/metrics")).text);
    assert.equal(sumOf(metrics, "llm_gateway_route_skips_total", { cause: "attempt" }), continuationSkips.length);
    holder.abort();
  });
});
