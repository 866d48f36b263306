// A Redis Cluster master that dies and comes back with its data (persistence: the test SAVEs it first), while writes
// for its providers' counters wait: a budget lease's give-back made once its master is known down, and a charge whose
// batch failed every resend while it was dead, are kept and sent when it answers again, so the restarted master's
// counters hold what this process sent (and gave back) meanwhile. Before 2026-12-07 both were lost: the give-back
// was sent into the dead master (the link as a whole was up) and dropped after its resends like the charge.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { isRedisClusterAvailable, REDIS_CLUSTER_MISSING } from "../../test/helpers/redis-cluster.ts";
import {
  minuteTotals,
  minuteTotalsWhen,
  scopeOf,
  takenDown,
  useClusterScene,
  waitFor,
} from "../../test/helpers/redis-cluster-state.ts";
import { type BudgetScope, isReservation } from "../limits/budgets.ts";

const skip = isRedisClusterAvailable() ? false : REDIS_CLUSTER_MISSING;

describe("a Redis Cluster master that dies and comes back with its data", { skip }, () => {
  test("a lease's give-back made while its master is known down is kept, and sent when it answers again", async (t) => {
    const { cluster, alpha: victim, state } = await useClusterScene(t, "kept-lease:");
    const pool = [scopeOf("provider:alpha", { rpm: 1_000 })];
    // 1000 / 64: a lease of 15 requests beside this one, counted in Redis now.
    assert.ok(isReservation(await state.ledger.reserve(pool, { tokens: 0 }, Date.now())));
    assert.equal(state.ledger.leaseCount, 1);
    victim.save();
    await victim.kill();
    // Three reserves of another of alpha's scopes (no lease: rpm 10) that fail on the dead master (served locally,
    // replayed later): its providers go local.
    await takenDown(state.ledger, () => state.status(), "alpha");
    // Ended now if its own timer (1 s at most) has not ended it yet: given back while its master is known down.
    await state.ledger.returnLeases();
    await victim.restart();
    await waitFor(() => !state.status().isDegraded, 20_000, `alpha back (${state.status().detail})`);
    // The three local reserves replayed (into their own scope), and the give-back of the lease's 15 unused requests.
    await waitFor(() => state.ledger.unsyncedCount === 0, 5_000, "the local reserves replayed");
    const totalsOf = { cluster, prefix: "kept-lease:", scopeId: "provider:alpha" };
    const totals = await minuteTotalsWhen(t, totalsOf, (each) => each.requests === 1);
    assert.equal(totals.requests, 1, "the request that took the lease alone: the 15 leased given back");
  });

  test("a charge whose batch failed every resend while its master was dead is sent when it answers again", async (t) => {
    const { cluster, alpha: victim, state } = await useClusterScene(t, "kept-charge:");
    const scopes = [scopeOf("provider:alpha", { tpm: 1_000 }), scopeOf("deployment:alpha/m", { rpm: 100 })];
    const reserved = await state.ledger.reserve(scopes, { tokens: 500 }, Date.now());
    assert.ok(isReservation(reserved));
    victim.save();
    await victim.kill();
    // Answered with more tokens than estimated: a charge of 400, sent at once into the dead master, resent four
    // times (~4 s) and given up there.
    state.ledger.reconcile(reserved, 900, Date.now());
    await sleep(6_000);
    await victim.restart();
    await waitFor(() => !state.status().isDegraded, 20_000, `alpha back (${state.status().detail})`);
    const totalsOf = { cluster, prefix: "kept-charge:", scopeId: "provider:alpha" };
    const totals = await minuteTotalsWhen(t, totalsOf, (each) => each.tokens === 900);
    assert.equal(totals.tokens, 900, "the restarted master counts the request's real tokens, not its estimate");
  });

  test("a charge made once its master is known down (hung) is kept, and sent when it answers again", async (t) => {
    const { cluster, alpha: victim, state } = await useClusterScene(t, "kept-known:");
    const scopes = [scopeOf("provider:alpha", { tpm: 1_000 }), scopeOf("deployment:alpha/m", { rpm: 100 })];
    // Reserved in Redis (500 tokens estimated); its answer comes once the master hangs and is known down.
    const reserved = await state.ledger.reserve(scopes, { tokens: 500 }, Date.now());
    assert.ok(isReservation(reserved));
    victim.pause();
    await takenDown(state.ledger, () => state.status(), "alpha");
    // 900 tokens: a charge of 400 for a master known down, kept for its return (before: not sent, not kept).
    state.ledger.reconcile(reserved, 900, Date.now());
    await victim.resume();
    await waitFor(() => !state.status().isDegraded, 20_000, `alpha back (${state.status().detail})`);
    const totalsOf = { cluster, prefix: "kept-known:", scopeId: "provider:alpha" };
    const totals = await minuteTotalsWhen(t, totalsOf, (each) => each.tokens === 900);
    assert.equal(totals.tokens, 900, "the resumed master counts the request's real tokens, not its estimate");
  });
});

