// A stream cut mid-answer and continued (prefill) on another candidate, each segment reporting its usage or not, in
// each of the shapes providers use: none, a running count on every content chunk (vLLM's continuous usage stats), a
// running count on the first chunks only (the text after the last count is counted and added), a count of 0 output
// tokens on the role chunk (not believed once the segment generated text), a final usage chunk.
// Whatever the mix, the usage the client is told last and the record's totals are the sum of the segments: the first
// prompt, and each segment's output as its provider reported it or as the gateway estimated it; and each deployment's
// budget is charged its own segment. Before 2026-12-07 a usage the first segment passed on (a running count) stopped
// the answer's estimate when the continuation reported nothing: the client was last told the first segment's partial
// count ({40, 20} for {40, 50}), or, after a continuation's role chunk of zeros, an estimate of only the output read
// since ({21, 30}).
import assert from "node:assert/strict";
import { type TestContext, test } from "node:test";
import { countTextTokens, estimateChatPrompt } from "../../src/limits/token-estimate.ts";
import type { RequestRecord } from "../../src/observability/request-record.ts";
import { deploymentTpmUsed } from "../helpers/limits-scene.ts";
import { chatChunk, chatUsageChunk, type SseScript } from "../helpers/mock-upstream.ts";
import { waitUntil } from "../helpers/sse-client.ts";
import { CHAT_ROUTE, MODEL, startTwoProviders, type TwoProviders } from "../helpers/two-providers.ts";

const MESSAGES = [{ role: "user" as const, content: "Count from zero to twenty-nine, one word each." }];
const WORDS = Array.from({ length: 30 }, (_, index) => ` word${index}`);
const FIRST = WORDS.slice(0, 20);
const REST = WORDS.slice(20);
const PROMPT = estimateChatPrompt(MESSAGES, undefined).promptTokens;

/** How a segment reports its usage ("running-half": a running count on its first half of words only). */
type Reporting = "none" | "running" | "running-half" | "role-zero" | "final";

/** A segment's upstream usage when it reports one: `prompt` tokens in, one output token a word. */
function usageOf(prompt: number, words: number) {
  return { prompt_tokens: prompt, completion_tokens: words, total_tokens: prompt + words };
}

/** A segment's events: the role chunk, `words`, then (when `isFinished`) the finish and perhaps a usage chunk. */
function segmentEvents(words: readonly string[], reporting: Reporting, prompt: number, isFinished: boolean) {
  const role: Record<string, unknown> = { ...chatChunk("", MODEL, { role: true }) };
  if (reporting === "role-zero") role.usage = usageOf(prompt, 0);
  const events: SseScript[] = [{ data: role }];
  words.forEach((word, index) => {
    const chunk: Record<string, unknown> = { ...chatChunk(word, MODEL) };
    if (reporting === "running" || (reporting === "running-half" && index < words.length / 2)) {
      chunk.usage = usageOf(prompt, index + 1);
    }
    events.push({ data: chunk });
  });
  if (!isFinished) return events;
  events.push({ data: chatChunk("", MODEL, { finishReason: "stop" }) });
  if (reporting === "final") events.push({ data: chatUsageChunk(MODEL, usageOf(prompt, words.length)) });
  return events;
}

/** What a segment is charged: its provider's report, else the gateway's estimate of what it was sent and generated. */
function segmentTokens(reporting: Reporting, reportedPrompt: number, words: readonly string[], prompt: number) {
  if (reporting === "running-half") {
    // The last count, and the words read after it counted.
    const half = Math.ceil(words.length / 2);
    return { in: reportedPrompt, out: half + countTextTokens(words.slice(half).join("")), isEstimated: false };
  }
  const isReported = reporting === "running" || reporting === "final";
  return isReported
    ? { in: reportedPrompt, out: words.length, isEstimated: false }
    : { in: prompt, out: countTextTokens(words.join("")), isEstimated: true };
}

interface Outcome {
  readonly told: { prompt_tokens: number; completion_tokens: number } | undefined;
  readonly record: RequestRecord;
  readonly budgets: { alpha: number; beta: number };
}

/** Two providers whose models count tokens (tpm), neither counting max_tokens up front, and the records published. */
async function recordedScene(t: TestContext): Promise<{ s: TwoProviders; records: RequestRecord[] }> {
  const limits = { limits: { tpm: 1_000_000 } };
  const s = await startTwoProviders(t, {
    primary: { count_max_tokens: false },
    backup: { count_max_tokens: false },
    primaryModel: limits,
    backupModel: limits,
  });
  const records: RequestRecord[] = [];
  s.gateway.runtime.onRecord((record) => records.push(record));
  return { s, records };
}

