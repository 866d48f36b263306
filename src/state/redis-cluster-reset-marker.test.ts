// An admin reset on a Redis Cluster whose reset marker (`P reset-id`, a key without a hash tag: one master holds it) is
// on the master that does not answer: the reset is still published, but its marker was not stored. When that master
// answers again with the marker it held (persistence, a replica promoted, a hung master resumed), the next load of a
// process that heard the reset must not take the old marker for a reset it missed: that reset again, at some later
// time, what the process learned since (its cooldowns and circuits, its budget leases, its give-backs and the charges
// it kept while Redis was unreachable).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Cluster } from "ioredis";
import { closeWhenTestEnds } from "../../test/helpers/late-start.ts";
import { isRedisClusterAvailable, REDIS_CLUSTER_MISSING, useRedisCluster } from "../../test/helpers/redis-cluster.ts";
import { useClusterBackend, waitFor } from "../../test/helpers/redis-cluster-state.ts";
import { useRedisProxy } from "../../test/helpers/redis-proxy.ts";
import { systemClock } from "../clock.ts";
import { buildConfig } from "../config/load.ts";
import { ServiceUnavailableError } from "../errors/gateway-error.ts";
import { AvailabilityBook } from "../limits/availability.ts";
import { closeClient, createCommandClient } from "./redis-client.ts";
import { CooldownSharing } from "./redis-cooldowns.ts";
import { hashSlot } from "./redis-hash-slot.ts";
import { cooldownKey, resetMarkerKey } from "./redis-keys.ts";
import { RedisLink } from "./redis-link.ts";

const skip = isRedisClusterAvailable() ? false : REDIS_CLUSTER_MISSING;
const TIMEOUT_MS = 300;
const PREFIX = "reset-marker:";