describe("a kept batch whose first send ran, its reply lost, replayed after its marker's life", { skip }, () => {
  test("is applied once", async (t) => {
    // A marker of 1 s stands for the 60 s one, and a hang of a few seconds for an outage longer than a minute.
    const { cluster, alpha: victim, state } = await useClusterScene(t, "kept-once:", { onceMarkerMs: 1_000 });
    const scopes = [scopeOf("provider:alpha", { tpm: 1_000 }), scopeOf("deployment:alpha/m", { rpm: 100 })];
    const reserved = await state.ledger.reserve(scopes, { tokens: 500 }, Date.now());
    assert.ok(isReservation(reserved));
    victim.pause();
    // A charge of 400 sent into the hung master: its send and every resend time out (three take the master down),
    // and the batch is kept. A hung master runs them all once resumed: the first applies it, the others find its
    // marker; its reply, like a send that ran just before a master died, never came.
    state.ledger.reconcile(reserved, 900, Date.now());
    await waitFor(() => state.ledger.keptWriteCount === 1, 8_000, "the charge kept after its resends");
    await victim.resume();
    await waitFor(() => !state.status().isDegraded, 15_000, `alpha back (${state.status().detail})`);
    await waitFor(() => state.ledger.keptWriteCount === 0, 2_000, "the kept charge replayed");
    await sleep(500);
    const totals = await minuteTotals(t, cluster, "kept-once:", "provider:alpha");
    assert.equal(totals.tokens, 900, "the charge counted once: its replay came after its marker had ended");
  });
});

describe("a lease recorded for a provider's report, ended while its master is known down", { skip }, () => {
  test("its report's cleanup is not sent into the down master: the give-back returns at once, nothing given up", async (t) => {
    const { alpha: victim, state, logs } = await useClusterScene(t, "lease-clean:");
    const pool = [scopeOf("deployment:alpha/m", {})];
    // The provider reported its minute: a lease taken now is recorded beside the report (`lease:<member>`), and its
    // end deletes that field (HDEL) so that the next report no longer counts it.
    const reportAtMs = Date.now();
    const window = { unit: "requests" as const, window: "minute" as const, limit: 1_000, remaining: 1_000 };
    state.ledger.learn(pool[0] as BudgetScope, [{ ...window, resetAtMs: reportAtMs + 60_000 }], reportAtMs);
    await sleep(300);
    assert.ok(isReservation(await state.ledger.reserve(pool, { tokens: 0 }, Date.now())));
    assert.equal(state.ledger.leaseCount, 1);
    victim.pause();
    await takenDown(state.ledger, () => state.status(), "alpha");
    // Before: the HDEL went into the hung master, timed out and was resent four times (~4.7 s), then given up and
    // warned about; the give-back's wait (and an exit's) waited for it.
    const startedMs = Date.now();
    await state.ledger.returnLeases();
    const tookMs = Date.now() - startedMs;
    // Half the broken wait (~4.7 s of resends), not a bound a loaded machine's scheduling reaches.
    assert.ok(tookMs < 2_500, `the leases returned in ${tookMs} ms`);
    await sleep(1_000);
    assert.ok(!logs.some((line) => line.includes("did not take a shared budget write")), logs.join("; "));
    await victim.resume();
  });
});

describe("a batch's resends that take its master down", { skip }, () => {
  test("name its provider in the warning, not 'its keys'", async (t) => {
    const { alpha: victim, state, logs } = await useClusterScene(t, "batch-named:");
    const scopes = [scopeOf("provider:alpha", { tpm: 1_000 }), scopeOf("deployment:alpha/m", { rpm: 100 })];
    const reserved = await state.ledger.reserve(scopes, { tokens: 500 }, Date.now());
    assert.ok(isReservation(reserved));
    victim.pause();
    // Only the charge's batch asks the hung master: its send and resends are the three failures.
    state.ledger.reconcile(reserved, 900, Date.now());
    await waitFor(() => logs.some((line) => line.includes("does not answer")), 5_000, "the master found down");
    const down = logs.find((line) => line.includes("does not answer")) ?? "";
    assert.match(down, /the budgets of provider alpha are served from local state/);
    await victim.resume();
  });
});

