// A batch kept while only the data epoch's master does not answer (its resends read the epoch first) sits beside a
// master that answers: this process's live batches go on there, each listing its marker in the applied set, which
// keeps the newest 128. A kept batch whose first send ran (its reply lost) was pushed out of it, and once its marker
// had ended (60 s; here 1 s) its replay was applied again: the kept batch's marker is now looked up while its master
// answers (redis-kept-batches.ts), and a batch found applied is not kept. A replay whose own send ran (its reply lost)
// and whose resends then failed on the epoch's master again was kept again the same way.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, type TestContext, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import {
  isRedisClusterAvailable,
  REDIS_CLUSTER_MISSING,
  type RedisCluster,
  type RedisClusterNode,
} from "../../test/helpers/redis-cluster.ts";
import {
  minuteTotals,
  minuteTotalsWhen,
  SCENE_COMMAND_TIMEOUT_MS,
  scopeOf,
  takenDown,
  useClusterScene,
  waitFor,
} from "../../test/helpers/redis-cluster-state.ts";
import { type BudgetScope, isReservation, type Reservation } from "../limits/budgets.ts";
import type { RedisLedger } from "./redis-ledger.ts";

const skip = isRedisClusterAvailable() ? false : REDIS_CLUSTER_MISSING;
/** Live batches sent while the kept one waits: more than the applied set's 128. */
const LIVE_BATCHES = 140;

describe("a kept batch that waits for the data epoch's master alone, its first send run", { skip }, () => {
  test("is applied once, however many live batches and however long it waited", async (t) => {
    const prefix = "kept-check:";
    // A marker of 1 s stands for the 60 s one.
    const { cluster, epochNode, away, state } = await useClusterScene(t, prefix, { onceMarkerMs: 1_000 });
    const { name, node } = away;
    const scopes = [scopeOf(`provider:${name}`, { tpm: 100_000 }), scopeOf(`deployment:${name}/m`, { rpm: 1_000 })];
    const { reserved, live } = await reserveWithLive(state.ledger, scopes);
    epochNode.pause();
    node.pause();
    // A charge of 400: its first send times out on the hung provider master, which runs it once resumed (its reply
    // lost); each resend reads the data epoch first, on the hung epoch master, and fails there: the batch is kept,
    // waiting for the epoch's master alone.
    state.ledger.reconcile(reserved, 900, Date.now());
    await sleep(SCENE_COMMAND_TIMEOUT_MS + 100);
    await node.resume();
    await sleep(6_000);
    assert.deepEqual(state.status().localProviders, [], `${name} shared all along (${state.status().detail})`);
    await liveChargesThenEpochBack(t, { cluster, prefix, name, epochNode, node, ledger: state.ledger, live }, () =>
      state.status(),
    );
  });
});

/** The first request's reservation (500 tokens), and LIVE_BATCHES more for the live charges. */
async function reserveWithLive(ledger: RedisLedger, scopes: readonly BudgetScope[]) {
  const reserved = await ledger.reserve(scopes, { tokens: 500 }, Date.now());
  assert.ok(isReservation(reserved));
  const live: Reservation[] = [];
  for (let request = 0; request < LIVE_BATCHES; request++) {
    const each = await ledger.reserve(scopes, { tokens: 500 }, Date.now());
    assert.ok(isReservation(each));
    live.push(each);
  }
  return { reserved, live };
}

interface Scene {
  readonly cluster: RedisCluster;
  readonly prefix: string;
  readonly name: string;
  readonly epochNode: RedisClusterNode;
  /** The provider's master. */
  readonly node: RedisClusterNode;
  readonly ledger: RedisLedger;
  readonly live: readonly Reservation[];
}

/**
 * Sends the live charges (each a batch of its own, at once, to the provider's master: newer markers in the applied
 * set), lets the kept batch's marker end (1 s), brings the epoch's master back, and checks the first charge (400 of
 * 900 tokens) counted once.
 */
