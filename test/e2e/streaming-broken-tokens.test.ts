// The tokens of a stream that broke without a usage report, counted the same way in every book: its provider billed
// the prompt and what it generated before the break, so the request record's attempt carries the gateway's estimate
// (isUsageEstimated), `llm_gateway_tokens_total` and /stats count it on that deployment, and its budgets are charged
// it (never less than what was reserved), whether or not the stream was continued, and for a continuation that
// broke too.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import OpenAI from "openai";
import { countTextTokens, estimateChatPrompt } from "../../src/limits/token-estimate.ts";
import type { RecordedAttempt, RequestRecord } from "../../src/observability/request-record.ts";
import { rowOf, send, statsOf } from "../helpers/e2e.ts";
import { deploymentTpmUsed } from "../helpers/limits-scene.ts";
import { chatStream, type MockStep, type SseScript } from "../helpers/mock-upstream.ts";
import { parsePrometheusText, sumOf } from "../helpers/prometheus-text.ts";
import { waitUntil } from "../helpers/sse-client.ts";
import { CHAT_ROUTE, MODEL, startTwoProviders, type TwoProviders } from "../helpers/two-providers.ts";

const MESSAGES = [{ role: "user" as const, content: "Count from zero to twenty-nine, one word each." }];
const WORDS = Array.from({ length: 30 }, (_, index) => ` word${index}`);
const DELIVERED = WORDS.slice(0, 20).join("");
const PROMPT = estimateChatPrompt(MESSAGES, undefined).promptTokens;

/** The role chunk and the first 20 words, without a finish_reason or usage. */
function firstTwenty(): SseScript[] {
  return chatStream(WORDS.slice(0, 20), MODEL).slice(0, 21);
}

const cutAfterTwenty: MockStep = { kind: "sse", events: firstTwenty(), end: "destroy" };
const serverError: MockStep = { kind: "json", status: 500, body: { error: { message: "down" } } };

function recordsOf(scene: TwoProviders): RequestRecord[] {
  const records: RequestRecord[] = [];
  scene.gateway.runtime.onRecord((record) => records.push(record));
  return records;
}

/** Streams an answer of `model` with the official SDK: the text, and the in-band error's code. */
async function streamAnswer(scene: TwoProviders, model: string): Promise<{ text: string; code: string | undefined }> {
  const stream = await scene.client.chat.completions.create({ model, messages: MESSAGES, stream: true });
  let text = "";
  try {
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
  } catch (thrown) {
    assert.ok(thrown instanceof OpenAI.APIError, `expected an APIError, got ${String(thrown)}`);
    return { text, code: thrown.code ?? undefined };
  }
  return { text, code: undefined };
}

async function tokensTotalOf(scene: TwoProviders, provider: string): Promise<[number, number]> {
  const response = await send(scene.gateway, "GET", "/metrics");
  assert.equal(response.status, 200, response.text);
  const metrics = parsePrometheusText(response.text);
  return [
    sumOf(metrics, "llm_gateway_tokens_total", { provider, direction: "in" }),
    sumOf(metrics, "llm_gateway_tokens_total", { provider, direction: "out" }),
  ];
}

function usageOf(attempt: RecordedAttempt | undefined) {
  return [
    attempt?.provider,
    attempt?.role,
    attempt?.outcome,
    attempt?.tokensIn,
    attempt?.tokensOut,
    attempt?.isUsageEstimated,
  ];
}

