// A background run on Redis whose write's reply is lost: the script ran (the row is what the run wrote), then the
// connection dropped before its reply came back (a TCP proxy between the gateway and a real redis-server swallows
// the reply and closes). The run must decide from what is stored, not take the lost reply for a failure: a lost
// heartbeat's reply made the next heartbeat's compare and set fail and end the run as if cancelled; a lost final
// save's reply made the run believe its answer was not kept (it did not join its conversation).
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import OpenAI from "openai";
import { PUT_IF_UNCHANGED_LUA } from "../../src/state/redis-kept-responses-lua.ts";
import { replayedEnding, streamedRun, UPSTREAM_ID, waitFor } from "../helpers/background-steps.ts";
import { CHAT_ROUTE, oneProviderYaml, openAiClient, useGateway, useMock } from "../helpers/e2e.ts";
import type { TestGateway } from "../helpers/gateway.ts";
import { chatStream, type MockUpstream } from "../helpers/mock-upstream.ts";
import { callsScript, useRedisProxy } from "../helpers/redis-proxy.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../helpers/redis-server.ts";

describe("Responses background mode on Redis: a write's reply lost", () => {
  const skip = isRedisInstalled() ? false : REDIS_MISSING;

  test("the script ran, its reply was lost with the connection: the run reads completed, its events end completed", {
    skip,
  }, async (t) => {
    const { mock, proxy, gateway, sdk } = await losingFirstSave(t, "completed", "bg-lost:");
    const conversation = await sdk.conversations.create({ items: [{ role: "user", content: "hi" }] });
    const words = ["The ", "whole ", "answer."];
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(words, UPSTREAM_ID) });
    const stream = await sdk.responses.create({
      model: "m",
      input: "x",
      conversation: conversation.id,
      background: true,
      stream: true,
    });
    let id = "";
    let lastType = "";
    for await (const event of stream) {
      if (event.type === "response.created") id = event.response.id;
      lastType = event.type;
    }
    assert.equal(lastType, "response.completed", "the live stream ended completed");
    await waitFor(() => gateway.runtime.backgroundRuns.size === 0, "the run to end");
    assert.equal(proxy.lostReplies, 1, "the final save's reply was lost");
    const kept = await afterReconnect(() => sdk.responses.retrieve(id));
    assert.equal(kept.status, "completed");
    assert.equal(kept.output_text, words.join(""));
    // The run knew its answer was kept: it joined its conversation (the old code took the lost reply for a failure).
    // Read once the conversations' connection is back too (the items were added before the outage, ahead of the final
    // save: nothing of the run touched that connection since).
    const items = await afterReconnect(async () => {
      const listed = [];
      for await (const item of sdk.conversations.items.list(conversation.id)) listed.push(item);
      return listed;
    });
    const answer = items.find((item) => item.type === "message" && item.role === "assistant");
    assert.ok(answer !== undefined, `the answer joined its conversation: ${JSON.stringify(items)}`);
    const { types, last } = await replayedEnding(
      await sdk.responses.retrieve(id, { stream: true, starting_after: -1 }),
    );
    assert.equal(types.at(-1), "response.completed", `the kept events: ${types.join(", ")}`);
    assert.equal(last?.status, "completed");
    assert.equal(types.filter((type) => type === "response.completed").length, 1, "each event once");
  });

  test("a heartbeat's reply lost (the script ran): the next heartbeat is not refused, the run is not ended as cancelled", {
    skip,
  }, async (t) => {
    const { mock, proxy, gateway, sdk } = await losingFirstSave(t, "in_progress", "bg-lost-beat:");
    // Long enough for a few heartbeats (one a second) after the lost one.
    const words = ["a ", "b ", "c ", "d ", "e ", "f ", "g ", "h ", "i ", "j."];
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(words, UPSTREAM_ID, { delayMs: 300 }) });
    const { id, events } = await streamedRun(sdk);
    assert.equal(proxy.lostReplies, 1, "the heartbeat's reply was lost");
    assert.equal(events.at(-1)?.type, "response.completed", "the live stream ended completed, not cancelled");
    await waitFor(() => gateway.runtime.backgroundRuns.size === 0, "the run to end");
    const kept = await afterReconnect(() => sdk.responses.retrieve(id));
    assert.equal(kept.status, "completed");
    assert.equal(kept.output_text, words.join(""));
  });
  test("a heartbeat's reply lost, then Redis unreachable past the wait for it: the next heartbeat finds the run's own state and goes on", {
    skip,
  }, async (t) => {
    const { mock, proxy, gateway, sdk } = await losingFirstSave(t, "in_progress", "bg-lost-down:", 3_500);
    const words = Array.from({ length: 14 }, (_, index) => `w${index} `);
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(words, UPSTREAM_ID, { delayMs: 450 }) });
    const { id, events } = await streamedRun(sdk);
    assert.equal(proxy.lostReplies, 1, "the heartbeat's reply was lost");
    assert.equal(events.at(-1)?.type, "response.completed", "the live stream ended completed, not cancelled");
    await waitFor(() => gateway.runtime.backgroundRuns.size === 0, "the run to end");
    const kept = await afterReconnect(() => sdk.responses.retrieve(id));
    assert.equal(kept.status, "completed");
    assert.equal(kept.output_text, words.join(""));
  });
  test("the final save's reply lost, then Redis unreachable past the wait for it: the run saves again once it is back", {
    skip,
  }, async (t) => {
    const { mock, proxy, gateway, sdk } = await losingFirstSave(t, "completed", "bg-lost-final-down:", 3_500);
    const conversation = await sdk.conversations.create({ items: [{ role: "user", content: "hi" }] });
    const words = ["The ", "whole ", "answer."];
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(words, UPSTREAM_ID) });
    const created = await sdk.responses.create({
      model: "m",
      input: "x",
      conversation: conversation.id,
      background: true,
    });
    await waitFor(() => gateway.runtime.backgroundRuns.size === 0, "the run to end", 15_000);
    assert.equal(proxy.lostReplies, 1, "the final save's reply was lost");
    const kept = await afterReconnect(() => sdk.responses.retrieve(created.id));
    assert.equal(kept.status, "completed");
    // Saved again once Redis was back: the run knew its answer was kept, and it joined its conversation.
    // Read once the conversations' connection is back too (the items were added before the outage, ahead of the final
    // save: nothing of the run touched that connection since).
    const items = await afterReconnect(async () => {
      const listed = [];
      for await (const item of sdk.conversations.items.list(conversation.id)) listed.push(item);
      return listed;
    });
    assert.ok(
      items.some((item) => item.type === "message" && item.role === "assistant"),
      `the answer joined its conversation: ${JSON.stringify(items)}`,
    );
  });
});

