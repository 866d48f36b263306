// POST /v1/messages streamed through `@anthropic-ai/sdk` with more than 4 `stop_sequences`: the gateway matches the
// rest itself, and the provider, not told of them, generates on. Once the gateway matched one, the client's answer
// ends after a short wait for the provider's usage (src/streaming/after-answer.ts), not when the upstream ends on its
// own (a slow or stalled one held the client up to `stream_idle_timeout_ms`), and the upstream request is hung up on.
import assert from "node:assert/strict";
import type { ServerResponse } from "node:http";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import Anthropic from "@anthropic-ai/sdk";
import { countTextTokens } from "../../src/limits/token-estimate.ts";
import type { RequestRecord } from "../../src/observability/request-record.ts";
import { waitFor } from "../helpers/background-steps.ts";
import { CHAT_ROUTE, chatRequests, oneProviderYaml, recordsOf, useGateway, useMock } from "../helpers/e2e.ts";
import { recordOf } from "../helpers/keepalive-scene.ts";
import {
  chatChunk,
  chatCompletion,
  chatErrorChunk,
  chatStream,
  chatUsageChunk,
  type MockStep,
} from "../helpers/mock-upstream.ts";
import { MODEL, startTwoProviders } from "../helpers/two-providers.ts";

const UPSTREAM_ID = "vendor/m-instruct";
/** Six sequences: the last two are past the 4 sent upstream, so the gateway matches them. */
const SEQUENCES = ["[1]", "[2]", "[3]", "[4]", "FIN", "STOP HERE"];

async function scene(t: Parameters<typeof useMock>[0]) {
  const mock = await useMock(t);
  // A rate limit's cooldown longer than the test: a deployment a 429 cooled is not asked again.
  const gateway = await useGateway(t, `cooldowns:\n  rate_limit_base_ms: 60000\n${oneProviderYaml(mock)}`);
  mock.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("Fine.", UPSTREAM_ID) });
  return { mock, gateway, client: new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 }) };
}

function streamed(client: Anthropic, model = "m") {
  return client.messages.stream({
    model,
    max_tokens: 64,
    messages: [{ role: "user", content: "Go" }],
    stop_sequences: SEQUENCES,
  });
}

/** An upstream that writes `events` (`null`: wait `pauseMs`) and says how far it got before its request was closed. */
function runOnUpstream(events: readonly (unknown | null)[], pauseMs: number) {
  const seen = { written: 0, isClosed: false, isDone: false };
  const step: MockStep = {
    kind: "handler",
    handle: async (_request, response: ServerResponse) => {
      response.on("close", () => {
        seen.isClosed = true;
      });
      response.writeHead(200, { "content-type": "text/event-stream" });
      for (const event of events) {
        if (seen.isClosed) return;
        if (event === null) await sleep(pauseMs);
        else {
          response.write(`data: ${JSON.stringify(event)}\n\n`);
          seen.written++;
        }
      }
      seen.isDone = true;
      response.end("data: [DONE]\n\n");
    },
  };
  return { step, seen };
}

/** Text past the sequence, one piece every pause: 40 pieces (12 s at 300 ms), as a provider generating on. */
function runOn(): (unknown | null)[] {
  return Array.from({ length: 40 }, () => [null, chatChunk(" more", UPSTREAM_ID)]).flat();
}

