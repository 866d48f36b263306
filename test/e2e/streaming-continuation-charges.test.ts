// What each deployment of a continued stream is charged (its budgets), counted (`llm_gateway_tokens_total`, /stats)
// and recorded (its attempt's `tokensIn`, `tokensOut`) when it reported no usage: what its upstream was sent and
// generated, as the deployment counts it (docs/metrics.md "Tokens of a broken or continued stream"):
// - a continuation that broke and was continued in turn is charged its estimate, not its reservation (`max_tokens`
//   included), which the next segment's reservation covers again;
// - a prefill continuation that ignored the prefill and started the answer over generated the delivered text again:
//   it counts, though the client did not get it twice;
// - a replay that diverged generated what it repeated and the event it diverged at: it counts;
// - a prefill continuation reserves the output it is asked for (what is left of `max_tokens`), not the whole limit;
// - the prompt of each estimate is calibrated for its deployment, as its reservation and the client's usage are.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import OpenAI from "openai";
import { stringify } from "yaml";
import { countTextTokens, estimateChatPrompt } from "../../src/limits/token-estimate.ts";
import type { RequestRecord } from "../../src/observability/request-record.ts";
import { openAiClient, send, statsOf, useGateway, useMock } from "../helpers/e2e.ts";
import { type DeploymentView, windowOf } from "../helpers/limits-scene.ts";
import {
  chatChunk,
  chatCompletion,
  chatStream,
  chatUsageChunk,
  type MockStep,
  type MockUpstream,
  type SseScript,
} from "../helpers/mock-upstream.ts";
import { parsePrometheusText, sumOf } from "../helpers/prometheus-text.ts";
import { waitUntil } from "../helpers/sse-client.ts";
import { CHAT_ROUTE, MODEL, sentBody, startTwoProviders, type TwoProviders } from "../helpers/two-providers.ts";

const MESSAGES = [{ role: "user" as const, content: "Count from zero to twenty-nine, one word each." }];
const WORDS = Array.from({ length: 30 }, (_, index) => ` word${index}`);
const DELIVERED = WORDS.slice(0, 20).join("");
const FULL_TEXT = WORDS.join("");
const PROMPT = estimateChatPrompt(MESSAGES, undefined).promptTokens;
const BUDGET = { limits: { tpm: 1_000_000 } };
/**
 * A replay that diverges at " otherwise"; the rest comes in a later read, which the gateway, gone at the divergence,
 * never reads (what came in the same read is counted: in-band-end-batch-charges.test.ts).
 */
const DIVERGING_REPLAY: SseScript[] = (() => {
  const events = chatStream([" word0", " word1", " otherwise", " so"], MODEL);
  return [...events.slice(0, 4), { delayMs: 300 }, ...events.slice(4)];
})();

const cutAfterTwenty: MockStep = {
  kind: "sse",
  events: chatStream(WORDS.slice(0, 20), MODEL).slice(0, 21),
  end: "destroy",
};

function recordsOf(scene: TwoProviders): RequestRecord[] {
  const records: RequestRecord[] = [];
  scene.gateway.runtime.onRecord((record) => records.push(record));
  return records;
}

async function streamText(
  scene: Pick<TwoProviders, "client">,
  messages: readonly { role: "user"; content: string }[] = MESSAGES,
  extra: Record<string, unknown> = {},
): Promise<string> {
  const stream = await scene.client.chat.completions.create({
    model: MODEL,
    messages: [...messages],
    stream: true,
    ...extra,
  });
  let text = "";
  for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
  return text;
}

async function oneRecord(records: RequestRecord[]): Promise<RequestRecord> {
  await waitUntil(() => records.length === 1, "the request record");
  return records[0] as RequestRecord;
}

/** A chunk carrying only reasoning, as a provider streams its thinking. */
function reasoningChunk(thought: string) {
  return { ...chatChunk("", MODEL), choices: [{ index: 0, delta: { reasoning_content: thought } }] };
}

function attemptsOf(record: RequestRecord): unknown[][] {
  return record.attempts.map((attempt) => [
    attempt.provider,
    attempt.role,
    attempt.outcome,
    attempt.tokensIn,
    attempt.tokensOut,
    attempt.isUsageEstimated,
  ]);
}

