// Budgets shared by every gateway process through Redis. `reserve` is one atomic Lua script (redis-lua.ts) and is
// authoritative: with `rpm: 10`, ten requests a minute leave the whole fleet, whichever process sends them.
//
// A local BudgetBook runs beside it as a mirror of this process's own reservations. It answers the synchronous
// `check` (route planning), `usage` and `inFlight`, and it is the fallback while Redis is unreachable. `check` is
// therefore optimistic: it knows this process's usage, plus every denial Redis gave this process until that
// denial's retry time; it does not see what other processes spent since. A candidate it lets through may still be
// denied by `reserve`, which the failover executor handles like any other skip.
//
// Concurrency slots are leases (sorted set scored by expiry) so a crashed process frees its slots after
// `leaseTtlMs`; a live process renews the leases it holds every third of that, so long streams keep theirs.
//
// While Redis is down, `reserve` charges the local book only (each process then enforces the whole limit on its
// own) and remembers those reservations; when Redis is back they are replayed into it (charged without a check),
// so the shared windows count what was sent meanwhile. A reserve that timed out may still run in Redis later: its
// fallback keeps its id, and the script's charge marker makes whichever of it and the replay comes second a no-op.
//
// Scopes whose limits are large next to one request take budget leases (redis-budget-leases.ts): the reserve
// script charges some requests and tokens beyond its own, which later reserves spend here without a round trip
// (and reconciles adjust here) until the lease ends; what is left is then given back.
//
// The class stays whole (about 900 lines): reserve (from a budget lease or through the script), reconcile, the
// give-back of calls never sent, release, lease renewal and the replay all read and change the same private state
// (reservation details, the local mirror, cached denials, the unsynced list); its pure parts (script arguments, denial
// parsing, charged runs) live in redis-script-shapes.ts, the budget leases themselves in redis-budget-leases.ts, the
// concurrency leases of a reservation's parallel calls in redis-call-leases.ts, and the batching of reconciles,
// give-backs and retimes per provider and turn in redis-write-batches.ts.
import { randomBytes } from "node:crypto";
import type { Clock } from "../clock.ts";
import {
  assumedResetAtMs,
  BudgetBook,
  type BudgetCost,
  type BudgetLedger,
  type BudgetRule,
  type BudgetScope,
  type BudgetVerdict,
  type Denied,
  isReservation,
  type LearnedConcurrency,
  laterDenial,
  type Reservation,
  type WindowUsage,
} from "../limits/budgets.ts";
import type { ReleaseSlot } from "../limits/in-flight-gate.ts";
import type { LearnedRule, RefusalFacts } from "../limits/limit-learning.ts";
import type { LearnedWindow } from "../limits/rate-limit-headers.ts";
import { type BudgetLease, BudgetLeases, leaseTermsOf } from "./redis-budget-leases.ts";
import { CallLeases } from "./redis-call-leases.ts";
import type { SharedStateRedis } from "./redis-client.ts";
import type { RedisDataEpoch } from "./redis-data-epoch.ts";
import { budgetKeyBase, learnedKey, leasesKey, providerTag, scopeKeys } from "./redis-keys.ts";
import type { RedisLink } from "./redis-link.ts";
import { OnceWrites } from "./redis-once-writes.ts";
import {
  type CachedDenial,
  type ChargedRun,
  chargedRuns,
  denialFromReply,
  requestGiveBackArguments,
  retimeArguments,
  ScriptShapes,
  tokenCounterArguments,
} from "./redis-script-shapes.ts";
import { deleteKeysStartingWith, resetIncomplete, type UnreachedMasters } from "./redis-shared-reset.ts";
import { RedisWriteBatches } from "./redis-write-batches.ts";

/** ms a concurrency lease lives without renewal: how long a crashed process can hold a slot. */
export const DEFAULT_LEASE_TTL_MS = 30_000;
/** Leases are renewed every third of their TTL, and at least this often (ms). */
const MAX_RENEW_INTERVAL_MS = 600_000;
/** Reservations made while Redis was down that are kept for replay; older ones are dropped beyond this. */
export const MAX_UNSYNCED = 10_000;
/** Replayed reservations sent to Redis at once. */
const REPLAY_BATCH = 200;

export interface RedisLedgerOptions {
  readonly redis: SharedStateRedis;
  readonly link: RedisLink;
  readonly keyPrefix: string;
  readonly clock: Clock;
  /** Whether Redis lost its data: a batch of give-backs sent again after a failure checks it first. */
  readonly dataEpoch: RedisDataEpoch;
  readonly leaseTtlMs?: number;
  /** Identifies this process in reservation ids; random by default. */
  readonly instanceId?: string;
  /** ms a once-write's marker lives (redis-once-writes.ts MARKER_MS); tests shorten it. */
  readonly onceMarkerMs?: number;
}

interface ReservationDetail {
  readonly member: string;
  /** The same reservation in the local book (absent if the mirror could not charge it). */
  readonly mirror: Reservation | undefined;
  /** Whether Redis has charged it (at reserve time, or by a replay after an outage). */
  isShared: boolean;
  /** The (rounded) token count Redis holds for it. */
  tokensInRedis: number;
  /** Where Redis counted it in each sliding window, for a reconcile (windows of scopes with a token rule). */
  runs: readonly ChargedRun[];
  /** Where Redis counted it in every sliding window, for `markSent` (a budget lease's runs, spent from one). */
  windowRuns: readonly ChargedRun[];
  /** When its request was sent, if later than it was reserved (0: not known to be). */
  sentAtMs: number;
  /** The scopes as Redis charged them (with the learned rules then known): their token counters are reconciled. */
  sharedScopes: readonly BudgetScope[];
  /** The budget lease it was charged to (or that its reserve took): a reconcile moves the lease while it lives. */
  lease: BudgetLease | undefined;
}

/** A reserve script call that failed (timed out): what Redis charges for it should it run after all. */
interface FailedAttempt {
  readonly id: number;
  readonly tokens: number;
  readonly shared: readonly BudgetScope[];
}

