// The Redis-shared state against a real 3-master Redis Cluster started by the test: every key one script touches
// carries its provider's hash tag (so the scripts run, one slot each), scopes of different providers live on
// different masters, budgets stay exact across processes, SCAN-based loads and resets reach every master (learned
// facts and refused features too), and a master killed mid-run never fails a reserve.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Cluster } from "ioredis";
import {
  isRedisClusterAvailable,
  REDIS_CLUSTER_MISSING,
  type RedisCluster,
  useRedisCluster,
} from "../../test/helpers/redis-cluster.ts";
import { systemClock } from "../clock.ts";
import { UTC_MIDNIGHT } from "../config/day-reset.ts";
import { buildConfig } from "../config/load.ts";

const COOLDOWN_DEFAULTS = buildConfig({}, undefined, { env: {} }).config.cooldowns;

import { AvailabilityBook } from "../limits/availability.ts";
import { audioRulesFromLimits, type BudgetScope, isReservation, rulesFromLimits } from "../limits/budgets.ts";
import { PromptCalibration } from "../limits/prompt-calibration.ts";
import { RefusedFeatures } from "../limits/refused-features.ts";
import { scanKeys } from "./redis-client.ts";
import { dataEpochKey, refusedFeaturesKey, refusedFeaturesStart, resetMarkerKey } from "./redis-keys.ts";
import { walkSharedKeys } from "./redis-shared-keys.ts";
import { createRedisStateBackend } from "./redis-state.ts";

const skip = isRedisClusterAvailable() ? false : REDIS_CLUSTER_MISSING;
const PROVIDERS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"];

/**
 * A process's state backend on the cluster. The command timeout is 2 s, as in the standalone tests: with a short
 * one a loaded machine marks Redis down, and a cooldown set meanwhile stays local until the link is back (a test
 * of sharing then fails by timing, not by a bug). The master-kill test passes a short one.
 */
async function startBackend(
  t: TestContext,
  cluster: RedisCluster,
  prefix = "cluster:",
  commandTimeoutMs = 2_000,
  calibration?: PromptCalibration,
  refusedFeatures?: RefusedFeatures,
) {
  const availability = new AvailabilityBook(systemClock, COOLDOWN_DEFAULTS);
  const warnings: string[] = [];
  const logger = {
    info: () => {},
    warn: (_object: object, message: string) => warnings.push(message),
  };
  const state = await createRedisStateBackend(
    {
      path: "",
      redisUrl: cluster.url,
      redisKeyPrefix: prefix,
      redisCluster: true,
      flushIntervalMs: 1_000,
      redisCommandTimeoutMs: commandTimeoutMs,
    },
    availability,
    systemClock,
    logger,
    {
      ...(calibration === undefined ? {} : { calibration }),
      ...(refusedFeatures === undefined ? {} : { refusedFeatures }),
    },
  );
  t.after(() => state.close());
  return { state, availability, warnings };
}

type Backend = Awaited<ReturnType<typeof startBackend>>;

/**
 * Two processes on one pool of 300 tokens a minute: 250 reserved by the first refuse 100 more to the second; once
 * the first reconciles to 40 used, the second gets 260 and then nothing. Returns the first refusal.
 */
async function assertSharedTokens(first: Backend, second: Backend, scopes: BudgetScope[], nowMs: number) {
  const reserved = await first.state.ledger.reserve(scopes, { tokens: 250 }, nowMs);
  assert.ok(isReservation(reserved));
  const tooMuch = await second.state.ledger.reserve(scopes, { tokens: 100 }, nowMs + 1);
  assert.ok(!isReservation(tooMuch) && !tooMuch.isAllowed);
  assert.equal(tooMuch.reason, "over its tpm budget (250/300 tokens, needs 100)");
  first.state.ledger.reconcile(reserved, 40, nowMs + 2);
  await sleep(50);
  assert.ok(isReservation(await second.state.ledger.reserve(scopes, { tokens: 260 }, nowMs + 3)));
  const full = await second.state.ledger.reserve(scopes, { tokens: 1 }, nowMs + 4);
  assert.ok(!isReservation(full) && !full.isAllowed);
  assert.equal(full.reason, "over its tpm budget (300/300 tokens, needs 1)");
  return tooMuch;
}

function scope(id: string, limits: Parameters<typeof rulesFromLimits>[0]): BudgetScope {
  return { id, ...rulesFromLimits(limits), dayReset: UTC_MIDNIGHT };
}

function audioScope(id: string, limits: Parameters<typeof audioRulesFromLimits>[0]): BudgetScope {
  return { id, rules: audioRulesFromLimits(limits), concurrency: undefined, dayReset: UTC_MIDNIGHT };
}

async function adminClient(t: TestContext, cluster: RedisCluster): Promise<Cluster> {
  const port = cluster.nodes[0]?.port ?? 0;
  const client = new Cluster([{ host: "127.0.0.1", port }], { lazyConnect: true });
  t.after(() => client.disconnect());
  await client.connect();
  return client;
}