describe("a Redis Cluster master that hangs while another holds the data epoch", { skip }, () => {
  test("a kept batch's epoch read timing out on the epoch's master does not take the batch's own master down", async (t) => {
    const prefix = "kept-epoch:";
    // The data epoch's key has no hash tag: its slot is that of the whole key, on a master of its own.
    const { cluster, epochNode, away, state, logs } = await useClusterScene(t, prefix);
    const { name, node } = away;
    const scopes = [scopeOf(`provider:${name}`, { tpm: 1_000 }), scopeOf(`deployment:${name}/m`, { rpm: 100 })];
    const reserved = await state.ledger.reserve(scopes, { tokens: 500 }, Date.now());
    assert.ok(isReservation(reserved));
    node.pause();
    await takenDown(state.ledger, () => state.status(), name);
    // 100 tokens: a give-back of 400 for a master known down, kept; its replay reads the data epoch first.
    state.ledger.reconcile(reserved, 100, Date.now());
    await waitFor(() => state.ledger.keptWriteCount === 1, 2_000, "the give-back kept");
    epochNode.pause();
    await node.resume();
    await waitFor(() => state.status().localProviders?.includes(name) !== true, 15_000, `${name} shared again`);
    // Its kept batch's replay asks the hung epoch master: three timeouts there took the batch's own master down
    // again (counted against its marker), and it flapped for as long as the other one hung.
    await sleep(4_000);
    const downLines = logs.filter((line) => line.includes(`master 127.0.0.1:${node.port} does not answer`));
    assert.equal(downLines.length, 1, `${name}'s master went down once, when it hung: ${logs.join("; ")}`);
    assert.ok(
      logs.some((line) => line.includes(`master 127.0.0.1:${epochNode.port} does not answer`)),
      `the epoch's master is the one found down: ${logs.join("; ")}`,
    );
    // The give-back waited for the epoch's master, and is sent once it answers.
    await epochNode.resume();
    await waitFor(() => !state.status().isDegraded, 15_000, `every master back (${state.status().detail})`);
    const totalsOf = { cluster, prefix, scopeId: `provider:${name}` };
    const totals = await minuteTotalsWhen(t, totalsOf, (each) => each.tokens === 100);
    assert.equal(totals.tokens, 100, "the request's real tokens once the give-back is sent");
  });
});

describe("a kept batch whose first send ran, replayed after more than 128 newer batches kept meanwhile", {
  skip,
}, () => {
  test("is applied once: the newer ones replayed first do not push it out of the applied set", async (t) => {
    const { cluster, alpha: victim, state } = await useClusterScene(t, "kept-order:", { onceMarkerMs: 1_000 });
    const scopes = [scopeOf("provider:alpha", { tpm: 100_000 }), scopeOf("deployment:alpha/m", { rpm: 1_000 })];
    const reserved = await state.ledger.reserve(scopes, { tokens: 500 }, Date.now());
    assert.ok(isReservation(reserved));
    const later = [];
    for (let request = 0; request < 140; request++) {
      const each = await state.ledger.reserve(scopes, { tokens: 500 }, Date.now());
      assert.ok(isReservation(each));
      later.push(each);
    }
    victim.pause();
    // The charge's first send runs once the hung master resumes, its reply lost; its resends take the master down.
    state.ledger.reconcile(reserved, 900, Date.now());
    await waitFor(() => state.status().localProviders?.includes("alpha") === true, 5_000, "alpha found down");
    // Charges made while alpha is known down: each a batch of its own (newer markers), kept at once, before the
    // first charge (kept after its last resend).
    for (const each of later) state.ledger.reconcile(each, 501, Date.now());
    assert.equal(state.ledger.keptWriteCount, later.length, "the newer charges kept at once");
    await waitFor(() => state.ledger.keptWriteCount === later.length + 1, 8_000, "the first charge kept");
    await victim.resume();
    await waitFor(() => !state.status().isDegraded, 15_000, `alpha back (${state.status().detail})`);
    await waitFor(() => state.ledger.keptWriteCount === 0, 2_000, "the kept charges replayed");
    await sleep(500);
    const totals = await minuteTotals(t, cluster, "kept-order:", "provider:alpha");
    assert.equal(totals.tokens, 900 + 501 * later.length, "the first charge counted once");
  });
});

describe("a data epoch's master that misses a resend's read now and then", { skip }, () => {
  test("its answered reads count for it: failures apart do not take it down", async (t) => {
    const { epochNode, away, state, logs } = await useClusterScene(t, "epoch-apart:");
    const { name, node } = away;
    const scopes = [scopeOf(`provider:${name}`, { tpm: 100_000 }), scopeOf(`deployment:${name}/m`, { rpm: 1_000 })];
    for (const _round of [1, 2, 3]) {
      const reserved = await state.ledger.reserve(scopes, { tokens: 500 }, Date.now());
      assert.ok(isReservation(reserved));
      node.pause();
      epochNode.pause();
      // A give-back: its first send times out on the provider's master, its first resend's epoch read on the
      // epoch's master (one failure there); the next resend, both answering, reads the epoch and is applied.
      state.ledger.reconcile(reserved, 100, Date.now());
      await sleep(800);
      await Promise.all([node.resume(), epochNode.resume()]);
      await sleep(2_000);
    }
    assert.ok(
      !logs.some((line) => line.includes(`master 127.0.0.1:${epochNode.port} does not answer`)),
      `not three failures in a row, yet the epoch's master found down: ${logs.join("; ")}`,
    );
  });
});