describe("a stream that broke and was not continued: its estimate in the record, tokens_total and /stats", () => {
  const delivered = countTextTokens(DELIVERED);

  test("cut mid-answer, the only candidate fails to continue it: every book counts the prompt and the delivered text", async (t) => {
    const scene = await startTwoProviders(t);
    const records = recordsOf(scene);
    scene.primary.enqueue(CHAT_ROUTE, cutAfterTwenty);
    // Asked `alpha/m`, alpha is the only candidate; asked to continue its own cut stream, it fails.
    scene.primary.enqueue(CHAT_ROUTE, serverError);
    const run = await streamAnswer(scene, `alpha/${MODEL}`);
    assert.equal(run.text, DELIVERED);
    assert.equal(run.code, "stream_interrupted");
    await waitUntil(() => records.length === 1, "the request record");
    const record = records[0] as RequestRecord;
    assert.equal(record.continuations.length, 0);
    assert.deepEqual(record.attempts.map(usageOf), [
      ["alpha", "primary", "stream_cut", PROMPT, delivered, true],
      ["alpha", "continuation", "server_error", undefined, undefined, undefined],
    ]);
    // The client was told no usage: the record's own totals stay 0.
    assert.deepEqual([record.tokensIn, record.tokensOut], [0, 0]);
    assert.deepEqual(await tokensTotalOf(scene, "alpha"), [PROMPT, delivered]);
    const alpha = rowOf(await statsOf(scene.gateway), `alpha/${MODEL}`);
    assert.deepEqual([alpha.tokens_in, alpha.tokens_out, alpha.successes], [PROMPT, delivered, 0]);
    // The request log serves the same attempt.
    const listed = await send(scene.gateway, "GET", "/v1/gateway/requests");
    const logged = (listed.json as { data: RequestRecord[] }).data[0];
    assert.deepEqual(usageOf(logged?.attempts[0]), ["alpha", "primary", "stream_cut", PROMPT, delivered, true]);
  });

  test("stalled mid-answer (nobody continues a stall of the only candidate): counted the same way", async (t) => {
    const scene = await startTwoProviders(t, { primary: { stream_idle_timeout_ms: 300 } });
    const records = recordsOf(scene);
    scene.primary.enqueue(CHAT_ROUTE, { kind: "sse", events: firstTwenty(), end: "hang" });
    const run = await streamAnswer(scene, `alpha/${MODEL}`);
    assert.equal(run.text, DELIVERED);
    assert.equal(run.code, "upstream_timeout");
    await waitUntil(() => records.length === 1, "the request record");
    assert.deepEqual(records[0]?.attempts.map(usageOf), [
      ["alpha", "primary", "stream_stalled", PROMPT, delivered, true],
    ]);
    assert.deepEqual(await tokensTotalOf(scene, "alpha"), [PROMPT, delivered]);
    const alpha = rowOf(await statsOf(scene.gateway), `alpha/${MODEL}`);
    assert.deepEqual([alpha.tokens_in, alpha.tokens_out, alpha.failures], [PROMPT, delivered, 1]);
  });

  test("the client left mid-answer: the provider billed what it generated, counted though nobody is blamed", async (t) => {
    const scene = await startTwoProviders(t);
    const records = recordsOf(scene);
    scene.primary.enqueue(CHAT_ROUTE, { kind: "sse", events: firstTwenty(), end: "hang" });
    const leave = new AbortController();
    const stream = await scene.client.chat.completions.create(
      { model: MODEL, messages: MESSAGES, stream: true },
      { signal: leave.signal },
    );
    let text = "";
    try {
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta.content ?? "";
        if (text === DELIVERED) leave.abort();
      }
    } catch {
      // The SDK reports the abort it was asked for.
    }
    assert.equal(text, DELIVERED);
    await waitUntil(() => records.length === 1, "the request record");
    assert.deepEqual(records[0]?.attempts.map(usageOf), [
      ["alpha", "primary", "client_aborted", PROMPT, delivered, true],
    ]);
    assert.deepEqual(await tokensTotalOf(scene, "alpha"), [PROMPT, delivered]);
    const alpha = rowOf(await statsOf(scene.gateway), `alpha/${MODEL}`);
    assert.deepEqual([alpha.tokens_in, alpha.tokens_out, alpha.failures], [PROMPT, delivered, 0]);
    assert.equal(scene.backup.requests.length, 0, "nobody continues for a client that left");
  });
});

