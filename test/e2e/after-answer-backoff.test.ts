// A 429 that comes in a stream after the answer was whole (after the upstream's own finish_reason, or after a stop
// sequence the Messages door matched) leaves the answer a success and still cools the deployment down
// (messages-stop-sequence-end.test.ts). Repeated, such 429s are a provider refusing again and again: their cooldown
// grows as that of 429 statuses does (`rate_limit_base_ms` × 2^(n−1)), instead of starting over at the base each time
// because the answer's success cleared the streak it belongs to.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import Anthropic from "@anthropic-ai/sdk";
import { ManualClock } from "../../src/clock.ts";
import {
  CHAT_ROUTE,
  chatRequests,
  oneProviderYaml,
  openAiClient,
  postChat,
  rowOf,
  statsOf,
  useGateway,
  useMock,
} from "../helpers/e2e.ts";
import type { TestGateway } from "../helpers/gateway.ts";
import { chatChunk, chatErrorChunk, type MockStep, rateLimited } from "../helpers/mock-upstream.ts";

const UPSTREAM_ID = "vendor/m-instruct";
const BASE_MS = 4_000;
/** Six sequences: the last two are past the 4 sent upstream, so the Messages door matches them itself. */
const SEQUENCES = ["[1]", "[2]", "[3]", "[4]", "FIN", "STOP HERE"];
const RATE_LIMITED = chatErrorChunk(UPSTREAM_ID, { code: 429, message: "Provider returned error: rate limited" });

async function scene(t: TestContext) {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const mock = await useMock(t);
  const gateway = await useGateway(t, `cooldowns:\n  rate_limit_base_ms: ${BASE_MS}\n${oneProviderYaml(mock)}`, {
    clock,
  });
  return { clock, mock, gateway };
}

/** A whole answer (finish_reason `stop`), then the provider's in-stream 429. */
function finishedThenRateLimited(): MockStep {
  return {
    kind: "sse",
    events: [
      { data: chatChunk("Alpha", UPSTREAM_ID, { role: true }) },
      { data: chatChunk("", UPSTREAM_ID, { finishReason: "stop" }) },
      { data: RATE_LIMITED },
    ],
    end: "hang",
  };
}

/** Part of an answer, then the provider's in-stream 429 (the answer is not whole: the client gets the error). */
function cutByRateLimit(): MockStep {
  return {
    kind: "sse",
    events: [{ data: chatChunk("Alpha", UPSTREAM_ID, { role: true }) }, { data: RATE_LIMITED }],
    end: "hang",
  };
}

/** An answer the Messages door ends at "STOP HERE" (the provider generates on), then the provider's in-stream 429. */
function matchedThenRateLimited(): MockStep {
  return {
    kind: "sse",
    events: [
      { data: chatChunk("Alpha STOP HERE and", UPSTREAM_ID, { role: true }) },
      { data: chatChunk(" more", UPSTREAM_ID) },
      { data: RATE_LIMITED },
    ],
    end: "hang",
  };
}

/** The deployment's cooldown once it is `expectedMs` (polled: the segment is settled after the client's answer). */
async function cooldownBecomes(gateway: TestGateway, expectedMs: number): Promise<void> {
  let remainingMs: number | undefined;
  for (let tries = 0; tries < 100; tries++) {
    remainingMs = rowOf(await statsOf(gateway), "alpha/m").cooldown?.remaining_ms;
    if (remainingMs === expectedMs) return;
    await sleep(50);
  }
  assert.equal(remainingMs, expectedMs, "the deployment's cooldown");
}