async function continued(t: TestContext, first: Reporting, second: Reporting): Promise<Outcome> {
  const { s, records } = await recordedScene(t);
  s.primary.enqueue(CHAT_ROUTE, { kind: "sse", events: segmentEvents(FIRST, first, 40, false), end: "destroy" });
  s.backup.enqueue(CHAT_ROUTE, { kind: "sse", events: segmentEvents(REST, second, 90, true) });
  const stream = await s.client.chat.completions.create({
    model: MODEL,
    messages: MESSAGES,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = "";
  let told: Outcome["told"];
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta.content ?? "";
    if (chunk.usage !== undefined && chunk.usage !== null) told = chunk.usage;
  }
  assert.equal(text, WORDS.join(""));
  await waitUntil(() => records.length === 1, "the request record");
  const budgets = {
    alpha: await deploymentTpmUsed(s.gateway, "alpha"),
    beta: await deploymentTpmUsed(s.gateway, "beta"),
  };
  return { told, record: records[0] as RequestRecord, budgets };
}

const SHAPES: readonly Reporting[] = ["none", "running", "running-half", "role-zero", "final"];

for (const first of SHAPES.filter((shape) => shape !== "final")) {
  for (const second of SHAPES) {
    test(`first segment's usage: ${first}, the continuation's: ${second}: the client's usage and the charges are the segments' sum`, async (t) => {
      const outcome = await continued(t, first, second);
      const alpha = segmentTokens(first, 40, FIRST, PROMPT);
      // A prefill continuation's prompt holds the delivered text.
      const beta = segmentTokens(second, 90, REST, PROMPT + countTextTokens(FIRST.join("")));
      const attempts = outcome.record.attempts.map((attempt) => [
        attempt.provider,
        attempt.tokensIn,
        attempt.tokensOut,
      ]);
      assert.deepEqual(
        attempts,
        [
          ["alpha", alpha.in, alpha.out],
          ["beta", beta.in, beta.out],
        ],
        "each segment's own tokens",
      );
      assert.deepEqual(outcome.budgets, { alpha: alpha.in + alpha.out, beta: beta.in + beta.out }, "each budget");
      const whole = { prompt_tokens: alpha.in, completion_tokens: alpha.out + beta.out };
      const told = outcome.told;
      assert.deepEqual(
        told === undefined
          ? undefined
          : { prompt_tokens: told.prompt_tokens, completion_tokens: told.completion_tokens },
        whole,
        "the usage the client was told last: the first prompt, every segment's output",
      );
      const record = outcome.record;
      assert.deepEqual([record.tokensIn, record.tokensOut], [whole.prompt_tokens, whole.completion_tokens], "record");
      // Estimated when the continuation's part is (a report merged with the first's counted part is not marked).
      assert.equal(record.isUsageEstimated === true, beta.isEstimated, "estimated or not");
    });
  }
}

test("a prefill continuation that starts the answer over, a running count on its first words only: its count is the whole answer's, not added to the first segment's", async (t) => {
  const { s, records } = await recordedScene(t);
  s.primary.enqueue(CHAT_ROUTE, { kind: "sse", events: segmentEvents(FIRST, "none", 40, false), end: "destroy" });
  // It answers afresh (the delivered words again, then the rest): a running count on its first 25 words.
  const counted = 25;
  const restart: SseScript[] = [{ data: chatChunk("", MODEL, { role: true }) }];
  WORDS.forEach((word, index) => {
    const chunk: Record<string, unknown> = { ...chatChunk(word, MODEL) };
    if (index < counted) chunk.usage = usageOf(90, index + 1);
    restart.push({ data: chunk });
  });
  restart.push({ data: chatChunk("", MODEL, { finishReason: "stop" }) });
  s.backup.enqueue(CHAT_ROUTE, { kind: "sse", events: restart });
  const stream = await s.client.chat.completions.create({
    model: MODEL,
    messages: MESSAGES,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = "";
  let told: { completion_tokens: number } | undefined;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta.content ?? "";
    if (chunk.usage !== undefined && chunk.usage !== null) told = chunk.usage;
  }
  assert.equal(text, WORDS.join(""), "the client gets the answer once");
  await waitUntil(() => records.length === 1, "the request record");
  // Its provider's count covers the whole answer (it generated all of it): the last count, the words after it counted.
  const whole = counted + countTextTokens(WORDS.slice(counted).join(""));
  assert.equal(told?.completion_tokens, whole, "the usage the client was told last");
  assert.equal(records[0]?.tokensOut, whole, "the record");
  const beta = records[0]?.attempts.find((attempt) => attempt.provider === "beta");
  assert.equal(beta?.tokensOut, whole, "the continuation is charged the same count");
});