/** Beta's (or alpha's) tokens in the metrics, /stats and its tpm budget. */
async function betaBooks(
  scene: TwoProviders,
  provider = "beta",
): Promise<{ metrics: number[]; stats: number[]; budget: number }> {
  const exposition = parsePrometheusText((await send(scene.gateway, "GET", "/metrics")).text);
  const metric = (direction: string) => sumOf(exposition, "llm_gateway_tokens_total", { provider, direction });
  const row = (await statsOf(scene.gateway)).get(`${provider}/${MODEL}`);
  const budget = windowOf(row as unknown as DeploymentView, `deployment:${provider}/${MODEL}`, "tokens", "minute").used;
  return { metrics: [metric("in"), metric("out")], stats: [row?.tokens_in ?? 0, row?.tokens_out ?? 0], budget };
}

/** Streams MESSAGES (max_tokens 500) and leaves (aborts) once the text read is `leaveAt`. */
async function readThenLeave(scene: TwoProviders, leaveAt: string): Promise<void> {
  const leave = new AbortController();
  const stream = await scene.client.chat.completions.create(
    { model: MODEL, messages: MESSAGES, stream: true, max_tokens: 500 },
    { signal: leave.signal },
  );
  let text = "";
  try {
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      if (text === leaveAt) leave.abort();
    }
  } catch {
    // The SDK reports the abort it was asked for.
  }
}