describe("429s after whole answers back off as other 429s do", () => {
  test("chat: each one after the finish_reason doubles the cooldown, and a 429 status after them doubles it again", async (t) => {
    const { clock, mock, gateway } = await scene(t);
    mock.enqueue(CHAT_ROUTE, finishedThenRateLimited(), finishedThenRateLimited(), rateLimited());
    for (const expectedMs of [BASE_MS, 2 * BASE_MS]) {
      const answer = await postChat(gateway, { model: "m", stream: true });
      assert.equal(answer.status, 200, answer.text);
      assert.match(answer.text, /"finish_reason":"stop"/);
      assert.doesNotMatch(answer.text, /"error"/, "the answer is a success");
      await cooldownBecomes(gateway, expectedMs);
      clock.advance(expectedMs);
    }
    assert.equal((await postChat(gateway, { model: "m" })).status, 429);
    await cooldownBecomes(gateway, 4 * BASE_MS);
    assert.equal(chatRequests(mock).length, 3);
  });

  test("chat: 429s in streams that opened (mid-answer) double the cooldown too: the opening is no success yet", async (t) => {
    const { clock, mock, gateway } = await scene(t);
    mock.enqueue(CHAT_ROUTE, cutByRateLimit(), cutByRateLimit());
    for (const expectedMs of [BASE_MS, 2 * BASE_MS]) {
      const answer = await postChat(gateway, { model: "m", stream: true });
      assert.match(answer.text, /rate_limit_exceeded/);
      await cooldownBecomes(gateway, expectedMs);
      clock.advance(expectedMs);
    }
    assert.equal(chatRequests(mock).length, 2);
  });

  test("messages: each one after the stop sequence the gateway matched doubles the cooldown", async (t) => {
    const { clock, mock, gateway } = await scene(t);
    const client = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
    mock.enqueue(CHAT_ROUTE, rateLimited(), matchedThenRateLimited(), matchedThenRateLimited());
    await assert.rejects(
      client.messages.create({ model: "m", max_tokens: 16, messages: [{ role: "user", content: "Go" }] }),
      (thrown: unknown) => thrown instanceof Anthropic.RateLimitError,
    );
    await cooldownBecomes(gateway, BASE_MS);
    for (const expectedMs of [2 * BASE_MS, 4 * BASE_MS]) {
      clock.advance(BASE_MS * 8);
      const stream = client.messages.stream({
        model: "m",
        max_tokens: 64,
        messages: [{ role: "user", content: "Go" }],
        stop_sequences: SEQUENCES,
      });
      const message = await stream.finalMessage();
      assert.equal(message.stop_sequence, "STOP HERE");
      await cooldownBecomes(gateway, expectedMs);
    }
    assert.equal(chatRequests(mock).length, 3);
  });

  test("a stream the client left after it opened ends the streak, as its opening did: the next 429 is cooled for the base", async (t) => {
    const { clock, mock, gateway } = await scene(t);
    const records: number[] = [];
    gateway.runtime.onRecord((record) => records.push(record.status));
    const opened: MockStep = {
      kind: "sse",
      events: [{ data: chatChunk("Alpha", UPSTREAM_ID, { role: true }) }, { data: chatChunk(" beta", UPSTREAM_ID) }],
      end: "hang",
    };
    mock.enqueue(CHAT_ROUTE, rateLimited(), opened, rateLimited());
    assert.equal((await postChat(gateway, { model: "m" })).status, 429);
    await cooldownBecomes(gateway, BASE_MS);
    clock.advance(BASE_MS);
    // The provider lets the stream through; the client reads its first words and leaves (a cancelled completion).
    const stream = await openAiClient(gateway).chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "Go" }],
      stream: true,
    });
    for await (const chunk of stream) {
      if ((chunk.choices[0]?.delta.content ?? "") !== "") break;
    }
    for (let tries = 0; tries < 100 && records.length < 2; tries++) await sleep(20);
    assert.deepEqual(records, [429, 499]);
    clock.advance(BASE_MS);
    assert.equal((await postChat(gateway, { model: "m" })).status, 429);
    await cooldownBecomes(gateway, BASE_MS);
    assert.equal(chatRequests(mock).length, 3);
  });
});
