// Give-backs and retimes batched per provider for up to 10 ms (redis-write-batches.ts), against a real
// redis-server: under preset-style limits (an `rps` rule: leases of 16 ms) the answers come after their reserve's
// lease ended, so each request's send moves its runs (a retime) and its answer gives tokens back (a reconcile of
// fewer than estimated). Unbatched, that was two script calls a request beside the reserves; batched, one call per
// 10 ms at most. Redis must then hold exactly what the unbatched calls left, and never less than is used meanwhile.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { useRedisProxy } from "../../test/helpers/redis-proxy.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../../test/helpers/redis-server.ts";
import { fill, scriptCalls, useRedisState } from "../../test/helpers/redis-state.ts";
import { ManualClock } from "../clock.ts";
import { UTC_MIDNIGHT } from "../config/day-reset.ts";
import { type BudgetScope, isReservation, type Reservation, rulesFromLimits } from "../limits/budgets.ts";
import { budgetKeyBase } from "./redis-keys.ts";
import { RESERVE_AFTER_WRITES_LUA, WRITE_BATCH_LUA } from "./redis-lua-writes.ts";

const skip = isRedisInstalled() ? false : REDIS_MISSING;
/** 2026-01-01T12:00:00Z */
const T0 = Date.UTC(2026, 0, 1, 12);
const WAVES = 5;
const PER_WAVE = 16;
const ESTIMATE = 500;

function scopeOf(id: string, limits: Parameters<typeof rulesFromLimits>[0]): BudgetScope {
  return { id, ...rulesFromLimits(limits), dayReset: UTC_MIDNIGHT };
}

/** The bench's preset-style limits (bench/gateway.ts): a provider pool and the model's own, eight rules. */
const PRESET_STYLE = [
  scopeOf("provider:p", { rpm: 10_000_000, rpd: 1_000_000_000, tpm: 1_000_000_000 }),
  scopeOf("deployment:p/m", { rps: 1_000_000, rpm: 10_000_000, rpd: 1_000_000_000, tpm: 1_000_000_000, tpd: 1e10 }),
];

/** What Redis counts for a scope: its minute window's totals, the latest send there, and today's counter. */
async function counted(redis: Redis, prefix: string, id: string) {
  const base = budgetKeyBase(prefix, id);
  const minute = await redis.hmget(`${base}:win:60000:runs`, "r", "t");
  const latest = await redis.zrange(`${base}:win:60000`, "-1", "-1", "WITHSCORES");
  const [dayKey] = await redis.keys(`${base}:day:*`);
  const day = dayKey === undefined ? [] : await redis.hmget(dayKey, "requests", "tokens");
  return { minute: minute.map(Number), latestSendMs: Number(latest[1] ?? 0), day: day.map(Number) };
}

type Ledger = Awaited<ReturnType<typeof useRedisState>>["ledger"];

/** `count` reservations of 1 000 tokens at `atMs`, each admitted. */
async function reserveEach(ledger: Ledger, scopes: BudgetScope[], count: number, atMs: number): Promise<Reservation[]> {
  const reservations: Reservation[] = [];
  for (let index = 0; index < count; index++) {
    const result = await ledger.reserve(scopes, { tokens: 1_000 }, atMs);
    assert.ok(isReservation(result));
    reservations.push(result);
  }
  return reservations;
}

/**
 * Whether a command a proxy sees calls the write batch (or the reserve carrying one): by EVALSHA, or by
 * EVAL with the script's text (ioredis's first use of a script in a pipeline; lower-cased here).
 */
const BATCH_SHA = createHash("sha1").update(WRITE_BATCH_LUA).digest("hex");
const CARRIED_SHA = createHash("sha1").update(RESERVE_AFTER_WRITES_LUA).digest("hex");
function callsBatch(text: string): boolean {
  return text.includes(BATCH_SHA) || text.includes("apply_writes(3, 2, #argv)");
}
function callsCarriedReserve(text: string): boolean {
  return text.includes(CARRIED_SHA) || text.includes("apply_writes(3, 4,");
}