describe("a continuation's charge when it reported no usage", () => {
  test("broken and continued in turn: charged what it was sent and delivered, not its reservation", async (t) => {
    // Its reservation counts max_tokens (count_max_tokens, the default): before, that stayed charged as if it had
    // ended the answer, beside the reservation of the segment that did.
    const scene = await startTwoProviders(t, { primaryModel: BUDGET, backupModel: BUDGET });
    const records = recordsOf(scene);
    scene.primary.enqueue(CHAT_ROUTE, cutAfterTwenty);
    scene.backup.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: chatStream(WORDS.slice(20, 25), MODEL).slice(0, 6),
      end: "destroy",
    });
    scene.primary.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(WORDS.slice(25), MODEL) });
    assert.equal(await streamText(scene, MESSAGES, { max_tokens: 500 }), FULL_TEXT);
    const record = await oneRecord(records);
    const betaIn = PROMPT + countTextTokens(DELIVERED);
    const betaOut = countTextTokens(WORDS.slice(20, 25).join(""));
    assert.deepEqual(attemptsOf(record)[1], ["beta", "continuation", "stream_cut", betaIn, betaOut, true]);
    const books = await betaBooks(scene);
    assert.deepEqual(books, { metrics: [betaIn, betaOut], stats: [betaIn, betaOut], budget: betaIn + betaOut });
  });

  test("a prefill continuation's reservation counts the output limit it is sent, not the client's whole", async (t) => {
    // Beta finishes the answer without a usage report: its reservation is its floor, and beta was asked for only what
    // is left of max_tokens after the delivered text. Before, the floor counted all 500.
    const scene = await startTwoProviders(t, { backupModel: BUDGET });
    const records = recordsOf(scene);
    scene.primary.enqueue(CHAT_ROUTE, cutAfterTwenty);
    scene.backup.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(WORDS.slice(20), MODEL) });
    assert.equal(await streamText(scene, MESSAGES, { max_tokens: 500 }), FULL_TEXT);
    await oneRecord(records);
    const asked = sentBody(scene.backup).max_tokens;
    assert.equal(asked, 500 - countTextTokens(DELIVERED));
    assert.equal((await betaBooks(scene)).budget, PROMPT + (asked as number));
  });

  test("a prefill continuation that started the answer over: what it repeated counts too", async (t) => {
    const scene = await startTwoProviders(t, { backupModel: BUDGET });
    const records = recordsOf(scene);
    scene.primary.enqueue(CHAT_ROUTE, cutAfterTwenty);
    // Beta takes the prefill with a 200 but answers afresh, the whole answer, without a usage report.
    scene.backup.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(WORDS, MODEL) });
    assert.equal(await streamText(scene), FULL_TEXT, "the client gets the delivered text once");
    const record = await oneRecord(records);
    const betaIn = PROMPT + countTextTokens(DELIVERED);
    const betaOut = countTextTokens(FULL_TEXT);
    assert.deepEqual(attemptsOf(record)[1], ["beta", "continuation", "success", betaIn, betaOut, true]);
    const books = await betaBooks(scene);
    assert.deepEqual(books.metrics, [betaIn, betaOut], "llm_gateway_tokens_total");
    assert.deepEqual(books.stats, [betaIn, betaOut], "/stats");
  });

  test("a prefill continuation that started over and reasoned while it repeated: that reasoning counts too", async (t) => {
    // Its events are held while its text repeats the delivered text, then dropped: the reasoning among them was
    // generated (and billed) as surely as the repeated text. Before, it counted nothing.
    const scene = await startTwoProviders(t, { backupModel: BUDGET });
    const records = recordsOf(scene);
    scene.primary.enqueue(CHAT_ROUTE, cutAfterTwenty);
    const thought = " Still counting.";
    const afresh = chatStream(WORDS, MODEL);
    const reasoning = reasoningChunk(thought);
    afresh.splice(4, 0, { data: reasoning });
    scene.backup.enqueue(CHAT_ROUTE, { kind: "sse", events: afresh });
    assert.equal(await streamText(scene), FULL_TEXT, "the client gets the delivered text once");
    const record = await oneRecord(records);
    const betaOut = countTextTokens(FULL_TEXT) + countTextTokens(thought);
    assert.deepEqual(attemptsOf(record)[1], [
      "beta",
      "continuation",
      "success",
      PROMPT + countTextTokens(DELIVERED),
      betaOut,
      true,
    ]);
  });

  test("a real continuation that began like the delivered text and reasoned while held: that reasoning counts once", async (t) => {
    // " word" repeats the start of the delivered text: held, with the reasoning after it, until "20" shows a real
    // continuation; then the held events go on and are counted as relayed, not also as dropped.
    const scene = await startTwoProviders(t, { backupModel: BUDGET });
    const records = recordsOf(scene);
    scene.primary.enqueue(CHAT_ROUTE, cutAfterTwenty);
    const thought = " Still counting.";
    const events = chatStream([" word", "20", ...WORDS.slice(21)], MODEL);
    const reasoning = reasoningChunk(thought);
    events.splice(2, 0, { data: reasoning });
    scene.backup.enqueue(CHAT_ROUTE, { kind: "sse", events, end: "destroy" });
    assert.equal(await streamText(scene), FULL_TEXT);
    const record = await oneRecord(records);
    const betaOut = countTextTokens(WORDS.slice(20).join("")) + countTextTokens(thought);
    assert.deepEqual(attemptsOf(record)[1], [
      "beta",
      "continuation",
      "success",
      PROMPT + countTextTokens(DELIVERED),
      betaOut,
      true,
    ]);
  });

  test("cut while it repeated (its events held, then dropped with it): its held text and reasoning count", async (t) => {
    const scene = await startTwoProviders(t, { backupModel: BUDGET });
    const records = recordsOf(scene);
    scene.primary.enqueue(CHAT_ROUTE, cutAfterTwenty);
    const thought = " Still counting.";
    const reasoning = reasoningChunk(thought);
    const repeated = chatStream(WORDS.slice(0, 2), MODEL).slice(0, 3);
    repeated.splice(2, 0, { data: reasoning });
    scene.backup.enqueue(CHAT_ROUTE, { kind: "sse", events: repeated, end: "destroy" });
    // Alpha, whose connection broke, is asked last and finishes the answer.
    scene.primary.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(WORDS.slice(20), MODEL) });
    assert.equal(await streamText(scene), FULL_TEXT);
    const record = await oneRecord(records);
    const betaOut = countTextTokens(WORDS.slice(0, 2).join("")) + countTextTokens(thought);
    const betaIn = PROMPT + countTextTokens(DELIVERED);
    assert.deepEqual(attemptsOf(record)[1], ["beta", "continuation", "stream_cut", betaIn, betaOut, true]);
  });

  test("cut while it repeated, after a usage chunk it held: charged that usage, on every book", async (t) => {
    // Beta starts the answer over (" word0 word1", held as a possible repetition), reports its usage, and breaks. The
    // usage is its provider's report: before, it was dropped with the held events and beta was charged an estimate.
    const scene = await startTwoProviders(t, { backupModel: BUDGET });
    const records = recordsOf(scene);
    scene.primary.enqueue(CHAT_ROUTE, cutAfterTwenty);
    const usage = chatUsageChunk(MODEL, { prompt_tokens: 77, completion_tokens: 3 });
    const repeated = [...chatStream(WORDS.slice(0, 2), MODEL).slice(0, 3), { data: usage }];
    scene.backup.enqueue(CHAT_ROUTE, { kind: "sse", events: repeated, end: "destroy" });
    scene.primary.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(WORDS.slice(20), MODEL) });
    assert.equal(await streamText(scene, MESSAGES, { max_tokens: 500 }), FULL_TEXT);
    const record = await oneRecord(records);
    assert.deepEqual(attemptsOf(record)[1], ["beta", "continuation", "stream_cut", 77, 3, undefined]);
    const books = await betaBooks(scene);
    assert.deepEqual(books.metrics, [77, 3], "llm_gateway_tokens_total");
    assert.deepEqual(books.stats, [77, 3], "/stats");
    assert.equal(books.budget, 80);
  });

  test("a replay that diverged: its prompt and what it generated count, on every book", async (t) => {
    // Beta does not take a prefill; its fresh answer repeats two words, then goes another way. Alpha, whose
    // connection broke, is asked last and fails: nobody continues. Before, beta's attempt counted nothing.
    const scene = await startTwoProviders(t, { backupModel: { prefill: false, ...BUDGET } });
    const records = recordsOf(scene);
    scene.primary.enqueue(CHAT_ROUTE, cutAfterTwenty, {
      kind: "json",
      status: 500,
      body: { error: { message: "down" } },
    });
    scene.backup.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: DIVERGING_REPLAY,
    });
    await assert.rejects(
      streamText(scene, MESSAGES, { max_tokens: 500 }),
      (error: unknown) => error instanceof OpenAI.APIError,
    );
    const record = await oneRecord(records);
    const betaOut = countTextTokens(" word0 word1 otherwise");
    assert.deepEqual(attemptsOf(record)[1], ["beta", "continuation", "stream_diverged", PROMPT, betaOut, true]);
    assert.equal(scene.primary.pendingSteps(), 0, "alpha, whose connection broke, was asked last");
    const books = await betaBooks(scene);
    assert.deepEqual(books.metrics, [PROMPT, betaOut], "llm_gateway_tokens_total");
    assert.deepEqual(books.stats, [PROMPT, betaOut], "/stats");
    // It sent the client nothing: charged what it used, not its reservation (prompt and max_tokens), which it kept
    // before as its floor.
    assert.equal(books.budget, PROMPT + betaOut);
  });

  test("a diverged replay another candidate continued: its budget is charged its estimate", async (t) => {
    const [alpha, beta, gamma] = [await useMock(t), await useMock(t), await useMock(t)];
    const provider = (name: string, mock: MockUpstream, priority: number, model: Record<string, unknown> = {}) => ({
      name,
      base_url: mock.baseUrl,
      api_key: `sk-${name}-secret`,
      retries: 0,
      models: { [MODEL]: { priority, ...BUDGET, ...model } },
    });
    const providers = [
      provider("alpha", alpha, 30),
      provider("beta", beta, 20, { prefill: false }),
      provider("gamma", gamma, 10),
    ];
    const gateway = await useGateway(t, stringify({ providers }));
    const records: RequestRecord[] = [];
    gateway.runtime.onRecord((record) => records.push(record));
    alpha.enqueue(CHAT_ROUTE, cutAfterTwenty);
    beta.enqueue(CHAT_ROUTE, { kind: "sse", events: DIVERGING_REPLAY });
    gamma.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(WORDS.slice(20), MODEL) });
    assert.equal(await streamText({ client: openAiClient(gateway) }, MESSAGES, { max_tokens: 500 }), FULL_TEXT);
    const record = await oneRecord(records);
    const betaOut = countTextTokens(" word0 word1 otherwise");
    assert.deepEqual(attemptsOf(record)[1], ["beta", "continuation", "stream_diverged", PROMPT, betaOut, true]);
    const row = (await statsOf(gateway)).get(`beta/${MODEL}`);
    const used = windowOf(row as unknown as DeploymentView, `deployment:beta/${MODEL}`, "tokens", "minute").used;
    assert.equal(used, PROMPT + betaOut, "the rest of the answer is gamma's: no floor");
  });
});

