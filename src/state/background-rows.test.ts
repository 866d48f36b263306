// A background response's writes as the Responses adapter makes them (`inRows`, kept-responses.ts) over the
// persistent stores (the state file, Redis): a streamed run's events appended rather than rewritten with the row,
// a follower in another process reading only the events after the last one it has, a run's late write refused, and
// a run's final write refused with its events when a cancel landed after its last heartbeat. In memory
// (`inMemory`), the kept events are appended to as well.
import assert from "node:assert/strict";
import { mkdtempSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { describe, type TestContext, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { callsScript, useRedisProxy } from "../../test/helpers/redis-proxy.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../../test/helpers/redis-server.ts";
import { ManualClock, systemClock } from "../clock.ts";
import { DEFAULT_ECHO } from "../protocols/__fixtures__/fixtures.ts";
import type { KeptResponseRows } from "../protocols/responses/kept-response-rows.ts";
import { inMemory, inRows, type KeptResponses, keptToken } from "../protocols/responses/kept-responses.ts";
import { buildResponse, type ResponseObject, type ResponseStatus } from "../protocols/responses/response-object.ts";
import { ResponseStore, type StoredResponse } from "../protocols/responses/response-store.ts";
import { followKept } from "../server/background-readers.ts";
import type { KeptResponseLimits } from "./embedded-kept-responses.ts";
import { KeptResponsesFile } from "./kept-responses-file.ts";
import { RedisKeptResponses } from "./redis-kept-responses.ts";
import { APPEND_EVENTS_LUA } from "./redis-kept-responses-lua.ts";

const LIMITS: KeptResponseLimits = { maxEntries: 100, maxBytes: 50_000_000, maxAgeMs: 3_600_000 };

function response(id: string, status: ResponseStatus): ResponseObject {
  const built = buildResponse(DEFAULT_ECHO, {
    id,
    createdAtSeconds: 1,
    status,
    model: "m",
    output: [],
    usage: undefined,
  });
  return { ...built, background: true };
}

/** A background run's state as the adapter keeps it: its events so far, and its heartbeat while it runs. */
function runState(
  id: string,
  status: ResponseStatus,
  events: readonly string[],
  heartbeatAtMs?: number,
): StoredResponse {
  return {
    response: response(id, status),
    conversation: [{ role: "user", content: "x" }],
    events,
    ...(heartbeatAtMs === undefined ? {} : { heartbeatAtMs }),
  };
}

/** An event as big as a text delta's. */
function event(index: number): string {
  return `event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":${index},"delta":"${"w".repeat(200)}"}\n\n`;
}

function keptInFile(path: string, clock: ManualClock): { kept: KeptResponses; file: KeptResponsesFile } {
  const file = new KeptResponsesFile(path, LIMITS, clock);
  return {
    file,
    kept: inRows(file, (error) => {
      throw error;
    }),
  };
}

test("state file: a heartbeat writes only the events since the last one (the bytes it writes do not grow with the run)", async (t) => {
  const path = join(mkdtempSync(join(tmpdir(), "bg-rows-")), "state.db");
  const clock = new ManualClock();
  const { kept, file } = keptInFile(path, clock);
  t.after(() => file.close());
  const walBytes = (): number => statSync(`${path}-wal`).size;
  const id = "resp_bg";
  const events: string[] = [];
  let token = await kept.putIfUnchanged(runState(id, "queued", events, clock.now()), undefined);
  const writtenPerBeat: number[] = [];
  // 20 heartbeats of 100 events each: 2,000 events (~0.5 MB) by the last one.
  for (let beat = 0; beat < 20; beat++) {
    for (let index = 0; index < 100; index++) events.push(event(events.length));
    clock.advance(1_000);
    const before = walBytes();
    token = await kept.putIfUnchanged(runState(id, "in_progress", [...events], clock.now()), token);
    assert.ok(token !== undefined, `heartbeat ${beat} was written`);
    writtenPerBeat.push(walBytes() - before);
  }
  t.diagnostic(`WAL bytes per heartbeat: ${writtenPerBeat.join(", ")}`);
  const first = writtenPerBeat[0] ?? 0;
  const last = writtenPerBeat.at(-1) ?? 0;
  // Rewriting the row with every event in it made the last heartbeat write ~20 times what the first did.
  assert.ok(last <= first * 2, `the last heartbeat wrote ${last} bytes, the first ${first}`);
  const stored = await kept.get(id);
  assert.deepEqual(stored?.events, events);
  assert.equal(stored?.response.status, "in_progress");
});

test("memory: a heartbeat appends its new events to the kept list (the same list, extended), not a copy of them all", async () => {
  const clock = new ManualClock();
  const store = new ResponseStore(LIMITS, clock);
  const kept = inMemory(store);
  const id = "resp_memory";
  const events: string[] = [];
  let token = await kept.putIfUnchanged(runState(id, "queued", [], clock.now()), undefined);
  const keptList = store.get(id)?.events;
  assert.ok(keptList !== undefined);
  for (let beat = 0; beat < 20; beat++) {
    for (let index = 0; index < 100; index++) events.push(event(events.length));
    clock.advance(1_000);
    token = await kept.putIfUnchanged(runState(id, "in_progress", [...events], clock.now()), token);
    assert.ok(token !== undefined, `heartbeat ${beat} was written`);
    // Keeping each heartbeat's list (a copy of every event so far) was O(n^2) over a long run.
    assert.equal(store.get(id)?.events, keptList, `heartbeat ${beat} kept a new list`);
  }
  assert.deepEqual(keptList, events);
  // Only the new events' bytes were counted, and they add up to the entry's JSON, as `put` counts it.
  assert.equal(store.bytes, Buffer.byteLength(JSON.stringify(store.get(id))));
  // A read has the events as they were: the kept list grows in place, what was read does not.
  const read = await kept.get(id);
  events.push(event(events.length));
  token = await kept.putIfUnchanged(runState(id, "in_progress", [...events], clock.now()), token);
  assert.equal(read?.events?.length, events.length - 1);
  const ending = "event: response.completed\ndata: {}\n\n";
  assert.ok((await kept.putIfUnchanged(runState(id, "completed", [...events, ending]), token)) !== undefined);
  assert.deepEqual((await kept.get(id))?.events, [...events, ending]);
  assert.deepEqual((await kept.get(id, 2_000))?.events, [events[2_000], ending]);
  assert.equal(store.bytes, Buffer.byteLength(JSON.stringify(store.get(id))));
});

test("state file: a follower in another process reads each event once (only those after the last one it has)", async (t) => {
  const path = join(mkdtempSync(join(tmpdir(), "bg-rows-")), "state.db");
  const clock = new ManualClock(Date.now());
  // The running process, and another one on the same file that follows the run.
  const runner = keptInFile(path, clock);
  const followerFile = new KeptResponsesFile(path, LIMITS, clock);
  t.after(async () => {
    await runner.file.close();
    await followerFile.close();
  });
  let eventsRead = 0;
  const counted: KeptResponseRows = {
    put: (row) => followerFile.put(row),
    putIfUnchanged: (row, expectedJson) => followerFile.putIfUnchanged(row, expectedJson),
    appendEvents: (id, keptCount, events) => followerFile.appendEvents(id, keptCount, events),
    getEvents: async (id, from) => {
      const events = await followerFile.getEvents(id, from);
      eventsRead += events.length;
      return events;
    },
    get: (id) => followerFile.get(id),
    getByItem: (itemId) => followerFile.getByItem(itemId),
    delete: (id) => followerFile.delete(id),
  };
  const follower = inRows(counted, (error) => {
    throw error;
  });
  const id = "resp_followed";
  const events: string[] = [];
  let token = await runner.kept.putIfUnchanged(runState(id, "queued", events, Date.now()), undefined);
  const followed = new AbortController();
  const seen: string[] = [];
  const following = (async () => {
    for await (const followedEvent of followKept(id, (from) => follower.get(id, from), 0, Date.now, followed.signal)) {
      seen.push(followedEvent);
    }
  })();
  // ~4 follower rounds (one a second) while the run writes 100 events five times a second.
  for (let beat = 0; beat < 18; beat++) {
    for (let index = 0; index < 100; index++) events.push(event(events.length));
    token = await runner.kept.putIfUnchanged(runState(id, "in_progress", [...events], Date.now()), token);
    await sleep(200);
  }
  events.push(event(events.length));
  await runner.kept.putIfUnchanged(runState(id, "completed", [...events]), token);
  await following;
  assert.deepEqual(seen, events, "every event, once, in order");
  // Re-reading the whole list each round read ~2.5 times as many (and as the square of the run's length).
  assert.ok(eventsRead <= events.length, `${eventsRead} events read to follow ${events.length}`);
});

let redisPrefixes = 0;

/** The Responses adapter's view of each shared store, on a clock of the test's. */
const SHARED_STORES: Record<string, (t: TestContext, clock: ManualClock) => Promise<KeptResponses>> = {
  "state file": async (t, clock) => {
    const { kept, file } = keptInFile(join(mkdtempSync(join(tmpdir(), "bg-rows-")), "state.db"), clock);
    t.after(() => file.close());
    return kept;
  },
  redis: async (t, clock) => {
    const server = await useRedisServer(t);
    const rows = new RedisKeptResponses(server.url, `bg-rows${redisPrefixes++}:`, false, LIMITS, clock);
    await rows.connect();
    t.after(() => rows.close());
    return inRows(rows, (error) => {
      throw error;
    });
  },
};

for (const [name, open] of Object.entries(SHARED_STORES)) {
  const skip = name === "redis" && !isRedisInstalled() ? REDIS_MISSING : false;
  describe(`background rows: ${name}`, { skip }, () => {
    test("a run's write landing after its deadline (notAfterMs, by the store's clock) is refused: neither row nor events", async (t) => {
      const clock = new ManualClock(1_000_000);
      const kept = await open(t, clock);
      const id = "resp_late";
      const events = [event(0)];
      const first = await kept.putIfUnchanged(runState(id, "queued", events, clock.now()), undefined);
      assert.ok(first !== undefined);
      const beat = await kept.putIfUnchanged(
        runState(id, "in_progress", [...events, event(1)], clock.now()),
        first,
        clock.now() + 10_000,
      );
      assert.ok(beat !== undefined, "within its deadline: written");
      clock.advance(10_001);
      const late = await kept.putIfUnchanged(
        runState(id, "completed", [event(0), event(1), event(2)]),
        beat,
        clock.now() - 1,
      );
      assert.equal(late, undefined, "past its deadline: refused");
      const stored = await kept.get(id);
      assert.equal(stored?.response.status, "in_progress");
      assert.equal(stored?.events?.length, 2, "the late write's events were not appended");
    });
  });
}

test("redis: a run's write sent in time but reaching Redis past its deadline (held on the way) is refused by Redis's clock: a heartbeat's events, a final save", {
  skip: isRedisInstalled() ? false : REDIS_MISSING,
}, async (t) => {
  const server = await useRedisServer(t);
  let held: ((text: string) => boolean) | undefined;
  const proxy = await useRedisProxy(t, server.port, (text) =>
    held !== undefined && text.includes("eval") && held(text) ? sleep(600) : undefined,
  );
  const rows = new RedisKeptResponses(proxy.url, "bg-rows-held:", false, LIMITS, systemClock);
  await rows.connect();
  t.after(() => rows.close());
  const kept = inRows(rows, (error) => {
    throw error;
  });
  const id = "resp_held";
  const first = await kept.putIfUnchanged(runState(id, "queued", [], Date.now()), undefined);
  assert.ok(first !== undefined);
  const beat = await kept.putIfUnchanged(
    runState(id, "in_progress", [event(0)], Date.now()),
    first,
    Date.now() + 10_000,
  );
  assert.ok(beat !== undefined, "within its deadline: written");
  // Checked by this process just before they are sent (in time), the scripts reach Redis 600 ms later: past their
  // deadline. A heartbeat's append of its new events: refused, nothing appended (the row is not written either).
  held = (text) => callsScript(text, APPEND_EVENTS_LUA);
  const lateBeat = await kept.putIfUnchanged(
    runState(id, "in_progress", [event(0), event(1)], Date.now()),
    beat,
    Date.now() + 300,
  );
  assert.equal(lateBeat, undefined);
  held = undefined;
  assert.deepEqual((await kept.get(id))?.events, [event(0)], "the held append did not land");
  // The final save, held so too.
  held = (text) => text.includes('"status":"completed"');
  const ending = "event: response.completed\ndata: {}\n\n";
  const final = await kept.putIfUnchanged(
    runState(id, "completed", [event(0), event(1), ending]),
    beat,
    Date.now() + 300,
  );
  assert.equal(final, undefined, "landed past its deadline: refused");
  held = undefined;
  const stored = await kept.get(id);
  assert.equal(stored?.response.status, "in_progress", "the late final save did not land");
  assert.deepEqual(stored?.events, [event(0)], "nor its events");
  // In time, the same save lands.
  const again = await kept.putIfUnchanged(
    runState(id, "completed", [event(0), event(1), ending]),
    beat,
    Date.now() + 2_000,
  );
  assert.ok(again !== undefined);
  assert.equal((await kept.get(id))?.response.status, "completed");
});

const ALL_STORES: Record<string, (t: TestContext, clock: ManualClock) => Promise<KeptResponses>> = {
  ...SHARED_STORES,
  memory: async (_t, clock) => inMemory(new ResponseStore(LIMITS, clock)),
};

for (const [name, open] of Object.entries(ALL_STORES)) {
  const skip = name === "redis" && !isRedisInstalled() ? REDIS_MISSING : false;
  describe(`background rows: ${name}, a cancel landing between the last heartbeat and the final write`, {
    skip,
  }, () => {
    test("the final write is refused with its events (none appended); the cancelled state's events are kept instead", async (t) => {
      const clock = new ManualClock(1_000_000);
      const kept = await open(t, clock);
      const id = "resp_raced";
      const first = await kept.putIfUnchanged(runState(id, "queued", [], clock.now()), undefined);
      assert.ok(first !== undefined);
      const running = [event(0), event(1), event(2)];
      const beat = await kept.putIfUnchanged(runState(id, "in_progress", running, clock.now()), first);
      assert.ok(beat !== undefined);
      // Cancelled elsewhere (as background-readers.ts does: the state read, marked cancelled, compare and set).
      const read = await kept.get(id);
      assert.ok(read !== undefined);
      const cancelledAt = await kept.putIfUnchanged(
        { ...read, response: { ...read.response, status: "cancelled" }, heartbeatAtMs: clock.now() },
        keptToken(read),
      );
      assert.ok(cancelledAt !== undefined, "the cancel is written");
      // The run's final write, made from what it last wrote: refused, and its events with it.
      const completedEnding = "event: response.completed\ndata: {}\n\n";
      const final = await kept.putIfUnchanged(runState(id, "completed", [...running, event(3), completedEnding]), beat);
      assert.equal(final, undefined, "the final write is refused");
      const afterRefusal = await kept.get(id);
      assert.equal(afterRefusal?.response.status, "cancelled");
      assert.deepEqual(afterRefusal?.events, running, "no event of the refused write was kept");
      // The run's retry: the cancelled state, its events ending as a cancelled one's, against what it read.
      const cancelledEnding = "event: response.incomplete\ndata: {}\n\n";
      assert.ok(afterRefusal !== undefined);
      const retried = await kept.putIfUnchanged(
        runState(id, "cancelled", [...running, event(3), cancelledEnding]),
        keptToken(afterRefusal),
      );
      assert.ok(retried !== undefined, "the cancelled state is written");
      const stored = await kept.get(id);
      assert.equal(stored?.response.status, "cancelled");
      assert.deepEqual(stored?.events, [...running, event(3), cancelledEnding]);
    });
  });
}

test("state file: a heartbeat while another process holds the write lock keeps the event loop serving and lands once the lock is free", async (t) => {
  const path = join(mkdtempSync(join(tmpdir(), "bg-rows-")), "state.db");
  const clock = new ManualClock(Date.now());
  const { kept, file } = keptInFile(path, clock);
  const other = new DatabaseSync(path);
  t.after(async () => {
    if (other.isTransaction) other.exec("ROLLBACK");
    other.close();
    await file.close();
  });
  const id = "resp_locked";
  const first = await kept.putIfUnchanged(runState(id, "queued", [], clock.now()), undefined);
  assert.ok(first !== undefined);
  other.exec("BEGIN IMMEDIATE");
  const beat = kept.putIfUnchanged(runState(id, "in_progress", [event(0), event(1)], clock.now()), first);
  // Timers fire on time meanwhile: the write waits with timers, not inside SQLite (which would stall every request).
  const startedMs = performance.now();
  await sleep(50);
  const lateByMs = performance.now() - startedMs - 50;
  // A wait inside SQLite holds the loop for its whole busy timeout (the lock's holder is this process: it cannot let
  // go meanwhile), 2 s; half of it is the margin for a loaded machine (2 cores shared: 40 ms failed there now and
  // then, and 150 ms did under a full suite's load).
  assert.ok(lateByMs < 1_000, `a 50 ms timer fired ${lateByMs} ms late while the write waited for the lock`);
  await sleep(150);
  other.exec("COMMIT");
  const token = await beat;
  assert.ok(token !== undefined, "written once the lock was free");
  const stored = await kept.get(id);
  assert.equal(stored?.response.status, "in_progress");
  assert.deepEqual(stored?.events, [event(0), event(1)]);
});
