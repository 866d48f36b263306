// Responses background mode (`background: true`), driven by the official SDK over loopback: answered at once
// (queued), served in the gateway through the one pipeline (failover included), polled with `responses.retrieve`,
// cancelled with `responses.cancel` (the upstream connection is closed), a streamed one resumed with
// `responses.retrieve(id, { stream: true, starting_after })`, per-named-client isolation, the gateway's exit, and
// the Redis variant (two gateways sharing only Redis: one runs it, the other reads, follows and cancels it).
import assert from "node:assert/strict";
import { connect } from "node:net";
import { describe, type TestContext, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import OpenAI from "openai";
import type { Response as SdkResponse } from "openai/resources/responses/responses";
import {
  assertCancelWinsOverFinalSave,
  finished,
  followedText,
  followedToFailure,
  hangingStep,
  heldStreamStep,
  replayedSequenceNumbers,
  slowRunInProcess,
  slowStreamStep,
  startStreamedRun,
  streamedRun,
  UPSTREAM_ID,
  waitFor,
} from "../helpers/background-steps.ts";
import {
  CHAT_ROUTE,
  chatRequests,
  oneProviderYaml,
  openAiClient,
  recordsOf,
  stateFileYaml,
  useGateway,
  useMock,
} from "../helpers/e2e.ts";
import { chatCompletion, chatStream, type MockUpstream } from "../helpers/mock-upstream.ts";
import { isRedisInstalled, REDIS_MISSING, type RedisServer, useRedisServer } from "../helpers/redis-server.ts";
import { startTwoProviders } from "../helpers/two-providers.ts";

/** The gateway config with state kept only in Redis, under a prefix of its own per test. */
function redisYaml(mock: MockUpstream, redis: RedisServer, prefix: string): string {
  return `${oneProviderYaml(mock)}state:\n  path: ":memory:"\n  redis_url: ${redis.url}\n  redis_key_prefix: "${prefix}"\n`;
}

/** Two gateways sharing only one Redis: `runner` (whose client is `one`) and `other`, on one mock upstream. */
async function twoGatewaysOnRedis(t: TestContext, prefix: string) {
  const mock = await useMock(t);
  const redis = await useRedisServer(t);
  const yaml = redisYaml(mock, redis, prefix);
  const runner = await useGateway(t, yaml);
  const other = openAiClient(await useGateway(t, yaml));
  return { mock, redis, runner, one: openAiClient(runner), other };
}

describe("Responses background mode", () => {
  test("answered at once as queued, served in the gateway, then completed; GET shows each state", async (t) => {
    const mock = await useMock(t);
    const gateway = await useGateway(t, oneProviderYaml(mock));
    const sdk = openAiClient(gateway);
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Otters float.", UPSTREAM_ID), delayMs: 1_500 });
    // Answered before the upstream did: `queued` with no output (a gateway that waited would answer `completed`).
    // No wall-clock bound: on a loaded machine that read as flaky.
    const created = await sdk.responses.create({ model: "m", input: "Tell me about otters.", background: true });
    assert.match(created.id, /^resp_/);
    assert.equal(created.status, "queued");
    assert.equal(created.background, true);
    assert.equal(created.output.length, 0);
    const running = await sdk.responses.retrieve(created.id);
    assert.ok(running.status === "queued" || running.status === "in_progress", running.status);
    const done = await finished(sdk, created.id);
    assert.equal(done.status, "completed");
    assert.equal(done.id, created.id);
    assert.equal(done.background, true);
    assert.equal(done.output_text, "Otters float.");
    assert.equal(chatRequests(mock).length, 1);
    assert.equal((chatRequests(mock)[0]?.body as { background?: unknown } | undefined)?.background, undefined);
    // It is kept as any answer: a continuation sends it as history.
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Yes.", UPSTREAM_ID) });
    await sdk.responses.create({ model: "m", previous_response_id: created.id, input: "Really?" });
    assert.deepEqual((chatRequests(mock)[1]?.body as { messages: unknown } | undefined)?.messages, [
      { role: "user", content: "Tell me about otters." },
      { role: "assistant", content: "Otters float." },
      { role: "user", content: "Really?" },
    ]);
  });

  test("background with store false is a 400 naming store; a synchronous response cannot be cancelled", async (t) => {
    const mock = await useMock(t);
    const gateway = await useGateway(t, oneProviderYaml(mock));
    const sdk = openAiClient(gateway);
    await assert.rejects(sdk.responses.create({ model: "m", input: "x", background: true, store: false }), (error) => {
      assert.ok(error instanceof OpenAI.BadRequestError);
      assert.equal(error.param, "store");
      return true;
    });
    assert.equal(chatRequests(mock).length, 0);
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Hi.", UPSTREAM_ID) });
    const plain = await sdk.responses.create({ model: "m", input: "x" });
    await assert.rejects(sdk.responses.cancel(plain.id), (error) => {
      assert.ok(error instanceof OpenAI.BadRequestError);
      assert.match(error.message, /Cannot cancel a synchronous response/);
      return true;
    });
    await assert.rejects(sdk.responses.cancel("resp_unknown"), OpenAI.NotFoundError);
  });

  test("fails over in background; when every attempt fails the response is failed with an error", async (t) => {
    const scene = await startTwoProviders(t);
    scene.primary.enqueue(CHAT_ROUTE, { kind: "json", status: 500, body: { error: { message: "boom" } } });
    scene.backup.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("From beta.", "m"), delayMs: 100 });
    const created = await scene.client.responses.create({ model: "m", input: "x", background: true });
    const done = await finished(scene.client, created.id);
    assert.equal(done.status, "completed");
    assert.equal(done.output_text, "From beta.");
    assert.equal(chatRequests(scene.primary).length, 1);
    assert.equal(chatRequests(scene.backup).length, 1);

    scene.primary.enqueue(CHAT_ROUTE, { kind: "json", status: 500, body: { error: { message: "boom" } } });
    scene.backup.enqueue(CHAT_ROUTE, { kind: "json", status: 500, body: { error: { message: "boom" } } });
    const doomed = await scene.client.responses.create({ model: "m", input: "x", background: true });
    const failed = await finished(scene.client, doomed.id);
    assert.equal(failed.status, "failed");
    assert.equal(failed.error?.code, "server_error");
    assert.ok((failed.error?.message ?? "").length > 0);
  });

  test("cancel: the upstream call is hung up on, the response is cancelled; cancelling again returns it unchanged", async (t) => {
    const mock = await useMock(t);
    const gateway = await useGateway(t, oneProviderYaml(mock));
    const sdk = openAiClient(gateway);
    const hanging = hangingStep();
    mock.enqueue(CHAT_ROUTE, hanging.step);
    const created = await sdk.responses.create({ model: "m", input: "x", background: true });
    await waitFor(() => chatRequests(mock).length === 1, "the upstream call");
    const cancelled = await sdk.responses.cancel(created.id);
    assert.equal(cancelled.status, "cancelled");
    await hanging.closed; // the upstream connection was closed by the cancel
    // One record, as any request: the attempt ended by the cancel, and says so.
    await waitFor(() => gateway.runtime.openRequests.size === 0, "the request to be settled");
    const { records } = await recordsOf(gateway, "responses");
    assert.equal(records[0]?.attempts[0]?.outcome, "client_aborted");
    assert.match(records[0]?.attempts[0]?.reason ?? "", /cancelled/);
    assert.equal((await sdk.responses.retrieve(created.id)).status, "cancelled");
    assert.equal((await sdk.responses.cancel(created.id)).status, "cancelled");
    // A finished one is returned as it is.
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Done.", UPSTREAM_ID) });
    const other = await sdk.responses.create({ model: "m", input: "x", background: true });
    await finished(sdk, other.id);
    const again = await sdk.responses.cancel(other.id);
    assert.equal(again.status, "completed");
    assert.equal(again.output_text, "Done.");
    assert.equal(gateway.runtime.openRequests.size, 0);
    // DELETE of a running one cancels it first: its run does not write it back.
    const deleting = hangingStep();
    mock.enqueue(CHAT_ROUTE, deleting.step);
    const doomed = await sdk.responses.create({ model: "m", input: "x", background: true });
    await waitFor(() => chatRequests(mock).length === 3, "the upstream call");
    await sdk.responses.delete(doomed.id);
    await deleting.closed;
    await sleep(1_200); // past a heartbeat
    await assert.rejects(sdk.responses.retrieve(doomed.id), OpenAI.NotFoundError);
  });

  test("previous_response_id naming a response still running is a 400 naming it; nothing goes upstream", async (t) => {
    const mock = await useMock(t);
    const gateway = await useGateway(t, oneProviderYaml(mock));
    const sdk = openAiClient(gateway);
    const hanging = hangingStep();
    mock.enqueue(CHAT_ROUTE, hanging.step);
    const running = await sdk.responses.create({ model: "m", input: "First question.", background: true });
    await waitFor(() => chatRequests(mock).length === 1, "the upstream call");
    const error = await sdk.responses.create({ model: "m", previous_response_id: running.id, input: "And then?" }).then(
      () => assert.fail("continued from a response that has no answer yet"),
      (caught: unknown) => caught,
    );
    assert.ok(error instanceof OpenAI.BadRequestError, String(error));
    assert.equal(error.param, "previous_response_id");
    assert.equal(error.code, "invalid_value");
    assert.match(error.message, /still (queued|in_progress)/);
    assert.equal(chatRequests(mock).length, 1, "nothing went upstream");
    // Once it has ended (here: cancelled), it can be continued from, as any kept response.
    await sdk.responses.cancel(running.id);
    await hanging.closed;
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Next.", UPSTREAM_ID) });
    const next = await sdk.responses.create({ model: "m", previous_response_id: running.id, input: "And then?" });
    assert.equal(next.output_text, "Next.");
  });

  test("stream: events come live and are kept; a dropped stream resumes with starting_after and follows to the end", async (t) => {
    const mock = await useMock(t);
    const gateway = await useGateway(t, oneProviderYaml(mock));
    const sdk = openAiClient(gateway);
    const words = ["One ", "two ", "three ", "four ", "five ", "six."];
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(words, UPSTREAM_ID, { delayMs: 120, usage: true }) });
    const stream = await sdk.responses.create({ model: "m", input: "Count.", background: true, stream: true });
    let id = "";
    let lastSeen = -1;
    let textBefore = "";
    for await (const event of stream) {
      lastSeen = event.sequence_number;
      if (event.type === "response.created") {
        id = event.response.id;
        assert.equal(event.response.background, true);
      }
      if (event.type === "response.output_text.delta") textBefore += event.delta;
      if (textBefore.length > 0) break; // the client drops the stream after the first delta
    }
    assert.match(id, /^resp_/);
    const resumed = await sdk.responses.retrieve(id, { stream: true, starting_after: lastSeen });
    const sequence: number[] = [];
    let textAfter = "";
    let last: SdkResponse | undefined;
    for await (const event of resumed) {
      sequence.push(event.sequence_number);
      if (event.type === "response.output_text.delta") textAfter += event.delta;
      if (event.type === "response.completed") last = event.response;
    }
    assert.equal(sequence[0], lastSeen + 1, "resumed right after the last event seen");
    assert.deepEqual(
      sequence,
      sequence.map((_, index) => lastSeen + 1 + index),
    );
    assert.equal(textBefore + textAfter, words.join(""));
    assert.equal(last?.status, "completed");
    assert.equal(last?.output_text, words.join(""));
    // Finished: replayable from the start, and GET shows the same response.
    const replay = await sdk.responses.retrieve(id, { stream: true, starting_after: -1 });
    const types: string[] = [];
    for await (const event of replay) types.push(event.type);
    assert.equal(types[0], "response.created");
    assert.equal(types.at(-1), "response.completed");
    assert.equal((await sdk.responses.retrieve(id)).output_text, words.join(""));
    assert.equal(chatRequests(mock).length, 1);
  });

  test("cancel mid-stream: the upstream stream is hung up on, the followers end, the response is cancelled", async (t) => {
    const mock = await useMock(t);
    const gateway = await useGateway(t, oneProviderYaml(mock));
    const sdk = openAiClient(gateway);
    const slow = slowStreamStep("Hello ");
    mock.enqueue(CHAT_ROUTE, slow.step);
    const stream = await sdk.responses.create({ model: "m", input: "x", background: true, stream: true });
    let id = "";
    const seen: string[] = [];
    let last: SdkResponse | undefined;
    for await (const event of stream) {
      seen.push(event.type);
      if (event.type === "response.created") id = event.response.id;
      if (event.type === "response.output_text.delta") {
        const cancelled = await sdk.responses.cancel(id);
        assert.equal(cancelled.status, "cancelled");
        // As OpenAI: what was generated before the cancel stays in the cancelled response.
        assert.equal(cancelled.output_text, "Hello ");
      }
      if (event.type === "response.incomplete") last = event.response;
    }
    await slow.closed;
    assert.ok(seen.includes("response.output_text.delta"));
    // The stream ends with a last response event (OpenAI has no `response.cancelled`): `response.incomplete`
    // carrying the cancelled response and its output; the open message is closed first.
    assert.equal(seen.at(-1), "response.incomplete");
    assert.ok(seen.includes("response.output_item.done"));
    assert.equal(last?.status, "cancelled");
    assert.equal(last?.output_text, "Hello ");
    const kept = await sdk.responses.retrieve(id);
    assert.equal(kept.status, "cancelled");
    assert.equal(kept.output_text, "Hello ");
    // A follower after the end replays the same last event.
    const replayed: string[] = [];
    for await (const event of await sdk.responses.retrieve(id, { stream: true, starting_after: -1 })) {
      replayed.push(event.type);
    }
    assert.equal(replayed.at(-1), "response.incomplete");
    assert.equal(gateway.runtime.backgroundRuns.size, 0);
  });

  test("a named client reads, follows, cancels and deletes only its own background responses", async (t) => {
    const mock = await useMock(t);
    const gateway = await useGateway(
      t,
      `server:
  port: 0
  host: 127.0.0.1
  api_keys:
    - { key: sk-ci-key-0123456789, name: ci }
    - { key: sk-team-key-0123456789, name: team }
${oneProviderYaml(mock)}`,
    );
    const ci = openAiClient(gateway, "sk-ci-key-0123456789");
    const team = openAiClient(gateway, "sk-team-key-0123456789");
    const hanging = hangingStep();
    mock.enqueue(CHAT_ROUTE, hanging.step);
    const created = await ci.responses.create({ model: "m", input: "x", background: true, stream: false });
    await assert.rejects(team.responses.retrieve(created.id), OpenAI.NotFoundError);
    await assert.rejects(team.responses.cancel(created.id), OpenAI.NotFoundError);
    await assert.rejects(team.responses.retrieve(created.id, { stream: true }), OpenAI.NotFoundError);
    await assert.rejects(team.responses.delete(created.id), OpenAI.NotFoundError);
    assert.equal((await ci.responses.retrieve(created.id)).status === "cancelled", false, "untouched by team");
    assert.equal((await ci.responses.cancel(created.id)).status, "cancelled");
    await hanging.closed;
  });

  test("the exit: a background response ended by it (shutdown timeout, second signal) is kept failed, not in_progress", async (t) => {
    const mock = await useMock(t);
    const gateway = await useGateway(t, oneProviderYaml(mock));
    const sdk = openAiClient(gateway);
    const hanging = hangingStep();
    mock.enqueue(CHAT_ROUTE, hanging.step);
    const created = await sdk.responses.create({ model: "m", input: "x", background: true });
    await waitFor(() => chatRequests(mock).length === 1, "the upstream call");
    // What the shutdown timeout and a second signal do: end every request in flight through its pipeline.
    await gateway.endInFlight(2_000);
    const ended = await sdk.responses.retrieve(created.id);
    assert.equal(ended.status, "failed");
    assert.match(ended.error?.message ?? "", /shutting down/);
    await hanging.closed;
  });
});

