// Reactive availability of each provider+model ("deployment"): cooldowns after 429s and parked windows,
// invalid keys, and a circuit breaker for 5xx/timeouts/connection failures. Pure: time comes from a Clock.
//
// Recovery on evidence (docs/routing.md "Recovery"): a deployment whose latest evidence is a failure (5xx,
// timeout, connection error) is "suspect": one request at a time is its probe, ranked in its normal place; while
// an attempt is in flight (also one sent before the failure) it is only a last resort. `failureThreshold`
// failures within `failureWindowMs` open the circuit: no traffic until the first probe after
// `circuitFirstProbeMs`; each failed probe doubles that pause, up to `circuitOpenMs` (the cap). Half-open lets
// exactly one probe through; its success closes the circuit and clears every failure, its failure opens it again
// for the next pause. A success clears the consecutive failures that came back before its request was sent (and
// with them the suspect state); one sent before a failure came back (a slow call, a long stream) leaves that one.
// Intermittent failures open the circuit too: `failureThreshold` failures within `failureWindowMs` that are at least
// `failureRateThreshold` of the window's verdicts, whatever successes came between them (failure-window.ts; a
// success does not erase them, only a successful probe does). A success of an attempt sent before the circuit
// opened says nothing of now and closes nothing. The pause streak outlives a recovery by
// `failureWindowMs`: a circuit that opens again that soon pauses twice as long as the last time, so a flapping
// candidate (each probe succeeds, the next requests fail) is probed ever less often instead of every few seconds.
// The file stays whole: cooldowns, circuits and the one-at-a-time rule read and write one record per deployment.
//
// A parked key (401/403, no credits) is about one key, not one provider name: the park carries a fingerprint of
// the key it was set for and applies only while the provider is configured with that key (`setProviderKeys`), so a
// fixed key is tried at once, whether the park was set here, loaded from Redis or from the embedded store.
import { createHash } from "node:crypto";
import type { Clock } from "../clock.ts";
import type { CooldownSettings } from "../config/types.ts";
import type { CooldownCause } from "../cooldown-causes.ts";
import { endNowResetStreak, isNowResetStreakOver, type NowResetStreak } from "./day-rollover.ts";
import { DirtyTracked } from "./dirty-tracked.ts";
import { FailureWindow, type WindowCounts } from "./failure-window.ts";
import { MAX_UPSTREAM_WAIT_MS } from "./reset-time.ts";

// Every cooldown cause (what a shared cooldown message may name: state/redis-cooldown-messages.ts checks by it), kept
// where observability/ reads it too.
export { COOLDOWN_CAUSES, type CooldownCause } from "../cooldown-causes.ts";

export interface Cooldown {
  readonly untilMs: number;
  readonly cause: CooldownCause;
  /** Whether the duration came from the provider (a header or body hint) or was guessed by backoff. */
  readonly source: "provider" | "guessed";
  readonly reason: string;
  /**
   * A parked key's (`keyFingerprint` of the key that was refused): the park applies only to a provider configured
   * with that key. Absent for every other cooldown, and for parks recorded before the gateway knew its keys.
   */
  readonly keyFingerprint?: string;
}

/** What `setProviderKeys` reads of a provider's settings: its name and the key it sends (the first). */
export interface ProviderKey {
  readonly name: string;
  readonly apiKeys: readonly string[];
}

/**
 * A short, non-reversible name of a key (12 hex digits of its SHA-256): enough to tell a fixed key from the parked
 * one, and safe to store in Redis or on disk, which the key itself never is.
 */
export function keyFingerprint(key: string): string {
  return createHash("sha256").update(key).digest("hex").slice(0, 12);
}

export type CircuitState = "closed" | "open" | "half_open";

/**
 * When the attempt a verdict is about was sent. Absent: now. One sent before the circuit opened does not close it;
 * one sent before the probe was claimed (a slow call, a timeout, a long stream) is not the probe's verdict and
 * neither fails the probe nor hands its slot back.
 */