describe("the estimates' prompt is counted as each deployment counts it (calibrated)", () => {
  const LONG = Array.from({ length: 500 }, (_, index) => `word${index % 7 === 0 ? "s" : ""} of text`).join(" ");
  const LONG_MESSAGES = [{ role: "user" as const, content: LONG }];
  const plain = estimateChatPrompt(LONG_MESSAGES, undefined).promptTokens;

  test("each segment's prompt as its deployment counts it; the first agrees with the client's estimated usage", async (t) => {
    const scene = await startTwoProviders(t, { primaryModel: BUDGET, backupModel: BUDGET });
    const records = recordsOf(scene);
    // Both providers report half the estimate: each deployment learns its factor.
    const halved = { prompt_tokens: Math.round(plain / 2), completion_tokens: 1 };
    scene.primary.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("ok", MODEL, halved) });
    scene.backup.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("ok", MODEL, halved) });
    await scene.client.chat.completions.create({ model: MODEL, messages: LONG_MESSAGES });
    await scene.client.chat.completions.create({ model: `beta/${MODEL}`, messages: LONG_MESSAGES });
    const stats = await statsOf(scene.gateway);
    const factorOf = (key: string) =>
      (stats.get(key) as unknown as { prompt_token_factor: number }).prompt_token_factor;
    const [alphaFactor, betaFactor] = [factorOf(`alpha/${MODEL}`), factorOf(`beta/${MODEL}`)];
    assert.ok(alphaFactor < 0.9 && betaFactor < 0.9, `factors ${alphaFactor}, ${betaFactor}`);
    await waitUntil(() => records.length === 2, "the teaching records");
    records.length = 0;
    const before = await betaBooks(scene);

    scene.primary.enqueue(CHAT_ROUTE, cutAfterTwenty);
    scene.backup.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(WORDS.slice(20), MODEL) });
    const text = await streamText(scene, LONG_MESSAGES, { stream_options: { include_usage: true } });
    assert.equal(text, FULL_TEXT);
    const record = await oneRecord(records);
    const alphaIn = Math.ceil(plain * alphaFactor);
    const betaIn = Math.ceil((plain + countTextTokens(DELIVERED)) * betaFactor);
    assert.deepEqual(
      record.attempts.map((attempt) => [attempt.provider, attempt.tokensIn]),
      [
        ["alpha", alphaIn],
        ["beta", betaIn],
      ],
    );
    assert.equal(record.tokensIn, alphaIn, "the client's estimated usage counts the prompt alpha's attempt does");
    const after = await betaBooks(scene);
    assert.equal((after.metrics[0] ?? 0) - (before.metrics[0] ?? 0), betaIn, "llm_gateway_tokens_total");
    assert.equal((after.stats[0] ?? 0) - (before.stats[0] ?? 0), betaIn, "/stats");
  });
});