describe("Responses background mode: graceful close", () => {
  test("a background response running at close() is finished before the store closes (seen after a restart)", async (t) => {
    const mock = await useMock(t);
    const { mkdtempSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const { startTestGateway } = await import("../helpers/gateway.ts");
    const statePath = join(mkdtempSync(join(tmpdir(), "bg-close-")), "state.db");
    const yaml = stateFileYaml(mock, statePath);
    const before = await startTestGateway(yaml);
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Finished anyway.", UPSTREAM_ID), delayMs: 300 });
    const created = await openAiClient(before).responses.create({ model: "m", input: "x", background: true });
    await before.close();
    const after = await useGateway(t, yaml);
    const kept = await openAiClient(after).responses.retrieve(created.id);
    assert.equal(kept.status, "completed");
    assert.equal(kept.output_text, "Finished anyway.");
  });
});

describe("Responses background mode with Redis (two gateways sharing only Redis)", () => {
  const skip = isRedisInstalled() ? false : REDIS_MISSING;

  test("started on one, read, followed live and replayed on the other", { skip }, async (t) => {
    const { mock, one, other } = await twoGatewaysOnRedis(t, "bg-e2e:");
    const words = ["a ", "b ", "c ", "d ", "e ", "f ", "g ", "h."];
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(words, UPSTREAM_ID, { delayMs: 250, usage: true }) });
    const id = await startStreamedRun(one);
    const seenThere = await other.responses.retrieve(id);
    assert.ok(seenThere.status === "queued" || seenThere.status === "in_progress", seenThere.status);
    assert.equal(seenThere.background, true);
    // Followed on the other gateway from the start until the end.
    const { text, lastType } = await followedText(
      await other.responses.retrieve(id, { stream: true, starting_after: -1 }),
    );
    assert.equal(text, words.join(""));
    assert.equal(lastType, "response.completed");
    assert.equal((await other.responses.retrieve(id)).output_text, words.join(""));
  });

  test("cancelled on the other gateway: the run ends and its upstream call is hung up on", { skip }, async (t) => {
    const { mock, runner, one, other } = await twoGatewaysOnRedis(t, "bg-cancel:");
    const hanging = hangingStep();
    mock.enqueue(CHAT_ROUTE, hanging.step);
    const created = await one.responses.create({ model: "m", input: "x", background: true });
    await waitFor(() => chatRequests(mock).length === 1, "the upstream call");
    assert.equal((await other.responses.cancel(created.id)).status, "cancelled");
    await hanging.closed;
    await waitFor(() => runner.runtime.backgroundRuns.size === 0, "the run to end");
    assert.equal((await one.responses.retrieve(created.id)).status, "cancelled");
    // Deleted on the other gateway while it runs: the run ends and does not write it back.
    const deleting = hangingStep();
    mock.enqueue(CHAT_ROUTE, deleting.step);
    const doomed = await one.responses.create({ model: "m", input: "x", background: true });
    await waitFor(() => chatRequests(mock).length === 2, "the second upstream call");
    await other.responses.delete(doomed.id);
    await deleting.closed;
    await waitFor(() => runner.runtime.backgroundRuns.size === 0, "the second run to end");
    await assert.rejects(one.responses.retrieve(doomed.id), OpenAI.NotFoundError);
  });

  test("a cancel from the other gateway landing between the heartbeat's read and write wins: the run stops", {
    skip,
  }, async (t) => {
    const { Redis } = await import("ioredis");
    const { mock, redis, runner, one, other } = await twoGatewaysOnRedis(t, "bg-race:");
    const admin = new Redis(redis.url);
    t.after(() => admin.disconnect());
    const hanging = hangingStep();
    mock.enqueue(CHAT_ROUTE, hanging.step);
    const created = await one.responses.create({ model: "m", input: "x", background: true });
    await waitFor(() => chatRequests(mock).length === 1, "the upstream call");
    // The runner's heartbeat writes once a second: seen here, through MONITOR, as the script that writes the row
    // in_progress. A raw connection, not ioredis's monitor(): that one failed ("Command queue state error") when the
    // gateways' own SUBSCRIBE (the batches' nudge channel) went by in the monitored stream.
    await heartbeatWritten(redis.url, t, created.id);
    // Writes wait (reads go on) from 400 ms after that heartbeat to past the next one: the cancel made on the other
    // gateway reads in_progress and its write waits first, then the heartbeat reads in_progress and its write waits
    // behind it. Released in that order, the cancel lands between the heartbeat's read and its write.
    await sleep(400);
    await admin.call("CLIENT", "PAUSE", "900", "WRITE");
    await sleep(50);
    const cancel = other.responses.cancel(created.id).catch(() => undefined);
    await cancel;
    // The heartbeat that read before the cancel landed must not write it back as in_progress: the run stops.
    const closedInTime = await Promise.race([hanging.closed.then(() => true), sleep(4_000).then(() => false)]);
    assert.equal(closedInTime, true, "the run went on: the cancel was overwritten by the heartbeat");
    await waitFor(() => runner.runtime.backgroundRuns.size === 0, "the run to end");
    assert.equal((await other.responses.retrieve(created.id)).status, "cancelled");
    assert.equal((await one.responses.retrieve(created.id)).status, "cancelled");
  });

  test("rolling upgrade: a streamed run's row as the previous version kept it (events inside) is read, replayed and cancelled", {
    skip,
  }, async (t) => {
    const { Redis } = await import("ioredis");
    const mock = await useMock(t);
    const redis = await useRedisServer(t);
    const yaml = redisYaml(mock, redis, "bg-legacy:");
    const sdk = openAiClient(await useGateway(t, yaml));
    const admin = new Redis(redis.url);
    t.after(() => admin.disconnect());
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(["Hel", "lo"], UPSTREAM_ID) });
    const { id } = await streamedRun(sdk);
    await finished(sdk, id);
    // The row as a gateway of the previous version keeps a run it is still streaming: its events inside the row (no
    // appended list, no marker), in_progress, its heartbeat fresh; that gateway runs it, this one does not.
    const rows = "bg-legacy:{responses}:rows";
    const list = `bg-legacy:{responses}:events:${id}`;
    const events = await admin.lrange(list, 0, -1);
    const { eventsAppended: _marker, ...row } = JSON.parse((await admin.hget(rows, id)) ?? "{}") as Record<
      string,
      unknown
    >;
    const response = { ...(row.response as Record<string, unknown>), status: "in_progress" };
    await admin.hset(rows, id, JSON.stringify({ ...row, response, events, heartbeatAtMs: Date.now() }));
    await admin.del(list);
    assert.ok(events.length > 3, String(events.length));
    assert.equal((await sdk.responses.retrieve(id)).status, "in_progress");
    // Cancelled here (its run is elsewhere): the compare-and-set must match the row the old version wrote.
    assert.equal((await sdk.responses.cancel(id)).status, "cancelled");
    assert.equal((await sdk.responses.retrieve(id)).status, "cancelled");
    // Its events are still there to replay.
    let replayed = 0;
    for await (const _event of await sdk.responses.retrieve(id, { stream: true, starting_after: -1 })) replayed += 1;
    assert.equal(replayed, events.length);
  });

  test("a background response whose first save fails is an error, not a 200 with an id a GET cannot find", {
    skip,
  }, async (t) => {
    const mock = await useMock(t);
    const redis = await useRedisServer(t);
    const yaml = redisYaml(mock, redis, "bg-save:");
    const gateway = await useGateway(t, yaml);
    const sdk = openAiClient(gateway);
    redis.pause();
    let isResumed = false;
    t.after(() => {
      if (!isResumed) redis.resume();
    });
    const error = await sdk.responses.create({ model: "m", input: "x", background: true }).then(
      () => assert.fail("answered 200 though the response was not kept"),
      (caught: unknown) => caught,
    );
    redis.resume();
    isResumed = true;
    assert.ok(error instanceof OpenAI.APIError, String(error));
    assert.ok((error.status ?? 0) >= 500, `status ${error.status}`);
    assert.equal((error.error as { type?: string } | undefined)?.type !== undefined, true, "OpenAI's error shape");
    await sleep(300);
    assert.equal(chatRequests(mock).length, 0, "nothing was started");
    assert.equal(gateway.runtime.backgroundRuns.size, 0);
    await waitFor(() => gateway.runtime.openRequests.size === 0, "the request to close");
  });

  test("a long streamed run writes its events to Redis once each (append-only), not the whole list every second", {
    skip,
  }, async (t) => {
    const { Redis } = await import("ioredis");
    const { mock, redis, one, other } = await twoGatewaysOnRedis(t, "bg-bytes:");
    const admin = new Redis(redis.url);
    t.after(() => admin.disconnect());
    const inputBytes = async (): Promise<number> =>
      Number(/total_net_input_bytes:(\d+)/.exec(await admin.info("stats"))?.[1] ?? Number.NaN);
    // ~2,000 events over ~5 s: several heartbeats while the list grows.
    const words = Array.from({ length: 2_000 }, (_, index) => `w${index} `);
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(words, UPSTREAM_ID, { delayMs: 2.5, usage: true }) });
    const before = await inputBytes();
    const { id, events } = await streamedRun(one);
    const count = events.length;
    const written = (await inputBytes()) - before;
    t.diagnostic(`${count} events; ${written} bytes written to Redis`);
    assert.ok(count >= 2_000, `${count} events`);
    // The events themselves are ~0.6 MB: each written once, plus a small row each second. Rewriting the whole list
    // every second wrote 4.5 MB for 2,000 events (and grows as the square of the run's length).
    assert.ok(written < 1_500_000, `${written} bytes written to Redis for ${count} events`);
    // Replayed on the other gateway from the middle: every event after it, once, in order.
    const replayed = await replayedSequenceNumbers(other, id, 999);
    assert.equal(replayed[0], 1_000);
    assert.equal(replayed.length, count - 1_000);
    assert.equal((await other.responses.retrieve(id)).status, "completed");
  });

  test("a follower on the other gateway reads each event from Redis once, not the whole list every second", {
    skip,
  }, async (t) => {
    const { Redis } = await import("ioredis");
    const { mock, redis, one, other } = await twoGatewaysOnRedis(t, "bg-follow-bytes:");
    const admin = new Redis(redis.url);
    t.after(() => admin.disconnect());
    const outputBytes = async (): Promise<number> =>
      Number(/total_net_output_bytes:(\d+)/.exec(await admin.info("stats"))?.[1] ?? Number.NaN);
    // ~2,000 events over several seconds: several of the follower's reads while the list grows.
    const words = Array.from({ length: 2_000 }, (_, index) => `w${index} `);
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(words, UPSTREAM_ID, { delayMs: 2.5, usage: true }) });
    const id = await startStreamedRun(one);
    const before = await outputBytes();
    const { text, lastType } = await followedText(
      await other.responses.retrieve(id, { stream: true, starting_after: -1 }),
    );
    const read = (await outputBytes()) - before;
    t.diagnostic(`${read} bytes read from Redis to follow the run`);
    assert.equal(text, words.join(""));
    assert.equal(lastType, "response.completed");
    // The events are ~0.6 MB, each read once (plus the row each second). Reading the whole list every second read
    // several times that, growing as the square of the run's length.
    assert.ok(read < 1_200_000, `${read} bytes read from Redis to follow the run`);
  });

  test("a cancel landing between the last heartbeat and the final save wins: the kept events end cancelled, not completed", {
    skip,
  }, async (t) => {
    const { mock, redis, runner, one, other } = await twoGatewaysOnRedis(t, "bg-final-race:");
    const held = heldStreamStep(["The ", "whole ", "answer."]);
    mock.enqueue(CHAT_ROUTE, held.step);
    const id = await startStreamedRun(one);
    // Right after a heartbeat (seen as the script writing the row in_progress), the next one a second away: the cancel
    // lands, then the answer completes and the run's final save comes, before any heartbeat could see the cancel.
    await heartbeatWritten(redis.url, t, id);
    await assertCancelWinsOverFinalSave(runner, other, id, held);
  });

  test("a streamed run cancelled on the other gateway: its follower there ends with the cancelled response and its output", {
    skip,
  }, async (t) => {
    const { mock, runner, one, other } = await twoGatewaysOnRedis(t, "bg-stream-cancel:");
    const slow = slowStreamStep("Partial ");
    mock.enqueue(CHAT_ROUTE, slow.step);
    const id = await startStreamedRun(one);
    await sleep(1_200); // past a heartbeat: the delta is in Redis
    assert.equal((await other.responses.cancel(id)).status, "cancelled");
    await slow.closed;
    await waitFor(() => runner.runtime.backgroundRuns.size === 0, "the run to end");
    const types: string[] = [];
    let last: SdkResponse | undefined;
    for await (const event of await other.responses.retrieve(id, { stream: true, starting_after: -1 })) {
      types.push(event.type);
      if (event.type === "response.incomplete") last = event.response;
    }
    assert.equal(types.filter((type) => type === "response.created").length, 1, "each event once");
    assert.equal(types.at(-1), "response.incomplete");
    assert.equal(last?.status, "cancelled");
    const kept = await other.responses.retrieve(id);
    assert.equal(kept.status, "cancelled");
    assert.equal(kept.output_text, "Partial ");
  });

  test("a Responses answer stays an open request until its Redis save ends (a second signal waits for it)", {
    skip,
  }, async (t) => {
    const mock = await useMock(t);
    const redis = await useRedisServer(t);
    const yaml = redisYaml(mock, redis, "bg-open:");
    const gateway = await useGateway(t, yaml);
    const sdk = openAiClient(gateway);
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Kept.", UPSTREAM_ID) });
    redis.pause();
    let isResumed = false;
    t.after(() => {
      if (!isResumed) redis.resume();
    });
    const answer = sdk.responses.create({ model: "m", input: "x" });
    await waitFor(() => chatRequests(mock).length === 1, "the upstream call");
    await sleep(200); // the answer is made; its save waits for the stopped Redis
    assert.equal(gateway.runtime.openRequests.size, 1, "still open while it is being kept");
    redis.resume();
    isResumed = true;
    const response = await answer;
    assert.equal(response.output_text, "Kept.");
    await waitFor(() => gateway.runtime.openRequests.size === 0, "the request to close");
  });
});

