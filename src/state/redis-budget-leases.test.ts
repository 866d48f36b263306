// Budget leases in the Redis ledger, against a real redis-server: with limits large next to a request, many
// reserves (and their reconciles) cost one script call; two processes holding leases together never admit more
// than the limit; what a lease did not use is given back to the fleet; a sliding window counts what was spent
// late in a lease for a full window after the lease's end; free-tier limits take no lease at all.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../../test/helpers/redis-server.ts";
import { fill, scriptCalls, useRedisState } from "../../test/helpers/redis-state.ts";
import { ManualClock } from "../clock.ts";
import { UTC_MIDNIGHT } from "../config/day-reset.ts";
import { type BudgetScope, isReservation, type Reservation, rulesFromLimits } from "../limits/budgets.ts";
import { budgetKeyBase, learnedKey } from "./redis-keys.ts";
import { MAX_LEASE_MS } from "./redis-lease-terms.ts";

const skip = isRedisInstalled() ? false : REDIS_MISSING;
/** 2026-01-01T12:00:00Z */
const T0 = Date.UTC(2026, 0, 1, 12);

async function ledgerOf(t: TestContext, url: string, clock: ManualClock, prefix: string) {
  return (await useRedisState(t, url, clock, prefix)).ledger;
}

function scopeOf(id: string, limits: Parameters<typeof rulesFromLimits>[0]): BudgetScope {
  return { id, ...rulesFromLimits(limits), dayReset: UTC_MIDNIGHT };
}

/** Waits (bounded) until Redis has run `count` script calls (writes are sent without waiting for their answer)... */
async function waitForCalls(calls: () => Promise<number>, count: number): Promise<void> {
  for (let index = 0; index < 100 && (await calls()) < count; index++) await sleep(10);
  // and no more than that: a later one would have arrived by now.
  await sleep(50);
  assert.equal(await calls(), count);
}

/**
 * Waits (bounded) until Redis holds the report a `learn` sent (without waiting for its answer) of `remaining` requests
 * left this minute. The reserves after it would usually run after it anyway (the same connection), not after an
 * EVALSHA that missed the script cache and was sent again.
 */
async function reportStored(t: TestContext, url: string, prefix: string, scopeId: string, remaining: number) {
  const admin = new Redis(url, { lazyConnect: true });
  t.after(() => admin.disconnect());
  await admin.connect();
  const deadline = Date.now() + 5_000;
  while (!(await admin.hget(learnedKey(prefix, scopeId), "requests:minute"))?.startsWith(`${remaining},`)) {
    assert.ok(Date.now() < deadline, `the report of ${remaining} left reached Redis`);
    await sleep(10);
  }
}