export interface SentAt {
  readonly sentAtMs?: number;
}

/** How a failure is counted (`recordFailure`). */
export interface FailureEvidence extends SentAt {
  /** A stream cut after it opened: its opening's success (counted since `sentAtMs`) becomes this failure. */
  readonly replacesSuccess?: boolean;
}

/** How a success is counted (`recordSuccess`). */
export interface SuccessEvidence extends SentAt {
  /** A stream's end whose opening was already counted as a success: it adds no verdict to the window. */
  readonly isCounted?: boolean;
  /**
   * Whether the 429s' backoff is left as it is: `stream_opening`, a stream that opened (whether its provider let it
   * through is known at its end: a 429 may come in it); `rate_limited`, a whole answer its provider then said 429 after
   * (the 429 is recorded right after). Reset by either, repeated in-stream 429s were each cooled for the base again.
   */
  readonly keepsBackoff?: "stream_opening" | "rate_limited";
}

export type Availability =
  | {
      readonly isAvailable: true;
      /** This request would be the candidate's one probe: rank it in its place, ignoring its failures. */
      readonly isProbe: boolean;
      /** A suspect candidate whose probe is in flight: use it only when nothing else is ready. */
      readonly isLastResort?: boolean;
    }
  | { readonly isAvailable: false; readonly untilMs: number; readonly cause: CooldownCause; readonly reason: string };

interface DeploymentRecord {
  cooldown: Cooldown | undefined;
  consecutiveRateLimits: number;
  /**
   * When the first 429 of the current streak came back: a success of a request sent before then (a slow answer, a
   * long stream's end) says how the provider was before the streak, and does not reset its backoff.
   */
  rateLimitStreakStartedAtMs: number;
  /** Daily 429s in a row whose reset reads now (recordRateLimited's `dayEnd`). */
  readonly nowResets: NowResetStreak;
  /** Failures since the latest success, within the window (the consecutive rule, and the suspect state). */
  failureTimesMs: number[];
  /** Every verdict within the window, successes included (the failure-rate rule). */
  readonly verdicts: FailureWindow;
  circuit: CircuitState;
  circuitOpenUntilMs: number;
  /** When the circuit last opened: a success of an attempt sent before then does not close it. */
  circuitOpenedAtMs: number;
  isProbeInFlight: boolean;
  /** When the probe in flight (or the last one) was claimed: verdicts of attempts sent before are not its own. */
  probeClaimedAtMs: number;
  /**
   * Attempts admitted and without a verdict yet (a stream's is its opening), whatever the state they were sent
   * in: one sent just before a failure was recorded finds out as much about a suspect as one sent after it.
   */
  attemptsInFlight: number;
  /**
   * Consecutive failed half-open probes, and reopenings within `failureWindowMs` of a recovery: the next pause is
   * circuitFirstProbeMs × 2^streak, capped.
   */
  openStreak: number;
  /** When a success last closed an open (or half-open) circuit; a reopening soon after continues the streak. */
  recoveredAtMs: number | undefined;
}

const CIRCUIT_OPEN_REASON = "circuit open after repeated failures";

const AVAILABLE: Availability = Object.freeze({ isAvailable: true, isProbe: false });
const PROBE: Availability = Object.freeze({ isAvailable: true, isProbe: true });
const LAST_RESORT: Availability = Object.freeze({ isAvailable: true, isProbe: false, isLastResort: true });

export class AvailabilityBook extends DirtyTracked {
  readonly #clock: Clock;
  #settings: CooldownSettings;
  readonly #deployments = new Map<string, DeploymentRecord>();
  readonly #providers = new Map<string, Cooldown>();
  /** Provider name -> fingerprint of the key it is configured with; a provider not listed takes every park. */
  readonly #keys = new Map<string, string>();
  readonly #listeners: ((change: CooldownChange) => void)[] = [];

  constructor(clock: Clock, settings: CooldownSettings) {
    super();
    this.#clock = clock;
    this.#settings = settings;
  }