describe("give-backs and retimes batched per provider", { skip }, () => {
  test("answers after their lease ended: at most a few script calls a wave, Redis counting exactly", async (t) => {
    const server = await useRedisServer(t);
    const clock = new ManualClock(T0);
    const prefix = "batch-waves:";
    const state = await useRedisState(t, server.url, clock, prefix);
    const { ledger } = state;
    const calls = await scriptCalls(t, server.url);
    const admin = new Redis(server.url);
    t.after(() => admin.disconnect());
    const before = await calls();
    let actualTokens = 0;
    let lastSendMs = 0;
    for (let wave = 0; wave < WAVES; wave++) {
      const atMs = T0 + wave * 1_000;
      clock.set(atMs);
      // The first asks Redis (and takes a lease of 16 ms: the rps rule); the others wait for it and spend from it.
      const reserved = await Promise.all(
        Array.from({ length: PER_WAVE }, () => ledger.reserve(PRESET_STYLE, { tokens: ESTIMATE }, atMs)),
      );
      const reservations = reserved.filter((result): result is Reservation => isReservation(result));
      assert.equal(reservations.length, PER_WAVE);
      // A loaded gateway: sent 100 ms later (each in its own millisecond), answered 300 ms later, all after the
      // lease's end. Each send moves the runs it was charged to, each answer gives tokens back.
      clock.set(atMs + 100);
      for (const [index, reservation] of reservations.entries()) {
        lastSendMs = atMs + 100 + index;
        ledger.markSent(reservation, lastSendMs);
      }
      clock.set(atMs + 400);
      for (const [index, reservation] of reservations.entries()) {
        const tokens = 100 + index;
        actualTokens += tokens;
        ledger.reconcile(reservation, tokens, atMs + 400);
      }
      // The next turn (what waits goes with the next wave's reserve, or 10 ms later).
      await new Promise((resolve) => setImmediate(resolve));
    }
    // Every lease given back, every write answered.
    await ledger.settleBeforeExit();
    const used = (await calls()) - before;
    const requests = WAVES * PER_WAVE;
    // Unbatched (before 2026-12-06): 170 for 80 requests (a reserve, 16 retimes, 16 reconciles and a lease's
    // give-back per wave). Batched: a reserve, one batch of the wave's retimes and reconciles, the lease's give-back.
    assert.ok(used <= WAVES * 3, `${used} script calls for ${requests} requests`);
    for (const scope of PRESET_STYLE) {
      assert.deepEqual(
        await counted(admin, prefix, scope.id),
        { minute: [requests, actualTokens], latestSendMs: lastSendMs, day: [requests, actualTokens] },
        `${scope.id}: every request once, its real tokens, counted from its send`,
      );
    }
  });

  test("give-backs pending: another process is refused as if they had not come; once written, exactly once", async (t) => {
    const server = await useRedisServer(t);
    const clock = new ManualClock(T0);
    const prefix = "batch-pending:";
    // The holder's batches reach Redis 300 ms late (a slow link): the other process's reserve surely runs first.
    const proxy = await useRedisProxy(t, server.port, (text) => (callsBatch(text) ? sleep(300) : undefined));
    const holder = (await useRedisState(t, proxy.url, clock, prefix)).ledger;
    const other = (await useRedisState(t, server.url, clock, prefix)).ledger;
    // 10 000 tokens a minute: too few for a lease, every reserve and reconcile goes to Redis.
    const scopes = [scopeOf("provider:q", { tpm: 10_000 }), scopeOf("deployment:q/m", { rpm: 1_000 })];
    const reservations = await reserveEach(holder, scopes, 10, T0);
    clock.set(T0 + 10);
    for (const reservation of reservations) holder.reconcile(reservation, 100, T0 + 10);
    // The give-backs are pending: Redis still counts the estimates, and refuses.
    const refused = await other.reserve(scopes, { tokens: 1_000 }, T0 + 10);
    assert.ok(!isReservation(refused), "the whole minute is still counted");
    await holder.settleBeforeExit();
    // 9 000 given back once: 9 more of 1 000 fit, not 10 (a give-back applied twice frees what is used).
    assert.equal((await fill(other, scopes, 1_000, T0 + 20)).admitted, 9);
  });

  test("Redis hung while a batch is sent: it times out, is sent again once Redis answers, and counts once", async (t) => {
    const server = await useRedisServer(t);
    const clock = new ManualClock(T0);
    const prefix = "batch-hung:";
    const holder = (await useRedisState(t, server.url, clock, prefix)).ledger;
    const other = (await useRedisState(t, server.url, clock, prefix)).ledger;
    const scopes = [scopeOf("provider:h", { tpm: 10_000 })];
    const reservations = await reserveEach(holder, scopes, 10, T0);
    server.pause();
    t.after(() => server.resume());
    for (const reservation of reservations) holder.reconcile(reservation, 100, T0 + 10);
    // Past the 2 s command timeout: the batch failed on the gateway, and waits in Redis's socket all the same.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    server.resume();
    await holder.settleBeforeExit();
    // Run late and sent again: the marker makes the second send change nothing (twice would free 18 000).
    assert.equal((await fill(other, scopes, 1_000, T0 + 20)).admitted, 9);
  });

  test("a reserve carrying the batch is lost: the request stays local, the batch is sent again alone, once", async (t) => {
    const server = await useRedisServer(t);
    const clock = new ManualClock(T0);
    const prefix = "batch-carried:";
    // The reserve that carries the batch never reaches Redis (held until its connection is dropped).
    const proxy = await useRedisProxy(t, server.port, (text) =>
      callsCarriedReserve(text) ? new Promise<void>(() => {}) : undefined,
    );
    const state = await useRedisState(t, proxy.url, clock, prefix);
    const holder = state.ledger;
    const other = (await useRedisState(t, server.url, clock, prefix)).ledger;
    const scopes = [scopeOf("provider:c", { tpm: 10_000 })];
    const reservations = await reserveEach(holder, scopes, 5, T0);
    for (const reservation of reservations) holder.reconcile(reservation, 100, T0 + 10);
    // In the same turn: the give-backs ride with this reserve, which times out (2 s) and falls back to the local book.
    const late = await holder.reserve(scopes, { tokens: 1_000 }, T0 + 10);
    assert.ok(isReservation(late));
    assert.equal(holder.unsyncedCount, 1);
    proxy.dropConnections();
    for (let waited = 0; state.status().isDegraded && waited < 5_000; waited += 50) await sleep(50);
    await holder.replayUnsynced();
    await holder.settleBeforeExit();
    // The give-backs sent again alone (without: 5 x 1 000 still counted, 4 fit) and the request replayed: 1 500 used.
    assert.equal((await fill(other, scopes, 1_000, T0 + 20)).admitted, 8);
  });

  test("exit while a reserve carrying the batch is unanswered: the exit waits, the batch is sent again, once", async (t) => {
    const server = await useRedisServer(t);
    const clock = new ManualClock(T0);
    const prefix = "batch-carried-exit:";
    // The reserve that carries the batch never reaches Redis (held until its connection is dropped, 500 ms on).
    const proxy = await useRedisProxy(t, server.port, (text) =>
      callsCarriedReserve(text) ? new Promise<void>(() => {}) : undefined,
    );
    const holder = (await useRedisState(t, proxy.url, clock, prefix)).ledger;
    const other = (await useRedisState(t, server.url, clock, prefix)).ledger;
    const scopes = [scopeOf("provider:x", { tpm: 10_000 })];
    const reservations = await reserveEach(holder, scopes, 5, T0);
    for (const reservation of reservations) holder.reconcile(reservation, 100, T0 + 10);
    // The give-backs ride with this reserve; the process stops before it is answered.
    const late = holder.reserve(scopes, { tokens: 1_000 }, T0 + 10);
    const exit = holder.settleBeforeExit();
    setTimeout(() => proxy.dropConnections(), 500);
    await exit;
    // Before 2026-12-06 the exit settled at once (5 x 1 000 still counted: 5 fit). Now the give-backs are in Redis
    // once (4 500 freed, twice would be 9 000); the reserve that was lost may be replayed on reconnect (1 000 more).
    const admitted = (await fill(other, scopes, 1_000, T0 + 20)).admitted;
    assert.ok(admitted === 9 || admitted === 8, `${admitted} admitted`);
    assert.ok(isReservation(await late));
  });

  for (const replaced of ["an admin reset", "Redis flushed"] as const) {
    test(`a batch of give-backs sent again after ${replaced}: left out, the new counters keep newer charges`, async (t) => {
      const server = await useRedisServer(t);
      const clock = new ManualClock(T0);
      const prefix = "batch-resend-replaced:";
      // The holder's first batch never reaches Redis (held until its connection is dropped); its resends go through.
      let isHolding = true;
      const proxy = await useRedisProxy(t, server.port, (text) => {
        if (!isHolding || !callsBatch(text)) return undefined;
        isHolding = false;
        return new Promise<void>(() => {});
      });
      const state = await useRedisState(t, proxy.url, clock, prefix);
      const holder = state.ledger;
      const other = (await useRedisState(t, server.url, clock, prefix)).ledger;
      const admin = new Redis(server.url);
      t.after(() => admin.disconnect());
      // A day's counter: a give-back lowers it whoever charged it (a sliding window's runs are the requests' own).
      const scopes = [scopeOf("provider:w", { tpd: 10_000 })];
      const reservations = await reserveEach(holder, scopes, 10, T0);
      for (const reservation of reservations) holder.reconcile(reservation, 100, T0 + 10);
      // The give-backs' batch goes (held) 10 ms later; meanwhile the counters are replaced and filled by newer charges.
      for (let waited = 0; isHolding && waited < 5_000; waited += 10) await sleep(10);
      if (replaced === "an admin reset") await other.reset();
      else await admin.flushall();
      assert.equal((await fill(other, scopes, 1_000, T0 + 20)).admitted, 10);
      proxy.dropConnections();
      for (let waited = 0; state.status().isDegraded && waited < 5_000; waited += 50) await sleep(50);
      await holder.settleBeforeExit();
      // Sent again (before 2026-12-06), the 9 000 given back came out of the newer charges: 9 more fit.
      assert.equal((await fill(other, scopes, 1_000, T0 + 30)).admitted, 0, "the day is full with newer charges");
    });
  }

  test("a batch that ran, its reply lost, then an admin reset not heard yet: the resend finds its marker, changes nothing", async (t) => {
    const server = await useRedisServer(t);
    const clock = new ManualClock(T0);
    const prefix = "batch-reset-marker:";
    // The first batch runs in Redis; its reply is lost with the connection, and Redis stays unreachable for 1 s.
    const proxy = await useRedisProxy(t, server.port, () => undefined, {
      loseReplyTo: callsBatch,
      downAfterLostReplyMs: 1_000,
    });
    const state = await useRedisState(t, proxy.url, clock, prefix);
    const holder = state.ledger;
    const other = (await useRedisState(t, server.url, clock, prefix)).ledger;
    const admin = new Redis(server.url);
    t.after(() => admin.disconnect());
    const scopes = [scopeOf("provider:r", { tpd: 10_000 })];
    const reservations = await reserveEach(holder, scopes, 10, T0);
    for (const reservation of reservations) holder.reconcile(reservation, 100, T0 + 10);
    for (let waited = 0; proxy.lostReplies === 0 && waited < 5_000; waited += 10) await sleep(10);
    // An admin reset's deletes, before its message reaches the holder (the message goes after them; a resend can
    // land in between): deleted as the reset deletes them, the budget keys and nothing else.
    const budgetKeys = await admin.keys(`${prefix}budget:*`);
    if (budgetKeys.length > 0) await admin.del(...budgetKeys);
    assert.equal((await fill(other, scopes, 1_000, T0 + 20)).admitted, 10);
    await holder.settleBeforeExit();
    // Before 2026-12-07 the reset deleted the batch's marker (a budget key) too: the resend ran the batch again and its
    // 9 000 given back came out of the newer charges (9 more fit).
    assert.equal((await fill(other, scopes, 1_000, T0 + 30)).admitted, 0, "the day is full with newer charges");
  });

  test("more tokens than estimated, after the lease ended: charged at once, before this process's next reserve", async (t) => {
    const server = await useRedisServer(t);
    const clock = new ManualClock(T0);
    const prefix = "batch-more:";
    const holder = (await useRedisState(t, server.url, clock, prefix)).ledger;
    const other = (await useRedisState(t, server.url, clock, prefix)).ledger;
    const scopes = [scopeOf("provider:r", { tpm: 10_000 })];
    const first = await holder.reserve(scopes, { tokens: 1_000 }, T0);
    assert.ok(isReservation(first));
    holder.reconcile(first, 9_500, T0 + 5);
    // Sent on the same connection after the charge: Redis runs it after it, and refuses.
    const second = await holder.reserve(scopes, { tokens: 1_000 }, T0 + 6);
    assert.ok(!isReservation(second), "the 8 500 more were counted first");
    assert.ok(!isReservation(await other.reserve(scopes, { tokens: 1_000 }, T0 + 7)));
    assert.ok(isReservation(await other.reserve(scopes, { tokens: 500 }, T0 + 7)));
  });
});

