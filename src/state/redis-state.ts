// The Redis state backend: budgets (RedisLedger), cooldowns (CooldownSharing), learned facts (LearnedFactSharing)
// and refused features (RefusalSharing) shared by every gateway process that points at the same Redis and key
// prefix. Redis being down never fails a request: the gateway serves from local state, reports `isDegraded` in
// /health, and resynchronises when Redis is back. See docs/limits.md.

import { randomBytes } from "node:crypto";
import type { Cluster } from "ioredis";
import type { Clock } from "../clock.ts";
import type { StateSettings } from "../config/types.ts";
import type { AvailabilityBook } from "../limits/availability.ts";
import type { PromptCalibration } from "../limits/prompt-calibration.ts";
import type { RefusedFeatures } from "../limits/refused-features.ts";
import { statedRuleOf } from "./learned-fact-shapes.ts";
import { RedisAnswerRows } from "./redis-answer-rows.ts";
import { CalibrationSharing } from "./redis-calibration.ts";
import { RedisChunkedBatches } from "./redis-chunked-batches.ts";
import {
  closeClient,
  connectWithin,
  createCommandClient,
  createSubscriberClient,
  seedNode,
  subscriberOptions,
} from "./redis-client.ts";
import { ClusterSubscriber, nodesOf } from "./redis-cluster-subscriber.ts";
import { CooldownSharing } from "./redis-cooldowns.ts";
import { RedisDataEpoch } from "./redis-data-epoch.ts";
import { DeploymentForgets } from "./redis-deployment-forgets.ts";
import { probeKey } from "./redis-keys.ts";
import { LearnedFactSharing, type LearnedFactsLoadStart } from "./redis-learned-facts.ts";
import { RedisLedger } from "./redis-ledger.ts";
import { describeRedisUrl, RedisLink } from "./redis-link.ts";
import { MasterEpochs } from "./redis-master-epochs.ts";
import type { RefusalsLoadStart } from "./redis-refusal-load.ts";
import { RefusalSharing } from "./redis-refused-features.ts";
import { type SharedKeys, walkSharedKeys } from "./redis-shared-keys.ts";
import type { StateBackend, StateLogger } from "./state-types.ts";

/** ms between PINGs while Redis is marked down on a connection that is still open (hung or overloaded Redis). */
const PROBE_INTERVAL_MS = 1_000;
/**
 * ms a close waits, at most, for the ledger's last writes (leases given back, reconciles) to be answered before it
 * closes the connection.
 */
const EXIT_WRITES_WAIT_MS = 1_000;
/** ms start-up waits, at most, for the cooldown channel's subscription once Redis answered. */
const SUBSCRIBE_WAIT_MS = 2_000;

export interface RedisStateOptions {
  /** Lease lifetime of concurrency slots; tests shorten it. */
  readonly leaseTtlMs?: number;
  /** ms a once-write's marker lives (redis-once-writes.ts); tests shorten it. */
  readonly onceMarkerMs?: number;
  /** How long start-up waits for the cooldown channel's subscription (default SUBSCRIBE_WAIT_MS); tests shorten it. */
  readonly subscribeWaitMs?: number;
  /** The runtime's prompt calibrations: loaded from Redis at start, written back as they are learned. */
  readonly calibration?: PromptCalibration;
  /**
   * The runtime's refused features: shared as they are learned and cleared, loaded at start and reconnect, reset when
   * another process resets the shared state.
   */
  readonly refusedFeatures?: RefusedFeatures;
}