  updateSettings(settings: CooldownSettings): void {
    this.#settings = settings;
  }

  /**
   * The keys the providers are configured with (at start, before cooldowns are loaded, and on every reload). A
   * parked key that is no longer a provider's key is dropped: it says nothing about the key sent from now on.
   */
  setProviderKeys(providers: readonly ProviderKey[]): void {
    this.#keys.clear();
    for (const { name, apiKeys } of providers) this.#keys.set(name, keyFingerprint(apiKeys[0] ?? ""));
    for (const [name, cooldown] of this.#providers) {
      if (!this.#isForConfiguredKey(name, cooldown)) {
        this.#providers.delete(name);
        this.markDirty();
      }
    }
  }

  /** Whether a provider cooldown concerns the key the provider sends now (always, unless it is a parked key). */
  #isForConfiguredKey(providerName: string, cooldown: Cooldown): boolean {
    if (cooldown.keyFingerprint === undefined) return true;
    const configured = this.#keys.get(providerName);
    return configured === undefined || configured === cooldown.keyFingerprint;
  }

  /** Side-effect free: may this deployment be tried now? */
  peek(deploymentKey: string, providerName: string): Availability {
    const nowMs = this.#clock.now();
    const providerCooldown = this.#providers.get(providerName);
    if (providerCooldown !== undefined && providerCooldown.untilMs > nowMs) return unavailable(providerCooldown);
    const record = this.#deployments.get(deploymentKey);
    if (record === undefined) return AVAILABLE;
    if (record.cooldown !== undefined && record.cooldown.untilMs > nowMs) return unavailable(record.cooldown);
    if (record.circuit === "open") {
      if (record.circuitOpenUntilMs > nowMs) {
        return {
          isAvailable: false,
          untilMs: record.circuitOpenUntilMs,
          cause: "circuit_open",
          reason: CIRCUIT_OPEN_REASON,
        };
      }
      return record.isProbeInFlight ? probeInFlight(nowMs) : PROBE;
    }
    if (record.circuit === "half_open") {
      // Still half-open after a probe ended without a verdict (client gone, budget refused, a 429): the next
      // request is again the one probe, not a free pass for everyone.
      return record.isProbeInFlight ? probeInFlight(nowMs) : PROBE;
    }
    // Closed, but the latest evidence is a recent failure: one request at a time finds out whether it healed.
    // Once `circuitFirstProbeMs` has passed since that failure, that request is ranked as if it had not failed
    // (a probe), so that the health penalty cannot keep the candidate out for longer.
    if (this.#settings.suspectSingleFlight && this.#isSuspect(record, nowMs)) {
      if (record.isProbeInFlight || record.attemptsInFlight > 0) return LAST_RESORT;
      const lastFailureMs = record.failureTimesMs[record.failureTimesMs.length - 1] ?? 0;
      return nowMs - lastFailureMs >= this.#settings.circuitFirstProbeMs ? PROBE : AVAILABLE;
    }
    return AVAILABLE;
  }

  #isSuspect(record: DeploymentRecord, nowMs: number): boolean {
    const last = record.failureTimesMs[record.failureTimesMs.length - 1];
    return last !== undefined && last > nowMs - this.#settings.failureWindowMs;
  }

  /**
   * Like `peek`, but claims the probe slot when the candidate is half-open or suspect: the request that gets it
   * is the one attempt in flight; others see the candidate as unavailable (half-open) or a last resort (suspect).
   */
  acquire(deploymentKey: string, providerName: string): Availability {
    const availability = this.peek(deploymentKey, providerName);
    if (!availability.isAvailable || availability.isLastResort === true) return availability;
    const record = this.#deployments.get(deploymentKey);
    if (record === undefined) return availability;
    if (availability.isProbe) {
      if (record.circuit === "open") record.circuit = "half_open";
      this.#claimProbe(record);
    } else if (
      record.circuit === "closed" &&
      this.#settings.suspectSingleFlight &&
      this.#isSuspect(record, this.#clock.now())
    ) {
      this.#claimProbe(record);
    }
    return availability;
  }

  #claimProbe(record: DeploymentRecord): void {
    record.isProbeInFlight = true;
    record.probeClaimedAtMs = this.#clock.now();
  }

  /**
   * Whether a verdict may be the probe's: its attempt was sent once the probe was claimed. Without this, a request
   * sent before the circuit opened that timed out (or was refused, or whose client left) while the probe was out
   * failed the probe, or handed its slot to a second probe, and the real probe's success came back "stale".
   */
  #isProbeVerdict(record: DeploymentRecord, sentAt: SentAt): boolean {
    return (sentAt.sentAtMs ?? this.#clock.now()) >= record.probeClaimedAtMs;
  }

  /** An admitted attempt is about to be sent (counted until `attemptFinished`, for the suspect's one at a time). */
  attemptStarted(deploymentKey: string): void {
    this.#record(deploymentKey).attemptsInFlight += 1;
  }

  /** An attempt counted by `attemptStarted` has its verdict (for a stream: it opened or failed to). */
  attemptFinished(deploymentKey: string): void {
    const record = this.#deployments.get(deploymentKey);
    // A reload may have forgotten the record while the attempt was out.
    if (record !== undefined && record.attemptsInFlight > 0) record.attemptsInFlight -= 1;
  }

  /**
   * For /stats and /health: whether the deployment is suspect (circuit closed), its attempts in flight, and the
   * verdicts of the failure window (`recent`).
   */
  recoveryOf(deploymentKey: string): Recovery {
    const record = this.#deployments.get(deploymentKey);
    if (record === undefined) return { isSuspect: false, attemptsInFlight: 0, recent: NO_VERDICTS };
    const nowMs = this.#clock.now();
    const isSuspect = record.circuit === "closed" && this.#isSuspect(record, nowMs);
    const recent = record.verdicts.counts(nowMs, this.#settings.failureWindowMs);
    return { isSuspect, attemptsInFlight: record.attemptsInFlight, recent };
  }

  recordSuccess(deploymentKey: string, evidence: SuccessEvidence = {}): void {
    const nowMs = this.#clock.now();
    // Created on a first success too: the failure rate needs the successes a healthy candidate had before it failed.
    const record = this.#record(deploymentKey);
    // An answer to a request sent before the circuit opened (a long stream, a slow call) tells how the upstream was
    // then: closing on it let a provider failing half its requests back in with the next stale success.
    const isRecovery = record.circuit !== "closed" && (evidence.sentAtMs ?? nowMs) >= record.circuitOpenedAtMs;
    if (isRecovery) {
      // What the window holds is the outage's: a healed candidate is back at once. The streak is kept: whether this
      // recovery holds is known only once no reopening follows within the window.
      record.verdicts.clear();
      record.recoveredAtMs = nowMs;
    }
    if (evidence.isCounted !== true) record.verdicts.add(nowMs, this.#settings.failureWindowMs, false);
    const sentAtMs = evidence.sentAtMs ?? nowMs;
    // A stale success (sent before the 429s began) leaves the backoff growing: with one slow request in flight, a
    // stream of 429s was cooled 1 s, 2 s, then 1 s again when it came back, and the provider asked twice as often.
    // A time later than now is of a clock that stepped back since (the wall clock set back): which request came first
    // is unknown then, and the success is taken as the latest evidence, as before sent-at times were compared.
    const isStreakAfterNow = record.rateLimitStreakStartedAtMs > nowMs;
    const isAnsweringStreak = isStreakAfterNow || sentAtMs >= record.rateLimitStreakStartedAtMs;
    if (isAnsweringStreak && evidence.keepsBackoff === undefined) record.consecutiveRateLimits = 0;
    endNowResetStreak(record.nowResets, sentAtMs);
    if (record.circuit !== "closed" && !isRecovery) return;
    // Only the failures that came back before this request was sent are answered by it: one that came back after
    // it was sent is newer evidence, and keeps the deployment suspect (one request at a time) until a later success.
    const failures = record.failureTimesMs;
    const answered = failures.filter((atMs) => atMs <= sentAtMs || atMs > nowMs).length;
    const kept = isRecovery ? 0 : failures.length - answered;
    failures.splice(0, failures.length - kept);
    record.circuit = "closed";
    // The suspect's probe slot is this success's only when its attempt was the probe (sent once it was claimed), or
    // when nothing is suspect any longer.
    if (kept === 0 || this.#isProbeVerdict(record, evidence)) record.isProbeInFlight = false;
  }

  /**
   * A 429 (or equivalent). With a provider hint, cool down exactly that long; without one, exponential
   * backoff: base × 2^(n−1) for the n-th consecutive 429, capped. `dayEnd`: a daily 429 whose reset reads "now"
   * (day-rollover.ts): after NOW_RESETS_TAKEN_AS_ROLLOVER of them in a row, the next parks until `dayEnd.untilMs`.
   */
  recordRateLimited(
    deploymentKey: string,
    hint: { delayMs: number } | undefined,
    cause: CooldownCause,
    reason: string,
    sentAt: SentAt = {},
    dayEnd?: { readonly untilMs: number; readonly reason: string },
  ): Cooldown {
    const record = this.#record(deploymentKey);
    const nowMs = this.#clock.now();
    if (record.consecutiveRateLimits === 0) record.rateLimitStreakStartedAtMs = nowMs;
    record.consecutiveRateLimits += 1;
    if (this.#isProbeVerdict(record, sentAt)) record.isProbeInFlight = false;
    if (isNowResetStreakOver(record.nowResets, dayEnd?.untilMs, sentAt.sentAtMs ?? nowMs, nowMs) && dayEnd) {
      this.park(deploymentKey, dayEnd.untilMs, cause, dayEnd.reason, "guessed");
      if (record.cooldown !== undefined) return record.cooldown;
    }
    const { rateLimitBaseMs, rateLimitMaxMs } = this.#settings;
    const delayMs =
      hint === undefined
        ? Math.min(rateLimitMaxMs, rateLimitBaseMs * 2 ** Math.min(30, record.consecutiveRateLimits - 1))
        : Math.min(hint.delayMs, MAX_UPSTREAM_WAIT_MS);
    const cooldown: Cooldown = {
      untilMs: this.#clock.now() + delayMs,
      cause,
      source: hint === undefined ? "guessed" : "provider",
      reason,
    };
    // A request that was already in flight when a longer cooldown began (a daily park) may come back with a
    // short 429: it must not cut that cooldown short.
    const current = record.cooldown;
    if (current !== undefined && current.untilMs >= cooldown.untilMs) return current;
    record.cooldown = cooldown;
    this.#changed({ scope: "deployment", key: deploymentKey, cooldown });
    return cooldown;
  }

  /** Parks a deployment until a known time (remaining=0 headers, daily windows, exhausted budgets). */
  park(deploymentKey: string, until: number, cause: CooldownCause, reason: string, source: Cooldown["source"]): void {
    const untilMs = this.#bounded(until);
    const record = this.#record(deploymentKey);
    if (record.cooldown !== undefined && record.cooldown.untilMs >= untilMs) return;
    record.cooldown = { untilMs, cause, source, reason };
    this.#changed({ scope: "deployment", key: deploymentKey, cooldown: record.cooldown });
  }

  /** The provider does not serve the model: left out for `cooldowns.model_unavailable_ms`. */
  recordModelUnavailable(deploymentKey: string, reason: string): void {
    this.park(
      deploymentKey,
      this.#clock.now() + this.#settings.modelUnavailableMs,
      "model_unavailable",
      reason,
      "guessed",
    );
  }

  /** 5xx, timeouts, connection failures: feed the circuit breaker. */
  recordFailure(deploymentKey: string, sentAt: FailureEvidence = {}): void {
    const nowMs = this.#clock.now();
    const record = this.#record(deploymentKey);
    const { failureThreshold, failureWindowMs } = this.#settings;
    const isProbeVerdict = this.#isProbeVerdict(record, sentAt);
    // A failed probe is not counted in the window: it is not read while the circuit is open, and a success clears it.
    const isProbeOut = record.circuit === "half_open" || (record.circuit === "open" && record.isProbeInFlight);
    if (isProbeOut && isProbeVerdict) {
      // The probe failed: pause again, twice as long as last time (up to the cap).
      record.openStreak += 1;
      this.#open(record, nowMs);
      return;
    }
    if (isProbeVerdict) record.isProbeInFlight = false;
    const times = record.failureTimesMs;
    times.push(nowMs);
    while (times.length > 0 && (times[0] ?? 0) <= nowMs - failureWindowMs) times.shift();
    const isReplaced =
      sentAt.replacesSuccess === true &&
      record.verdicts.failSuccessSince(sentAt.sentAtMs ?? nowMs, nowMs, failureWindowMs);
    if (!isReplaced) record.verdicts.add(nowMs, failureWindowMs, true);
    const shouldOpen = times.length >= failureThreshold || this.#isFailingOften(record, nowMs);
    if (shouldOpen && record.circuit === "closed") {
      // Reopened within the failure window of its last recovery: it flaps, and its pause keeps doubling (starting
      // over at circuitFirstProbeMs let a candidate that fails three requests of four take most of the traffic).
      const recoveredAtMs = record.recoveredAtMs;
      const isFlapping = recoveredAtMs !== undefined && nowMs - recoveredAtMs < failureWindowMs;
      record.openStreak = isFlapping ? record.openStreak + 1 : 0;
      this.#open(record, nowMs);
    }
  }

  /**
   * The failure-rate rule: at least `failureThreshold` failures in the window (the minimum evidence) and at least
   * `failureRateThreshold` of its verdicts. A busy healthy candidate's rare failures are a tiny share; 1 is off.
   */
  #isFailingOften(record: DeploymentRecord, nowMs: number): boolean {
    const { failureThreshold, failureWindowMs, failureRateThreshold } = this.#settings;
    if (failureRateThreshold >= 1) return false;
    const { attempts, failures } = record.verdicts.counts(nowMs, failureWindowMs);
    return failures >= failureThreshold && failures >= failureRateThreshold * attempts;
  }

  /** Opens the circuit until the next probe: circuitFirstProbeMs × 2^openStreak, capped at circuitOpenMs. */
  #open(record: DeploymentRecord, nowMs: number): void {
    const { circuitFirstProbeMs, circuitOpenMs } = this.#settings;
    const pauseMs = Math.min(circuitOpenMs, circuitFirstProbeMs * 2 ** Math.min(30, record.openStreak));
    record.circuit = "open";
    record.circuitOpenedAtMs = nowMs;
    record.circuitOpenUntilMs = nowMs + pauseMs;
    record.isProbeInFlight = false;
  }

  /** Releases a probe slot without a verdict (e.g. the client went away), when the attempt may hold it. */
  releaseProbe(deploymentKey: string, sentAt: SentAt = {}): void {
    const record = this.#deployments.get(deploymentKey);
    if (record !== undefined && this.#isProbeVerdict(record, sentAt)) record.isProbeInFlight = false;
  }

  /**
   * 401/403: the provider's key is bad; every model of the provider cools down. `refusedKey`: the fingerprint of
   * the key the refused request sent (by default the provider's configured one). A request sent before a reload
   * changed the key parks the old key only: shared for the replicas still on it, not applied here.
   */
  recordInvalidKey(
    providerName: string,
    reason: string,
    cause: "invalid_key" | "credits_exhausted" = "invalid_key",
    refusedKey: string | undefined = this.#keys.get(providerName),
  ): void {
    const cooldown: Cooldown = {
      untilMs: this.#clock.now() + this.#settings.invalidKeyMs,
      cause,
      source: "guessed",
      reason,
      ...(refusedKey === undefined ? {} : { keyFingerprint: refusedKey }),
    };
    if (this.#isForConfiguredKey(providerName, cooldown)) this.#providers.set(providerName, cooldown);
    this.#changed({ scope: "provider", key: providerName, cooldown });
  }

  /**
   * An account-wide limit: every deployment of the provider (one key, one pool) is out until the cooldown ends,
   * without an upstream request each to find out. A longer provider cooldown already in place is kept.
   */
  coolPool(providerName: string, pooled: Cooldown): void {
    const cooldown = { ...pooled, untilMs: this.#bounded(pooled.untilMs) };
    const current = this.#providers.get(providerName);
    if (current !== undefined && current.untilMs >= cooldown.untilMs) return;
    this.#providers.set(providerName, cooldown);
    this.#changed({ scope: "provider", key: providerName, cooldown });
  }

  /** Called on every new cooldown set locally (not on imports): how replicas learn of each other's. */
  onCooldown(listener: (change: CooldownChange) => void): void {
    this.#listeners.push(listener);
  }

  #changed(change: CooldownChange): void {
    this.markDirty();
    for (const listener of this.#listeners) listener(change);
  }

  circuitState(deploymentKey: string): CircuitState {
    const record = this.#deployments.get(deploymentKey);
    if (record === undefined) return "closed";
    if (record.circuit === "open" && record.circuitOpenUntilMs <= this.#clock.now()) return "half_open";
    return record.circuit;
  }

  cooldownOf(deploymentKey: string, providerName: string): Cooldown | undefined {
    const nowMs = this.#clock.now();
    const providerCooldown = this.#providers.get(providerName);
    if (providerCooldown !== undefined && providerCooldown.untilMs > nowMs) return providerCooldown;
    const cooldown = this.#deployments.get(deploymentKey)?.cooldown;
    return cooldown !== undefined && cooldown.untilMs > nowMs ? cooldown : undefined;
  }

  /**
   * What keeps the deployment out now, for the live state (the `cooldowns_active` gauge, the dashboard's
   * countdown): its cooldown as `cooldownOf`, or else an open circuit until its next probe. `cooldownOf` leaves the
   * circuit out because /stats and the recorder report it apart from cooldowns.
   */
  liveCooldownOf(deploymentKey: string, providerName: string): Cooldown | undefined {
    const cooldown = this.cooldownOf(deploymentKey, providerName);
    if (cooldown !== undefined) return cooldown;
    const record = this.#deployments.get(deploymentKey);
    if (record === undefined || record.circuit !== "open" || record.circuitOpenUntilMs <= this.#clock.now()) {
      return undefined;
    }
    // The pause to the next probe is the breaker's backoff, not something the provider said.
    return {
      untilMs: record.circuitOpenUntilMs,
      cause: "circuit_open",
      source: "guessed",
      reason: CIRCUIT_OPEN_REASON,
    };
  }

  providerCooldown(providerName: string): Cooldown | undefined {
    const cooldown = this.#providers.get(providerName);
    return cooldown !== undefined && cooldown.untilMs > this.#clock.now() ? cooldown : undefined;
  }

  /** Forgets what is known of one deployment (a reload pointed it at another upstream or key). */
  forget(deploymentKey: string): void {
    if (this.#deployments.delete(deploymentKey)) this.markDirty();
  }

  /** Forgets a provider-wide cooldown (a reload changed the provider's key or URL). */
  forgetProvider(providerName: string): void {
    if (this.#providers.delete(providerName)) this.markDirty();
  }

  /** Clears every cooldown and circuit (admin reset). */
  reset(): void {
    this.#deployments.clear();
    this.#providers.clear();
    this.markDirty();
  }

  /** Active cooldowns, for persistence and for sharing with other replicas. */
  exportCooldowns(): PersistedCooldowns {
    const nowMs = this.#clock.now();
    const deployments: [string, Cooldown][] = [];
    for (const [key, record] of this.#deployments) {
      if (record.cooldown !== undefined && record.cooldown.untilMs > nowMs) deployments.push([key, record.cooldown]);
    }
    const providers: [string, Cooldown][] = [];
    for (const [name, cooldown] of this.#providers) if (cooldown.untilMs > nowMs) providers.push([name, cooldown]);
    return { deployments, providers };
  }

  /** Merges cooldowns (from disk or another replica); a later end wins. */
  importCooldowns(persisted: PersistedCooldowns): void {
    const nowMs = this.#clock.now();
    for (const [key, stored] of persisted.deployments) {
      if (stored.untilMs <= nowMs) continue;
      // Stored before upstream waits were bounded (or by an older replica): bounded here too.
      const cooldown = { ...stored, untilMs: this.#bounded(stored.untilMs) };
      const record = this.#record(key);
      if (record.cooldown === undefined || record.cooldown.untilMs < cooldown.untilMs) record.cooldown = cooldown;
    }
    for (const [name, stored] of persisted.providers) {
      const cooldown = { ...stored, untilMs: this.#bounded(stored.untilMs) };
      // Another key's park (a replica or a run before the key was fixed) must not park the fixed key.
      if (cooldown.untilMs <= nowMs || !this.#isForConfiguredKey(name, cooldown)) continue;
      const current = this.#providers.get(name);
      if (current === undefined || current.untilMs < cooldown.untilMs) this.#providers.set(name, cooldown);
    }
  }

  /** No cooldown lasts longer than the longest wait an upstream's word is taken for (reset-time.ts). */
  #bounded(untilMs: number): number {
    return Math.min(untilMs, this.#clock.now() + MAX_UPSTREAM_WAIT_MS);
  }

  #record(deploymentKey: string): DeploymentRecord {
    let record = this.#deployments.get(deploymentKey);
    if (record === undefined) {
      record = {
        cooldown: undefined,
        consecutiveRateLimits: 0,
        rateLimitStreakStartedAtMs: 0,
        nowResets: { count: 0, latestAtMs: 0, dayEndMs: 0 },
        failureTimesMs: [],
        verdicts: new FailureWindow(),
        circuit: "closed",
        circuitOpenUntilMs: 0,
        circuitOpenedAtMs: 0,
        isProbeInFlight: false,
        probeClaimedAtMs: 0,
        attemptsInFlight: 0,
        openStreak: 0,
        recoveredAtMs: undefined,
      };
      this.#deployments.set(deploymentKey, record);
    }
    return record;
  }
}

/** What `recoveryOf` tells /stats and /health. */
export interface Recovery {
  readonly isSuspect: boolean;
  readonly attemptsInFlight: number;
  /** Successes and failures within `failure_window_ms` (the failure-rate rule's evidence). */
  readonly recent: WindowCounts;
}

const NO_VERDICTS: WindowCounts = Object.freeze({ attempts: 0, failures: 0 });

export interface CooldownChange {
  readonly scope: "deployment" | "provider";
  readonly key: string;
  readonly cooldown: Cooldown;
}

export interface PersistedCooldowns {
  readonly deployments: readonly (readonly [string, Cooldown])[];
  readonly providers: readonly (readonly [string, Cooldown])[];
}

function probeInFlight(nowMs: number): Availability {
  return {
    isAvailable: false,
    untilMs: nowMs + 1000,
    cause: "circuit_open",
    reason: "circuit half-open: probe in flight",
  };
}

function unavailable(cooldown: Cooldown): Availability {
  return { isAvailable: false, untilMs: cooldown.untilMs, cause: cooldown.cause, reason: cooldown.reason };
}

/**
 * Whether a cooldown is a limit (429s, quotas, credits, capacity, budgets: the client may be told 429) rather
 * than the candidate failing (open circuit, rejected key: 503).
 */
export function isLimitCause(cause: CooldownCause): boolean {
  return cause !== "circuit_open" && cause !== "invalid_key" && cause !== "model_unavailable";
}