describe("an abandoned continuation is settled with what it used, not its reservation", () => {
  // Its reservation counts the output it was asked for (max_tokens: what is left after the delivered text). Before, a
  // continuation the client left kept all of it. One its upstream broke keeps it as its floor, as any broken segment.
  const betaIn = PROMPT + countTextTokens(DELIVERED);

  test("the client left while it streamed: its prompt and what it generated", async (t) => {
    const scene = await startTwoProviders(t, { backupModel: BUDGET });
    const records = recordsOf(scene);
    scene.primary.enqueue(CHAT_ROUTE, cutAfterTwenty);
    scene.backup.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: chatStream(WORDS.slice(20, 22), MODEL).slice(0, 3),
      end: "hang",
    });
    await readThenLeave(scene, WORDS.slice(0, 22).join(""));
    const record = await oneRecord(records);
    const betaOut = countTextTokens(WORDS.slice(20, 22).join(""));
    assert.deepEqual(attemptsOf(record)[1], ["beta", "continuation", "client_aborted", betaIn, betaOut, true]);
    assert.equal((await betaBooks(scene)).budget, betaIn + betaOut);
  });

  test("a first segment the client left is charged the same way: its prompt and what it generated", async (t) => {
    // The gateway hangs up on a first segment whose client left as on such a continuation, and its provider stops
    // generating as the connection closes. Before, it kept its reservation (max_tokens 500 included) as its floor.
    const scene = await startTwoProviders(t, { primaryModel: BUDGET });
    const records = recordsOf(scene);
    scene.primary.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: chatStream(WORDS.slice(0, 20), MODEL).slice(0, 21),
      end: "hang",
    });
    await readThenLeave(scene, DELIVERED);
    const record = await oneRecord(records);
    const alphaOut = countTextTokens(DELIVERED);
    assert.deepEqual(attemptsOf(record)[0], ["alpha", "primary", "client_aborted", PROMPT, alphaOut, true]);
    assert.equal((await betaBooks(scene, "alpha")).budget, PROMPT + alphaOut);
  });

  test("its upstream broke it before it sent anything (it reasoned, then was cut; nobody continued it): its reservation stays the floor, as any broken segment's", async (t) => {
    // The gateway did not hang up on it: its connection broke, and its provider may have generated on for nobody, as
    // for a first segment or a continuation cut after its first output, which keep that floor too. Before, having
    // sent the client nothing yet dropped the floor (charged PROMPT + delivered + thought only).
    const scene = await startTwoProviders(t, { backupModel: BUDGET });
    const records = recordsOf(scene);
    // Alpha, whose connection broke, is asked last and fails.
    scene.primary.enqueue(CHAT_ROUTE, cutAfterTwenty, {
      kind: "json",
      status: 500,
      body: { error: { message: "down" } },
    });
    const thought = "Where was I?";
    const reasoning = reasoningChunk(thought);
    scene.backup.enqueue(CHAT_ROUTE, { kind: "sse", events: [{ data: reasoning }], end: "destroy" });
    await assert.rejects(streamText(scene, MESSAGES, { max_tokens: 500 }), OpenAI.APIError);
    const record = await oneRecord(records);
    const betaOut = countTextTokens(thought);
    assert.deepEqual(attemptsOf(record)[1], ["beta", "continuation", "stream_cut", betaIn, betaOut, true]);
    const reserved = PROMPT + (sentBody(scene.backup).max_tokens as number);
    assert.ok(reserved > betaIn + betaOut);
    assert.equal((await betaBooks(scene)).budget, reserved);
  });
});