describe("messages API: the end of a stream at a stop sequence the gateway matched", () => {
  test("an upstream generating on: the client's answer ends, and the upstream is hung up on, before it is done", async (t) => {
    const { mock, gateway, client } = await scene(t);
    const upstream = runOnUpstream(
      [chatChunk("", UPSTREAM_ID, { role: true }), chatChunk("Alpha STOP HERE and", UPSTREAM_ID), ...runOn()],
      300,
    );
    mock.enqueue(CHAT_ROUTE, upstream.step);
    const message = await streamed(client).finalMessage();
    assert.equal(upstream.seen.isDone, false, "the client's answer ended before the upstream's");
    assert.deepEqual(message.content, [{ type: "text", text: "Alpha ", citations: null }]);
    assert.equal(message.stop_reason, "stop_sequence");
    assert.equal(message.stop_sequence, "STOP HERE");
    await waitFor(() => upstream.seen.isClosed, "the upstream request to be closed");
    assert.ok(upstream.seen.written < 20, `hung up on within the grace (${upstream.seen.written} events written)`);
    const record = await recordOf(gateway, "messages");
    assert.equal(record.status, 200);
    assert.equal(record.outcome, "success");
    assert.equal(chatRequests(mock).length, 1, "nothing was continued");
    // No usage came: the estimate, of what the provider generated (read past the sequence too), not what the client got.
    const listed = (await recordsOf(gateway, "messages")).records[0];
    assert.ok((listed?.tokensOut ?? 0) > countTextTokens("Alpha "), `estimated ${listed?.tokensOut} output tokens`);
  });

  test("an upstream that stalls after the match: the client is not held until stream_idle_timeout_ms", async (t) => {
    const { mock, client } = await scene(t);
    mock.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: [{ data: chatChunk("Alpha STOP HERE and", UPSTREAM_ID, { role: true }) }],
      end: "hang",
    });
    const startedAtMs = Date.now();
    const message = await streamed(client).finalMessage();
    // The default stream_idle_timeout_ms is 30 s; the grace is 1 s.
    assert.ok(Date.now() - startedAtMs < 10_000, `ended after ${Date.now() - startedAtMs} ms`);
    assert.equal(message.stop_sequence, "STOP HERE");
    await waitFor(() => mock.activeRequests() === 0, "the hanging upstream request to be closed");
  });

  test("a usage that comes within the grace is the one the client and the record get", async (t) => {
    const { mock, gateway, client } = await scene(t);
    // The usage first (no finish_reason before it: the answer is not finished for the relay), then text on.
    const upstream = runOnUpstream(
      [
        chatChunk("Alpha STOP HERE and", UPSTREAM_ID, { role: true }),
        null,
        chatUsageChunk(UPSTREAM_ID, { prompt_tokens: 21, completion_tokens: 17 }),
        ...runOn(),
      ],
      100,
    );
    mock.enqueue(CHAT_ROUTE, upstream.step);
    const message = await streamed(client).finalMessage();
    assert.equal(upstream.seen.isDone, false, "the client's answer ended before the upstream's");
    assert.equal(message.stop_sequence, "STOP HERE");
    assert.equal(message.usage.output_tokens, 17);
    await waitFor(() => upstream.seen.isClosed, "the upstream request to be closed");
    assert.ok(upstream.seen.written < 10, `hung up on at the usage (${upstream.seen.written} events written)`);
    await recordOf(gateway, "messages");
    const record = (await recordsOf(gateway, "messages")).records[0];
    assert.equal(record?.status, 200);
    assert.deepEqual([record?.tokensIn, record?.tokensOut], [21, 17]);
  });

  test("running usage on every chunk: the usage after the match is waited for, and is the one charged", async (t) => {
    const { mock, gateway, client } = await scene(t);
    // vLLM's continuous usage stats and the like: each chunk carries the count so far. The one read with the match
    // predates what the provider generated past it; the next one (the provider's count once it went on) is the best.
    const upstream = runOnUpstream(
      [
        runningChunk("Alpha", 1, { role: true }),
        runningChunk(" STOP HERE and", 4),
        null,
        runningChunk(" more", 5),
        null,
        runningChunk(" more", 6),
        ...runOn(),
      ],
      100,
    );
    mock.enqueue(CHAT_ROUTE, upstream.step);
    const message = await streamed(client).finalMessage();
    assert.equal(message.stop_sequence, "STOP HERE");
    assert.equal(upstream.seen.isDone, false, "the client's answer ended before the upstream's");
    await waitFor(() => upstream.seen.isClosed, "the upstream request to be closed");
    assert.ok(upstream.seen.written < 10, `hung up on at the usage (${upstream.seen.written} events written)`);
    await recordOf(gateway, "messages");
    const record = (await recordsOf(gateway, "messages")).records[0];
    assert.deepEqual([record?.tokensIn, record?.tokensOut], [21, 5], "the count read after the match");
    assert.equal(message.usage.output_tokens, 5);
  });

  test("running usage, and nothing after the match within the grace: the last count read is charged", async (t) => {
    const { mock, gateway, client } = await scene(t);
    mock.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: [{ data: runningChunk("Alpha", 1, { role: true }) }, { data: runningChunk(" STOP HERE and", 4) }],
      end: "hang",
    });
    const startedAtMs = Date.now();
    const message = await streamed(client).finalMessage();
    assert.equal(message.stop_sequence, "STOP HERE");
    assert.ok(Date.now() - startedAtMs >= 900, `waited out the grace (${Date.now() - startedAtMs} ms)`);
    await recordOf(gateway, "messages");
    const record = (await recordsOf(gateway, "messages")).records[0];
    assert.deepEqual([record?.tokensIn, record?.tokensOut], [21, 4]);
  });

  test("running usage, then text without one, and nothing within the grace: that text is charged on top", async (t) => {
    const { mock, gateway, client } = await scene(t);
    const tail = " beta gamma STOP HERE and";
    mock.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: [{ data: runningChunk("Alpha", 1, { role: true }) }, { data: chatChunk(tail, UPSTREAM_ID) }],
      end: "hang",
    });
    const message = await streamed(client).finalMessage();
    assert.equal(message.stop_sequence, "STOP HERE");
    const output = 1 + countTextTokens(tail);
    await recordOf(gateway, "messages");
    const record = (await recordsOf(gateway, "messages")).records[0];
    // Before: 1, the count read before the text the client got (" beta gamma ") and the provider generated.
    assert.deepEqual([record?.tokensIn, record?.tokensOut], [21, output], "the last count, and what was read since");
    assert.equal(message.usage.output_tokens, output);
  });

  test("a usage-only chunk before the match does not end the grace: the usage after the match is charged", async (t) => {
    const { mock, gateway, client } = await scene(t);
    const upstream = runOnUpstream(
      [
        chatChunk("Alpha", UPSTREAM_ID, { role: true }),
        chatUsageChunk(UPSTREAM_ID, { prompt_tokens: 21, completion_tokens: 1 }),
        chatChunk(" beta STOP HERE and", UPSTREAM_ID),
        null,
        chatUsageChunk(UPSTREAM_ID, { prompt_tokens: 21, completion_tokens: 6 }),
        ...runOn(),
      ],
      100,
    );
    mock.enqueue(CHAT_ROUTE, upstream.step);
    const message = await streamed(client).finalMessage();
    assert.equal(message.stop_sequence, "STOP HERE");
    await recordOf(gateway, "messages");
    const record = (await recordsOf(gateway, "messages")).records[0];
    // Before: 1, the early count ended the grace at the match, before the text after it was counted.
    assert.deepEqual([record?.tokensIn, record?.tokensOut], [21, 6], "the usage read after the match");
    assert.equal(message.usage.output_tokens, 6);
  });

  test("a match inside a continuation: its upstream is hung up on after the grace, the answer ends there", async (t) => {
    const scene2 = await startTwoProviders(t);
    // The first provider breaks mid-answer; the second continues it, writes the sequence and generates on.
    scene2.primary.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: chatStream([" a", " b"], MODEL).slice(0, 3),
      end: "destroy",
    });
    const upstream = runOnUpstream([chatChunk(" c STOP HERE and", MODEL, { role: true }), ...runOn()], 300);
    scene2.backup.enqueue(CHAT_ROUTE, upstream.step);
    const client = new Anthropic({ baseURL: scene2.gateway.url, apiKey: "x", maxRetries: 0 });
    const message = await streamed(client, MODEL).finalMessage();
    assert.equal(upstream.seen.isDone, false, "the client's answer ended before the continuation's upstream did");
    assert.deepEqual(message.content, [{ type: "text", text: " a b c ", citations: null }]);
    assert.equal(message.stop_sequence, "STOP HERE");
    await waitFor(() => upstream.seen.isClosed, "the continuation's upstream request to be closed");
    assert.ok(upstream.seen.written < 20, `hung up on within the grace (${upstream.seen.written} events written)`);
    const record = await recordOf(scene2.gateway, "messages");
    assert.equal(record.status, 200);
    assert.equal(record.outcome, "success");
    assert.deepEqual([chatRequests(scene2.primary).length, chatRequests(scene2.backup).length], [1, 1]);
  });

  test("a client that leaves during the grace: the record counts what it was delivered, by the estimate", async (t) => {
    const { mock, gateway, client } = await scene(t);
    const upstream = runOnUpstream(
      [chatChunk("", UPSTREAM_ID, { role: true }), chatChunk("Alpha STOP HERE and", UPSTREAM_ID), ...runOn()],
      300,
    );
    mock.enqueue(CHAT_ROUTE, upstream.step);
    const stream = streamed(client);
    let text = "";
    // The answer's text ends at the match; the door then waits (up to 1 s) for a usage that never comes.
    stream.on("text", (delta) => {
      text += delta;
      stream.abort();
    });
    await assert.rejects(stream.done());
    assert.equal(text, "Alpha ");
    await waitFor(() => upstream.seen.isClosed, "the upstream request to be closed");
    const record = await recordOf(gateway, "messages");
    assert.equal(record.outcome, "client_aborted");
    // Before: 0 and 0, while its attempt, /stats and the budgets counted the estimate.
    const listed = (await recordsOf(gateway, "messages")).records[0];
    assert.ok((listed?.tokensIn ?? 0) > 0, `estimated ${listed?.tokensIn} prompt tokens`);
    assert.ok((listed?.tokensOut ?? 0) >= countTextTokens("Alpha "), `estimated ${listed?.tokensOut} output tokens`);
    assert.equal((listed as { isUsageEstimated?: boolean } | undefined)?.isUsageEstimated, true);
  });

  test("a match inside a continuation with a running count, its client leaving in the grace: the record counts what each segment is charged", async (t) => {
    const s = await startTwoProviders(t, { primary: { count_max_tokens: false }, backup: { count_max_tokens: false } });
    const records: RequestRecord[] = [];
    s.gateway.runtime.onRecord((record) => records.push(record));
    s.primary.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream([" a", " b"], MODEL).slice(0, 3), end: "destroy" });
    // The continuation's count comes on its first chunk only: the text after it is counted on top (SegmentEnd.isUsageExtended).
    const counted = { ...chatChunk(" c", MODEL, { role: true }), usage: { prompt_tokens: 30, completion_tokens: 1 } };
    const upstream = runOnUpstream([counted, chatChunk(" d e f STOP HERE and", MODEL), ...runOn()], 300);
    s.backup.enqueue(CHAT_ROUTE, upstream.step);
    const stream = streamed(new Anthropic({ baseURL: s.gateway.url, apiKey: "x", maxRetries: 0 }), MODEL);
    let text = "";
    stream.on("text", (delta) => {
      text += delta;
      if (text.endsWith(" d e f ")) stream.abort();
    });
    await assert.rejects(stream.done());
    await waitFor(() => records.length === 1, "the request's record");
    const record = records[0] as RequestRecord;
    assert.equal(record.outcome, "client_aborted");
    const [first, continuation] = record.attempts.filter((attempt) => attempt.tokensOut !== undefined);
    assert.ok((continuation?.tokensOut ?? 0) > 1, "the continuation is charged its count and the text read after it");
    // Before: the continuation's count alone (1), merged with the first segment's output.
    assert.equal(record.tokensOut, (first?.tokensOut ?? 0) + (continuation?.tokensOut ?? 0), "the record's output");
  });

  // The answer is whole before the error: after a stop sequence the gateway matched, or after the upstream's own finish.
  const wholeThenRateLimited: readonly [string, string, unknown, string][] = [
    ["the match", "Alpha STOP HERE and", chatChunk(" more", UPSTREAM_ID), "stop_sequence"],
    ["the upstream's finish_reason", "Alpha", chatChunk("", UPSTREAM_ID, { finishReason: "stop" }), "end_turn"],
  ];
  for (const [after, text, next, stopReason] of wholeThenRateLimited) {
    test(`an in-stream 429 after ${after}: the answer is a success, and the deployment still cools down`, async (t) => {
      const { mock, gateway, client } = await scene(t);
      const rateLimited = chatErrorChunk(UPSTREAM_ID, { code: 429, message: "Provider returned error: rate limited" });
      mock.enqueue(CHAT_ROUTE, {
        kind: "sse",
        events: [{ data: chatChunk(text, UPSTREAM_ID, { role: true }) }, { data: next }, { data: rateLimited }],
        end: "hang",
      });
      const message = await streamed(client).finalMessage();
      assert.equal(message.stop_reason, stopReason);
      await assertCoolingAfterSuccess(gateway, client, mock);
    });
  }
});

/** A content chunk carrying the provider's running usage (21 prompt tokens, `completionTokens` so far). */
function runningChunk(text: string, completionTokens: number, options: { role?: boolean } = {}): unknown {
  const usage = { prompt_tokens: 21, completion_tokens: completionTokens, total_tokens: 21 + completionTokens };
  return { ...chatChunk(text, UPSTREAM_ID, options), usage };
}

/** The request's record is a success, and the only deployment, cooling down, is not asked again (the gateway's 429). */
async function assertCoolingAfterSuccess(
  gateway: Parameters<typeof recordOf>[0],
  client: Anthropic,
  mock: Parameters<typeof chatRequests>[0],
): Promise<void> {
  const record = await recordOf(gateway, "messages");
  assert.equal(record.status, 200);
  assert.equal(record.outcome, "success");
  await assert.rejects(
    client.messages.create({ model: "m", max_tokens: 16, messages: [{ role: "user", content: "Again" }] }),
    (thrown: unknown) => thrown instanceof Anthropic.RateLimitError,
  );
  assert.equal(chatRequests(mock).length, 1);
}
