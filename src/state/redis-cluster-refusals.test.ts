// Refused features shared through a Redis Cluster whose master hangs (SIGSTOP): a lesson's write goes to the master
// of the deployment's key (its provider's hash tag), and its failures count against that master, as a budget's or a
// cooldown's do. Before 2026-12-07 they counted against no master: a hung master's providers stayed shared however
// many of their lessons timed out, each write and each retry waiting a command timeout.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { isRedisClusterAvailable, REDIS_CLUSTER_MISSING } from "../../test/helpers/redis-cluster.ts";
import { useClusterScene } from "../../test/helpers/redis-cluster-state.ts";
import { RefusedFeatures } from "../limits/refused-features.ts";

const skip = isRedisClusterAvailable() ? false : REDIS_CLUSTER_MISSING;
const HOUR_MS = 3_600_000;

describe("refused features on a Redis Cluster with a hung master", { skip }, () => {
  test("lessons whose writes time out count against their key's master, which goes down", async (t) => {
    const refused = new RefusedFeatures(HOUR_MS);
    const { alpha: victim, state, logs } = await useClusterScene(t, "refusals-hung:", { refusedFeatures: refused });
    victim.pause();
    // Three lessons of a deployment on the hung master: three writes that time out there.
    for (const feature of ["tools", "seed", "logprobs"]) {
      refused.learn("alpha/m", feature, `HTTP 400: ${feature}`, Date.now());
      await sleep(300);
    }
    const deadline = Date.now() + 3_000;
    while (!state.status().isDegraded && Date.now() < deadline) await sleep(50);
    assert.match(
      logs.join("\n"),
      new RegExp(`master 127\\.0\\.0\\.1:${victim.port} does not answer`),
      `the hung master found down (${state.status().detail})`,
    );
    await victim.resume();
  });
});

describe("refused features on a Redis Cluster whose master misses a write now and then", { skip }, () => {
  test("a lesson's write that is answered counts for its key's master: failures apart do not take it down", async (t) => {
    const refused = new RefusedFeatures(HOUR_MS);
    const { alpha: victim, state, logs } = await useClusterScene(t, "refusals-apart:", { refusedFeatures: refused });
    // Three rounds: a lesson whose write times out (the master hung for a moment), then lessons that are stored.
    for (const round of [1, 2, 3]) {
      victim.pause();
      refused.learn("alpha/m", `missed${round}`, "HTTP 400: missed", Date.now());
      await sleep(350);
      await victim.resume();
      for (const feature of ["tools", "seed"]) {
        refused.learn("alpha/m", `${feature}${round}`, `HTTP 400: ${feature}`, Date.now());
        await sleep(150);
      }
      await sleep(1_500);
    }
    assert.ok(
      !logs.some((line) => line.includes("does not answer")),
      `not three failures in a row, yet found down: ${logs.join("; ")}`,
    );
    assert.equal(state.status().isDegraded, false, state.status().detail);
  });
});