/**
 * A gateway whose state is only in Redis, reached through a proxy that loses the reply to the first compare and set
 * writing `status` (queued -> in_progress: the first heartbeat; -> completed: the final save), then, with
 * `downAfterLostReplyMs`, refuses connections that long (longer than the store's 3 s wait to read the row again
 * leaves the write's outcome unknown to the run).
 */
async function losingFirstSave(
  t: TestContext,
  status: "in_progress" | "completed",
  prefix: string,
  downAfterLostReplyMs?: number,
): Promise<{ mock: MockUpstream; proxy: { readonly lostReplies: number }; gateway: TestGateway; sdk: OpenAI }> {
  const mock = await useMock(t);
  const redis = await useRedisServer(t);
  let isLost = false;
  const proxy = await useRedisProxy(t, redis.port, () => undefined, {
    loseReplyTo: (text) => {
      if (isLost || !callsScript(text, PUT_IF_UNCHANGED_LUA) || !text.includes(`"status":"${status}"`)) return false;
      isLost = true;
      return true;
    },
    ...(downAfterLostReplyMs === undefined ? {} : { downAfterLostReplyMs }),
  });
  const gateway = await useGateway(t, yamlOver(mock, proxy.url, prefix));
  return { mock, proxy, gateway, sdk: openAiClient(gateway) };
}

/** The gateway config with its state only in Redis, reached at `url` (the proxy), under `prefix`. */
function yamlOver(mock: MockUpstream, url: string, prefix: string): string {
  return `${oneProviderYaml(mock)}state:\n  path: ":memory:"\n  redis_url: ${url}\n  redis_key_prefix: "${prefix}"\n`;
}

/** `read`, once the gateway's Redis connection is back (it reconnects through the proxy, which now passes all): a 503 until then. */
async function afterReconnect<T>(read: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    try {
      return await read();
    } catch (error) {
      if (!(error instanceof OpenAI.APIError) || error.status !== 503 || Date.now() > deadline) throw error;
      await sleep(50);
    }
  }
}
