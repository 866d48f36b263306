// What an upstream gateway's estimated usage (`x_gateway.usage_estimated` beside its `usage`: another LLM Gateway used
// as a provider, whose own upstream reported none) charges the budgets: it is an estimate whoever made it, so it is
// charged as this gateway's own estimate is, never below the reservation (docs/limits.md "Token estimation"). Without
// a report nobody can tell what the provider behind it counted (a `max_tokens` counted at admission). Before
// 2026-12-07 it was charged as a provider's report: a reservation of prompt + `max_tokens` shrank to the upstream's
// estimate, and the budget admitted more than the provider would.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import { estimateChatPrompt } from "../../src/limits/token-estimate.ts";
import type { RequestRecord } from "../../src/observability/request-record.ts";
import { deploymentTpmUsed } from "../helpers/limits-scene.ts";
import { chatCompletion, chatStream, type MockStep, type SseScript } from "../helpers/mock-upstream.ts";
import { waitUntil } from "../helpers/sse-client.ts";
import { CHAT_ROUTE, MODEL, sentBody, startTwoProviders, type TwoProviders } from "../helpers/two-providers.ts";

const PROMPT = "Say hello to my friend, in a few words.";
const WORDS = ["Hello", " there", "!"];
const MAX_TOKENS = 300;
/** The upstream gateway's usage: far below the prompt + `max_tokens` reserved for the request. */
const USAGE = { prompt_tokens: 7, completion_tokens: 3 };

async function scene(t: TestContext): Promise<TwoProviders & { records: RequestRecord[] }> {
  const started = await startTwoProviders(t, {
    primary: { count_max_tokens: true },
    primaryModel: { limits: { tpm: 1_000_000 } },
  });
  const records: RequestRecord[] = [];
  started.gateway.runtime.onRecord((record) => records.push(record));
  return { ...started, records };
}

function json(xGateway: unknown): MockStep {
  return { kind: "json", body: { ...chatCompletion(WORDS.join(""), MODEL, USAGE), x_gateway: xGateway } };
}

/** A chat stream whose usage chunk carries the upstream's `x_gateway`. */
function stream(xGateway: unknown): MockStep {
  const events = chatStream(WORDS, MODEL, { usage: USAGE }).map(
    (event): SseScript =>
      "data" in event && typeof event.data === "object" && (event.data as { usage?: unknown }).usage !== undefined
        ? { data: { ...event.data, x_gateway: xGateway } }
        : event,
  );
  return { kind: "sse", events };
}

/** What the request reserved: its prompt's estimate (the body the upstream got) plus `max_tokens`. */
function reserved(s: TwoProviders): number {
  const body = sentBody(s.primary) as { messages: unknown[]; tools?: unknown };
  return estimateChatPrompt(body.messages, body.tools).promptTokens + MAX_TOKENS;
}

async function ask(s: TwoProviders, isStream: boolean): Promise<void> {
  const messages = [{ role: "user" as const, content: PROMPT }];
  if (!isStream) {
    await s.client.chat.completions.create({ model: MODEL, messages, max_tokens: MAX_TOKENS });
    return;
  }
  const chunks = await s.client.chat.completions.create({
    model: MODEL,
    messages,
    max_tokens: MAX_TOKENS,
    stream: true,
  });
  for await (const _chunk of chunks) {
    // Read to the end.
  }
}

describe("an upstream gateway's estimated usage is charged as an estimate: never below the reservation", () => {
  for (const isStream of [false, true]) {
    const kind = isStream ? "stream" : "JSON";
    const answer = isStream ? stream : json;

    test(`${kind}: marked usage_estimated, the reservation stays the floor`, async (t) => {
      const s = await scene(t);
      s.primary.enqueue(CHAT_ROUTE, answer({ usage_estimated: true }));
      await ask(s, isStream);
      await waitUntil(() => s.records.length === 1, "the request's record");
      const attempt = s.records[0]?.attempts[0];
      assert.deepEqual([attempt?.tokensIn, attempt?.tokensOut, attempt?.isUsageEstimated], [7, 3, true]);
      assert.equal(await deploymentTpmUsed(s.gateway, "alpha"), reserved(s), "the reservation, not the 10 estimated");
    });

    test(`${kind}: the same usage unmarked is a report, charged as it says`, async (t) => {
      const s = await scene(t);
      s.primary.enqueue(CHAT_ROUTE, answer({ usage_estimated: false }));
      await ask(s, isStream);
      await waitUntil(() => s.records.length === 1, "the request's record");
      assert.equal(s.records[0]?.attempts[0]?.isUsageEstimated, undefined);
      assert.equal(await deploymentTpmUsed(s.gateway, "alpha"), 10, "the provider's report");
    });
  }
});