describe("Responses background mode: SIGTERM of a gateway process", () => {
  async function exited(pid: number | undefined): Promise<void> {
    assert.ok(pid !== undefined);
    await waitFor(
      () => {
        try {
          process.kill(pid, 0);
          return false;
        } catch {
          return true;
        }
      },
      "the process to exit",
      15_000,
    );
  }

  test("finished within the grace if it can be, else kept as failed with the exit's error (never in_progress)", async (t) => {
    const mock = await useMock(t);
    const { mkdtempSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const { startGatewayProcess } = await import("../helpers/gateway-process.ts");
    const statePath = join(mkdtempSync(join(tmpdir(), "bg-sigterm-")), "state.db");
    const yaml = (graceMs: number): string =>
      `server:\n  port: 0\n  host: 127.0.0.1\n  log_level: info\n  shutdown_timeout_ms: ${graceMs}\n${stateFileYaml(mock, statePath)}`;

    // Within the grace: finished, then the process exits.
    const patient = await startGatewayProcess(t, yaml(10_000));
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Made it.", UPSTREAM_ID), delayMs: 500 });
    const sdkPatient = new OpenAI({ baseURL: `${patient.url}/v1`, apiKey: "x", maxRetries: 0 });
    const finishedOne = await sdkPatient.responses.create({ model: "m", input: "x", background: true });
    process.kill(patient.pid ?? 0, "SIGTERM");
    await exited(patient.pid);

    // Past the grace: ended by the shutdown timeout, kept as failed.
    const hurried = await startGatewayProcess(t, yaml(300));
    const hanging = hangingStep();
    mock.enqueue(CHAT_ROUTE, hanging.step);
    const sdkHurried = new OpenAI({ baseURL: `${hurried.url}/v1`, apiKey: "x", maxRetries: 0 });
    const endedOne = await sdkHurried.responses.create({ model: "m", input: "x", background: true });
    await waitFor(() => chatRequests(mock).length === 2, "the upstream call");
    process.kill(hurried.pid ?? 0, "SIGTERM");
    await exited(hurried.pid);
    await hanging.closed;

    const after = openAiClient(await useGateway(t, stateFileYaml(mock, statePath)));
    const done = await after.responses.retrieve(finishedOne.id);
    assert.equal(done.status, "completed");
    assert.equal(done.output_text, "Made it.");
    const ended = await after.responses.retrieve(endedOne.id);
    assert.equal(ended.status, "failed");
    assert.match(ended.error?.message ?? "", /shutting down/);
  });
});

describe("Responses background mode: a gateway process killed mid-run (SIGKILL)", () => {
  test("its kept response reads in_progress within the 15 s window, then failed; a follower on another gateway ends", async (t) => {
    const mock = await useMock(t);
    const { mkdtempSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const statePath = join(mkdtempSync(join(tmpdir(), "bg-sigkill-")), "state.db");
    const yaml = stateFileYaml(mock, statePath);
    // The process is killed while its run waits; its delta is in the state file.
    const { running: doomed, id, isUpstreamClosed } = await slowRunInProcess(t, mock, yaml);
    process.kill(doomed.pid ?? 0, "SIGKILL");
    const killedAtMs = Date.now();
    await waitFor(isUpstreamClosed, "the killed process's upstream connection to close");
    // Another gateway on the same state file (as after a restart): no run of it there, a recent heartbeat.
    const after = openAiClient(await useGateway(t, yaml));
    const seen = await after.responses.retrieve(id);
    assert.equal(seen.status, "in_progress", "within the window it may still be running elsewhere");
    // A follower reads the kept events, then, once the run is known stale (not after its own timeout), the end a
    // failed run's stream has: `error` (which the SDK raises) and `response.failed`. Before 2026-12-07 it just
    // stopped after the last kept delta (responses-background-stale-follow.test.ts checks the events).
    const { text, failure } = await followedToFailure(
      await after.responses.retrieve(id, { stream: true, starting_after: -1 }),
    );
    assert.ok(failure instanceof OpenAI.APIError, `the stream ended without an error: ${String(failure)}`);
    assert.match(failure.message, /stopped before it finished/);
    const endedAfterMs = Date.now() - killedAtMs;
    assert.equal(text, "Half ");
    // Not before the 15 s window (less the last heartbeat's second); the upper bound only keeps it from ending at some
    // later timeout of its own, with room for a loaded machine's polling.
    assert.ok(endedAfterMs >= 13_000 && endedAfterMs < 45_000, `the follower ended ${endedAfterMs} ms after the kill`);
    const failed = await after.responses.retrieve(id);
    assert.equal(failed.status, "failed");
    assert.equal(failed.error?.code, "server_error");
    assert.match(failed.error?.message ?? "", /stopped before it finished/);
  });
});

/**
 * Resolves at the next script (EVAL/EVALSHA) that names `id` and writes it `in_progress`, as Redis's MONITOR shows it
 * (one line per command, its arguments quoted and escaped).
 */
async function heartbeatWritten(url: string, t: TestContext, id: string): Promise<void> {
  const { port, hostname } = new URL(url);
  const socket = connect(Number(port), hostname);
  t.after(() => socket.destroy());
  socket.write("MONITOR\r\n");
  let buffered = "";
  await new Promise<void>((resolve) => {
    socket.setEncoding("utf8").on("data", (text: string) => {
      buffered += text;
      const lines = buffered.split("\r\n");
      buffered = lines.pop() ?? "";
      for (const line of lines) {
        const isScript = /^\+\d+\.\d+ \[[^\]]*\] "eval(sha)?"/i.test(line);
        if (isScript && line.includes(id) && line.includes('status\\":\\"in_progress')) {
          socket.destroy();
          resolve();
          return;
        }
      }
    });
  });
}