export class RedisLedger implements BudgetLedger {
  readonly #local = new BudgetBook();
  readonly #redis: SharedStateRedis;
  readonly #link: RedisLink;
  readonly #prefix: string;
  readonly #clock: Clock;
  readonly #leaseTtlMs: number;
  readonly #instanceId: string;
  readonly #details = new WeakMap<Reservation, ReservationDetail>();
  /** Unreleased reservations holding concurrency leases, renewed by a timer. */
  readonly #leased = new Set<Reservation>();
  /** The concurrency leases of calls beside a reservation's own (`takeInFlight`), renewed with `#leased`. */
  readonly #callLeases: CallLeases;
  readonly #denials = new Map<string, CachedDenial>();
  readonly #shapes = new ScriptShapes();
  readonly #leases: BudgetLeases;
  readonly #writes: OnceWrites;
  /** Reconciles, give-backs and retimes, sent per provider at the end of the turn (redis-write-batches.ts). */
  readonly #batches: RedisWriteBatches;
  #unsynced: Reservation[] = [];
  /** The latest reserve on scopes this process paces by its own evidence (`#reservePaced`): the next one waits. */
  #pacedTail: Promise<unknown> = Promise.resolve();
  #isReplaying = false;
  #nextId = 1;
  #renewTimer: NodeJS.Timeout | undefined;
  /**
   * How late this process has lately handled reserve replies, ms: the largest lag seen, decaying by a tenth at
   * each reply. Under load (a busy event loop) it exceeds a per-second rule's 16 ms lease, which would then end
   * before it is installed; leases are asked to live four times as long (LEASE_SLOW_WINDOW_SHARE bounds it): a
   * lease is installed one lag after it was asked for and the next one a lag after it ends, so four lags keep one
   * live about three quarters of the time (two: half; measured, 0.18 against 0.40 script calls per request).
   */
  #replyLagMs = 0;
  /**
   * Called after a shared reset's budget deletes; the state backend clears shared cooldowns and lessons and tells the
   * other processes. Masters it could not reach (a Cluster's) go to `unreached`.
   */
  onReset: ((unreached: UnreachedMasters) => Promise<void>) | undefined;
  /** Called when a concurrency 429 taught a limit the provider stated; the state backend shares it. */
  onConcurrencyLearned: ((scopeId: string, learned: LearnedConcurrency) => void) | undefined;
  /** Called when a 429 stated rate limits the scope's rules did not hold yet; the state backend shares them. */
  onRulesLearned: ((scopeId: string, rules: readonly BudgetRule[]) => void) | undefined;
  /** Called when a reload forgot a scope; the state backend deletes what it shared of it (`forget`). */
  onForget: ((scopeId: string) => void) | undefined;