describe("an abandoned continuation that generated nothing was still sent: its request and prompt count", () => {
  test("a replay that ended at once (content filter): its prompt stays charged, and its request", async (t) => {
    // Beta's fresh answer is only a finish (a content filter): it diverged before anything, generated nothing, and
    // nobody continued it. Its provider took the request and read its prompt (tpm counts input as it arrives), so a
    // charge of 0 tokens let the budget admit more than the provider's window.
    const limits = { tpm: 1_000_000, rpm: 1_000 };
    const scene = await startTwoProviders(t, { backupModel: { prefill: false, limits } });
    const records = recordsOf(scene);
    scene.primary.enqueue(CHAT_ROUTE, cutAfterTwenty, {
      kind: "json",
      status: 500,
      body: { error: { message: "down" } },
    });
    scene.backup.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: chatStream([], MODEL, { finishReason: "content_filter" }),
    });
    await assert.rejects(streamText(scene, MESSAGES, { max_tokens: 500 }), OpenAI.APIError);
    const record = await oneRecord(records);
    const row = (await statsOf(scene.gateway)).get(`beta/${MODEL}`) as unknown as DeploymentView;
    const scope = `deployment:beta/${MODEL}`;
    assert.equal(windowOf(row, scope, "requests", "minute").used, 1, "its request");
    assert.equal(windowOf(row, scope, "tokens", "minute").used, PROMPT, "its prompt, not 0");
    // The record, /stats and llm_gateway_tokens_total count the same prompt.
    assert.deepEqual(attemptsOf(record)[1], ["beta", "continuation", "stream_diverged", PROMPT, 0, true]);
    assert.deepEqual((await betaBooks(scene)).stats, [PROMPT, 0], "/stats");
  });
});
