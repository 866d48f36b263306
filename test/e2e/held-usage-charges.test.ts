// A prefill continuation's events are held while its text repeats the delivered text (PrefillEchoGuard). A usage chunk
// among them is its provider's report: when the segment ends still undecided (cut while it repeated), that usage is
// what the segment is recorded and charged, not the gateway's estimate. Until 2026-12-07 it was dropped with the held
// events, and the segment was charged an estimate of what its provider had already counted exactly.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { RequestRecord } from "../../src/observability/request-record.ts";
import { statsOf } from "../helpers/e2e.ts";
import { type DeploymentView, windowOf } from "../helpers/limits-scene.ts";
import { chatStream, chatUsageChunk, type MockStep } from "../helpers/mock-upstream.ts";
import { waitUntil } from "../helpers/sse-client.ts";
import { CHAT_ROUTE, MODEL, startTwoProviders } from "../helpers/two-providers.ts";

const WORDS = Array.from({ length: 30 }, (_, index) => ` word${index}`);
const USAGE = { prompt_tokens: 77, completion_tokens: 3 };

test("a usage chunk held while a prefill continuation repeated, then cut: the segment is charged that usage", async (t) => {
  const scene = await startTwoProviders(t, { backupModel: { limits: { tpm: 1_000_000 } } });
  const records: RequestRecord[] = [];
  scene.gateway.runtime.onRecord((record) => records.push(record));
  const cutAfterTwenty: MockStep = {
    kind: "sse",
    events: chatStream(WORDS.slice(0, 20), MODEL).slice(0, 21),
    end: "destroy",
  };
  scene.primary.enqueue(CHAT_ROUTE, cutAfterTwenty);
  // Beta starts the answer over (" word0 word1", held as a possible repetition), reports its usage, and breaks.
  const repeated = [...chatStream(WORDS.slice(0, 2), MODEL).slice(0, 3), { data: chatUsageChunk(MODEL, USAGE) }];
  scene.backup.enqueue(CHAT_ROUTE, { kind: "sse", events: repeated, end: "destroy" });
  // Alpha, whose connection broke, is asked last and finishes the answer.
  scene.primary.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(WORDS.slice(20), MODEL) });
  const stream = await scene.client.chat.completions.create({
    model: MODEL,
    messages: [{ role: "user", content: "Count from zero to twenty-nine, one word each." }],
    stream: true,
    max_tokens: 500,
  });
  let text = "";
  for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
  assert.equal(text, WORDS.join(""));
  await waitUntil(() => records.length === 1, "the request record");
  const beta = records[0]?.attempts[1];
  // Before: the estimate (its prompt with the delivered text, and the held text), marked isUsageEstimated.
  assert.deepEqual(
    [beta?.provider, beta?.outcome, beta?.tokensIn, beta?.tokensOut, beta?.isUsageEstimated],
    ["beta", "stream_cut", 77, 3, undefined],
  );
  const row = (await statsOf(scene.gateway)).get(`beta/${MODEL}`);
  const budget = windowOf(row as unknown as DeploymentView, `deployment:beta/${MODEL}`, "tokens", "minute");
  assert.equal(budget.used, 80);
});
