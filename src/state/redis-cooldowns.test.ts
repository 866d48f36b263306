// Cooldown sharing against a real redis-server, for what the ledger's tests do not cover: a parked key (401/403)
// travels with its key's fingerprint, so it parks only the processes configured with that key, through pub/sub,
// the load after a reconnect and the load at start-up alike.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import {
  isRedisInstalled,
  REDIS_MISSING,
  redisStateSettings,
  useRedisServer,
} from "../../test/helpers/redis-server.ts";
import { systemClock } from "../clock.ts";
import { buildConfig } from "../config/load.ts";
import { AvailabilityBook, keyFingerprint } from "../limits/availability.ts";
import { createRedisStateBackend } from "./redis-state.ts";

/** The default cooldowns, as the config schema gives them. */
const COOLDOWN_DEFAULTS = buildConfig({}, undefined, { env: {} }).config.cooldowns;
const PREFIX = "park:";

const skip = isRedisInstalled() ? false : REDIS_MISSING;

/** A gateway process's books and state backend, its provider `alpha` configured with `apiKey`. */
async function startProcess(t: TestContext, url: string, apiKey: string): Promise<AvailabilityBook> {
  const availability = new AvailabilityBook(systemClock, COOLDOWN_DEFAULTS);
  // As the runtime does: the keys are known before the backend loads what is stored.
  availability.setProviderKeys([{ name: "alpha", apiKeys: [apiKey] }]);
  const state = await createRedisStateBackend(redisStateSettings(url, PREFIX), availability, systemClock, undefined);
  t.after(() => state.close());
  return availability;
}

async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

describe("CooldownSharing: parked keys", { skip }, () => {
  test("a parked key parks only the processes on that key: published, reloaded after a reconnect, loaded at start", async (t) => {
    const server = await useRedisServer(t);
    const admin = new Redis(server.url);
    // disconnect, not quit: the Redis server's cleanup, registered first, has stopped it by then, and a QUIT queued
    // behind a command waits through ioredis's reconnections for ever (the file never exits).
    t.after(() => admin.disconnect());
    const refused = await startProcess(t, server.url, "sk-bad");
    const stale = await startProcess(t, server.url, "sk-bad");
    const fixed = await startProcess(t, server.url, "sk-new");
    const reloaded = await startProcess(t, server.url, "sk-bad");

    refused.recordInvalidKey("alpha", "key rejected: HTTP 401");
    await waitFor(() => stale.providerCooldown("alpha") !== undefined, 2_000, "the published park");
    await waitFor(() => reloaded.providerCooldown("alpha") !== undefined, 2_000, "the published park");
    assert.equal(fixed.providerCooldown("alpha"), undefined, "a process on another key ignores the message");
    // Stored under its fingerprint, never the key.
    const stored = await admin.keys(`${PREFIX}cooldown:*`);
    assert.deepEqual(stored, [`${PREFIX}cooldown:provider:alpha:key:${keyFingerprint("sk-bad")}`]);
    assert.doesNotMatch(String(await admin.get(stored[0] ?? "")), /sk-bad/);

    // A reload fixes the key; then every connection drops, and the backend loads what Redis holds once back.
    reloaded.setProviderKeys([{ name: "alpha", apiKeys: ["sk-new"] }]);
    assert.equal(reloaded.providerCooldown("alpha"), undefined);
    // Stored without a message: only a load brings it, with the old key's park beside it.
    const pool = { untilMs: Date.now() + 60_000, cause: "rate_limited", source: "provider", reason: "pool" } as const;
    await admin.set(`${PREFIX}cooldown:deployment:alpha/m`, JSON.stringify(pool), "PX", 60_000);
    await admin.call("CLIENT", "KILL", "TYPE", "pubsub");
    await admin.call("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes");
    await waitFor(() => reloaded.cooldownOf("alpha/m", "alpha") !== undefined, 5_000, "the load after the reconnect");
    assert.equal(reloaded.providerCooldown("alpha"), undefined, "the fixed key stays unparked after the reload");

    // A process started with the fixed key (a rolling restart) never sees the park; one on the bad key does.
    assert.equal((await startProcess(t, server.url, "sk-new")).providerCooldown("alpha"), undefined);
    assert.equal((await startProcess(t, server.url, "sk-bad")).providerCooldown("alpha")?.cause, "invalid_key");

    // The old key's park does not stand in the way of the fixed key's own account-wide cooldown, shorter as it is.
    fixed.coolPool("alpha", { ...pool, reason: "account-wide limit" });
    await waitFor(() => reloaded.providerCooldown("alpha") !== undefined, 2_000, "the fixed key's pool cooldown");
    assert.equal(reloaded.providerCooldown("alpha")?.reason, "account-wide limit");
    assert.equal((await startProcess(t, server.url, "sk-new")).providerCooldown("alpha")?.reason, "account-wide limit");
  });
});