  constructor(options: RedisLedgerOptions) {
    this.#redis = options.redis;
    this.#link = options.link;
    this.#prefix = options.keyPrefix;
    this.#clock = options.clock;
    this.#leaseTtlMs = options.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS;
    this.#instanceId = options.instanceId ?? randomBytes(6).toString("hex");
    this.#writes = new OnceWrites(this.#link, this.#prefix, this.#instanceId, options.onceMarkerMs);
    this.#batches = new RedisWriteBatches(this.#redis, this.#writes, options.dataEpoch, this.#link);
    this.#callLeases = new CallLeases(this.#redis, this.#link, this.#leaseTtlMs);
    this.#leases = new BudgetLeases({
      redis: this.#redis,
      link: this.#link,
      writes: this.#writes,
      batches: this.#batches,
      prefix: this.#prefix,
      shapes: this.#shapes,
      clock: this.#clock,
    });
    // Redis came back (maybe restarted, empty): a give-back could take units out of counters charged since, so
    // only the leases' own sliding-window runs are given back (GiveBack "runs").
    this.#link.onUp(() => this.#leases.endAll("runs"));
  }

  /** Starts renewing leases (and replaying what a failed reserve left local). */
  start(): void {
    const renewEveryMs = Math.min(MAX_RENEW_INTERVAL_MS, Math.max(10, Math.floor(this.#leaseTtlMs / 3)));
    this.#renewTimer = setInterval(() => {
      this.renewLeases();
      // A single failed reserve (Redis up) fell back to the local book: catch up without waiting for an outage.
      if (this.#unsynced.length > 0 && this.#link.isUp) this.replayUnsynced().catch(() => {});
    }, renewEveryMs);
    this.#renewTimer.unref();
  }

  /** Stops the timers and gives back the unused part of every budget lease (sent before the connection closes). */
  stop(): void {
    if (this.#renewTimer !== undefined) clearInterval(this.#renewTimer);
    this.#renewTimer = undefined;
    this.#leases.endAll("all");
    this.#batches.flushAll();
    this.#writes.stop();
  }

  /** Ends every budget lease and gives back what is left of them; settles once Redis has it. */
  async returnLeases(): Promise<void> {
    this.#leases.endAll("all");
    this.#batches.flushAll();
    await this.#leases.givenBack();
  }

  /**
   * Before the process exits: gives back every lease, and settles once that and every reconcile, give-back and retime
   * sent so far are answered or given up (the caller bounds the wait). Without it, the exit (or the QUIT that closes
   * the connection) went before them: the day counted a lease's unused units (1/64 of its limit) for the rest of the
   * day, and the requests an exit ended kept their estimate.
   */
  async settleBeforeExit(): Promise<void> {
    this.#leases.endAll("all");
    this.#batches.flushAll();
    await Promise.all([this.#leases.givenBack(), this.#batches.settled()]);
  }

  /** Budget leases held (for tests and status). */
  get leaseCount(): number {
    return this.#leases.size;
  }

  check(scopes: readonly BudgetScope[], cost: BudgetCost, nowMs: number): BudgetVerdict {
    const verdict = this.#local.check(scopes, cost, nowMs);
    if (!verdict.isAllowed) return this.#withCachedDenial(verdict, scopes, cost, nowMs);
    return this.#cachedDenial(scopes, cost, nowMs) ?? verdict;
  }

  reserve(
    scopes: readonly BudgetScope[],
    cost: BudgetCost,
    nowMs: number,
  ): Reservation | Denied | Promise<Reservation | Denied> {
    if (scopes.length === 0 || !this.#link.isUpFor(scopes[0]?.id)) return this.#reserveLocally(scopes, cost, nowMs);
    const fromLease = this.#reserveFromLease(scopes, cost, nowMs, nowMs);
    if (fromLease !== undefined) return fromLease;
    if (this.#local.hasOwnEvidence(scopes)) return this.#reservePaced(scopes, cost, nowMs);
    return this.#reserveShared(scopes, cost, nowMs, true);
  }

  /**
   * A reserve on scopes with a limit inferred from this process's own sends: the local book checks it (Redis does
   * not know it, see `learnLimits`), then Redis charges the shared rules. One such reserve at a time in this
   * process, so that no two pass the local check before either is charged there (the mirror is charged when
   * Redis answers). Only candidates already paced to a learned limit take this path: a round trip of waiting is
   * nothing next to their pace.
   */
  #reservePaced(scopes: readonly BudgetScope[], cost: BudgetCost, nowMs: number): Promise<Reservation | Denied> {
    const result = this.#pacedTail.then(() => {
      const verdict = this.#local.check(scopes, cost, nowMs);
      if (!verdict.isAllowed) return this.#withCachedDenial(verdict, scopes, cost, nowMs);
      if (!this.#link.isUpFor(scopes[0]?.id)) return this.#reserveLocally(scopes, cost, nowMs);
      return this.#reserveShared(scopes, cost, nowMs, true);
    });
    this.#pacedTail = result.catch(() => undefined);
    return result;
  }

  reconcile(reservation: Reservation, actualTokens: number, nowMs: number): void {
    const detail = this.#details.get(reservation);
    if (detail === undefined || actualTokens === reservation.tokens) return;
    reservation.tokens = actualTokens;
    if (detail.mirror !== undefined) this.#local.reconcile(detail.mirror, actualTokens, nowMs);
    // A reservation not yet in Redis is replayed later with its current token count.
    if (!detail.isShared) return;
    const tokens = roundTokens(actualTokens);
    const delta = tokens - detail.tokensInRedis;
    // While its lease lives, the lease's tokens pay for (or take back) the difference: no round trip.
    if (detail.lease !== undefined && this.#leases.absorb(detail.lease, delta, nowMs)) {
      detail.tokensInRedis = tokens;
      return;
    }
    // Its lease has ended (an answer outlives a lease of 16 ms to 1 s) or it had none: more tokens than estimated
    // are paid from the live lease on the same scopes. Those units were counted in Redis when that lease was taken,
    // after this request was sent, and count until that lease's end plus a window, after this request's: counted
    // no less than sending the difference would. Fewer tokens than estimated are not taken back that way: the
    // newer lease would spend units that an older group holds, which stops counting them sooner.
    const current = delta > 0 ? this.#leases.current(this.#leases.keyOf(reservation.scopes)) : undefined;
    if (current !== undefined && this.#leases.absorb(current, delta, nowMs)) {
      detail.tokensInRedis = tokens;
      return;
    }
    if (this.#isWritable(detail.sharedScopes[0]?.id)) this.#sendReconcile(reservation, detail, tokens);
  }

  /** Moves Redis's token counters for a shared reservation from `detail.tokensInRedis` to `tokens`. */
  #sendReconcile(reservation: Reservation, detail: ReservationDetail, tokens: number): void {
    const delta = tokens - detail.tokensInRedis;
    detail.tokensInRedis = tokens;
    const wallClock: string[] = [];
    const counterKeys: string[] = [];
    const counterArguments: string[] = [];
    for (const scope of detail.sharedScopes) {
      const shape = this.#shapes.shapeOf(scope);
      if (!shape.hasTokenRule) continue;
      const scoped = scopeKeys(
        this.#prefix,
        scope.id,
        this.#shapes.wallClockWindowsAt(scope.dayReset, reservation.atMs),
      );
      wallClock.push(scoped.day, scoped.month);
      counterKeys.push(...shape.tokenCounters.map(() => scoped.counters));
      counterArguments.push(...tokenCounterArguments(shape.tokenCounters, reservation.atMs));
    }
    const [scope] = detail.sharedScopes;
    if (delta === 0 || wallClock.length === 0 || scope === undefined) return;
    const keys = [...detail.runs.map((run) => run.hash), ...wallClock, ...counterKeys];
    const runIds = detail.runs.map((run) => run.id);
    const args = [delta, 0, runIds.length, ...runIds, wallClock.length, ...counterArguments];
    // More tokens than estimated go out at once; fewer wait for the turn's end (why that is safe: the batches' module).
    void this.#batches.reconcile(scope.id, keys, args, delta > 0);
  }

  markSent(reservation: Reservation, atMs: number): void {
    if (atMs <= reservation.atMs) return;
    const detail = this.#details.get(reservation);
    if (detail === undefined) return;
    detail.sentAtMs = atMs;
    if (detail.mirror !== undefined) this.#local.markSent(detail.mirror, atMs);
    // Not in Redis yet: the replay moves it once it is. A budget lease's runs count until the lease's end plus a
    // window already: only a send after that end moves them.
    if (!detail.isShared || !this.#isWritable(detail.sharedScopes[0]?.id)) return;
    const { lease } = detail;
    if (lease !== undefined) {
      if (atMs <= Math.max(lease.endMs, lease.retimedToMs)) return;
      lease.retimedToMs = atMs;
    }
    this.#sendRetime(detail, detail.windowRuns, lease?.endMs ?? reservation.atMs);
  }

  /**
   * Moves the sliding-window runs a request was charged to so that they count from its send (a retime, batched).
   * `countedUntilMs`: the last charge Redis surely holds for those runs (the reserve's instant, or its lease's end).
   */
  #sendRetime(detail: ReservationDetail, runs: readonly ChargedRun[], countedUntilMs: number): void {
    const [scope] = detail.sharedScopes;
    if (runs.length === 0 || scope === undefined) return;
    const nowMs = this.#clock.now();
    const { keys, args } = retimeArguments(runs, detail.sentAtMs, nowMs);
    // A run that may leave its window soon must be moved before another process's reserve drops it: sent at once.
    const leavesInMs = countedUntilMs + Math.min(...runs.map((run) => run.windowMs)) - nowMs;
    void this.#batches.retime(scope.id, keys, args, leavesInMs);
  }

  release(reservation: Reservation): void {
    if (reservation.isReleased) return;
    reservation.isReleased = true;
    const detail = this.#details.get(reservation);
    if (detail === undefined) return;
    if (detail.mirror !== undefined) this.#local.release(detail.mirror);
    if (!this.#leased.delete(reservation) || !this.#link.isUpFor(detail.sharedScopes[0]?.id)) return;
    // The scopes as Redis charged them: a concurrency the provider stated took a lease there (`sharedScope`).
    for (const scope of detail.sharedScopes) {
      if (scope.concurrency === undefined) continue;
      void this.#link.track(this.#redis.zrem(leasesKey(this.#prefix, scope.id), detail.member), scope.id);
    }
  }

  releaseUnsentCalls(reservation: Reservation, calls: number, nowMs: number): void {
    const detail = this.#details.get(reservation);
    const charged = reservation.requests ?? 1;
    const unsent = Math.min(Math.max(0, Math.floor(calls)), charged);
    if (detail === undefined || unsent === 0) return;
    reservation.requests = charged - unsent;
    if (detail.mirror !== undefined) this.#local.releaseUnsentCalls(detail.mirror, unsent, nowMs);
    // Not in Redis yet: the replay charges the calls that are left (reservation.requests).
    if (!detail.isShared) return;
    // Spent from a lease that still lives: the lease may spend them again (or gives them back when it ends).
    const { lease } = detail;
    if (lease !== undefined && !lease.isEnded && nowMs < lease.endMs) {
      lease.requestsLeft += unsent;
      return;
    }
    const [scope] = detail.sharedScopes;
    if (!this.#isWritable(scope?.id)) return;
    const write = requestGiveBackArguments(
      this.#shapes,
      this.#prefix,
      detail.sharedScopes,
      reservation.atMs,
      detail.windowRuns,
      unsent,
    );
    if (write !== undefined && scope !== undefined) {
      void this.#batches.reconcile(scope.id, write.keys, write.args, false);
    }
  }

  /**
   * A call beside a reservation's own: the local book counts it (this process's view; the whole check while Redis is
   * unreachable, as a reserve), and the scopes whose concurrency Redis counts (configured, or stated by the provider:
   * `sharedScope`) each take a lease for it (redis-call-leases.ts), so that the fleet's calls in flight stay within the
   * limit.
   */
  takeInFlight(
    scopes: readonly BudgetScope[],
    nowMs: number,
  ): ReleaseSlot | undefined | Promise<ReleaseSlot | undefined> {
    const releaseLocal = this.#local.takeInFlight(scopes, nowMs);
    if (releaseLocal === undefined) return undefined;
    const shared = scopes
      .map((scope) => this.#local.sharedScope(scope, nowMs))
      .filter((scope) => scope.concurrency !== undefined);
    if (shared.length === 0 || !this.#link.isUpFor(shared[0]?.id)) return releaseLocal;
    const keys = shared.map((scope) => leasesKey(this.#prefix, scope.id));
    const limits = shared.map((scope) => scope.concurrency ?? 0);
    const member = `${this.#memberOf(this.#nextId++)}:call`;
    return this.#callLeases.take(keys, limits, member, nowMs, shared[0]?.id).then((releaseShared) => {
      if (releaseShared === undefined) {
        releaseLocal();
        return undefined;
      }
      return () => {
        releaseLocal();
        releaseShared();
      };
    });
  }

  learn(scope: BudgetScope, windows: readonly LearnedWindow[], nowMs: number): void {
    this.#local.learn(scope, windows, nowMs);
    if (!this.#link.isUpFor(scope.id)) return;
    const argumentsOfWindows: string[] = [];
    for (const window of windows) {
      // As BudgetBook.learn: a window without a reset time is assumed to last as long as it possibly can.
      if (window.remaining === undefined) continue;
      const resetAtMs = window.resetAtMs ?? assumedResetAtMs(scope, window.window, nowMs);
      if (resetAtMs <= nowMs) continue;
      argumentsOfWindows.push(
        `${window.unit}:${window.window}`,
        `${window.remaining},${resetAtMs},${window.limit ?? ""}`,
        String(resetAtMs),
      );
    }
    if (argumentsOfWindows.length === 0) return;
    const learned = this.#redis.budgetLearn(1, learnedKey(this.#prefix, scope.id), nowMs, ...argumentsOfWindows);
    void this.#link.track(learned, scope.id);
  }

  /**
   * Learned limits live in the local book (and the embedded store's rows). A limit the provider stated (headers,
   * body) is the key's: `reserve` sends it to Redis with the scope's configured rules (`sharedScope`), so every
   * process that learned it enforces it fleet-wide. A limit inferred from the spacing of this process's own sends
   * is only this process's share of what the key accepted (the other processes' sends were accepted too): it
   * paces this process alone (`#reservePaced`). Enforced fleet-wide, N processes sharing a key would each learn
   * about 1/N of its limit and hold the whole fleet to that.
   */
  learnLimits(scope: BudgetScope, refusal: RefusalFacts, nowMs: number): readonly LearnedRule[] {
    const concurrencyBefore = this.#local.learnedConcurrency(scope.id, nowMs);
    // What other processes stated meanwhile is merged first (effectiveScope does): not this 429's to share again.
    this.#local.effectiveScope(scope, nowMs);
    const rulesBefore = this.#local.learnedRules(scope.id);
    const learned = this.#local.learnLimits(scope, refusal, nowMs);
    if (learned.length > 0) this.#leases.endCovering(scope.id);
    // A rate limit the provider stated, new to the scope's rules (a confirmation keeps the rule), is shared too.
    const stated = this.#local
      .learnedRules(scope.id)
      .filter((rule) => rule.isOwnEvidence !== true && !rulesBefore.includes(rule));
    if (stated.length > 0) this.onRulesLearned?.(scope.id, stated);
    const concurrency = this.#local.learnedConcurrency(scope.id, nowMs);
    // A limit on requests in flight the provider stated is the key's: shared, so that no other process pays a 429
    // to learn it (one inferred from this process's own requests is this process's share, like an inferred rate).
    if (concurrency !== undefined && concurrency !== concurrencyBefore && concurrency.isOwnEvidence !== true) {
      this.#leases.endCovering(scope.id);
      this.onConcurrencyLearned?.(scope.id, concurrency);
    }
    return learned;
  }

  /**
   * A limit on requests in flight another process learned from the provider's statement (redis-learned-facts.ts):
   * from now on this process's reserves on the scope take Redis's concurrency leases against it.
   */
  adoptLearnedConcurrency(scopeId: string, learned: LearnedConcurrency): void {
    // A stated limit learned here since (or the same one) stands: the latest statement is the key's limit.
    const known = this.#local.learnedConcurrency(scopeId, this.#clock.now());
    if (known !== undefined && known.isOwnEvidence !== true && known.learnedAtMs >= learned.learnedAtMs) return;
    this.#local.adoptLearnedConcurrency(scopeId, learned);
    // A budget lease taken without the concurrency would let requests past it until the lease ends.
    this.#leases.endCovering(scopeId);
  }

  /**
   * Rate limits another process was stated (redis-learned-facts.ts): rules of the scope here as if this process's
   * own 429 had stated them, sent to Redis with its configured rules from the next reserve on (`sharedScope`).
   */
  adoptStatedRules(scopeId: string, rules: readonly BudgetRule[]): void {
    this.#local.adoptStatedRules(scopeId, rules);
    // A budget lease taken without the rules would let requests past them until the lease ends.
    this.#leases.endCovering(scopeId);
  }

  /** Another process forgot the scope (redis-learned-facts.ts `forget`): the limits stated for it go here too. */
  adoptForgottenStated(scopeId: string): void {
    this.#local.adoptForgottenStated(scopeId);
  }

  /** This process's view (its own reservations and what it learned); see the module comment. */
  usage(scope: BudgetScope, nowMs: number): WindowUsage[] {
    return this.#local.usage(scope, nowMs);
  }

  /** Requests in flight from this process. */
  inFlight(scopeId: string): number {
    return this.#local.inFlight(scopeId);
  }

  /**
   * Learned from a concurrency refusal: one the provider stated (this process's, or another's passed on through
   * Redis) is enforced fleet-wide by the reserve script's concurrency leases (BudgetBook.sharedScope); one inferred
   * from this process's own requests in flight is checked in the local book alone, like an inferred rate.
   */
  learnedConcurrency(scopeId: string, nowMs: number): LearnedConcurrency | undefined {
    return this.#local.learnedConcurrency(scopeId, nowMs);
  }

  /**
   * Forgets every budget counter here and in Redis (admin reset); throws if Redis could not be reached. A Cluster
   * master that does not answer is passed over: the rest is reset (and announced), then a ServiceUnavailableError
   * names it (redis-shared-reset.ts).
   */
  async reset(): Promise<void> {
    this.resetLocal();
    if (!this.#link.isUp) {
      throw new Error(`Redis (${this.#link.target}) is unreachable: only this process's budgets were reset`);
    }
    const unreached: UnreachedMasters = new Set();
    await deleteKeysStartingWith(this.#redis, `${this.#prefix}budget:`, unreached);
    await this.onReset?.(unreached);
    if (unreached.size > 0) throw resetIncomplete(unreached);
  }

  /**
   * Forgets this process's view of one scope (a reload pointed it at another upstream or key), not the shared
   * counters: in a fleet the other replicas may still be sending with the old key (a rolling reload), and their
   * budget and concurrency leases must hold; deleting them let one replica's reload over-admit the whole fleet.
   * The shared budget frees as its windows pass. What the provider stated for the scope's old key or upstream (a
   * limit shared as a learned fact) is deleted from Redis, though, and dropped by every replica: it would be loaded
   * for the new one at a start or a reconnect, and held by a replica that heard it (redis-learned-facts.ts `forget`).
   */
  forget(scopeId: string): void {
    this.#local.forget(scopeId);
    this.onForget?.(scopeId);
  }

  /** Forgets this process's counters (another process reset the shared ones). */
  resetLocal(): void {
    this.#leases.endAll("none");
    this.#batches.dropGiveBacks();
    this.#local.reset();
    this.#denials.clear();
    this.#unsynced = [];
  }

  /** Re-adds every held lease with a fresh expiry (a restarted Redis lost them, or they are about to expire). */
  renewLeases(): void {
    if (!this.#link.isUp || this.#leased.size + this.#callLeases.size === 0) return;
    const expiryMs = this.#clock.now() + this.#leaseTtlMs;
    // One command each rather than a pipeline: in a cluster the leases of different providers live on different
    // nodes, which one pipeline cannot span. They are written back to back all the same.
    const renewals = this.#callLeases.renewals(expiryMs);
    for (const reservation of this.#leased) {
      const detail = this.#details.get(reservation);
      // A Cluster slot that does not answer: renewed when it is back (the link's group up).
      if (detail === undefined || !this.#link.isUpFor(detail.sharedScopes[0]?.id)) continue;
      const { member } = detail;
      for (const scope of detail.sharedScopes) {
        if (scope.concurrency === undefined) continue;
        const key = leasesKey(this.#prefix, scope.id);
        const renewal = Promise.all([
          this.#redis.zadd(key, expiryMs, member),
          this.#redis.pexpire(key, this.#leaseTtlMs * 2),
        ]);
        // On a Cluster, against its provider's slot; on a standalone Redis, the round counts once as before (each
        // lease on its own made three leases held take the link down on one slow moment).
        if (this.#link.isCluster) void this.#link.track(renewal, scope.id);
        else renewals.push(renewal);
      }
    }
    void this.#link.track(Promise.all(renewals));
  }

  /**
   * Whether a write of a reservation Redis holds (a charge, a give-back, a retime) goes to the batches: the link is up,
   * and on a standalone Redis that is all. On a Cluster whose master for the scope is down the batches keep it for
   * that master's return (redis-write-batches.ts): a reconcile of a request reserved in Redis and answered once its
   * master was known down (a hung master: back with its counters) was neither sent nor kept, its charge lost.
   */
  #isWritable(scopeId: string | undefined): boolean {
    return this.#link.isCluster ? this.#link.isUp : this.#link.isUpFor(scopeId);
  }

  /** A Cluster master answers again: the give-backs, charges and retimes kept for its providers are sent. */
  replayKeptWrites(): void {
    this.#batches.replayKept();
  }

  /** Writes kept for a Cluster master's return (for tests and status). */
  get keptWriteCount(): number {
    return this.#batches.keptCount;
  }

  /** Charges Redis, without a check, with what this process sent while Redis was unreachable. */
  async replayUnsynced(): Promise<void> {
    if (this.#isReplaying) return;
    this.#isReplaying = true;
    try {
      // On a Cluster, the reservations of providers whose slot does not answer wait for it (the link's group up).
      for (;;) {
        const batch = this.#unsynced.filter((reservation) => this.#link.isUpFor(reservation.scopes[0]?.id));
        if (batch.length === 0 || !this.#link.isUp) return;
        batch.length = Math.min(batch.length, REPLAY_BATCH);
        const replayed = await Promise.allSettled(batch.map((reservation) => this.#replay(reservation)));
        const failed = replayed.findIndex((result) => result.status === "rejected");
        const settled = new Set(batch.filter((_, index) => replayed[index]?.status === "fulfilled"));
        this.#unsynced = this.#unsynced.filter((reservation) => !settled.has(reservation));
        const failure = replayed[failed];
        if (failure?.status === "rejected") {
          this.#link.recordFailure(failure.reason, batch[failed]?.scopes[0]?.id);
          return;
        }
      }
    } finally {
      this.#isReplaying = false;
    }
  }

  /**
   * Makes room in the full unsynced list: the oldest goes. On a Cluster, the oldest of the provider holding the most
   * (a hundredth of the bound at a time, so the count is rare): one master's long outage filled the list with its
   * providers' reservations and pushed out those of providers on live masters (a single reserve that timed out),
   * which then never reached Redis.
   */
  #dropUnsynced(): void {
    if (!this.#link.isCluster) {
      this.#unsynced.shift();
      return;
    }
    const counts = new Map<string, number>();
    for (const reservation of this.#unsynced) {
      const tag = providerTag(reservation.scopes[0]?.id ?? "");
      counts.set(tag, (counts.get(tag) ?? 0) + 1);
    }
    const [most] = [...counts].reduce((best, entry) => (entry[1] > best[1] ? entry : best), ["", 0]);
    let toDrop = MAX_UNSYNCED / 100;
    this.#unsynced = this.#unsynced.filter(
      (reservation) => toDrop <= 0 || providerTag(reservation.scopes[0]?.id ?? "") !== most || toDrop-- <= 0,
    );
  }

  /** Reservations of `scopeId`'s provider waiting for a replay (for tests). */
  unsyncedCountOf(scopeId: string): number {
    const tag = providerTag(scopeId);
    return this.#unsynced.filter((reservation) => providerTag(reservation.scopes[0]?.id ?? "") === tag).length;
  }

  /** Reservations waiting for a replay (for tests and status). */
  get unsyncedCount(): number {
    return this.#unsynced.length;
  }

  /**
   * Charges one reservation without a check. One made after a reserve timed out may have been charged by that
   * reserve since (Redis ran it late): the script then finds its marker, charges nothing and answers 2 with the
   * runs it went into; only the tokens counted since (a reconcile) are then sent.
   */
  async #replay(reservation: Reservation): Promise<void> {
    const detail = this.#details.get(reservation);
    if (detail === undefined || detail.isShared) return;
    const tokens = roundTokens(reservation.tokens);
    const scopes = detail.sharedScopes;
    // Still in flight: its concurrency lease is renewed; ended: a lease the late reserve took is removed.
    const leaseUntilMs = this.#leased.has(reservation) ? this.#clock.now() + this.#leaseTtlMs : 0;
    // All of its upstream calls, as its reserve would have charged them (a Llama Guard moderation's N).
    const { keys, args } = this.#scriptArguments(
      scopes,
      tokens,
      reservation.requests ?? 1,
      reservation.atMs,
      detail.member,
      leaseUntilMs,
      false,
      reservation.isTokensOnly === true,
    );
    const reply = await this.#redis.budgetReserve(keys.length, ...keys, ...args);
    const wasCharged = Array.isArray(reply) && reply[0] === 2;
    detail.isShared = true;
    const charged = chargedRuns(this.#shapes, this.#prefix, scopes, reservation.atMs, reply);
    detail.runs = charged.tokenRuns;
    detail.windowRuns = charged.runs;
    if (!wasCharged) detail.tokensInRedis = tokens;
    else if (detail.tokensInRedis !== tokens) this.#sendReconcile(reservation, detail, tokens);
    // Charged as of its reservation, like every reserve; sent later, it counts from the send (`markSent`).
    if (detail.sentAtMs > reservation.atMs) this.#sendRetime(detail, detail.windowRuns, reservation.atMs);
  }

  /**
   * A reservation spent from this process's lease on these scopes (synchronously), or undefined: no live lease
   * with room (an exhausted or ended one is given back), or the local mirror refuses (then Redis decides).
   */
  #reserveFromLease(
    scopes: readonly BudgetScope[],
    cost: BudgetCost,
    nowMs: number,
    spendAtMs: number,
  ): Reservation | undefined {
    // Tokens alone (BudgetCost.isTokensOnly) go to the script: a lease's terms count requests like this one.
    if (cost.isTokensOnly === true) return undefined;
    const lease = this.#leases.current(this.#leases.keyOf(scopes));
    if (lease === undefined) return undefined;
    const tokens = roundTokens(cost.tokens);
    const requests = requestsOf(cost);
    if (!this.#leases.spend(lease, tokens, requests, spendAtMs)) return undefined;
    const mirrored = this.#local.reserve(scopes, cost, nowMs);
    if (!isReservation(mirrored)) {
      lease.requestsLeft += requests;
      lease.tokensLeft += tokens;
      return undefined;
    }
    const reservation = this.#track(this.#nextId++, scopes, cost, nowMs, mirrored, tokens);
    const detail = this.#details.get(reservation);
    if (detail !== undefined) {
      detail.runs = lease.tokenRuns;
      detail.windowRuns = lease.runs;
      detail.sharedScopes = lease.shared;
      detail.lease = lease;
    }
    return reservation;
  }

  /**
   * One reserve script call. It asks for a lease when the scopes allow one and no other reserve on the same scopes
   * is asking already; a reserve that finds one asking waits for its answer (once), then spends from the lease
   * that answer brought, or asks Redis itself.
   */
  async #reserveShared(
    scopes: readonly BudgetScope[],
    cost: BudgetCost,
    nowMs: number,
    mayWait: boolean,
  ): Promise<Reservation | Denied> {
    const key = this.#leases.keyOf(scopes);
    const pending = this.#leases.pendingOf(key);
    if (pending !== undefined && mayWait) {
      await pending;
      if (!this.#link.isUpFor(scopes[0]?.id)) return this.#reserveLocally(scopes, cost, nowMs);
      const spendAtMs = Math.max(nowMs, this.#clock.now());
      return this.#reserveFromLease(scopes, cost, nowMs, spendAtMs) ?? this.#reserveShared(scopes, cost, nowMs, false);
    }
    // The id is taken before the await: reserves of other requests interleave with this one.
    const id = this.#nextId++;
    const member = this.#memberOf(id);
    const tokens = roundTokens(cost.tokens);
    // Limits the provider stated travel with the configured rules, each with its window algorithm (sliding, fixed,
    // bucket); those inferred from this process's own sends stay local (`learnLimits`).
    const shared = scopes.map((scope) => this.#local.sharedScope(scope, nowMs));
    const wantsLease = pending === undefined && cost.isTokensOnly !== true && this.#leases.mayLease(shared);
    const [first] = shared;
    const { keys, args } = this.#scriptArguments(
      shared,
      tokens,
      requestsOf(cost),
      nowMs,
      member,
      undefined,
      wantsLease,
      cost.isTokensOnly === true,
    );
    const settled = wantsLease ? this.#leases.begin(key) : undefined;
    // This process's give-backs and retimes on the provider ride with it: the reserve sees them (redis-write-batches.ts).
    const carried = first === undefined ? undefined : this.#batches.takeFor(first.id);
    let reply: unknown;
    try {
      reply =
        carried === undefined
          ? await this.#redis.budgetReserve(keys.length, ...keys, ...args)
          : await this.#redis.budgetReserveAfterWrites(
              carried.keys.length + keys.length,
              ...carried.keys,
              ...keys,
              carried.keys.length,
              carried.args.length,
              ...carried.args,
              ...args,
            );
      carried?.settle(true);
    } catch (error) {
      carried?.settle(false);
      settled?.();
      this.#link.recordFailure(error, first?.id);
      // A timeout does not stop the script: Redis may run it later. The fallback keeps its id (so its member), so
      // that the release removes the lease it may take and the replay finds its charge marker (RESERVE_LUA).
      return this.#reserveLocally(scopes, cost, nowMs, { id, tokens, shared });
    }
    try {
      this.#link.recordSuccess(first?.id);
      if (!Array.isArray(reply) || reply[0] !== 1) {
        const denied = this.#denialOf(reply, shared, cost, nowMs);
        if (denied !== undefined) return denied;
        this.#link.recordRejected(new Error(`unexpected reply from the budget script: ${JSON.stringify(reply)}`));
        return this.#reserveLocally(scopes, cost, nowMs, { id, tokens, shared });
      }
      for (const scope of scopes) this.#denials.delete(scope.id);
      const installedAtMs = Math.max(nowMs, this.#clock.now());
      this.#noteReplyLag(installedAtMs - nowMs);
      const mirrored = this.#local.reserve(scopes, cost, nowMs);
      const reservation = this.#track(
        id,
        scopes,
        cost,
        nowMs,
        isReservation(mirrored) ? mirrored : undefined,
        tokens,
        shared,
      );
      const detail = this.#details.get(reservation);
      const charged = chargedRuns(this.#shapes, this.#prefix, shared, nowMs, reply);
      const terms = wantsLease ? leaseTermsOf(reply, charged.next) : undefined;
      const lease =
        terms === undefined
          ? undefined
          : this.#leases.install(key, scopes, shared, member, terms, charged, nowMs, installedAtMs);
      if (detail !== undefined) {
        detail.runs = charged.tokenRuns;
        detail.windowRuns = charged.runs;
        detail.sharedScopes = shared;
        detail.lease = lease;
      }
      return reservation;
    } finally {
      settled?.();
    }
  }

  /** `attempt`: the reserve script call this falls back from, which Redis may still run (see `#replay`). */
  #reserveLocally(
    scopes: readonly BudgetScope[],
    cost: BudgetCost,
    nowMs: number,
    attempt?: FailedAttempt,
  ): Reservation | Denied {
    // What Redis last said still holds: a daily budget the fleet used up stays used up during an outage.
    const cached = this.#cachedDenial(scopes, cost, nowMs);
    if (cached !== undefined) {
      const local = this.#local.check(scopes, cost, nowMs);
      return local.isAllowed ? cached : laterDenial(cached, local);
    }
    const local = this.#local.reserve(scopes, cost, nowMs);
    if (!isReservation(local)) return local;
    const reservation = this.#track(
      attempt?.id ?? this.#nextId++,
      scopes,
      cost,
      nowMs,
      local,
      undefined,
      attempt?.shared,
    );
    const detail = this.#details.get(reservation);
    // What Redis holds for it should the attempt run after all; the replay then charges the same scopes.
    if (attempt !== undefined && detail !== undefined) detail.tokensInRedis = attempt.tokens;
    if (scopes.length > 0) {
      if (this.#unsynced.length >= MAX_UNSYNCED) this.#dropUnsynced();
      this.#unsynced.push(reservation);
    }
    return reservation;
  }

  /**
   * `tokensInRedis` undefined: Redis has not charged it (reserved while Redis was down). `shared`: the scopes as the
   * reserve script was (or may have been) asked to charge them, whose concurrency took a lease there.
   */
  #track(
    id: number,
    scopes: readonly BudgetScope[],
    cost: BudgetCost,
    nowMs: number,
    mirror: Reservation | undefined,
    tokensInRedis: number | undefined,
    shared: readonly BudgetScope[] = scopes,
  ): Reservation {
    const requests = requestsOf(cost);
    const reservation: Reservation = {
      id,
      scopes,
      atMs: nowMs,
      tokens: cost.tokens,
      ...(requests === 1 ? {} : { requests }),
      ...(cost.isTokensOnly === true ? { isTokensOnly: true } : {}),
      isReleased: false,
    };
    this.#details.set(reservation, {
      member: this.#memberOf(id),
      mirror,
      isShared: tokensInRedis !== undefined,
      tokensInRedis: tokensInRedis ?? 0,
      runs: [],
      windowRuns: [],
      sentAtMs: 0,
      sharedScopes: shared,
      lease: undefined,
    });
    // Tokens alone take no concurrency lease (`#scriptArguments`): nothing to renew or remove.
    if (cost.isTokensOnly !== true && shared.some((scope) => scope.concurrency !== undefined)) {
      this.#leased.add(reservation);
    }
    return reservation;
  }

  /** Unique across processes: the sorted-set member of a reservation. */
  #memberOf(id: number): string {
    return `${this.#instanceId}:${id}`;
  }

  #noteReplyLag(lagMs: number): void {
    this.#replyLagMs = Math.max(lagMs, this.#replyLagMs * 0.9);
  }

  /** The shortest life worth asking a lease for (at least 1 ms: the script reads 0 as "no lease"). */
  #leaseFloorMs(): number {
    return Math.max(1, Math.ceil(4 * this.#replyLagMs));
  }

  #scriptArguments(
    scopes: readonly BudgetScope[],
    tokens: number,
    /** The request's upstream calls (BudgetCost.requests): the script counts each in the request rules. */
    requests: number,
    nowMs: number,
    member: string,
    /** Undefined: a reserve (checked). A number: a replay (charged without a check) and its lease_until. */
    replayLeaseUntilMs: number | undefined,
    wantsLease: boolean,
    /** BudgetCost.isTokensOnly: no scope's concurrency is checked or leased (sent as none, -1). */
    isTokensOnly: boolean,
  ): { keys: string[]; args: (string | number)[] } {
    const isForced = replayLeaseUntilMs !== undefined;
    const keys: string[] = [];
    const perScope: (string | number)[] = [];
    let hasConcurrency = false;
    for (const scope of scopes) {
      const shape = this.#shapes.shapeOf(scope);
      const wallClock =
        shape.hasDay || shape.hasMonth ? this.#shapes.wallClockWindowsAt(scope.dayReset, nowMs) : undefined;
      const scoped = scopeKeys(this.#prefix, scope.id, {
        dayStartMs: wallClock?.dayStartMs ?? 0,
        monthStartMs: wallClock?.monthStartMs ?? 0,
      });
      for (const [runs, hash] of scoped.sliding) keys.push(runs, hash);
      keys.push(scoped.day, scoped.month, scoped.leases, scoped.learned, scoped.counters);
      const concurrency = isTokensOnly ? -1 : shape.concurrency;
      perScope.push(concurrency, wallClock?.dayEndMs ?? 0, wallClock?.monthEndMs ?? 0, ...shape.ruleArguments);
      hasConcurrency ||= shape.hasConcurrency && !isTokensOnly;
    }
    const [first] = scopes;
    // The charge marker (RESERVE_LUA): beside the first scope's keys, in the same hash tag as all of them.
    if (first !== undefined) keys.push(`${budgetKeyBase(this.#prefix, first.id)}:charged:${member}`);
    const leaseUntilMs = !hasConcurrency ? 0 : (replayLeaseUntilMs ?? nowMs + this.#leaseTtlMs);
    return {
      keys,
      args: [
        nowMs,
        member,
        tokens,
        leaseUntilMs,
        this.#leaseTtlMs,
        isForced ? "1" : "0",
        scopes.length,
        wantsLease ? this.#leaseFloorMs() : 0,
        requests,
        ...perScope,
      ],
    };
  }

  /**
   * The script's denial as BudgetBook's verdict (same reasons and retry times: the binding refusal), each refusing
   * scope's own refusal remembered for that scope, so that a request sharing only one of them (another model of the
   * same pool) is told at once.
   */
  #denialOf(reply: unknown, scopes: readonly BudgetScope[], cost: BudgetCost, nowMs: number): Denied | undefined {
    const denial = denialFromReply(reply, scopes, cost, nowMs);
    if (denial === undefined) return undefined;
    for (const refusal of denial.byScope) this.#denials.set(refusal.verdict.scopeId, refusal);
    return denial.verdict;
  }

  /** The latest of the denials Redis gave for these scopes that still hold for this cost (see `laterDenial`). */
  #cachedDenial(scopes: readonly BudgetScope[], cost: BudgetCost, nowMs: number): Denied | undefined {
    if (this.#denials.size === 0) return undefined;
    let denied: Denied | undefined;
    for (const scope of scopes) {
      const cached = this.#denials.get(scope.id);
      if (cached === undefined) continue;
      if (cached.verdict.retryAtMs <= nowMs) {
        this.#denials.delete(scope.id);
        continue;
      }
      // A full slot does not refuse tokens alone (BudgetCost.isTokensOnly), which take none.
      if (cost.isTokensOnly === true && cached.verdict.isSlot === true) continue;
      if (cost.tokens >= cached.minTokens && requestsOf(cost) >= cached.minRequests) {
        denied = laterDenial(denied, cached.verdict);
      }
    }
    return denied;
  }

  /** A local refusal, or a denial Redis gave for one of these scopes if that one ends later. */
  #withCachedDenial(verdict: Denied, scopes: readonly BudgetScope[], cost: BudgetCost, nowMs: number): Denied {
    const cached = this.#cachedDenial(scopes, cost, nowMs);
    return cached === undefined ? verdict : laterDenial(verdict, cached);
  }
}

/** The upstream calls a cost counts in the request rules (a Llama Guard moderation's N; one otherwise; none for tokens alone). */
function requestsOf(cost: BudgetCost): number {
  if (cost.isTokensOnly === true) return 0;
  return Math.max(1, Math.round(cost.requests ?? 1));
}

/** Redis counters are integers; token estimates are too, this only guards against a stray fraction. */
function roundTokens(tokens: number): number {
  return Math.max(0, Math.round(tokens));
}
