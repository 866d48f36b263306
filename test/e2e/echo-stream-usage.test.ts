// A legacy completions stream that asked `echo`: its text starts with the prompt, echoed, which its provider counts as
// prompt, not output. A usage of {prompt n, completion 0} for an echo alone (prompt scoring) is the report; for an echo
// followed by generated text it is no report (the zeros some proxies fill in), and the estimate counts only the
// generated text as output. Before, the echoed prompt counted as output: the usage was not believed, and the client's
// charge, /stats and the token metrics counted the prompt twice (docs/streaming.md "A usage that is not believed").
import assert from "node:assert/strict";
import { type TestContext, test } from "node:test";
import { countTextTokens } from "../../src/limits/token-estimate.ts";
import type { RequestRecord } from "../../src/observability/request-record.ts";
import { rowOf, send, statsOf } from "../helpers/e2e.ts";
import { assertCountedByEstimate } from "../helpers/estimated-books.ts";
import { deploymentTpmUsed } from "../helpers/limits-scene.ts";
import { chatCompletion } from "../helpers/mock-upstream.ts";
import { parsePrometheusText, sumOf } from "../helpers/prometheus-text.ts";
import { waitUntil } from "../helpers/sse-client.ts";
import { MODEL, startTwoProviders, type TwoProviders } from "../helpers/two-providers.ts";

const COMPLETIONS_ROUTE = "POST /v1/completions";
const PROMPT = "The capital of France is";

/** A legacy completions stream: `texts` as its chunks' texts, a finish, then `usage` in a usage-only chunk. */
function completionStream(texts: readonly string[], usage: Record<string, number>): { data: unknown }[] {
  const chunk = (choice: Record<string, unknown>) => ({
    id: "cmpl-1",
    object: "text_completion",
    created: 1767225600,
    model: MODEL,
    choices: [{ index: 0, logprobs: null, finish_reason: null, ...choice }],
  });
  return [
    ...texts.map((text) => ({ data: chunk({ text }) })),
    { data: chunk({ text: "", finish_reason: "length" }) },
    { data: { id: "cmpl-1", object: "text_completion", created: 1767225600, model: MODEL, choices: [], usage } },
    { data: "[DONE]" },
  ];
}

async function echoScene(
  t: TestContext,
  texts: readonly string[],
  usage: Record<string, number>,
): Promise<TwoProviders & { records: RequestRecord[] }> {
  const s = await startTwoProviders(t, {
    primary: { count_max_tokens: false },
    primaryModel: { limits: { tpm: 1_000_000 } },
  });
  const records: RequestRecord[] = [];
  s.gateway.runtime.onRecord((record) => records.push(record));
  s.primary.enqueue(COMPLETIONS_ROUTE, { kind: "sse", events: completionStream(texts, usage) });
  return { ...s, records };
}