async function liveChargesThenEpochBack(
  t: TestContext,
  scene: Scene,
  status: () => { isDegraded: boolean; detail: string },
): Promise<void> {
  const { cluster, prefix, name, ledger } = scene;
  for (const each of scene.live) ledger.reconcile(each, 501, Date.now());
  const expected = 900 + 501 * scene.live.length;
  const totalsOf = { cluster, prefix, scopeId: `provider:${name}`, owner: scene.node };
  let totals = await minuteTotalsWhen(t, totalsOf, (each) => each.tokens >= expected, 10_000);
  assert.equal(totals.tokens, expected, "the live charges and the first one, once");
  await sleep(1_500);
  await scene.epochNode.resume();
  await waitFor(() => !status().isDegraded, 15_000, `every master back (${status().detail})`);
  await waitFor(() => ledger.keptWriteCount === 0, 5_000, "nothing kept");
  await sleep(500);
  totals = await minuteTotals(t, cluster, prefix, totalsOf.scopeId, scene.node);
  assert.equal(totals.tokens, expected, "the first charge counted once (400 more: applied again)");
}

/** CLIENT PAUSE WRITE: the node answers reads, and runs no script until `ms` have passed (then runs them all). */
function pauseWrites(node: RedisClusterNode, ms: number): void {
  const paused = spawnSync("redis-cli", ["-p", String(node.port), "client", "pause", String(ms), "write"], {
    encoding: "utf8",
    timeout: 5_000,
  });
  assert.match(paused.stdout, /OK/, `CLIENT PAUSE on ${node.port}: ${paused.stdout}${paused.stderr}`);
}

/** A script waits on `node`, held by its write pause: CLIENT LIST shows its client blocked (flag b) in it. */
function isScriptHeldOn(node: RedisClusterNode): boolean {
  const listed = spawnSync("redis-cli", ["-p", String(node.port), "client", "list"], {
    encoding: "utf8",
    timeout: 5_000,
  });
  return /flags=\w*b\w* [^\n]*cmd=(?:eval|evalsha|fcall|fcall_ro)\b/i.test(listed.stdout);
}

describe("a kept batch's replay that ran, its reply lost, its resends failing on the epoch's master", { skip }, () => {
  test("is applied once when it is kept again and replayed after its marker's life", async (t) => {
    const prefix = "kept-replay:";
    const { cluster, epochNode, away, state, logs } = await useClusterScene(t, prefix, { onceMarkerMs: 1_000 });
    const { name, node } = away;
    const scopes = [scopeOf(`provider:${name}`, { tpm: 100_000 }), scopeOf(`deployment:${name}/m`, { rpm: 1_000 })];
    const { reserved, live } = await reserveWithLive(state.ledger, scopes);
    node.pause();
    await takenDown(state.ledger, () => state.status(), name);
    // A charge of 400 for a master known down: kept at once, never sent.
    state.ledger.reconcile(reserved, 900, Date.now());
    assert.equal(state.ledger.keptWriteCount, 1);
    // The master answers again (its probes, reads, are answered) but runs no script for 6 s: the replay, three probes
    // later (2-3 s, more under load), reads the epoch, sends its script, which times out and runs once the pause ends
    // (reply lost).
    const resumed = node.resume();
    pauseWrites(node, 6_000);
    await resumed;
    await waitFor(() => state.ledger.keptWriteCount === 0, 10_000, "the kept charge replayed");
    // Taken for its replay is not sent yet: it reads the epoch first. Hung before that read was answered, the epoch's
    // master failed it, the script was never sent and the 400 never counted (70640 !== 71040 under load).
    await waitFor(() => isScriptHeldOn(node), 5_000, "the replay's script held by the write pause");
    // Its resends read the epoch first, on a master that now hangs: they fail, and the batch is kept again.
    epochNode.pause();
    await waitFor(
      () => logs.some((line) => line.includes(`master 127.0.0.1:${epochNode.port} does not answer`)),
      10_000,
      "the epoch's master found down",
    );
    await sleep(4_000);
    assert.deepEqual(state.status().localProviders, [], `${name} shared (${state.status().detail})`);
    await liveChargesThenEpochBack(t, { cluster, prefix, name, epochNode, node, ledger: state.ledger, live }, () =>
      state.status(),
    );
  });
});