export async function createRedisStateBackend(
  settings: StateSettings,
  availability: AvailabilityBook,
  clock: Clock,
  logger: StateLogger | undefined,
  options: RedisStateOptions = {},
): Promise<StateBackend & { readonly ledger: RedisLedger }> {
  const url = settings.redisUrl;
  if (url === undefined) throw new Error("createRedisStateBackend needs state.redis_url");
  const isCluster = settings.redisCluster === true;
  const redis = createCommandClient(url, isCluster, settings.redisCommandTimeoutMs);
  // On a Cluster, a connection to one node at a time, moved to another node when it drops (any node hears a
  // PUBLISH), among the nodes the command connection knows.
  const subscriber = isCluster
    ? new ClusterSubscriber(seedNode(url), () => nodesOf(redis), subscriberOptions(url))
    : createSubscriberClient(url);
  const startupLogger = new StartupLogger(logger);
  const link = new RedisLink(
    isCluster ? `${describeRedisUrl(url)} (cluster)` : describeRedisUrl(url),
    startupLogger,
    () => clock.now(),
    () => redis.status === "ready",
    isCluster,
    isCluster ? (slot) => (redis as Cluster).slots[slot]?.[0] : undefined,
  );
  const instanceId = randomBytes(6).toString("hex");
  const epoch = new RedisDataEpoch(redis, settings.redisKeyPrefix);
  const masterEpochs = new MasterEpochs(redis, settings.redisKeyPrefix, epoch);
  const ledger = new RedisLedger({
    redis,
    link,
    keyPrefix: settings.redisKeyPrefix,
    clock,
    dataEpoch: epoch,
    instanceId,
    ...(options.leaseTtlMs === undefined ? {} : { leaseTtlMs: options.leaseTtlMs }),
    ...(options.onceMarkerMs === undefined ? {} : { onceMarkerMs: options.onceMarkerMs }),
  });
  const calibration =
    options.calibration === undefined
      ? undefined
      : new CalibrationSharing(redis, link, settings.redisKeyPrefix, options.calibration);
  const forgets = new DeploymentForgets(redis, settings.redisKeyPrefix, clock);
  // Learned facts (a context refusal's lesson, a stated concurrency or rate limit) are shared as they are learned, on
  // the cooldown channel (redis-learned-facts.ts).
  const facts = new LearnedFactSharing({
    redis,
    link,
    keyPrefix: settings.redisKeyPrefix,
    clock,
    instanceId,
    calibration: options.calibration,
    forgets,
    adoptConcurrency: (scopeId, learned) => ledger.adoptLearnedConcurrency(scopeId, learned),
    adoptRules: (scopeId, rules) => ledger.adoptStatedRules(scopeId, rules),
    adoptForgottenLimits: (scopeId) => ledger.adoptForgottenStated(scopeId),
    onEvidenceStored: (deploymentKey) => calibration?.noteStored(deploymentKey),
  });
  ledger.onConcurrencyLearned = (scopeId, learned) => facts.share({ kind: "concurrency", scopeId, learned });
  ledger.onRulesLearned = (scopeId, rules) => {
    for (const learned of rules) {
      const rule = statedRuleOf(learned);
      if (rule !== undefined) facts.share({ kind: "rate", scopeId, rule, learnedAtMs: clock.now() });
    }
  };
  ledger.onForget = (scopeId) => facts.forget(scopeId);
  options.calibration?.onLesson((lesson) => facts.share({ kind: "context", lesson }));
  options.calibration?.onForget((deploymentKey) => {
    calibration?.forgotten(deploymentKey);
    facts.forgetDeployment(deploymentKey);
  });
  const refusals =
    options.refusedFeatures === undefined
      ? undefined
      : new RefusalSharing({
          redis,
          link,
          keyPrefix: settings.redisKeyPrefix,
          clock,
          instanceId,
          refusedFeatures: options.refusedFeatures,
          forgets,
        });
  const cooldowns = new CooldownSharing({
    redis,
    subscriber,
    availability,
    link,
    keyPrefix: settings.redisKeyPrefix,
    clock,
    instanceId,
    onRemoteReset: () => {
      ledger.resetLocal();
      options.refusedFeatures?.reset();
    },
    onLearned: (fact) => {
      facts.receive(fact);
      refusals?.receive(fact);
    },
    loadShared: () => loadShared(),
  });
  // The stored refused features go before the reset is published: a replica that hears it and loads at once finds
  // none of them.
  ledger.onReset = async (unreached) => {
    await refusals?.resetShared(unreached);
    await cooldowns.resetShared(unreached);
  };
  // Everything shared is loaded after one walk of the key space (redis-shared-keys.ts), the cooldowns first: a missed
  // reset the cooldowns' load applies would clear the lessons loaded before it. The lessons' loads replace this
  // process's copies by what is stored, unless Redis lost its data since it last looked: then they only add, and this
  // process writes again what it holds (redis-data-epoch.ts). One at a time: when Redis comes back, the command
  // connection's resync and the subscriber's both load, and one that found the data set the same must not drop what
  // the other is still writing again. A node whose SCAN failed (a Cluster master down): what the others hold is
  // loaded, nothing is dropped, and its error is thrown at the end.
  let sharedLoaded: Promise<void> = Promise.resolve();
  const loadSharedNow = async (): Promise<void> => {
    // What the loads compare what is stored against, before the walk: a lesson written after the walk passed its
    // key is then newer than this, and kept.
    cooldowns.beginLoad();
    const began = { facts: facts.beginLoad(), refusals: refusals?.beginLoad(), masterLosses: masterEpochs.lossesFound };
    const keys = await walkSharedKeys(redis, settings.redisKeyPrefix);
    await cooldowns.load(keys);
    await loadLessons(keys, began);
  };
  const loadLessons = async (keys: SharedKeys, began: LoadsBegan): Promise<void> => {
    // A Cluster master that lost its data (redis-master-epochs.ts) is taken as a loss of all of it: found by this
    // load's read or by another since the walk began (that master's return, writing its lessons again meanwhile).
    const [wholeSet] = await Promise.all([epoch.check(), masterEpochs.lostSlots()]);
    const isMasterLost = masterEpochs.lossesFound > began.masterLosses;
    const dataSet = wholeSet === "same" && isMasterLost ? "new" : wholeSet;
    // The forgets this process did not hear, first: after Redis lost its data, their markers are all that tells what
    // another replica forgot since, and the pushes below would store it again for everyone (redis-deployment-forgets.ts).
    const isApplyingForgets = dataSet !== "first";
    let failure = keys.failure;
    const unknownForgets = await forgets.unknown(keys.deploymentForgets);
    refusals?.applyForgets(unknownForgets.refusals, isApplyingForgets);
    const forgottenCalibrations = facts.applyDeploymentForgets(unknownForgets.calibration, isApplyingForgets);
    // What this process's flush wrote back of them while it was not hearing (CalibrationSharing.dropWrittenBack).
    await calibration?.dropWrittenBack(forgottenCalibrations).catch((error: unknown) => {
      failure ??= { error };
    });
    if (dataSet === "new") {
      facts.pushWindows();
      await Promise.all([refusals?.pushAll(), calibration?.pushAll()]);
    }
    const isReplacing = dataSet === "same";
    // allSettled: a load that fails (a Cluster master down) must not end this one while the other still runs, or
    // the next queued load would start beside it; the first failure is thrown once both have settled.
    const loads = await Promise.allSettled([
      facts.load(keys, began.facts, isReplacing, isApplyingForgets),
      refusals === undefined || began.refusals === undefined
        ? undefined
        : refusals.load(keys, began.refusals, isReplacing),
    ]);
    const failedLoad = loads.find((load) => load.status === "rejected");
    if (failedLoad !== undefined) throw failedLoad.reason;
    if (isReplacing) await calibration?.reconcile();
    if (failure !== undefined) throw failure.error;
  };
  const loadShared = (): Promise<void> => {
    const loading = sharedLoaded.then(loadSharedNow, loadSharedNow);
    sharedLoaded = loading.catch(() => undefined);
    return loading;
  };

  const subscribed = cooldowns.start();
  // Every time Redis (re)appears: share what was set locally meanwhile, then take what the others shared. The
  // load waits for the subscription (up to SUBSCRIBE_WAIT_MS): a cooldown published between a load that ran first
  // and the SUBSCRIBE would be in neither, lost to this process until it expired (redis-ledger.test.ts holds a
  // SUBSCRIBE back to show it). Should the subscription come later than that, CooldownSharing loads once more.
  const subscribeWaitMs = options.subscribeWaitMs ?? SUBSCRIBE_WAIT_MS;
  let resyncing: Promise<void> = Promise.resolve();
  link.onUp(() => {
    resyncing = (async () => {
      try {
        await cooldowns.pushLocal();
        await facts.pushLocal();
        await refusals?.pushLocal();
        await untilOrAfter(subscribed, subscribeWaitMs);
        await loadShared();
        await ledger.replayUnsynced();
        ledger.renewLeases();
      } catch (error) {
        link.recordFailure(error);
      }
    })();
  });
  redis.on("ready", () => link.markUp());
  // A Cluster whose ready check or slot map failed at start-up (CLUSTER INFO or SLOTS past the command timeout) errs,
  // closes, connects again ~100 ms later: still connecting, not unreachable (start-up says so if it never gets ready).
  let isConnecting = true;
  redis.on("close", () => isConnecting || link.markDown(undefined));
  redis.on("error", (error: unknown) => isConnecting || link.markDown(error));
  // The subscriber's errors are the command connection's, reported there; without a listener ioredis prints them.
  subscriber.on("error", () => {});

  ledger.start();
  calibration?.start(settings.flushIntervalMs);
  // A Cluster master that is down (redis-slot-groups.ts) is asked whether it answers, by a key in a slot of its.
  // A master back empty (or a replica promoted without the last writes): its data set is new, handled as a loss of
  // all of Redis's data: the lessons written again, the give-backs of batches begun before left out of their replay.
  link.onGroupUp(() => {
    ledger.replayUnsynced().catch(() => {});
    void masterEpochs
      .lostSlots()
      .catch(() => [])
      .then(async (lostSlots) => {
        ledger.replayKeptWrites();
        ledger.renewLeases();
        if (lostSlots.length === 0) return;
        facts.pushWindows();
        await Promise.all([refusals?.pushAll(), calibration?.pushAll()]);
      })
      .catch(() => {});
  });
  const probe = setInterval(() => {
    if (redis.status !== "ready") return;
    const down = link.isUp ? link.downGroups() : [];
    // A replica may have taken a down master's slots: the cluster connection learns of it from a MOVED reply or a
    // closed connection only, and a hung master gives neither (its probes timed out on the old address for as long as
    // it hung). Its slot table asked again: the probes and the grouping (redis-slot-groups.ts) follow the new master.
    if (isCluster && down.length > 0) (redis as Cluster).refreshSlotsCache();
    for (const group of down) {
      redis.exists(probeKey(settings.redisKeyPrefix, group.probeTag)).then(
        () => link.probed(group.id),
        (error: unknown) => link.probed(group.id, error ?? new Error("probe failed")),
      );
    }
    if (link.isUp) return;
    redis.ping().then(
      () => link.markUp(),
      () => {},
    );
  }, PROBE_INTERVAL_MS);
  probe.unref();

  subscriber.connect().catch(() => {
    // retried in the background; the command connection reports the outage
  });
  try {
    await connectWithin(redis).finally(() => (isConnecting = false));
    // A Cluster resolves connect() before it emits "ready"; mark it up here so the resync below has started.
    if (redis.status === "ready") link.markUp();
    // Serve the first request knowing the cooldowns the other processes already found, and hearing the ones they
    // find from now on; and with the prompt calibrations they learned (only now: a later load would replace what
    // this process learned since with older evidence).
    await resyncing;
    await calibration?.load().catch(() => 0);
  } catch (error) {
    // Start anyway, from local state; ioredis keeps reconnecting in the background.
    link.markDown(error);
  }
  startupLogger.started();

  const answerRows = new RedisAnswerRows(
    () => createCommandClient(url, isCluster, settings.redisCommandTimeoutMs),
    settings.redisKeyPrefix,
  );
  return {
    ledger,
    chunkedBatches: new RedisChunkedBatches(redis, link, settings.redisKeyPrefix, clock),
    answerRows,
    status: () => link.status(),
    keptWritesDropped: () => link.keptWritesDropped(),
    close: async () => {
      clearInterval(probe);
      calibration?.stop();
      await Promise.all([calibration?.flush(), untilOrAfter(ledger.settleBeforeExit(), EXIT_WRITES_WAIT_MS)]);
      cooldowns.stop();
      facts.stop();
      refusals?.stop();
      ledger.stop();
      link.close();
      await Promise.all([closeClient(redis), closeClient(subscriber), answerRows.close()]);
    },
    // Charges reach Redis as they are made; what is queued is the prompt calibrations' batch (CalibrationSharing),
    // and the writes of the ledger that are not answered yet (leases given back, the reconciles of requests the exit
    // ended): the caller bounds the wait.
    writeBeforeExit: async () => {
      calibration?.stop();
      await Promise.all([calibration?.flush(), ledger.settleBeforeExit()]);
    },
    // Every shared counter key carries a PEXPIRE of its window (redis-lua.ts): a scope nobody charges expires.
    pruneUnconfigured: () => 0,
  };
}

/**
 * The gateway attaches its logger after the state backend is built (the server is built from the runtime), so
 * lines logged while starting are held and written one turn of the event loop after `start` returns.
 */
class StartupLogger implements StateLogger {
  readonly #logger: StateLogger | undefined;
  #held: (() => void)[] | undefined = [];

  constructor(logger: StateLogger | undefined) {
    this.#logger = logger;
  }

  info(object: object, message: string): void {
    this.#write(() => this.#logger?.info(object, message));
  }

  warn(object: object, message: string): void {
    this.#write(() => this.#logger?.warn(object, message));
  }

  started(): void {
    const held = this.#held ?? [];
    this.#held = undefined;
    if (held.length === 0) return;
    setImmediate(() => {
      for (const write of held) write();
    });
  }

  #write(write: () => void): void {
    if (this.#held === undefined) write();
    else this.#held.push(write);
  }
}

/** What each lesson's load compares what is stored against, taken before the load's walk. */
interface LoadsBegan {
  readonly facts: LearnedFactsLoadStart;
  readonly refusals: RefusalsLoadStart | undefined;
  readonly masterLosses: number;
}

/** Waits for `promise` (which never rejects), or `ms` at most. */
async function untilOrAfter(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
