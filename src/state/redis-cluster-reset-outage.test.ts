// An admin reset (POST /admin/cooldowns/reset) on a Redis Cluster with a master dead and no replica to take its
// place: the keys that master holds cannot be deleted. The reset deletes what the other masters hold, reaches every
// process (its marker and message), and then fails naming the master it could not reach, so the route answers an
// honest 503. Before, the first SCAN that failed (or the slot table naming a master the pool no longer held) ended it:
// nothing on the live masters was deleted either, no process heard it, and the 503 said Redis was unreachable.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Redis } from "ioredis";
import { closeWhenTestEnds } from "../../test/helpers/late-start.ts";
import { isRedisClusterAvailable, REDIS_CLUSTER_MISSING, useRedisCluster } from "../../test/helpers/redis-cluster.ts";
import {
  nodesOfTags,
  providerAwayFrom,
  scopeOf,
  useClusterBackend,
  waitFor,
} from "../../test/helpers/redis-cluster-state.ts";
import { ServiceUnavailableError } from "../errors/gateway-error.ts";
import { isReservation } from "../limits/budgets.ts";

const skip = isRedisClusterAvailable() ? false : REDIS_CLUSTER_MISSING;
const TIMEOUT_MS = 300;
const PREFIX = "reset-down:";

describe("an admin reset on a Redis Cluster with a master dead", { skip }, () => {
  test("deletes what the live masters hold, reaches every process, and fails naming the dead master", async (t) => {
    const cluster = await useRedisCluster(t);
    const dead = (await nodesOfTags(t, cluster, ["alpha"])).get("alpha");
    assert.ok(dead !== undefined);
    const live = await providerAwayFrom(t, cluster, dead);
    const first = await useClusterBackend(t, cluster, PREFIX, TIMEOUT_MS);
    const second = await useClusterBackend(t, cluster, PREFIX, TIMEOUT_MS);
    for (const provider of ["alpha", live.name]) {
      const scopes = [scopeOf(`provider:${provider}`, { rpd: 1 })];
      assert.ok(isReservation(await first.state.ledger.reserve(scopes, { tokens: 0 }, Date.now())), provider);
    }
    first.availability.recordRateLimited(`${live.name}/m`, { delayMs: 60_000 }, "rate_limited", "HTTP 429");
    await waitFor(
      () => !second.availability.peek(`${live.name}/m`, live.name).isAvailable,
      5_000,
      "the cooldown heard",
    );
    const liveClient = new Redis({ host: "127.0.0.1", port: live.node.port, lazyConnect: true });
    await closeWhenTestEnds(t, () => liveClient.disconnect());
    await liveClient.connect();
    assert.ok((await liveClient.keys(`${PREFIX}budget:{${live.name}}*`)).length > 0, "the live provider's budget");
    await dead.kill();

    await assert.rejects(
      async () => await second.state.ledger.reset(),
      (error: unknown) => {
        assert.ok(error instanceof ServiceUnavailableError, `a 503: ${String(error)}`);
        assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${dead.port}`), "names the master not reset");
        assert.match(error.message, /budgets, cooldowns and refused features/);
        return true;
      },
    );
    assert.deepEqual(await liveClient.keys(`${PREFIX}budget:{${live.name}}*`), [], "the live master's budgets deleted");
    // The other process heard the reset: its copy of the cooldown is gone.
    await waitFor(
      () => first.availability.peek(`${live.name}/m`, live.name).isAvailable,
      5_000,
      "the reset heard by the other process",
    );
    const scopes = [scopeOf(`provider:${live.name}`, { rpd: 1 })];
    assert.ok(isReservation(await first.state.ledger.reserve(scopes, { tokens: 0 }, Date.now())), "its day again");
  });
});