describe("an admin reset whose marker's Redis Cluster master is dead", { skip }, () => {
  test("is not applied again when that master comes back with the marker it held", async (t) => {
    const cluster = await useRedisCluster(t);
    const markerMaster = cluster.nodeOfSlot(hashSlot(resetMarkerKey(PREFIX)));
    const first = await useClusterBackend(t, cluster, PREFIX, TIMEOUT_MS);
    const second = await useClusterBackend(t, cluster, PREFIX, TIMEOUT_MS);
    let resets = 0;
    const reset = first.availability.reset.bind(first.availability);
    first.availability.reset = () => {
      resets += 1;
      reset();
    };
    await second.state.ledger.reset();
    await waitFor(() => resets === 1, 5_000, "the first reset heard");
    // Its marker is on the master's disk: it comes back with it.
    markerMaster.save();
    await markerMaster.kill();
    await assert.rejects(async () => await second.state.ledger.reset(), ServiceUnavailableError);
    await waitFor(() => resets === 2, 5_000, "the reset heard, its marker not stored");
    await markerMaster.restart();

    // A cooldown stored without being published: only a load brings it, so once it is here a load ran.
    const writer = new Cluster([{ host: "127.0.0.1", port: markerMaster.port }], { lazyConnect: true });
    await closeWhenTestEnds(t, () => writer.disconnect());
    await writer.connect();
    const cooldown = { untilMs: Date.now() + 60_000, cause: "rate_limited", source: "provider", reason: "HTTP 429" };
    await writer.set(cooldownKey(PREFIX, "deployment", "probe/m"), JSON.stringify(cooldown), "PX", 60_000);
    // The subscriptions dropped (a network blip): each process loads once subscribed again. Again until one load
    // read every master (one that ran while the client's slot table still missed the master back fails its walk).
    const isLoaded = () => !first.availability.peek("probe/m", "probe").isAvailable;
    for (let round = 0; round < 10 && !isLoaded(); round++) {
      for (const node of cluster.nodes) {
        spawnSync("redis-cli", ["-p", String(node.port), "client", "kill", "type", "pubsub"], { timeout: 5_000 });
      }
      await waitFor(isLoaded, 3_000, "a load after the return").catch(() => undefined);
    }
    assert.ok(isLoaded(), "a load after the return");
    assert.equal(resets, 2, "the reset heard was not applied again from the old marker");
  });

  test("reaches a process whose subscription was away when it was published, once that master answers", async (t) => {
    const cluster = await useRedisCluster(t);
    const prefix = "reset-away:";
    const markerMaster = cluster.nodeOfSlot(hashSlot(resetMarkerKey(prefix)));
    const live = cluster.nodes.find((node) => node !== markerMaster);
    assert.ok(live !== undefined);
    // The away process subscribes through a proxy to a master that stays up: muted, it hears nothing published.
    const proxy = await useRedisProxy(t, live.port, () => undefined);
    const resetter = await useClusterBackend(t, cluster, prefix, TIMEOUT_MS);
    const away = await useClusterBackend(t, cluster, prefix, TIMEOUT_MS, {}, proxy.url);
    let resets = 0;
    const reset = away.availability.reset.bind(away.availability);
    away.availability.reset = () => {
      resets += 1;
      reset();
    };
    await resetter.state.ledger.reset();
    await waitFor(() => resets === 1, 5_000, "the first reset heard");
    // The marker's master goes down with the first reset's marker on its disk; the away process's subscription is deaf.
    markerMaster.save();
    await markerMaster.kill();
    proxy.muteReplies();
    await assert.rejects(async () => await resetter.state.ledger.reset(), ServiceUnavailableError);
    await sleep(300);
    assert.equal(resets, 1, "published unmarked while the away process heard nothing");
    // Its subscription comes back (on another node) and loads: the marker is the first reset's, or unreadable.
    proxy.dropConnections();
    await markerMaster.restart();
    // Before 2026-12-07 it never learned of the second reset: stored now by the process that made it, and published
    // again, marked.
    await waitFor(() => resets === 2, 15_000, "the reset learned once its marker's master answers");
    const marker = new Cluster([{ host: "127.0.0.1", port: live.port }], { lazyConnect: true });
    await closeWhenTestEnds(t, () => marker.disconnect());
    await marker.connect();
    assert.notEqual(await marker.get(resetMarkerKey(prefix)), null, "the marker stored");
    await sleep(1_500);
    assert.equal(resets, 2, "applied once");
  });

  test("a reset stored late neither overwrites a newer reset's marker nor is applied again where it was", async (t) => {
    const cluster = await useRedisCluster(t);
    const prefix = "reset-late:";
    const markerMaster = cluster.nodeOfSlot(hashSlot(resetMarkerKey(prefix)));
    const live = cluster.nodes.find((node) => node !== markerMaster);
    assert.ok(live !== undefined);
    // `early` subscribes through a proxy: once muted, it does not hear the later reset (its subscription away).
    const proxy = await useRedisProxy(t, live.port, () => undefined);
    const early = await useClusterBackend(t, cluster, prefix, TIMEOUT_MS, {}, proxy.url);
    const later = await useClusterBackend(t, cluster, prefix, TIMEOUT_MS);
    const witness = await useClusterBackend(t, cluster, prefix, TIMEOUT_MS);
    const counted = (backend: typeof early) => {
      const count = { resets: 0 };
      const reset = backend.availability.reset.bind(backend.availability);
      backend.availability.reset = () => {
        count.resets += 1;
        reset();
      };
      return count;
    };
    const [earlyCount, witnessCount] = [counted(early), counted(witness)];
    await later.state.ledger.reset();
    await waitFor(() => witnessCount.resets === 1 && earlyCount.resets === 1, 5_000, "the first reset heard");
    markerMaster.save();
    await markerMaster.kill();
    // Two resets while the marker's master is down, each published unmarked; `early` hears none of the second.
    await assert.rejects(async () => await early.state.ledger.reset(), ServiceUnavailableError);
    await waitFor(() => witnessCount.resets === 2, 5_000, "the second reset heard");
    proxy.muteReplies();
    await assert.rejects(async () => await later.state.ledger.reset(), ServiceUnavailableError);
    await waitFor(() => witnessCount.resets === 3, 5_000, "the third reset heard");
    const earlyBefore = earlyCount.resets;
    // The master answers: each process that made one stores its marker. Before, `early` stored the second reset's
    // over the third's (or the third was given up once `later` heard the second again), published it again, and the
    // witness applied that reset a second time.
    await markerMaster.restart();
    await sleep(4_000);
    assert.equal(witnessCount.resets, 3, "each reset applied once");
    // `early`'s subscription comes back and it loads: the marker names the third reset, which it applies.
    proxy.dropConnections();
    await waitFor(() => earlyCount.resets === earlyBefore + 1, 10_000, "the reset it did not hear, from its marker");
  });

  test("two resets at once on one process, the later's SET failing first: the later's marker is stored once its master answers", async (t) => {
    const cluster = await useRedisCluster(t);
    const prefix = "reset-twice:";
    const markerMaster = cluster.nodeOfSlot(hashSlot(resetMarkerKey(prefix)));
    const client = createCommandClient(cluster.url, true, TIMEOUT_MS);
    await closeWhenTestEnds(t, () => closeClient(client));
    await client.connect();
    // The real client, its first SET (the first reset's marker) held until the second reset's SET failed: the order
    // in which the two failures come back, which the one connection to the marker's master never gives by itself.
    const values: string[] = [];
    const secondFailed = Promise.withResolvers<void>();
    const firstHeld = Promise.withResolvers<void>();
    const redis = new Proxy(client, {
      get(target, property) {
        const value: unknown = Reflect.get(target, property, target);
        if (typeof value !== "function") return value;
        if (property !== "set") return value.bind(target);
        return async (key: string, marker: string) => {
          values.push(marker);
          if (values.length === 1) {
            firstHeld.resolve();
            await secondFailed.promise;
            return await target.set(key, marker);
          }
          return await target.set(key, marker).finally(() => secondFailed.resolve());
        };
      },
    });
    const link = new RedisLink(cluster.url, undefined, Date.now, () => true, true);
    const sharing = new CooldownSharing({
      redis,
      subscriber: { subscribe: async () => undefined, on: () => undefined },
      availability: new AvailabilityBook(systemClock, buildConfig({}, undefined, { env: {} }).config.cooldowns),
      link,
      keyPrefix: prefix,
      clock: systemClock,
      instanceId: "one",
      onRemoteReset: () => undefined,
      loadShared: async () => undefined,
    });
    t.after(() => sharing.stop());
    await markerMaster.kill();
    const [earlier, later] = [new Set<string>(), new Set<string>()];
    const first = sharing.resetShared(earlier);
    await firstHeld.promise;
    await Promise.all([first, sharing.resetShared(later)]);
    assert.equal(values.length, 2);
    assert.ok(earlier.size > 0 && later.size > 0, "both SETs failed on the dead master");
    await markerMaster.restart();
    const reader = new Cluster([{ host: "127.0.0.1", port: markerMaster.port }], { lazyConnect: true });
    await closeWhenTestEnds(t, () => reader.disconnect());
    await reader.connect();
    // Before 2026-12-07 the first reset cancelled the later's retry and its own gave up: no marker, ever.
    let marker: string | null = null;
    for (const until = Date.now() + 10_000; marker === null && Date.now() < until; await sleep(200)) {
      marker = await reader.get(resetMarkerKey(prefix)).catch(() => null);
    }
    assert.equal(marker, values[1], "the later reset's marker stored");
  });
});
