// Following another replica's background run (`GET /v1/responses/{id}?stream=true` on a gateway that does not run
// it, the run's state in Redis) whose replica died: its kept state stays `in_progress` and its heartbeat stops, so
// after BACKGROUND_STALE_MS a reader shows it failed (background.ts backgroundView). The follower's stream must end
// the way a failed run ends one, with `error` then `response.failed` carrying that failed response, numbered on from
// the run's events, not end with neither (the client then had half an answer and no word of how it ended). The dead
// replica is the state it left: written here through the stores the Responses door writes with (inRows over
// RedisKeptResponses), its last heartbeat 2 s short of stale.
import assert from "node:assert/strict";
import { type TestContext, test } from "node:test";
import OpenAI from "openai";
import type { ResponseStreamEvent } from "openai/resources/responses/responses";
import { systemClock } from "../../src/clock.ts";
import { DEFAULT_ECHO } from "../../src/protocols/__fixtures__/fixtures.ts";
import { sequentialIds } from "../../src/protocols/ids.ts";
import { BACKGROUND_STALE_MS, backgroundEvents } from "../../src/protocols/responses/background.ts";
import { inRows } from "../../src/protocols/responses/kept-responses.ts";
import { ResponsesStreamTranslator } from "../../src/protocols/responses/stream-mapping.ts";
import { RedisKeptResponses } from "../../src/state/redis-kept-responses.ts";
import { followedToFailure } from "../helpers/background-steps.ts";
import { oneProviderYaml, openAiClient, send, useGateway, useMock } from "../helpers/e2e.ts";
import type { TestGateway } from "../helpers/gateway.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../helpers/redis-server.ts";
import { redisStateYaml } from "../helpers/replica-scenes.ts";

const PREFIX = "stale-follow:";
const LIMITS = { maxEntries: 100, maxBytes: 50_000_000, maxAgeMs: 3_600_000 };

/** A replica's run kept in Redis half way through its answer (its last heartbeat `heartbeatAgeMs` ago); its id and events. */
async function keptRun(
  t: TestContext,
  redisUrl: string,
  heartbeatAgeMs: number,
): Promise<{ id: string; events: string[] }> {
  const rows = new RedisKeptResponses(redisUrl, PREFIX, false, LIMITS, systemClock);
  await rows.connect();
  t.after(() => rows.close());
  const translator = new ResponsesStreamTranslator({ echo: DEFAULT_ECHO, ids: sequentialIds(), createdAtSeconds: 1 });
  const events = backgroundEvents(
    translator.push({ model: "m-upstream", choices: [{ index: 0, delta: { role: "assistant", content: "Half an" } }] }),
  );
  const inProgress = JSON.parse(/^data: (.*)$/m.exec(events[0] ?? "")?.[1] ?? "{}").response;
  const id: string = inProgress.id;
  assert.match(id, /^resp_/);
  // Its first write (no events yet, as a run's first is), then a heartbeat with the events so far (appended).
  const kept = inRows(rows, (error) => {
    throw error;
  });
  const state = {
    response: { ...inProgress, background: true },
    conversation: [{ role: "user" as const, content: "hi" }],
  };
  const first = await kept.putIfUnchanged({ ...state, events: [], heartbeatAtMs: Date.now() }, undefined);
  const written = await kept.putIfUnchanged({ ...state, events, heartbeatAtMs: Date.now() - heartbeatAgeMs }, first);
  assert.ok(written !== undefined, "the run's state was kept");
  return { id, events };
}

/** The follower's stream of `id`, read up to its first text delta (the kept events came): the rest to be read. */
async function followingFromFirstDelta(follower: TestGateway, id: string): Promise<AsyncIterable<ResponseStreamEvent>> {
  const iterator = (await openAiClient(follower).responses.retrieve(id, { stream: true }))[Symbol.asyncIterator]();
  for (;;) {
    const next = await iterator.next();
    assert.ok(next.done !== true, "the stream ended before the kept events");
    if (next.value.type === "response.output_text.delta") return { [Symbol.asyncIterator]: () => iterator };
  }
}