describe("budget leases in the Redis ledger", { skip }, () => {
  test("high limits: 500 reserves and their reconciles cost one script call, all but the first synchronous", async (t) => {
    const server = await useRedisServer(t);
    const clock = new ManualClock(T0);
    const ledger = await ledgerOf(t, server.url, clock, "lease-one:");
    const calls = await scriptCalls(t, server.url);
    // The bench's high-limits row: the limits on the model, none on the provider's pool.
    const scopes = [scopeOf("provider:p", {}), scopeOf("deployment:p/m", { rpm: 100_000_000, tpm: 1_000_000_000 })];
    const before = await calls();
    const first = ledger.reserve(scopes, { tokens: 300 }, clock.now());
    assert.ok(first instanceof Promise, "the first reserve goes to Redis and takes the lease");
    const reservations: Reservation[] = [];
    const firstReservation = await first;
    assert.ok(isReservation(firstReservation));
    reservations.push(firstReservation);
    for (let index = 1; index < 500; index++) {
      clock.advance(1);
      const result = ledger.reserve(scopes, { tokens: 300 }, clock.now());
      assert.ok(!(result instanceof Promise), `reserve ${index} was spent from the lease`);
      assert.ok(isReservation(result));
      reservations.push(result);
    }
    for (const reservation of reservations) ledger.reconcile(reservation, 120, clock.now());
    assert.equal((await calls()) - before, 1, "one reserve script call for 500 reserves and reconciles");
    assert.equal(ledger.leaseCount, 1);
    // The local mirror counted every one of them (what /stats and route planning read).
    const usage = ledger.usage(scopes[1] as BudgetScope, clock.now());
    assert.deepEqual(
      usage.map((window) => [window.unit, window.used]),
      [
        ["requests", 500],
        ["tokens", 500 * 120],
      ],
    );
    // An admin reset forgets the lease with the counters it was charged to: the next reserve asks Redis again.
    await ledger.reset();
    assert.equal(ledger.leaseCount, 0);
    assert.ok(ledger.reserve(scopes, { tokens: 300 }, clock.now()) instanceof Promise);
  });

  test("a per-second rule under load: once replies come late, leases live long enough to be spent", async (t) => {
    const server = await useRedisServer(t);
    const clock = new ManualClock(T0);
    const ledger = await ledgerOf(t, server.url, clock, "lease-slow:");
    // The bench's preset-style model limits: an rps rule caps a lease at 16 ms.
    const scopes = [scopeOf("deployment:p/m", { rps: 1_000_000, rpm: 10_000_000, tpm: 1_000_000_000 })];
    // A loaded process: each reply is handled 40 ms after its reserve was sent (the event loop was busy).
    const lateReserve = async () => {
      const pending = ledger.reserve(scopes, { tokens: 20 }, clock.now());
      assert.ok(pending instanceof Promise);
      clock.advance(40);
      assert.ok(isReservation(await pending));
    };
    // The first lease ended (T0 + 16 ms) before its reply was handled: nothing could be spent from it.
    await lateReserve();
    assert.equal(ledger.leaseCount, 0);
    // The next one asks for a lease that lives four times the lag it saw (at most a tenth of the window).
    await lateReserve();
    assert.equal(ledger.leaseCount, 1);
    for (let index = 0; index < 20; index++) {
      clock.advance(1);
      const result = ledger.reserve(scopes, { tokens: 20 }, clock.now());
      assert.ok(!(result instanceof Promise), `reserve ${index} was spent from the lease`);
    }
    // It still never outlives a tenth of the window: 100 ms after it was asked for, it has ended.
    clock.set(T0 + 40 + 100);
    assert.ok(ledger.reserve(scopes, { tokens: 20 }, clock.now()) instanceof Promise);
  });

  test("Redis down: reserves go to the local book, not the lease; back up, the lease is dropped", async (t) => {
    const server = await useRedisServer(t);
    const clock = new ManualClock(T0);
    const ledger = await ledgerOf(t, server.url, clock, "lease-outage:");
    const scopes = [scopeOf("provider:p", { rpm: 100_000, tpm: 10_000_000 })];
    assert.ok(isReservation(await ledger.reserve(scopes, { tokens: 10 }, T0)));
    assert.equal(ledger.leaseCount, 1);
    await server.kill();
    const deadline = Date.now() + 3_000;
    while (ledger.reserve(scopes, { tokens: 10 }, T0 + 1) instanceof Promise || ledger.unsyncedCount === 0) {
      assert.ok(Date.now() < deadline, "the ledger noticed the outage");
      await sleep(20);
    }
    // Served by the local book and kept for the replay, as without leases (the lease, still live, is not spent).
    const unsynced = ledger.unsyncedCount;
    for (let index = 0; index < 3; index++) {
      const result = ledger.reserve(scopes, { tokens: 10 }, T0 + 2);
      assert.ok(!(result instanceof Promise) && isReservation(result));
    }
    assert.equal(ledger.unsyncedCount, unsynced + 3);
    await server.restart();
    while (ledger.leaseCount > 0 || ledger.unsyncedCount > 0) {
      assert.ok(Date.now() < deadline + 5_000, "Redis back: the lease dropped, the outage's reserves replayed");
      await sleep(20);
    }
  });

  test("reserves of several upstream calls spend that many from a lease; its end gives back only the unused", async (t) => {
    const server = await useRedisServer(t);
    const clock = new ManualClock(T0);
    const ledger = await ledgerOf(t, server.url, clock, "lease-calls:");
    const scopes = [scopeOf("provider:p", { rpm: 100_000, tpm: 100_000_000 })];
    const admin = new Redis(server.url, { lazyConnect: true });
    t.after(() => admin.disconnect());
    await admin.connect();
    const minute = `${budgetKeyBase("lease-calls:", "provider:p")}:win:60000:runs`;
    const counted = async (): Promise<number> => Number(await admin.hget(minute, "r"));
    const cost = { tokens: 10, requests: 20 };
    assert.ok(isReservation(await ledger.reserve(scopes, cost, T0)));
    assert.equal(ledger.leaseCount, 1, "the first reserve took a lease");
    // 100 000 / 64 = 1 562 requests leased beside the first reserve's own 20.
    const leased = (await counted()) - 20;
    assert.ok(leased >= 1_000, `the lease's units are counted in Redis (${leased})`);
    let spent = 0;
    for (; spent < 10; spent++) {
      clock.advance(1);
      const result = ledger.reserve(scopes, cost, clock.now());
      assert.ok(!(result instanceof Promise), `reserve ${spent} was spent from the lease`);
      assert.ok(isReservation(result));
    }
    await ledger.returnLeases();
    // Each spend took 20 of the lease: 1 + 10 reserves of 20 calls stay counted, nothing else.
    assert.equal(await counted(), 11 * 20);
    // A lease with fewer requests left than a reserve's calls is not spent from: Redis decides.
    const few = [scopeOf("provider:q", { rpm: 300 })];
    assert.ok(isReservation(await ledger.reserve(few, { tokens: 1 }, clock.now())));
    assert.equal(ledger.leaseCount, 1, "rpm 300 leases 4 requests");
    const many = ledger.reserve(few, { tokens: 1, requests: 5 }, clock.now());
    assert.ok(many instanceof Promise, "five calls do not fit a lease of four");
    assert.ok(isReservation(await many));
  });

  test("a blip (connections dropped, Redis kept its data): the lease's sliding-window units are given back", async (t) => {
    const server = await useRedisServer(t);
    const clock = new ManualClock(T0);
    const ledger = await ledgerOf(t, server.url, clock, "lease-blip:");
    const scopes = [scopeOf("provider:p", { rpm: 100_000 })];
    assert.ok(isReservation(await ledger.reserve(scopes, { tokens: 10 }, T0)));
    assert.ok(isReservation(ledger.reserve(scopes, { tokens: 10 }, T0) as Reservation));
    assert.equal(ledger.leaseCount, 1);
    const admin = new Redis(server.url, { lazyConnect: true });
    t.after(() => admin.disconnect());
    await admin.connect();
    const minuteRuns = `${budgetKeyBase("lease-blip:", "provider:p")}:win:60000:runs`;
    const counted = async (): Promise<number> => Number(await admin.hget(minuteRuns, "r"));
    assert.ok((await counted()) > 2, "the lease's units are counted in Redis while it lives");
    // Every other client's connection is closed: the ledger sees Redis go and come back, with its data.
    await admin.call("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes");
    const deadline = Date.now() + 5_000;
    while (ledger.leaseCount > 0 || (await counted()) !== 2) {
      assert.ok(Date.now() < deadline, `the lease given back after the blip (Redis counts ${await counted()})`);
      await sleep(20);
    }
  });

  test("two processes with leases: never more than rpm 1000 between them; given back, the rest is used", async (t) => {
    const server = await useRedisServer(t);
    const clock = new ManualClock(T0);
    const first = await ledgerOf(t, server.url, clock, "lease-two:");
    const second = await ledgerOf(t, server.url, clock, "lease-two:");
    const third = await ledgerOf(t, server.url, clock, "lease-two:");
    const scopes = [scopeOf("provider:p", { rpm: 1_000, tpm: 10_000_000 }), scopeOf("deployment:p/m", {})];
    let admitted = 0;
    let refusalsInARow = 0;
    let seed = 7;
    const next = (): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed / 2_147_483_648;
    };
    // Bursts of concurrent reserves from either process, time moving on by up to 20 ms, all inside one minute.
    for (let round = 0; round < 2_000 && refusalsInARow < 6; round++) {
      clock.advance(Math.floor(next() * 20));
      const ledger = next() < 0.5 ? first : second;
      const burst = 1 + Math.floor(next() * 8);
      const results = await Promise.all(
        Array.from({ length: burst }, () => ledger.reserve(scopes, { tokens: 10 }, clock.now())),
      );
      const allowed = results.filter((result) => isReservation(result)).length;
      admitted += allowed;
      refusalsInARow = allowed === 0 ? refusalsInARow + 1 : 0;
      assert.ok(admitted <= 1_000, `round ${round}: ${admitted} admitted`);
    }
    assert.ok(clock.now() < T0 + 60_000, "the run stayed inside one window");
    assert.ok(admitted >= 1_000 - 2 * 15, `leases held back at most one lease each: ${admitted} admitted`);
    await first.returnLeases();
    await second.returnLeases();
    const rest = await fill(third, scopes, 10, clock.now());
    assert.equal(admitted + rest.admitted, 1_000, "given back, every unit of the limit was used, and no more");
    assert.match(rest.denied.reason, /over its rpm budget \(1000\/1000\)/);
  });

  test("a lease's unused requests are given back: another process can then use them", async (t) => {
    const server = await useRedisServer(t);
    const clock = new ManualClock(T0);
    const holder = await ledgerOf(t, server.url, clock, "lease-back:");
    const other = await ledgerOf(t, server.url, clock, "lease-back:");
    const scopes = [scopeOf("provider:p", { rpm: 1_000 })];
    // 1000 / 64 -> a lease of 15 requests beside the request itself.
    assert.ok(isReservation(await holder.reserve(scopes, { tokens: 0 }, T0)));
    assert.equal(holder.leaseCount, 1);
    const before = await fill(other, scopes, 0, T0 + 10);
    assert.equal(before.admitted, 1_000 - 16, "the holder's lease is counted in Redis");
    assert.match(before.denied.reason, /over its rpm budget \(1000\/1000\)/);
    await holder.returnLeases();
    assert.equal(holder.leaseCount, 0);
    const after = await fill(other, scopes, 0, T0 + 20);
    assert.equal(after.admitted, 15, "the 15 the holder did not use");
  });

  test("reconciles move the lease's tokens; given back, Redis holds exactly the real token counts", async (t) => {
    const server = await useRedisServer(t);
    const clock = new ManualClock(T0);
    const holder = await ledgerOf(t, server.url, clock, "lease-tokens:");
    const other = await ledgerOf(t, server.url, clock, "lease-tokens:");
    const calls = await scriptCalls(t, server.url);
    const scopes = [scopeOf("provider:p", { rpm: 1_000_000, tpm: 64_000 })];
    const before = await calls();
    const reservations: Reservation[] = [];
    for (let index = 0; index < 5; index++) {
      const result = await holder.reserve(scopes, { tokens: 100 }, T0 + index);
      assert.ok(isReservation(result));
      reservations.push(result);
    }
    // Estimated 100 each; the answers used 30 (and one used 250: more than estimated, still within the lease).
    for (const [index, reservation] of reservations.entries()) {
      holder.reconcile(reservation, index === 4 ? 250 : 30, T0 + 10);
    }
    assert.equal((await calls()) - before, 1, "the reconciles moved the lease, not Redis");
    await holder.returnLeases();
    const used = 4 * 30 + 250;
    assert.ok(isReservation(await other.reserve(scopes, { tokens: 64_000 - used }, T0 + 20)), "the rest fits");
    const full = await other.reserve(scopes, { tokens: 1 }, T0 + 20);
    assert.ok(!isReservation(full));
    assert.equal(full.reason, "over its tpm budget (64000/64000 tokens, needs 1)");
  });

  test("more tokens than estimated, reconciled after the lease ended: paid from the next lease, counted exactly", async (t) => {
    const server = await useRedisServer(t);
    const clock = new ManualClock(T0);
    const holder = await ledgerOf(t, server.url, clock, "lease-next:");
    const other = await ledgerOf(t, server.url, clock, "lease-next:");
    const calls = await scriptCalls(t, server.url);
    // 640,000 / 64: leases of 10,000 tokens, living 1 s.
    const scopes = [scopeOf("provider:p", { rpm: 1_000_000, tpm: 640_000 })];
    const first = await holder.reserve(scopes, { tokens: 100 }, T0);
    assert.ok(isReservation(first));
    // Its answer takes longer than the lease lives; by then the next request took a new lease.
    clock.set(T0 + 1_001);
    const second = await holder.reserve(scopes, { tokens: 100 }, clock.now());
    assert.ok(isReservation(second));
    assert.equal(holder.leaseCount, 1);
    const before = await calls();
    holder.reconcile(first, 250, clock.now());
    await sleep(100); // a reconcile sent to Redis would have run by now
    assert.equal((await calls()) - before, 0, "the 150 more were paid from the live lease, without a round trip");
    // Fewer than estimated after its lease ended still goes to Redis: a newer lease cannot take back units an
    // older group holds (they stop counting sooner than the newer ones).
    const third = holder.reserve(scopes, { tokens: 100 }, clock.now());
    assert.ok(!(third instanceof Promise) && isReservation(third), "spent from the live lease");
    clock.set(T0 + 2_002);
    const fourth = await holder.reserve(scopes, { tokens: 100 }, clock.now());
    assert.ok(isReservation(fourth));
    const beforeLess = await calls();
    holder.reconcile(third, 40, clock.now());
    holder.reconcile(fourth, 40, clock.now());
    // Sent without waiting for it (pipelined): wait until Redis has run it, then a little more for any other.
    for (let waited = 0; (await calls()) - beforeLess < 1 && waited < 3_000; waited += 20) await sleep(20);
    await sleep(100);
    assert.equal((await calls()) - beforeLess, 1, "one reconcile for the reservation of the ended lease");
    await holder.returnLeases();
    const used = 250 + 100 + 40 + 40;
    assert.ok(isReservation(await other.reserve(scopes, { tokens: 640_000 - used }, clock.now())), "the rest fits");
    const full = await other.reserve(scopes, { tokens: 1 }, clock.now());
    assert.ok(!isReservation(full));
    assert.equal(full.reason, "over its tpm budget (640000/640000 tokens, needs 1)");
  });

  test("sliding window: units spent at a lease's end still count a full window after it", async (t) => {
    const server = await useRedisServer(t);
    const clock = new ManualClock(T0);
    const holder = await ledgerOf(t, server.url, clock, "lease-sliding:");
    const other = await ledgerOf(t, server.url, clock, "lease-sliding:");
    const scopes = [scopeOf("provider:p", { rpm: 640 })];
    // 640 / 64 -> a lease of 10 beside the request, for 1 s (a sixtieth of the minute).
    assert.ok(isReservation(await holder.reserve(scopes, { tokens: 0 }, T0)));
    clock.set(T0 + 999);
    for (let index = 0; index < 10; index++) {
      const result = holder.reserve(scopes, { tokens: 0 }, T0 + 999);
      assert.ok(!(result instanceof Promise) && isReservation(result), `spent ${index + 1} from the lease`);
    }
    // The provider counts the 10 sent at T0 + 999 until T0 + 60 999: at T0 + 60 998 all 11 still count.
    clock.set(T0 + 60_998);
    const late = await fill(other, scopes, 0, T0 + 60_998);
    assert.equal(late.admitted, 640 - 11);
    assert.equal(late.denied.retryAtMs, T0 + 1_000 + 60_000, "room comes back a window after the lease's end");
    clock.set(T0 + 61_000);
    const after = await fill(other, scopes, 0, T0 + 61_000);
    assert.equal(after.admitted, 11, "then the lease's 11 have left the window");
  });

  test("units spent from a lease but sent after its end count a full window after the send, one move per ms", async (t) => {
    const server = await useRedisServer(t);
    const clock = new ManualClock(T0);
    const holder = await ledgerOf(t, server.url, clock, "lease-retime:");
    const other = await ledgerOf(t, server.url, clock, "lease-retime:");
    const calls = await scriptCalls(t, server.url);
    const scopes = [scopeOf("provider:p", { rpm: 640 })];
    assert.ok(isReservation(await holder.reserve(scopes, { tokens: 0 }, T0)));
    const spent: Reservation[] = [];
    for (let index = 0; index < 10; index++) {
      const result = holder.reserve(scopes, { tokens: 0 }, T0 + 999);
      assert.ok(!(result instanceof Promise) && isReservation(result));
      spent.push(result);
    }
    const before = await calls();
    // Their connections opened late: sent 300 ms after the lease's end (T0 + 1 000), the last a millisecond later.
    for (const reservation of spent.slice(0, 9)) holder.markSent(reservation, T0 + 1_300);
    holder.markSent(spent[9] as Reservation, T0 + 1_301);
    // A send within the lease's life moves nothing.
    holder.markSent(spent[0] as Reservation, T0 + 1_000);
    // Both moves in one batch (redis-write-batches.ts): one script call.
    await waitForCalls(calls, before + 1);
    clock.set(T0 + 61_000);
    const late = await fill(other, scopes, 0, T0 + 61_000);
    assert.equal(late.admitted, 640 - 11, "the lease's 11 count until a window after the last send");
    assert.equal(late.denied.retryAtMs, T0 + 1_301 + 60_000);
  });

  test("provider-reported windows bound leases; a new report, from any process, counts the leases still live", async (t) => {
    const server = await useRedisServer(t);
    const clock = new ManualClock(T0);
    const holder = await ledgerOf(t, server.url, clock, "lease-learned:");
    const other = await ledgerOf(t, server.url, clock, "lease-learned:");
    // No configured limit: the provider's headers say how much is left.
    const scopes = [scopeOf("deployment:p/m", {})];
    const reported = (remaining: number) => [
      { unit: "requests" as const, window: "minute" as const, remaining, limit: 1_000, resetAtMs: T0 + 30_000 },
    ];
    holder.learn(scopes[0] as BudgetScope, reported(1_000), T0);
    assert.ok(isReservation(await holder.reserve(scopes, { tokens: 0 }, T0)));
    assert.equal(holder.leaseCount, 1, "1000 / 64: a lease of 15 beside the request");
    const before = await fill(other, scopes, 0, T0 + 10);
    assert.equal(before.admitted, 1_000 - 16, "the lease is spent from the provider's count");
    assert.equal(before.denied.reason, "the provider reports 0 requests left this minute");
    // A new report, seen by the other process: 500 left. The holder still has 15 it may send, which the provider
    // has not seen (the other process's leases all ran out: their requests were sent, the report counts them).
    clock.set(T0 + 20);
    other.learn(scopes[0] as BudgetScope, reported(500), T0 + 20);
    await reportStored(t, server.url, "lease-learned:", "deployment:p/m", 500);
    const after = await fill(other, scopes, 0, T0 + 30);
    assert.equal(after.admitted, 500 - 15);
    for (let index = 0; index < 15; index++) {
      const result = holder.reserve(scopes, { tokens: 0 }, T0 + 30);
      assert.ok(!(result instanceof Promise) && isReservation(result), `the holder sends its leased ${index + 1}`);
    }
  });

  test("a lease lives by the ledger's clock: real time past its end, the clock short of it, ends nothing", async (t) => {
    const server = await useRedisServer(t);
    const clock = new ManualClock(T0);
    const holder = await ledgerOf(t, server.url, clock, "lease-clock:");
    const other = await ledgerOf(t, server.url, clock, "lease-clock:");
    const scopes = [scopeOf("deployment:p/m", {})];
    const reported = (remaining: number) => [
      { unit: "requests" as const, window: "minute" as const, remaining, limit: 1_000, resetAtMs: T0 + 30_000 },
    ];
    holder.learn(scopes[0] as BudgetScope, reported(1_000), T0);
    assert.ok(isReservation(await holder.reserve(scopes, { tokens: 0 }, T0)));
    assert.equal(holder.leaseCount, 1, "1000 / 64: a lease of 15 beside the request, until T0 + 1 000");
    // What a loaded machine did to the test above: more real time went by than its clock moved. Up to 2026-12-07
    // the give-back timer counted real time alone and ended the lease (deleting its record) a real second after it
    // was taken, though the ledgers' clock said T0 + 20: the report then counted none of it.
    clock.set(T0 + 20);
    await sleep(MAX_LEASE_MS + 100);
    assert.equal(holder.leaseCount, 1, "live until the ledger's clock reaches its end");
    other.learn(scopes[0] as BudgetScope, reported(500), T0 + 20);
    await reportStored(t, server.url, "lease-clock:", "deployment:p/m", 500);
    const after = await fill(other, scopes, 0, T0 + 30);
    assert.equal(after.admitted, 500 - 15, "the new report counts the holder's live lease");
    for (let index = 0; index < 15; index++) {
      const result = holder.reserve(scopes, { tokens: 0 }, T0 + 30);
      assert.ok(!(result instanceof Promise) && isReservation(result), `the holder sends its leased ${index + 1}`);
    }
    // Once the clock has reached its end, the timer still ends the lease without a request to notice it.
    clock.set(T0 + MAX_LEASE_MS);
    const deadline = Date.now() + 5_000;
    while (holder.leaseCount > 0) {
      assert.ok(Date.now() < deadline, "the lease ended by its timer once the clock passed its end");
      await sleep(10);
    }
  });

  test("a lease ends with the fixed window it was charged in", async (t) => {
    const server = await useRedisServer(t);
    const clock = new ManualClock(T0 + 59_990);
    const ledger = await ledgerOf(t, server.url, clock, "lease-fixed:");
    const scopes = [scopeOf("provider:p", { rpm: 1_000, window: "fixed" })];
    assert.ok(isReservation(await ledger.reserve(scopes, { tokens: 0 }, T0 + 59_990)));
    const inside = ledger.reserve(scopes, { tokens: 0 }, T0 + 59_999);
    assert.ok(!(inside instanceof Promise) && isReservation(inside), "spent from the lease inside the minute");
    clock.set(T0 + 60_000);
    const next = ledger.reserve(scopes, { tokens: 0 }, T0 + 60_000);
    assert.ok(next instanceof Promise, "the next minute goes to Redis: the lease ended with its window");
    assert.ok(isReservation(await next));
  });

  test("free-tier limits take no lease: rpm 30 costs one script call per reserve and refuses the 31st as before", async (t) => {
    const server = await useRedisServer(t);
    const clock = new ManualClock(T0);
    const ledger = await ledgerOf(t, server.url, clock, "lease-free:");
    const calls = await scriptCalls(t, server.url);
    const scopes = [scopeOf("provider:p", { rpm: 30, tpm: 6_000 }), scopeOf("deployment:p/m", {})];
    const before = await calls();
    const result = await fill(ledger, scopes, 10, T0);
    assert.equal(result.admitted, 30);
    assert.equal(result.denied.reason, "over its rpm budget (30/30)");
    assert.equal(result.denied.retryAtMs, T0 + 60_000);
    assert.equal((await calls()) - before, 31, "one script call per reserve");
    assert.equal(ledger.leaseCount, 0);
    // A concurrency limit takes none either: each slot is a lease of its own in Redis.
    const limited = [scopeOf("provider:q", { rpm: 100_000, concurrency: 100 })];
    assert.ok(ledger.reserve(limited, { tokens: 0 }, T0) instanceof Promise);
    await ledger.reserve(limited, { tokens: 0 }, T0);
    assert.ok(ledger.reserve(limited, { tokens: 0 }, T0) instanceof Promise);
    assert.equal(ledger.leaseCount, 0);
  });
});