describe("a continuation that broke too, without a usage report", () => {
  test("its budgets are charged the estimate the record carries, and /stats counts it as tokens_total does", async (t) => {
    const scene = await startTwoProviders(t, {
      primaryModel: { limits: { tpm: 1_000_000 } },
      backupModel: { limits: { tpm: 1_000_000 } },
    });
    const records = recordsOf(scene);
    scene.primary.enqueue(CHAT_ROUTE, cutAfterTwenty);
    // Beta continues with a prefill (its prompt holds the delivered text), sends five words and is cut too; alpha,
    // asked last to continue its own cut stream, fails.
    const fiveMore = WORDS.slice(20, 25);
    scene.backup.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(fiveMore, MODEL).slice(0, 6), end: "destroy" });
    scene.primary.enqueue(CHAT_ROUTE, serverError);
    const run = await streamAnswer(scene, MODEL);
    assert.equal(run.text, WORDS.slice(0, 25).join(""));
    assert.equal(run.code, "stream_interrupted");
    await waitUntil(() => records.length === 1, "the request record");
    const betaIn = PROMPT + countTextTokens(DELIVERED);
    const betaOut = countTextTokens(fiveMore.join(""));
    const beta = records[0]?.attempts.find((attempt) => attempt.provider === "beta");
    assert.deepEqual(usageOf(beta), ["beta", "continuation", "stream_cut", betaIn, betaOut, true]);
    // What beta reserved was the original prompt's estimate; it was sent (and billed) more.
    assert.equal(await deploymentTpmUsed(scene.gateway, "beta"), betaIn + betaOut);
    assert.equal(await deploymentTpmUsed(scene.gateway, "alpha"), PROMPT + countTextTokens(DELIVERED));
    assert.deepEqual(await tokensTotalOf(scene, "beta"), [betaIn, betaOut]);
    const stats = await statsOf(scene.gateway);
    const betaRow = rowOf(stats, `beta/${MODEL}`);
    assert.deepEqual([betaRow.tokens_in, betaRow.tokens_out, betaRow.failures], [betaIn, betaOut, 1]);
    const alphaRow = rowOf(stats, `alpha/${MODEL}`);
    assert.deepEqual([alphaRow.tokens_in, alphaRow.tokens_out], [PROMPT, countTextTokens(DELIVERED)]);
  });
});