test("following a run whose replica died ends with error and response.failed, read by the openai SDK and as SSE", {
  skip: isRedisInstalled() ? false : REDIS_MISSING,
}, async (t) => {
  const redis = await useRedisServer(t);
  // The dead replica's last write: a streamed background run half way through its answer, 2 s short of stale.
  const { id, events } = await keptRun(t, redis.url, BACKGROUND_STALE_MS - 2_000);

  const mock = await useMock(t);
  const follower = await useGateway(t, `${oneProviderYaml(mock)}${redisStateYaml(redis.url, PREFIX)}`);
  // Live while it follows (stale 2 s later): the SDK reads the run's events, then raises the failure.
  const { types, failure } = await followedToFailure(
    await openAiClient(follower).responses.retrieve(id, { stream: true }),
  );
  assert.ok(types.includes("response.output_text.delta"), `${types.join(" ")} ${String(failure)}`);
  assert.ok(failure instanceof OpenAI.APIError, `the stream ended without an error: ${types.join(" ")}`);
  assert.match(failure.message, /stopped before it finished/);

  // Stale already: the same end at once, numbered on from the run's events, then the stream ends.
  const replay = await send(follower, "GET", `/v1/responses/${id}?stream=true`);
  const names = [...replay.text.matchAll(/^event: (.*)$/gm)].map((match) => match[1]);
  assert.deepEqual(names.slice(-2), ["error", "response.failed"], replay.text);
  const numbers = [...replay.text.matchAll(/"sequence_number":(\d+)/g)].map((match) => Number(match[1]));
  assert.deepEqual(numbers.slice(-2), [events.length, events.length + 1]);
  const failed = JSON.parse(/event: response\.failed\ndata: (.*)/.exec(replay.text)?.[1] ?? "{}").response;
  assert.equal(failed.status, "failed");
  assert.equal(failed.background, true);
  assert.match(failed.error.message, /stopped before it finished/);
  // As a GET shows it.
  assert.deepEqual((await send(follower, "GET", `/v1/responses/${id}`)).json, failed);
});

test("following a run whose store can no longer be read (Redis gone) ends with an error event, not a clean end", {
  skip: isRedisInstalled() ? false : REDIS_MISSING,
}, async (t) => {
  const redis = await useRedisServer(t);
  const { id } = await keptRun(t, redis.url, 0);
  const mock = await useMock(t);
  const follower = await useGateway(t, `${oneProviderYaml(mock)}${redisStateYaml(redis.url, PREFIX)}`);
  const stream = await followingFromFirstDelta(follower, id);
  await redis.kill();
  const { types, failure } = await followedToFailure(stream);
  assert.ok(failure instanceof OpenAI.APIError, `the stream ended without an error: ${types.join(" ")}`);
  assert.match(failure.message, /kept responses cannot be reached/);
});

test("following a run whose response is deleted meanwhile ends with an error event naming it", {
  skip: isRedisInstalled() ? false : REDIS_MISSING,
}, async (t) => {
  const redis = await useRedisServer(t);
  const { id } = await keptRun(t, redis.url, 0);
  const mock = await useMock(t);
  const follower = await useGateway(t, `${oneProviderYaml(mock)}${redisStateYaml(redis.url, PREFIX)}`);
  const stream = await followingFromFirstDelta(follower, id);
  assert.equal((await send(follower, "DELETE", `/v1/responses/${id}`)).status, 200);
  const { types, failure } = await followedToFailure(stream);
  assert.ok(failure instanceof OpenAI.APIError, `the stream ended without an error: ${types.join(" ")}`);
  assert.match(failure.message, /was deleted/);
});

test("following a run cancelled from another replica before its run ended its events ends with response.incomplete", {
  skip: isRedisInstalled() ? false : REDIS_MISSING,
}, async (t) => {
  const redis = await useRedisServer(t);
  // Its replica died (or has not read the cancel yet): its events stop half way, without an end.
  const { id, events } = await keptRun(t, redis.url, 0);
  const mock = await useMock(t);
  const follower = await useGateway(t, `${oneProviderYaml(mock)}${redisStateYaml(redis.url, PREFIX)}`);
  // Not run here: marked cancelled in the store.
  const cancelled = await send(follower, "POST", `/v1/responses/${id}/cancel`);
  assert.equal((cancelled.json as { status?: string }).status, "cancelled", cancelled.text);
  // The openai SDK's stream ends with the cancelled response as its final one (it stopped after the kept delta).
  const seen: ResponseStreamEvent[] = [];
  for await (const event of await openAiClient(follower).responses.retrieve(id, { stream: true })) seen.push(event);
  const last = seen.at(-1);
  assert.equal(last?.type, "response.incomplete", seen.map((event) => event.type).join(" "));
  assert.equal(last.sequence_number, events.length);
  assert.equal(last.response.status, "cancelled");
  assert.equal(last.response.background, true);
  // Resumed after that end: nothing more, not a second end.
  const after = await send(follower, "GET", `/v1/responses/${id}?stream=true&starting_after=${events.length}`);
  assert.doesNotMatch(after.text, /^event: /m, after.text);
  // Resumed after the kept events: the end.
  const resumed = await send(follower, "GET", `/v1/responses/${id}?stream=true&starting_after=${events.length - 1}`);
  assert.deepEqual(
    [...resumed.text.matchAll(/^event: (.*)$/gm)].map((match) => match[1]),
    ["response.incomplete"],
  );
});