/**
 * Every key under `prefix`, per master port; not the data set's epoch (redis-data-epoch.ts), which is meant to outlive
 * an admin reset.
 */
async function keysPerNode(cluster: RedisCluster, client: Cluster, prefix: string): Promise<Map<number, string[]>> {
  const result = new Map<number, string[]>();
  for (const node of client.nodes("master")) {
    // The data epoch and its per-master sentinels (redis-master-epochs.ts) are never deleted.
    const keys = (await node.keys(`${prefix}*`)).filter((key) => !key.startsWith(dataEpochKey(prefix)));
    const port = cluster.nodes.find((candidate) => candidate.port === node.options.port)?.port ?? -1;
    if (keys.length > 0) result.set(port, keys);
  }
  return result;
}

/** `from` records a 429 on `deployment` (`provider/model`); `to` must skip it within `timeoutMs`. */
async function coolAndHear(from: Backend, to: Backend, deployment: string, what: string, timeoutMs = 3_000) {
  from.availability.recordRateLimited(deployment, { delayMs: 30_000 }, "rate_limited", "HTTP 429");
  const provider = deployment.split("/")[0] as string;
  await waitFor(() => !to.availability.peek(deployment, provider).isAvailable, timeoutMs, what);
}

async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

describe("Redis Cluster (3 masters)", { skip }, () => {
  test("budgets stay exact across two processes, each provider's scopes in one slot, providers on every master", async (t) => {
    const cluster = await useRedisCluster(t);
    const first = await startBackend(t, cluster);
    const second = await startBackend(t, cluster);
    const client = await adminClient(t, cluster);
    const nowMs = Date.now();
    for (const provider of PROVIDERS) {
      const pool = scope(`provider:${provider}`, { rpm: 5, tpm: 1_000, concurrency: 10 });
      const own = scope(`deployment:${provider}/m`, { rps: 100, rpd: 100, tph: 10_000 });
      const results = [];
      for (let index = 0; index < 12; index++) {
        const ledger = (index % 2 === 0 ? first : second).state.ledger;
        results.push(await ledger.reserve([pool, own], { tokens: 50 }, nowMs + index));
      }
      assert.equal(results.filter((result) => isReservation(result)).length, 5, provider);
      const denied = results[5];
      assert.ok(denied !== undefined && !isReservation(denied) && !denied.isAllowed);
      assert.equal(denied.reason, "over its rpm budget (5/5)");
      assert.equal(denied.retryAtMs, nowMs + 60_000);
    }
    // The keys of one provider (pool and deployment scopes) share a node; the providers spread over all three.
    const perNode = await keysPerNode(cluster, client, "cluster:");
    assert.equal(perNode.size, 3, `keys on ${[...perNode.keys()].join(", ")}`);
    for (const provider of PROVIDERS) {
      const holders = [...perNode].filter(([, keys]) => keys.some((key) => key.includes(`{${provider}}`)));
      assert.equal(holders.length, 1, `${provider} on ${holders.map(([port]) => port).join(", ")}`);
      const [, keys] = holders[0] ?? [0, []];
      assert.ok(keys.some((key) => key.includes(`deployment:${provider}/m`)));
      assert.ok(keys.some((key) => key.includes(`provider:${provider}:`)));
    }
    assert.equal(first.state.status().isDegraded, false);
    assert.deepEqual(first.warnings, []);
  });

  test("audio seconds: the pool's and the model's #audio scopes in the provider's slot, one script, shared exactly", async (t) => {
    const cluster = await useRedisCluster(t);
    const first = await startBackend(t, cluster);
    const second = await startBackend(t, cluster);
    const client = await adminClient(t, cluster);
    const nowMs = Date.now();
    for (const provider of PROVIDERS.slice(0, 4)) {
      // As pipeline/snapshot.ts builds them: `provider:<name>#audio` and `deployment:<key>#audio`.
      const pool = audioScope(`provider:${provider}#audio`, { ash: 100 });
      const own = audioScope(`deployment:${provider}/whisper#audio`, { ash: 1_000 });
      assert.ok(isReservation(await first.state.ledger.reserve([pool, own], { tokens: 60 }, nowMs)), provider);
      const over = await second.state.ledger.reserve([pool, own], { tokens: 60 }, nowMs + 1);
      assert.ok(!isReservation(over) && !over.isAllowed, `${provider}: the second process saw the first's seconds`);
      assert.equal(over.reason, "over its ash budget (60/100 audio seconds, needs 60)");
    }
    // Every key of a provider's audio scopes (pool and model) sits on one node, under the provider's own tag.
    const perNode = await keysPerNode(cluster, client, "cluster:");
    for (const provider of PROVIDERS.slice(0, 4)) {
      const holders = [...perNode].filter(([, keys]) => keys.some((key) => key.includes(`${provider}#audio`)));
      assert.equal(holders.length, 1, `${provider} on ${holders.map(([port]) => port).join(", ")}`);
      const [, keys] = holders[0] ?? [0, []];
      const audioKeys = keys.filter(
        (key) => key.includes(`${provider}#audio`) || key.includes(`${provider}/whisper#audio`),
      );
      assert.ok(audioKeys.some((key) => key.includes(`provider:${provider}#audio:`)));
      assert.ok(
        audioKeys.every((key) => key.includes(`{${provider}}`)),
        audioKeys.join(", "),
      );
    }
    assert.equal(first.state.status().isDegraded, false);
    assert.deepEqual([...first.warnings, ...second.warnings], []);
  });

  test("a request of several upstream calls counts them all on the provider's node (pool and model in one slot)", async (t) => {
    const cluster = await useRedisCluster(t);
    const first = await startBackend(t, cluster);
    const second = await startBackend(t, cluster);
    const nowMs = Date.now();
    for (const provider of PROVIDERS.slice(0, 3)) {
      const pool = scope(`provider:${provider}-guard`, { rpm: 5 });
      const own = scope(`deployment:${provider}-guard/llama-guard-4`, { rpd: 100 });
      assert.ok(isReservation(await first.state.ledger.reserve([pool, own], { tokens: 1, requests: 3 }, nowMs)));
      const three = await second.state.ledger.reserve([pool, own], { tokens: 1, requests: 3 }, nowMs + 1);
      assert.ok(!isReservation(three) && !three.isAllowed, provider);
      assert.equal(three.reason, "over its rpm budget (3/5, needs 3)");
      assert.ok(isReservation(await second.state.ledger.reserve([pool, own], { tokens: 1, requests: 2 }, nowMs + 2)));
    }
    assert.deepEqual(first.warnings, []);
    assert.deepEqual(second.warnings, []);
  });

  test("a reconcile moves the shared token count (the script finds the run on the provider's node)", async (t) => {
    const cluster = await useRedisCluster(t);
    const first = await startBackend(t, cluster);
    const second = await startBackend(t, cluster);
    const pool = scope("provider:tokens", { tpm: 300 });
    const own = scope("deployment:tokens/m", { tpd: 10_000 });
    await assertSharedTokens(first, second, [pool, own], Date.now());
  });

  test("a request sent late counts from its send: the retime finds its runs on the provider's node", async (t) => {
    const cluster = await useRedisCluster(t);
    const first = await startBackend(t, cluster);
    const second = await startBackend(t, cluster);
    const pool = scope("provider:late", { rps: 1 });
    const own = scope("deployment:late/m", { rpm: 100 });
    const nowMs = Date.now();
    const slow = await first.state.ledger.reserve([pool, own], { tokens: 1 }, nowMs);
    assert.ok(isReservation(slow));
    first.state.ledger.markSent(slow, nowMs + 400);
    // A command sent later on the same node runs after the retime.
    assert.ok(
      isReservation(
        await first.state.ledger.reserve([scope("deployment:late/other", { rpm: 9 })], { tokens: 1 }, nowMs + 400),
      ),
    );
    const early = await second.state.ledger.reserve([pool, own], { tokens: 1 }, nowMs + 1_000);
    assert.ok(!isReservation(early) && !early.isAllowed, "the pool's second still holds the slow request");
    assert.equal(early.retryAtMs, nowMs + 1_400);
    assert.ok(isReservation(await second.state.ledger.reserve([pool, own], { tokens: 1 }, nowMs + 1_400)));
    assert.deepEqual(first.warnings, []);
  });

  test("give-backs and retimes of providers on every master, made in one turn: batched per provider, each exact", async (t) => {
    const cluster = await useRedisCluster(t);
    const first = await startBackend(t, cluster, "batches:");
    const second = await startBackend(t, cluster, "batches:");
    const nowMs = Date.now();
    const scopesOf = (provider: string) => [
      scope(`provider:${provider}`, { tpm: 1_000 }),
      scope(`deployment:${provider}/m`, { rps: 2, rpm: 100 }),
    ];
    const reserved = await Promise.all(
      PROVIDERS.map((provider) => first.state.ledger.reserve(scopesOf(provider), { tokens: 500 }, nowMs)),
    );
    // One turn: every provider's request sent late and answered with fewer tokens (a batch per provider, each
    // in its own slot: one batch spanning the providers' masters would be refused with CROSSSLOT).
    for (const reservation of reserved) {
      assert.ok(isReservation(reservation));
      first.state.ledger.markSent(reservation, nowMs + 300);
      first.state.ledger.reconcile(reservation, 100, nowMs + 300);
    }
    await first.state.ledger.settleBeforeExit();
    for (const provider of PROVIDERS) {
      const rest = await second.state.ledger.reserve(scopesOf(provider), { tokens: 900 }, nowMs + 400);
      assert.ok(isReservation(rest), `${provider}: the 400 tokens were given back on its node`);
      const full = await second.state.ledger.reserve(scopesOf(provider), { tokens: 1 }, nowMs + 1_000);
      assert.ok(!isReservation(full) && !full.isAllowed);
      // rps 2: the first request counts from its send (nowMs + 300) until nowMs + 1 300, beside the second one.
      const early = await second.state.ledger.reserve(scopesOf(provider), { tokens: 0 }, nowMs + 1_200);
      assert.ok(!isReservation(early) && early.retryAtMs >= nowMs + 1_300, `${provider}: retimed on its node`);
    }
    assert.deepEqual(first.warnings, []);
  });

  test("budget leases: taken, spent and given back on the provider's node", async (t) => {
    const cluster = await useRedisCluster(t);
    const holder = await startBackend(t, cluster, "leases:");
    const other = await startBackend(t, cluster, "leases:");
    // A sliding pool, a fixed-window and day-counted deployment: the give-back moves every kind of counter.
    const pool = scope("provider:leased", { rpm: 1_000, tpm: 10_000_000 });
    const own = scope("deployment:leased/m", { rph: 1_000_000, rpd: 1_000_000, window: "fixed" });
    const nowMs = Date.now();
    assert.ok(isReservation(await holder.state.ledger.reserve([pool, own], { tokens: 10 }, nowMs)));
    assert.equal(holder.state.ledger.leaseCount, 1, "1000 / 64: a lease of 15 beside the request");
    const fill = async (atMs: number): Promise<number> => {
      for (let admitted = 0; admitted < 2_000; admitted++) {
        if (!isReservation(await other.state.ledger.reserve([pool, own], { tokens: 10 }, atMs))) return admitted;
      }
      return assert.fail("never refused");
    };
    const before = await fill(nowMs + 1);
    // The holder's lease gives itself back after 1 s even untouched; on a slow machine that may be mid-fill.
    assert.ok(before >= 1_000 - 16, `${before} admitted beside the holder's lease`);
    await holder.state.ledger.returnLeases();
    const after = await fill(nowMs + 2);
    assert.equal(before + after, 999, "given back on the provider's node: every unit but the holder's one request");
    assert.equal(holder.warnings.length + other.warnings.length, 0, "no script failed (one slot per script)");
  });

  test("fixed windows and token buckets: counted on the provider's node, reconciled there, reopened at the minute", async (t) => {
    const cluster = await useRedisCluster(t);
    const first = await startBackend(t, cluster, "windows:");
    const second = await startBackend(t, cluster, "windows:");
    const client = await adminClient(t, cluster);
    const pool = scope("provider:windows", { tpm: 300, window: "fixed" });
    const own = scope("deployment:windows/m", { rpm: 2, tpm: 500, window: "bucket" });
    const minuteMs = Date.UTC(2026, 0, 1, 12);
    const nowMs = minuteMs + 30_000;
    const tooMuch = await assertSharedTokens(first, second, [pool, own], nowMs);
    assert.equal(tooMuch.retryAtMs, minuteMs + 60_000, "the fixed minute's end");
    // The next minute: the pool's fixed window is empty again, and the bucket has a request back (2 a minute).
    assert.ok(isReservation(await first.state.ledger.reserve([pool, own], { tokens: 10 }, minuteMs + 61_000)));
    const perNode = await keysPerNode(cluster, client, "windows:");
    const holders = [...perNode].filter(([, keys]) => keys.some((key) => key.includes("{windows}")));
    assert.equal(holders.length, 1, "one slot for the provider's keys");
    const keys = holders[0]?.[1] ?? [];
    assert.ok(keys.some((key) => key.endsWith("provider:windows:counters")));
    assert.ok(keys.some((key) => key.endsWith("deployment:windows/m:counters")));
    assert.deepEqual(first.warnings, []);
  });

  test("cooldowns are shared and loaded from every master; an admin reset clears keys on every master", async (t) => {
    const cluster = await useRedisCluster(t);
    const first = await startBackend(t, cluster, "cool:");
    const second = await startBackend(t, cluster, "cool:");
    const client = await adminClient(t, cluster);
    for (const provider of PROVIDERS) {
      first.availability.recordRateLimited(`${provider}/m`, { delayMs: 30_000 }, "rate_limited", "HTTP 429");
      assert.ok(
        isReservation(
          await first.state.ledger.reserve([scope(`provider:${provider}`, { rpd: 1 })], { tokens: 0 }, Date.now()),
        ),
      );
    }
    await waitFor(
      () => PROVIDERS.every((provider) => !second.availability.peek(`${provider}/m`, provider).isAvailable),
      3_000,
      "the published cooldowns",
    ).catch(async (error: unknown) => {
      // Say what was missing and whether it reached Redis at all (it once did not: see the next test).
      const missing = PROVIDERS.filter((provider) => second.availability.peek(`${provider}/m`, provider).isAvailable);
      const states = [first, second].map((backend) => JSON.stringify(backend.state.status()));
      const stored = [...(await keysPerNode(cluster, client, "cool:")).values()]
        .flat()
        .filter((key) => key.includes("cooldown"));
      throw new Error(
        `${String(error)}; missing ${missing.join(", ")}; states ${states.join(" ")}; warnings ${JSON.stringify([first.warnings, second.warnings])}; stored ${stored.join(" ")}`,
      );
    });
    // A process started later loads them with a SCAN of every master.
    const late = await startBackend(t, cluster, "cool:");
    for (const provider of PROVIDERS) {
      assert.equal(late.availability.cooldownOf(`${provider}/m`, provider)?.cause, "rate_limited", provider);
    }
    assert.ok((await keysPerNode(cluster, client, "cool:")).size >= 2);
    await second.state.ledger.reset();
    // Nothing is left but the reset's own marker (for a replica that did not hear it).
    const left = [...(await keysPerNode(cluster, client, "cool:")).values()].flat();
    assert.deepEqual(left, [resetMarkerKey("cool:")]);
    await waitFor(() => first.availability.peek("alpha/m", "alpha").isAvailable, 3_000, "the remote reset");
    assert.ok(
      isReservation(await late.state.ledger.reserve([scope("provider:alpha", { rpd: 1 })], { tokens: 0 }, Date.now())),
    );
  });

  test("learned facts: a stated concurrency, a stated rate and a shared window per provider, heard, loaded from every master, enforced, forgotten", async (t) => {
    const cluster = await useRedisCluster(t);
    const secondCalibration = new PromptCalibration();
    const second = await startBackend(t, cluster, "facts:", 2_000, secondCalibration);
    const teacherCalibration = new PromptCalibration();
    const teacher = await startBackend(t, cluster, "facts:", 2_000, teacherCalibration);
    const open = (provider: string): BudgetScope => scope(`deployment:${provider}/m`, {});
    for (const provider of PROVIDERS) {
      const held = await teacher.state.ledger.reserve([open(provider)], { tokens: 0 }, Date.now());
      assert.ok(isReservation(held));
      const refusal = {
        sentAtMs: Date.now(),
        kind: "concurrency",
        hintDelayMs: 0,
        stated: [],
        statedConcurrency: 1,
      } as const;
      teacher.state.ledger.learnLimits(open(provider), refusal, Date.now());
      teacher.state.ledger.release(held);
      const rph = { unit: "requests", window: "hour", limit: 5, evidence: 'body: "RPH: Limit 5"' } as const;
      teacher.state.ledger.learnLimits(
        open(provider),
        { sentAtMs: Date.now(), kind: "short", hintDelayMs: undefined, stated: [rph] },
        Date.now(),
      );
      teacherCalibration.learnTooLong(`${provider}/m`, 950, { contextTokens: 1_000, maxOutputTokens: 100 }, 100);
    }
    const knowsAll = (backend: Backend, calibration: PromptCalibration): boolean =>
      PROVIDERS.every(
        (provider) =>
          backend.state.ledger.learnedConcurrency(`deployment:${provider}/m`, Date.now())?.limit === 1 &&
          backend.state.ledger
            .usage(open(provider), Date.now())
            .some((window) => window.source === "learned" && window.window === "hour" && window.limit === 5) &&
          calibration.sharesWindow(`${provider}/m`),
      );
    await waitFor(() => knowsAll(second, secondCalibration), 3_000, "the published facts");
    const lateCalibration = new PromptCalibration();
    const late = await startBackend(t, cluster, "facts:", 2_000, lateCalibration);
    assert.ok(knowsAll(late, lateCalibration), "a process started later loads them from every master");
    // The stated one slot holds across processes, in each provider's slot.
    for (const provider of PROVIDERS) {
      const taken = await late.state.ledger.reserve([open(provider)], { tokens: 0 }, Date.now());
      assert.ok(isReservation(taken), provider);
      const refused = await second.state.ledger.reserve([open(provider)], { tokens: 0 }, Date.now());
      assert.ok(!isReservation(refused), `${provider}: a second request in flight beyond the stated 1`);
    }
    // A reload's forget deletes each scope's stored limits, in its provider's slot.
    const client = await adminClient(t, cluster);
    const storedLimits = async () =>
      [...(await keysPerNode(cluster, client, "facts:")).values()].flat().filter((key) => /:learned-/.test(key));
    assert.equal((await storedLimits()).length, 2 * PROVIDERS.length);
    for (const provider of PROVIDERS) teacher.state.ledger.forget(`deployment:${provider}/m`);
    const deadline = Date.now() + 3_000;
    while ((await storedLimits()).length > 0) {
      if (Date.now() > deadline) assert.fail(`still stored: ${(await storedLimits()).join(" ")}`);
      await sleep(20);
    }
    assert.equal(teacher.warnings.length + second.warnings.length + late.warnings.length, 0);
  });

  test("refused features per provider: heard, loaded from every master, cleared and forgotten fleet-wide (a clearing missed is loaded), reset on every master", async (t) => {
    const cluster = await useRedisCluster(t);
    const book = () => new RefusedFeatures(3_600_000);
    const secondBook = book();
    const second = await startBackend(t, cluster, "refused:", 2_000, undefined, secondBook);
    const teacherBook = book();
    const teacher = await startBackend(t, cluster, "refused:", 2_000, undefined, teacherBook);
    for (const provider of PROVIDERS) teacherBook.learn(`${provider}/m`, "tools", "HTTP 400", Date.now());
    const refusesAllOf = (refused: RefusedFeatures, feature: string, isRefused = true): boolean =>
      PROVIDERS.every(
        (provider) => (refused.refusalOf(`${provider}/m`, [feature], Date.now()) !== undefined) === isRefused,
      );
    const refusesAll = (refused: RefusedFeatures, isRefused = true): boolean =>
      refusesAllOf(refused, "tools", isRefused);
    await waitFor(() => refusesAll(secondBook), 3_000, "the published lessons");
    const client = await adminClient(t, cluster);
    const stored = async () =>
      [...(await keysPerNode(cluster, client, "refused:")).values()]
        .flat()
        .filter((key) => /refused-features/.test(key));
    assert.equal((await stored()).length, PROVIDERS.length);
    assert.ok((await keysPerNode(cluster, client, "refused:")).size > 1, "the lessons live on several masters");
    const lateBook = book();
    const late = await startBackend(t, cluster, "refused:", 2_000, undefined, lateBook);
    assert.ok(refusesAll(lateBook), "a process started later loads them from every master");

    // A success on the second process clears each lesson everywhere, in its provider's slot.
    for (const provider of PROVIDERS) secondBook.unlearn(`${provider}/m`, ["tools"]);
    await waitFor(() => refusesAll(teacherBook, false) && refusesAll(lateBook, false), 3_000, "the clearing");
    await waitFor(async () => (await stored()).length === 0, 3_000, "the stored lessons deleted");

    // A reload's forget deletes each deployment's lessons in its provider's slot and reaches every process.
    for (const provider of PROVIDERS) teacherBook.learn(`${provider}/m`, "json_schema", "HTTP 400", Date.now());
    await waitFor(async () => (await stored()).length === PROVIDERS.length, 3_000, "the lessons to forget stored");
    await waitFor(() => PROVIDERS.every((provider) => lateBook.knows(`${provider}/m`)), 3_000, "them heard");
    for (const provider of PROVIDERS) teacherBook.forget(`${provider}/m`);
    await waitFor(async () => (await stored()).length === 0, 3_000, "the forgotten lessons deleted");
    await waitFor(
      () => PROVIDERS.every((provider) => !lateBook.knows(`${provider}/m`) && !secondBook.knows(`${provider}/m`)),
      3_000,
      "the forget heard",
    );

    // Cleared while every subscriber is cut off: each process drops it once it subscribed again and reloaded.
    for (const provider of PROVIDERS) teacherBook.learn(`${provider}/m`, "images", "HTTP 400", Date.now());
    await waitFor(() => refusesAllOf(lateBook, "images"), 3_000, "the lessons to clear heard");
    // No node takes a new connection (`maxclients` is the number it has) until the clearing is stored: the
    // subscribers cannot come back before.
    const masters = client.nodes("master");
    const maxClients = await Promise.all(masters.map(async (node) => (await node.config("GET", "maxclients"))[1]));
    // Every master is closed before any subscriber is cut: cut on one master, a subscriber reconnects to another,
    // and caught there between connecting and subscribing it was counted as a normal client, left a free slot once
    // cut again, and came back before the clearing (CI, a loaded machine).
    for (const node of masters) {
      const connected = String(await node.call("CLIENT", "LIST", "TYPE", "normal"))
        .trim()
        .split("\n").length;
      await node.config("SET", "maxclients", String(connected));
    }
    for (const node of masters) await node.call("CLIENT", "KILL", "TYPE", "pubsub");
    for (const provider of PROVIDERS) teacherBook.unlearn(`${provider}/m`, ["images"]);
    await waitFor(async () => (await stored()).length === 0, 3_000, "the cleared lessons deleted");
    assert.ok(refusesAllOf(lateBook, "images"), "the clearing was heard: the test would prove nothing");
    await Promise.all(masters.map((node, index) => node.config("SET", "maxclients", maxClients[index] ?? "10000")));
    await waitFor(() => refusesAllOf(lateBook, "images", false), 5_000, "the clearing missed, then loaded");

    // The admin reset deletes the lessons on every master and reaches every process.
    for (const provider of PROVIDERS) teacherBook.learn(`${provider}/m`, "seed", "HTTP 400", Date.now());
    await waitFor(async () => (await stored()).length === PROVIDERS.length, 3_000, "the new lessons stored");
    teacherBook.reset();
    await teacher.state.ledger.reset();
    assert.deepEqual(await stored(), []);
    await waitFor(() => PROVIDERS.every((provider) => !lateBook.knows(`${provider}/m`)), 3_000, "the reset heard");
    assert.equal(teacher.warnings.length + second.warnings.length + late.warnings.length, 0);
  });

  test("a subscriber cut off subscribes again on a node and loads the cooldowns published while it was away", async (t) => {
    const cluster = await useRedisCluster(t);
    const first = await startBackend(t, cluster, "hop:");
    const second = await startBackend(t, cluster, "hop:");
    const client = await adminClient(t, cluster);
    // Every pub/sub connection on every node dropped (a pub/sub output buffer limit, `CLIENT KILL TYPE pubsub`, its
    // node going away); right after, while nobody is subscribed, the second process shares a cooldown.
    for (const node of client.nodes("master")) await node.call("CLIENT", "KILL", "TYPE", "pubsub");
    await coolAndHear(second, first, "alpha/m", "the missed cooldown");
    // And it hears the next one as it is published.
    await coolAndHear(second, first, "beta/m", "the next cooldown");
    assert.deepEqual(first.warnings, []);
  });

  test("the subscribers' node killed: they move to another node and hear the cooldowns set on the others", async (t) => {
    const cluster = await useRedisCluster(t);
    const first = await startBackend(t, cluster, "gone:");
    const second = await startBackend(t, cluster, "gone:");
    const client = await adminClient(t, cluster);
    // Both subscribers are on the seed node (the first); a cooldown of a deployment stored on another master.
    const seed = cluster.nodes[0] as (typeof cluster.nodes)[number];
    const storedElsewhere = async (deployment: string) =>
      cluster.nodeOfSlot(Number(await client.cluster("KEYSLOT", `gone:cooldown:deployment:${deployment}`))).port !==
      seed.port;
    const deployments: string[] = [];
    for (const provider of PROVIDERS) if (await storedElsewhere(`${provider}/m`)) deployments.push(`${provider}/m`);
    const [missed, next] = deployments;
    assert.ok(missed !== undefined && next !== undefined, "two deployments stored off the seed node");
    await seed.kill();
    await coolAndHear(second, first, missed, "the cooldown set while the node was going", 5_000);
    await coolAndHear(second, first, next, "the next cooldown", 5_000);
  });

  test("a scan with a master that does not answer: the other masters' keys, and the failure reported", async (t) => {
    const cluster = await useRedisCluster(t);
    const client = new Cluster([{ host: "127.0.0.1", port: cluster.nodes[0]?.port ?? 0 }], {
      lazyConnect: true,
      redisOptions: { commandTimeout: 300 },
    });
    t.after(() => client.disconnect());
    await client.connect();
    for (const provider of PROVIDERS) await client.set(`scan:{${provider}}`, "1");
    // And a shared lesson beside each (the same hash tag: the same node), for a load's walk.
    for (const provider of PROVIDERS) await client.hset(refusedFeaturesKey("scan:", `${provider}/m`), "tools", "{}");
    const stored = await keysPerNode(cluster, client, "scan:");
    const victim = cluster.nodes[1] as (typeof cluster.nodes)[number];
    const survivors = [...stored].filter(([port]) => port !== victim.port).flatMap(([, keys]) => keys);
    assert.ok((stored.get(victim.port) ?? []).length > 0 && survivors.length > 0);
    // A hung master (a killed one leaves the node list at once): its connection stays open, its SCAN times out.
    const hung = client.nodes("master").find((node) => node.options.port === victim.port);
    assert.ok(hung !== undefined);
    await hung.call("CLIENT", "PAUSE", "5000", "ALL");
    const failures: unknown[] = [];
    const found: string[] = [];
    for await (const keys of scanKeys(client, "scan:*", (error) => failures.push(error))) found.push(...keys);
    assert.deepEqual(found.sort(), survivors.sort());
    assert.equal(failures.length, 1);
    // Without a handler the failure is thrown (a reset must not report success).
    await assert.rejects(async () => {
      for await (const _keys of scanKeys(client, "scan:*")) {
        // drained
      }
    }, /timed out/);
    // A load's one walk (redis-shared-keys.ts): the other masters' lessons, and the failure for the load to throw
    // once it has adopted them (dropping nothing for not being stored).
    const walked = await walkSharedKeys(client, "scan:");
    const survivingLessons = survivors.filter((key) => key.startsWith(refusedFeaturesStart("scan:")));
    assert.ok(survivingLessons.length > 0);
    assert.deepEqual([...walked.refusedFeatures].sort(), survivingLessons.sort());
    assert.match(String(walked.failure?.error), /timed out/);
  });

  test("scripts sent in one turn for providers on different masters all run on Redis", async (t) => {
    const cluster = await useRedisCluster(t);
    const first = await startBackend(t, cluster, "turn:");
    const second = await startBackend(t, cluster, "turn:");
    const nowMs = Date.now();
    const scopesOf = (provider: string) => [scope(`provider:${provider}`, { rpm: 1 })];
    // One turn of the event loop: a reserve and a cooldown per provider (auto-pipelining batches them by node).
    const reserves = PROVIDERS.map((provider) => first.state.ledger.reserve(scopesOf(provider), { tokens: 0 }, nowMs));
    for (const provider of PROVIDERS) {
      first.availability.recordRateLimited(`${provider}/m`, { delayMs: 30_000 }, "rate_limited", "HTTP 429");
    }
    for (const result of await Promise.all(reserves)) assert.ok(isReservation(result));
    // Every one of them reached Redis: the other process finds each provider's minute used up, and every cooldown.
    for (const provider of PROVIDERS) {
      const verdict = await second.state.ledger.reserve(scopesOf(provider), { tokens: 0 }, nowMs + 1);
      assert.ok(!isReservation(verdict) && !verdict.isAllowed, `${provider}: the first process's reserve is shared`);
    }
    await waitFor(
      () => PROVIDERS.every((provider) => !second.availability.peek(`${provider}/m`, provider).isAvailable),
      3_000,
      "every cooldown",
    );
    assert.deepEqual(first.warnings, []);
  });

  test("a master killed mid-run: no reserve fails, and the fleet stays within processes × limit", async (t) => {
    const cluster = await useRedisCluster(t);
    // A short command timeout: a reserve to the dead master costs one, not 2 s.
    const processes = [
      await startBackend(t, cluster, "cluster:", 200),
      await startBackend(t, cluster, "cluster:", 200),
    ];
    const client = await adminClient(t, cluster);
    const limit = 20;
    const scopes = PROVIDERS.map((provider) => [
      scope(`provider:${provider}`, { rpm: limit }),
      scope(`deployment:${provider}/m`, { tpm: 1_000_000 }),
    ]);
    // The master holding alpha's slot dies after the first round.
    const slot = Number(await client.cluster("KEYSLOT", "{alpha}"));
    const victim = cluster.nodeOfSlot(slot);
    const allowed = new Map<string, number>(PROVIDERS.map((provider) => [provider, 0]));
    const startMs = Date.now();
    for (let round = 0; round < 30; round++) {
      if (round === 5) await victim.kill();
      const results = await Promise.allSettled(
        scopes.flatMap((pair, index) =>
          processes.map(async ({ state }) => {
            const result = await state.ledger.reserve(pair, { tokens: 10 }, startMs + round);
            if (isReservation(result)) {
              const provider = PROVIDERS[index] as string;
              allowed.set(provider, (allowed.get(provider) ?? 0) + 1);
            }
          }),
        ),
      );
      assert.deepEqual(
        results.filter((result) => result.status === "rejected"),
        [],
        `round ${round}: a reserve threw`,
      );
    }
    for (const [provider, count] of allowed) {
      // Shared while the cluster answers; each process enforces the whole limit on its own while it does not.
      assert.ok(count >= limit && count <= processes.length * limit, `${provider}: ${count} allowed`);
    }
  });

  test("a master killed while a batch of give-backs waits for it: no reserve fails, and the batch is kept for its return", async (t) => {
    const cluster = await useRedisCluster(t);
    // A short command timeout: each send to the dead master costs one, not 2 s.
    const { state, warnings } = await startBackend(t, cluster, "lost:", 200);
    const client = await adminClient(t, cluster);
    const scopesOf = (provider: string) => [
      scope(`provider:${provider}`, { tpm: 1_000 }),
      scope(`deployment:${provider}/m`, { rpm: 100 }),
    ];
    const nowMs = Date.now();
    const reserved = await state.ledger.reserve(scopesOf("alpha"), { tokens: 500 }, nowMs);
    assert.ok(isReservation(reserved));
    const nodeOf = async (provider: string) =>
      cluster.nodeOfSlot(Number(await client.cluster("KEYSLOT", `{${provider}}`)));
    const victim = await nodeOf("alpha");
    let other = "beta";
    for (const provider of PROVIDERS) if ((await nodeOf(provider)) !== victim) other = provider;
    await victim.kill();
    // Answered late with fewer tokens: a retime and a give-back wait (10 ms) for a batch to alpha's dead master.
    state.ledger.markSent(reserved, nowMs + 300);
    state.ledger.reconcile(reserved, 100, nowMs + 300);
    // The link stays up: the other masters answer (a provider on one of them is reserved in Redis meanwhile).
    for (let round = 0; round < 3; round++) {
      const result = await state.ledger.reserve(scopesOf(other), { tokens: 10 }, nowMs + round);
      assert.ok(isReservation(result), `${other}: reserved`);
      const alpha = await state.ledger.reserve(scopesOf("alpha"), { tokens: 10 }, nowMs + 400 + round);
      assert.ok(isReservation(alpha), "alpha: reserved on the local book, no failure");
    }
    // Four resends (~4 s) fail with alpha's master down by then: the batch is kept for its return
    // (redis-cluster-kept-writes.test.ts sends it), not given up (that warning is for a batch nobody keeps).
    await waitFor(() => state.ledger.keptWriteCount === 2, 10_000, "the give-back and the retime kept");
    assert.deepEqual(
      warnings.filter((line) => /after every resend/.test(line)),
      [],
    );
  });
});