describe("output besides the first choice's text and reasoning, in a stream cut without a usage report", () => {
  const chunkOf = (choices: readonly Record<string, unknown>[]): SseScript => ({
    data: { id: "chatcmpl-x", object: "chat.completion.chunk", created: 1767225600, model: MODEL, choices },
  });
  const callDelta = (delta: Record<string, unknown>) => ({ index: 0, delta, logprobs: null, finish_reason: null });
  const sum = (pieces: readonly string[]): number => pieces.reduce((total, piece) => total + countTextTokens(piece), 0);

  test("a tool call only: its name and streamed arguments are its output, in every book", async (t) => {
    const scene = await startTwoProviders(t);
    const records = recordsOf(scene);
    const pieces = ['{"city":', ' "Zürich",', ' "unit": "celsius", "days": 3'];
    const opening = { index: 0, id: "call_1", type: "function", function: { name: "get_weather", arguments: "" } };
    const events = [
      chunkOf([callDelta({ role: "assistant", content: null, tool_calls: [opening] })]),
      ...pieces.map((piece) => chunkOf([callDelta({ tool_calls: [{ index: 0, function: { arguments: piece } }] })])),
    ];
    // A tool call is never continued: the cut ends the stream.
    scene.primary.enqueue(CHAT_ROUTE, { kind: "sse", events, end: "destroy" });
    const stream = await scene.client.chat.completions.create({ model: MODEL, messages: MESSAGES, stream: true });
    let streamed = "";
    await assert.rejects(async () => {
      for await (const chunk of stream) streamed += chunk.choices[0]?.delta.tool_calls?.[0]?.function?.arguments ?? "";
    }, OpenAI.APIError);
    assert.equal(streamed, pieces.join(""));
    await waitUntil(() => records.length === 1, "the request record");
    const output = countTextTokens("get_weather") + sum(pieces);
    assert.deepEqual(records[0]?.attempts.map(usageOf), [["alpha", "primary", "stream_cut", PROMPT, output, true]]);
    assert.deepEqual(await tokensTotalOf(scene, "alpha"), [PROMPT, output]);
    const alpha = rowOf(await statsOf(scene.gateway), `alpha/${MODEL}`);
    assert.deepEqual([alpha.tokens_in, alpha.tokens_out], [PROMPT, output]);
  });

  test("n = 2 with both choices in each chunk: the second choice's text counts too", async (t) => {
    // Decided: every choice's output counts (its provider generated and billed them all), as the estimated usage
    // chunk counts them. Before, only the first choice's was: the second one's was charged nothing.
    const scene = await startTwoProviders(t);
    const records = recordsOf(scene);
    const [first, second] = [WORDS.slice(0, 5), WORDS.slice(5, 10)];
    const events = first.map((word, index) =>
      chunkOf([callDelta({ content: word }), { ...callDelta({ content: second[index] }), index: 1 }]),
    );
    scene.primary.enqueue(CHAT_ROUTE, { kind: "sse", events, end: "destroy" });
    const stream = await scene.client.chat.completions.create({ model: MODEL, messages: MESSAGES, stream: true, n: 2 });
    await assert.rejects(async () => {
      for await (const _chunk of stream);
    }, OpenAI.APIError);
    await waitUntil(() => records.length === 1, "the request record");
    // The first choice's text is counted whole (as a cut stream's text always was), the other's piece by piece.
    const output = countTextTokens(first.join("")) + sum(second);
    assert.deepEqual(records[0]?.attempts.map(usageOf), [["alpha", "primary", "stream_cut", PROMPT, output, true]]);
    assert.deepEqual(await tokensTotalOf(scene, "alpha"), [PROMPT, output]);
  });

  test("n = 2 with one choice per chunk: the first choice is the one at index 0, not at position 0", async (t) => {
    // Each chunk holds one choice, the second choice's first: read by position, the "first choice's text" was both
    // choices interleaved ("UnsAntidis..."), counted as one text, and the second choice's pieces were not counted as
    // its own (before 2026-12-07: 11 tokens where the choices' own counts make 12). Such a stream is not continued
    // (a chunk with index 1 ends that), so the cut ends it with the in-band error.
    const scene = await startTwoProviders(t);
    const records = recordsOf(scene);
    const [first, second] = [
      ["Uns", "eaworth", "iness"],
      ["Antidis", "establish", "mentarian"],
    ];
    const events = first.flatMap((word, index) => [
      chunkOf([{ ...callDelta({ content: second[index] }), index: 1 }]),
      chunkOf([callDelta({ content: word })]),
    ]);
    scene.primary.enqueue(CHAT_ROUTE, { kind: "sse", events, end: "destroy" });
    const stream = await scene.client.chat.completions.create({ model: MODEL, messages: MESSAGES, stream: true, n: 2 });
    const texts = ["", ""];
    await assert.rejects(async () => {
      for await (const chunk of stream) {
        for (const choice of chunk.choices) texts[choice.index] += choice.delta.content ?? "";
      }
    }, OpenAI.APIError);
    assert.deepEqual(texts, [first.join(""), second.join("")]);
    await waitUntil(() => records.length === 1, "the request record");
    const output = countTextTokens(first.join("")) + sum(second);
    const interleaved = countTextTokens(first.flatMap((word, index) => [second[index], word]).join(""));
    assert.notEqual(output, interleaved, "the pieces are chosen so that the two readings differ");
    assert.deepEqual(records[0]?.attempts.map(usageOf), [["alpha", "primary", "stream_cut", PROMPT, output, true]]);
    assert.equal(scene.backup.requests.length, 0, "n > 1 is not continued");
  });
});