/** The client's stream, read whole with the openai SDK: the text it got and the last usage it was told. */
async function readEchoStream(s: TwoProviders): Promise<{ text: string; usage: unknown }> {
  const stream = await s.client.completions.create({
    model: MODEL,
    prompt: PROMPT,
    echo: true,
    max_tokens: 5,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = "";
  let usage: unknown;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.text ?? "";
    if (chunk.usage !== undefined && chunk.usage !== null) usage = chunk.usage;
  }
  return { text, usage };
}

/** The provider's report in every book: the record, its deployment's /stats, both token metrics, its tpm window. */
async function assertCountedAsReported(
  s: TwoProviders & { records: RequestRecord[] },
  expected: readonly [number, number],
): Promise<void> {
  await waitUntil(() => s.records.length === 1, "the request's record");
  const record = s.records[0] as RequestRecord;
  assert.deepEqual([record.tokensIn, record.tokensOut, record.isUsageEstimated === true], [...expected, false]);
  const alpha = rowOf(await statsOf(s.gateway), `alpha/${MODEL}`);
  assert.deepEqual([alpha.tokens_in, alpha.tokens_out], expected, "/stats");
  const metrics = parsePrometheusText((await send(s.gateway, "GET", "/metrics")).text);
  const tokens = (direction: string) => sumOf(metrics, "llm_gateway_tokens_total", { provider: "alpha", direction });
  assert.deepEqual([tokens("in"), tokens("out")], expected, "llm_gateway_tokens_total");
  const clientTokens = (direction: string) => sumOf(metrics, "llm_gateway_client_tokens_total", { direction });
  assert.deepEqual([clientTokens("in"), clientTokens("out")], expected, "llm_gateway_client_tokens_total");
  assert.equal(await deploymentTpmUsed(s.gateway, "alpha"), expected[0] + expected[1], "the tpm window");
}

test("an echo alone (prompt scoring) with usage {prompt n, completion 0}: the report, the echo counted as no output", async (t) => {
  const usage = { prompt_tokens: 6, completion_tokens: 0, total_tokens: 6 };
  const s = await echoScene(t, ["The capital", " of France is"], usage);
  const read = await readEchoStream(s);
  assert.equal(read.text, PROMPT, "the client gets the echo");
  assert.deepEqual(read.usage, usage, "the provider's usage, believed");
  await assertCountedAsReported(s, [6, 0]);
});

test("an echo then generated text, usage {prompt n, completion 0}: the estimate counts only the generated text", async (t) => {
  const generated = [" Paris", "."];
  const s = await echoScene(t, [PROMPT, ...generated], { prompt_tokens: 6, completion_tokens: 0, total_tokens: 6 });
  const read = await readEchoStream(s);
  assert.equal(read.text, `${PROMPT} Paris.`);
  const output = generated.reduce((sum, text) => sum + countTextTokens(text), 0);
  const told = read.usage as { prompt_tokens: number; completion_tokens: number };
  assert.equal(told.completion_tokens, output, "the estimate's output: the generated text, not the echoed prompt");
  await assertCountedByEstimate(s.gateway, s.records, "completions", [told.prompt_tokens, output]);
});

test("a JSON legacy completion that asked `echo`, without usage: its estimate counts only the generated text", async (t) => {
  const s = await startTwoProviders(t, { primary: { count_max_tokens: false } });
  const records: RequestRecord[] = [];
  s.gateway.runtime.onRecord((record) => records.push(record));
  const choice = { text: `${PROMPT} Paris.`, index: 0, logprobs: null, finish_reason: "stop" };
  const answer = { id: "cmpl-1", object: "text_completion", created: 1767225600, model: MODEL, choices: [choice] };
  s.primary.enqueue(COMPLETIONS_ROUTE, { kind: "json", body: answer });
  const completion = await s.client.completions.create({ model: MODEL, prompt: PROMPT, echo: true, max_tokens: 5 });
  assert.equal(completion.usage?.completion_tokens, countTextTokens(" Paris."), "the estimate told: no echo in it");
  await waitUntil(() => records.length === 1, "the request's record");
  assert.deepEqual([records[0]?.tokensOut, records[0]?.isUsageEstimated], [countTextTokens(" Paris."), true]);
});

test("a JSON legacy completion of a prompt of tokens that asked `echo`, usage {prompt n, completion 0}: the report", async (t) => {
  // Prompt scoring as evaluation harnesses send it: token ids and `echo`. The echo has no text to match.
  const s = await startTwoProviders(t, { primary: { count_max_tokens: false } });
  const records: RequestRecord[] = [];
  s.gateway.runtime.onRecord((record) => records.push(record));
  const usage = { prompt_tokens: 6, completion_tokens: 0, total_tokens: 6 };
  const choice = { text: PROMPT, index: 0, logprobs: null, finish_reason: "length" };
  const answer = {
    id: "cmpl-1",
    object: "text_completion",
    created: 1767225600,
    model: MODEL,
    choices: [choice],
    usage,
  };
  s.primary.enqueue(COMPLETIONS_ROUTE, { kind: "json", body: answer });
  const prompt = [791, 6864, 315, 9822, 374, 1];
  const completion = await s.client.completions.create({ model: MODEL, prompt, echo: true, max_tokens: 5 });
  assert.deepEqual(completion.usage, usage, "the provider's usage, believed");
  await waitUntil(() => records.length === 1, "the request's record");
  assert.deepEqual([records[0]?.tokensIn, records[0]?.tokensOut, records[0]?.isUsageEstimated === true], [6, 0, false]);
});

test("a stream of a prompt of tokens that asked `echo`, an echo alone with usage {prompt n, completion 0}: the report", async (t) => {
  const usage = { prompt_tokens: 6, completion_tokens: 0, total_tokens: 6 };
  const s = await echoScene(t, ["The capital", " of France is"], usage);
  const stream = await s.client.completions.create({
    model: MODEL,
    prompt: [791, 6864, 315, 9822, 374, 1],
    echo: true,
    max_tokens: 5,
    stream: true,
    stream_options: { include_usage: true },
  });
  let told: unknown;
  for await (const chunk of stream) if (chunk.usage !== undefined && chunk.usage !== null) told = chunk.usage;
  assert.deepEqual(told, usage, "the provider's usage, believed");
  await assertCountedAsReported(s, [6, 0]);
});

test("a chat answer whose body says `echo: true` (no legacy prompt): its {prompt n, completion 0} with text is no report", async (t) => {
  const s = await startTwoProviders(t, { primary: { count_max_tokens: false } });
  const usage = { prompt_tokens: 6, completion_tokens: 0, total_tokens: 6 };
  s.primary.enqueue("POST /v1/chat/completions", { kind: "json", body: { ...chatCompletion("Paris.", MODEL), usage } });
  const body: { model: string; messages: { role: "user"; content: string }[] } = {
    model: MODEL,
    messages: [{ role: "user", content: PROMPT }],
  };
  // `echo` is no chat parameter: sent as a field the SDK passes on.
  const completion = await s.client.chat.completions.create({ ...body, ...({ echo: true } as object) });
  assert.equal(completion.usage?.completion_tokens, countTextTokens("Paris."), "the estimate, as without `echo`");
});
