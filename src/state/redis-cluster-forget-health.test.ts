// The forget of a scope's stated limits (a reload that points it elsewhere: FORGET_LIMITS_LUA, then a PUBLISH) on a
// Redis Cluster counts for and against the master of the scope's slot, as every other write does: before, a failed
// forget counted against no master (a hung master's forgets were retried on their backoff while its providers stayed
// shared), and an answered one for none (failures apart, forgets answered between, counted as in a row).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import {
  isRedisClusterAvailable,
  REDIS_CLUSTER_MISSING,
  type RedisClusterNode,
} from "../../test/helpers/redis-cluster.ts";
import {
  providerAwayFrom,
  SCENE_COMMAND_TIMEOUT_MS,
  scopeOf,
  useClusterScene,
  waitFor,
} from "../../test/helpers/redis-cluster-state.ts";
import { isReservation } from "../limits/budgets.ts";
import { createCommandClient } from "./redis-client.ts";
import { publishBeside } from "./redis-keyed-publish.ts";
import { cooldownChannel, forgottenLimitsKey } from "./redis-keys.ts";

const skip = isRedisClusterAvailable() ? false : REDIS_CLUSTER_MISSING;

describe("a stated limits' forget on a Redis Cluster", { skip }, () => {
  test("that fails on a hung master counts against it: the master is found down", async (t) => {
    const { alpha: node, state, logs } = await useClusterScene(t, "forget-down:");
    node.pause();
    // Its script times out, and is sent again on its backoff (250 ms, doubling): three failures in a row.
    state.ledger.forget("deployment:alpha/m");
    await waitFor(
      () => logs.some((line) => line.includes(`master 127.0.0.1:${node.port} does not answer`)),
      8_000,
      `alpha's master found down: ${logs.join("; ")}`,
    );
    await node.resume();
  });

  test("answered between failures on its master counts for it: failures apart do not take it down", async (t) => {
    const { alpha: node, state, logs } = await useClusterScene(t, "forget-apart:");
    const scopes = [scopeOf("deployment:alpha/m", { rpm: 10 })];
    for (const round of [1, 2, 3]) {
      node.pause();
      // One failure on alpha's master: a reserve that times out (served locally).
      assert.ok(isReservation(await state.ledger.reserve(scopes, { tokens: 0 }, Date.now())));
      await node.resume();
      // Then a forget, answered there.
      state.ledger.forget(`deployment:alpha/forgotten-${round}`);
      await sleep(1_000);
    }
    assert.ok(
      !logs.some((line) => line.includes(`master 127.0.0.1:${node.port} does not answer`)),
      `three failures apart, answered forgets between, yet the master found down: ${logs.join("; ")}`,
    );
  });
});

describe("a lesson's PUBLISH on a Redis Cluster with a master hung", { skip }, () => {
  test("goes to its key's master: answered every time, counted for that master", async (t) => {
    const prefix = "publish-beside:";
    const channel = cooldownChannel(prefix);
    const { cluster, state } = await useClusterScene(t, prefix);
    const { name, node } = await providerAwayFrom(t, cluster, cluster.nodes[0] as RedisClusterNode);
    const hung = cluster.nodes.find((each) => each !== node) as RedisClusterNode;
    const redis = createCommandClient(cluster.url, true, SCENE_COMMAND_TIMEOUT_MS);
    t.after(() => redis.disconnect());
    await redis.connect();
    const key = forgottenLimitsKey(prefix, `deployment:${name}/m`);
    hung.pause();
    // As sent before: a PUBLISH names no key, and ioredis sends it (the turn's auto-pipeline) to a master at random:
    // of 20 sent one after the other, some reach the hung one and time out there, a failure that named no master.
    const asBefore: PromiseSettledResult<number>[] = [];
    for (let sent = 0; sent < 20; sent++) asBefore.push(...(await Promise.allSettled([redis.publish(channel, "{}")])));
    let answered = 0;
    const beside = await Promise.allSettled(
      Array.from({ length: 6 }, () =>
        publishBeside(redis, { recordSuccess: (_scope, at) => (answered += at === key ? 1 : 0) }, key, channel, "{}"),
      ),
    );
    await hung.resume();
    assert.ok(
      asBefore.some((each) => each.status === "rejected"),
      "some PUBLISHes sent as before reached the hung master",
    );
    assert.deepEqual(
      beside.filter((each) => each.status === "rejected").map((each) => String(each.reason)),
      [],
      "every PUBLISH beside the key answered",
    );
    assert.equal(answered, 6, "each counted for the key's master");
    assert.equal(state.status().isDegraded, false);
  });
});