describe("a retime that cannot wait", { skip }, () => {
  test("sent near a window after its reserve: the retime goes at once, another process's reserve counts it", async (t) => {
    const server = await useRedisServer(t);
    const clock = new ManualClock(T0);
    const prefix = "batch-retime-late:";
    const holder = (await useRedisState(t, server.url, clock, prefix)).ledger;
    const other = (await useRedisState(t, server.url, clock, prefix)).ledger;
    const scopes = [scopeOf("provider:s", { rps: 1 })];
    const first = await holder.reserve(scopes, { tokens: 10 }, T0);
    assert.ok(isReservation(first));
    // Handed to a connection 995 ms after its reserve (a queue for a connection): it counts until T0 + 1 995.
    clock.set(T0 + 995);
    holder.markSent(first, T0 + 995);
    // A reserve on another provider, on the holder's connection: Redis runs what the holder sent before it first.
    assert.ok(isReservation(await holder.reserve([scopeOf("provider:u", { rps: 1 })], { tokens: 10 }, T0 + 995)));
    // 6 ms later, another process: its reserve drops the run charged at T0 unless the retime moved it to T0 + 995.
    clock.set(T0 + 1_001);
    const second = await other.reserve(scopes, { tokens: 10 }, T0 + 1_001);
    assert.ok(!isReservation(second), "one request a second: the holder's, sent at T0 + 995, still counts");
  });

  test("an admin reset heard while a retime waits: the retime still goes, the run counts from its send", async (t) => {
    const server = await useRedisServer(t);
    const clock = new ManualClock(T0);
    const prefix = "batch-retime-reset:";
    const holder = (await useRedisState(t, server.url, clock, prefix)).ledger;
    const other = (await useRedisState(t, server.url, clock, prefix)).ledger;
    const scopes = [scopeOf("provider:v", { rps: 1 })];
    // Another process resets the shared budgets; the holder's request is charged after that, in the new counters.
    await other.reset();
    const first = await holder.reserve(scopes, { tokens: 10 }, T0);
    assert.ok(isReservation(first));
    // Sent 500 ms after its reserve: its run should count until T0 + 1 500; the retime waits up to 10 ms.
    clock.set(T0 + 500);
    holder.markSent(first, T0 + 500);
    // The reset's message reaches the holder only now (what CooldownSharing's onRemoteReset calls): the run it would
    // move was charged after the reset and still exists. Before 2026-12-06 the waiting retime was dropped with the
    // give-backs, and the run left its window at T0 + 1 000.
    holder.resetLocal();
    await holder.settleBeforeExit();
    clock.set(T0 + 1_001);
    const second = await other.reserve(scopes, { tokens: 10 }, T0 + 1_001);
    assert.ok(!isReservation(second), "one request a second: the holder's, sent at T0 + 500, still counts");
  });

  test("spent from a lease and sent nearly a window after the lease's end: its runs are moved at once", async (t) => {
    const server = await useRedisServer(t);
    const clock = new ManualClock(T0);
    const prefix = "batch-retime-lease:";
    const holder = (await useRedisState(t, server.url, clock, prefix)).ledger;
    const admin = new Redis(server.url);
    // Preset-style rules: the reserve takes a lease of 16 ms, its runs counting until its end plus a window.
    const reserved = await holder.reserve(PRESET_STYLE, { tokens: ESTIMATE }, T0);
    assert.ok(isReservation(reserved));
    assert.equal(holder.leaseCount, 1);
    const sentAtMs = T0 + 16 + 995;
    clock.set(sentAtMs);
    holder.markSent(reserved, sentAtMs);
    assert.ok(isReservation(await holder.reserve([scopeOf("provider:u", { rps: 1 })], { tokens: 10 }, sentAtMs)));
    const [, score] = await admin.zrange(
      `${budgetKeyBase(prefix, "deployment:p/m")}:win:1000`,
      "-1",
      "-1",
      "WITHSCORES",
    );
    admin.disconnect();
    assert.equal(Number(score), sentAtMs, "the second's run counts from the send before it could leave its window");
  });
});
