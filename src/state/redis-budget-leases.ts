// Budget leases: requests and tokens the reserve script charged in Redis beyond its own request (redis-lua.ts),
// which this process then spends locally, synchronously, without a round trip, until the lease ends. Only scopes
// whose limits are large next to one request get them: a share of every rule's limit (and of what is left), at
// least MIN_LEASE_REQUESTS requests, for at most MAX_LEASE_MS (redis-lease-terms.ts). Free-tier limits never lease, so their behaviour
// is exactly the script's.
//
// Why it never admits more than the windows would: the units are counted in Redis before they are spent, in
// every window of every scope the lease covers; a sliding-window run holding a lease counts until the lease's end
// plus a window, so a unit spent just before the end is still counted a full window later; a lease never outlives
// the fixed, day or month window it was charged in. What a lease costs the fleet is the other way round: units
// leased and not yet spent are unavailable to the other processes until they are given back (at the lease's end,
// when it runs out, or when the process stops), and a sliding window counts spent units up to one lease lifetime
// longer than they would count alone (docs/limits.md "Budget leases (high limits)"). A lease taken against windows
// the provider reported is recorded beside them until it ends, so that a new report, from any process, counts it.
import type { Clock } from "../clock.ts";
import type { BudgetScope } from "../limits/budgets.ts";
import type { SharedStateRedis } from "./redis-client.ts";
import { learnedKey, scopeKeys } from "./redis-keys.ts";
import type { RedisLink } from "./redis-link.ts";
import type { OnceWrites } from "./redis-once-writes.ts";
import { type ChargedRun, type ScriptShapes, tokenCounterArguments } from "./redis-script-shapes.ts";
import type { RedisWriteBatches } from "./redis-write-batches.ts";

export interface BudgetLease {
  /** The reservation member of the reserve that took it (its record's field is `lease:<member>`). */
  readonly member: string;
  readonly isRecorded: boolean;
  /** The scopes the reserve was called with (their ids make the table's key). */
  readonly scopes: readonly BudgetScope[];
  /** The scopes as Redis charged them (configured rules, as leases are never taken with learned ones). */
  readonly shared: readonly BudgetScope[];
  readonly startMs: number;
  /** Nothing is spent from the lease at or after this time. */
  readonly endMs: number;
  /** Left to spend; Infinity where no rule bounds them (nothing extra was charged for them). */
  requestsLeft: number;
  tokensLeft: number;
  /** Every sliding-window run the lease was charged to (its unused units are taken back from these). */
  readonly runs: readonly ChargedRun[];
  /** Those of scopes with a token rule: where a reconcile of a reservation spent from it goes after its end. */
  readonly tokenRuns: readonly ChargedRun[];
  isEnded: boolean;
  /**
   * The latest send after the lease's end its runs were moved to (RedisLedger.markSent; 0: none): under load the
   * requests spent just before the end go out over a millisecond or two after it, and one move per millisecond
   * covers them all.
   */
  retimedToMs: number;
  timer: NodeJS.Timeout | undefined;
}

/**
 * How much of a lease's unused part an end takes back out of Redis: everything, nothing, or only its sliding-window
 * runs. "runs" is for Redis reachable again: if it restarted empty, the day, month and fixed-window counters a
 * give-back would lower may be new ones, counting other requests, so those keep the leased units (erring on the
 * side of sending less until the window ends); a sliding-window run is this lease's own entry (its id is a
 * reservation member no other charge creates), so after a mere blip its units are free again at once, and a
 * restarted Redis simply no longer has it.
 */
export type GiveBack = "all" | "runs" | "none";

/** What a reserve script granted: extra requests and tokens (Infinity: unbounded), the end, and its record. */
export interface LeaseTerms {
  readonly requests: number;
  readonly tokens: number;
  readonly endMs: number;
  /** Kept in the scopes' learned hashes (field `lease:<member>`) for provider reports to count until it ends. */
  readonly isRecorded: boolean;
}

/** The lease a reserve script's reply carries after its run ids (from index `at`), if it took one. */
export function leaseTermsOf(reply: unknown, at: number): LeaseTerms | undefined {
  if (!Array.isArray(reply) || reply.length < at + 4) return undefined;
  const [requests, tokens, endMs, recorded] = (reply as unknown[]).slice(at, at + 4).map(Number) as [
    number,
    number,
    number,
    number,
  ];
  if (!Number.isFinite(endMs)) return undefined;
  return {
    requests: requests < 0 ? Number.POSITIVE_INFINITY : requests,
    tokens: tokens < 0 ? Number.POSITIVE_INFINITY : tokens,
    endMs,
    isRecorded: recorded === 1,
  };
}

export interface BudgetLeasesOptions {
  readonly redis: SharedStateRedis;
  readonly link: RedisLink;
  /** The recorded leases' HDELs are sent through it (sent again after a failure). */
  readonly writes: OnceWrites;
  /** Give-backs are sent through them, at the end of the turn: applied at most once, sent again after a failure. */
  readonly batches: RedisWriteBatches;
  readonly prefix: string;
  readonly shapes: ScriptShapes;
  /** The ledger's clock: a lease's end is a time on it, so its give-back timer asks it whether the end has come. */
  readonly clock: Clock;
}

/** The leases this process holds, one per set of scopes, and the lease requests in flight. */
export class BudgetLeases {
  readonly #options: BudgetLeasesOptions;
  readonly #leases = new Map<string, BudgetLease>();
  /** Reserves that asked for a lease and are awaiting Redis: others with the same scopes wait for them. */
  readonly #pending = new Map<string, Promise<void>>();
  readonly #keys = new WeakMap<readonly BudgetScope[], string>();
  /** Give-backs sent and not yet answered. */
  readonly #givingBack = new Set<Promise<void>>();

  constructor(options: BudgetLeasesOptions) {
    this.#options = options;
  }

  /** The table key of a set of scopes (cached per array: the snapshot hands the same one to every request). */
  keyOf(scopes: readonly BudgetScope[]): string {
    let key = this.#keys.get(scopes);
    if (key === undefined) {
      key = scopes.map((scope) => scope.id).join("\n");
      this.#keys.set(scopes, key);
    }
    return key;
  }

  /** Whether Redis may be asked for a lease on these (effective) scopes at all. */
  mayLease(shared: readonly BudgetScope[]): boolean {
    return shared.every((scope) => this.#options.shapes.shapeOf(scope).isLeasable);
  }

  current(key: string): BudgetLease | undefined {
    return this.#leases.get(key);
  }

  /**
   * Takes one request of `tokens` and `requests` upstream calls (a Llama Guard moderation's N, each counted as the
   * provider counts it) from the lease if it is live and has room; an ended or exhausted lease is ended (given
   * back). A time before the lease's start (a clock stepped back) spends nothing from it.
   */
  spend(lease: BudgetLease, tokens: number, requests: number, nowMs: number): boolean {
    if (nowMs < lease.startMs) return false;
    if (!lease.isEnded && nowMs < lease.endMs && lease.requestsLeft >= requests && lease.tokensLeft >= tokens) {
      lease.requestsLeft -= requests;
      lease.tokensLeft -= tokens;
      return true;
    }
    this.end(lease, "all");
    return false;
  }

  /** A reconcile's token delta taken from (or given to) a live lease; false: it must go to Redis. */
  absorb(lease: BudgetLease, delta: number, nowMs: number): boolean {
    if (lease.isEnded || nowMs >= lease.endMs || delta > lease.tokensLeft) return false;
    lease.tokensLeft -= delta;
    return true;
  }

  /** The reserve asking for a lease on `key` is awaiting Redis; call the returned function once it is settled. */
  begin(key: string): () => void {
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#pending.set(key, promise);
    return () => {
      if (this.#pending.get(key) === promise) this.#pending.delete(key);
      resolve();
    };
  }

  /** Settles when the lease request in flight for `key` (if any) has been answered and its lease installed. */
  pendingOf(key: string): Promise<void> | undefined {
    return this.#pending.get(key);
  }

  /** Holds a lease Redis granted (replacing, and giving back, an older one for the same scopes). */
  install(
    key: string,
    scopes: readonly BudgetScope[],
    shared: readonly BudgetScope[],
    member: string,
    terms: LeaseTerms,
    charged: { readonly runs: readonly ChargedRun[]; readonly tokenRuns: readonly ChargedRun[] },
    startMs: number,
    nowMs: number,
  ): BudgetLease {
    const previous = this.#leases.get(key);
    if (previous !== undefined) this.end(previous, "all");
    const lease: BudgetLease = {
      member,
      isRecorded: terms.isRecorded,
      scopes,
      shared,
      startMs,
      endMs: terms.endMs,
      requestsLeft: terms.requests,
      tokensLeft: terms.tokens,
      runs: charged.runs,
      tokenRuns: charged.tokenRuns,
      isEnded: false,
      retimedToMs: 0,
      timer: undefined,
    };
    this.#leases.set(key, lease);
    if (terms.endMs <= nowMs) this.end(lease, "all");
    else this.#endWhenDue(lease, terms.endMs - nowMs);
    return lease;
  }

  /** Ends a lease, giving back (GiveBack) all, part or none of what it did not use. */
  end(lease: BudgetLease, giveBack: GiveBack): void {
    if (lease.isEnded) return;
    lease.isEnded = true;
    if (lease.timer !== undefined) clearTimeout(lease.timer);
    const key = this.keyOf(lease.scopes);
    if (this.#leases.get(key) === lease) this.#leases.delete(key);
    // The link down: nothing is sent (its return gives back the runs, GiveBack). Up, with the lease's Cluster master
    // not answering: the give-back is kept by the batches and sent when it answers again (redis-write-batches.ts).
    if (giveBack === "none" || !this.#options.link.isUp) return;
    this.#giveBack(lease, giveBack === "runs");
    // Its units are sent or given back: a later provider report need not count them any more. One HDEL per scope
    // (a pipeline; the same hash tag). Not sent while its Cluster master is known down: it waited a command timeout
    // at each of its resends (~4.7 s with 200 ms, a give-back's wait and an exit's with it) and was then given up
    // with a warning. Nor kept: the field names the lease's end, after which a report no longer counts it
    // (LEARN_LUA), and a lease lives a second or so (redis-lease-terms.ts), less than a master takes to be found back.
    if (lease.isRecorded && this.#options.link.isUpFor(lease.shared[0]?.id)) {
      const { redis, prefix, writes } = this.#options;
      const field = `lease:${lease.member}`;
      const keys = lease.shared.map((scope) => learnedKey(prefix, scope.id));
      this.#track(writes.send(() => Promise.all(keys.map((key) => redis.hdel(key, field))), keys[0]));
    }
  }

  /**
   * Ends every lease: given back on a stop or a learned limit, dropped after a reset (the units stay counted until
   * their windows end), only their sliding-window runs given back when Redis is reachable again (GiveBack).
   */
  endAll(giveBack: GiveBack): void {
    for (const lease of [...this.#leases.values()]) this.end(lease, giveBack);
  }

  /** Ends (and gives back) the leases covering a scope whose limits just changed. */
  endCovering(scopeId: string): void {
    for (const lease of [...this.#leases.values()]) {
      if (lease.scopes.some((scope) => scope.id === scopeId)) this.end(lease, "all");
    }
  }

  /** Settles once every give-back sent so far has been answered (or failed). */
  async givenBack(): Promise<void> {
    await Promise.all([...this.#givingBack]);
  }

  /** Leases held (for tests and status). */
  get size(): number {
    return this.#leases.size;
  }

  /**
   * The reconcile script with both deltas negative: every sliding run, the day and month counters of the lease's
   * day and month, and the fixed windows it was charged in (the script leaves a window that has ended alone).
   */
  #giveBack(lease: BudgetLease, isRunsOnly: boolean): void {
    const requests = Number.isFinite(lease.requestsLeft) ? lease.requestsLeft : 0;
    const tokens = Number.isFinite(lease.tokensLeft) ? lease.tokensLeft : 0;
    if (requests <= 0 && tokens <= 0) return;
    const { prefix, shapes } = this.#options;
    const wallClock: string[] = [];
    const counterKeys: string[] = [];
    const counterArguments: string[] = [];
    for (const scope of isRunsOnly ? [] : lease.shared) {
      const shape = shapes.shapeOf(scope);
      const scoped = scopeKeys(prefix, scope.id, shapes.wallClockWindowsAt(scope.dayReset, lease.startMs));
      if (shape.hasDay || shape.hasMonth) wallClock.push(scoped.day, scoped.month);
      counterKeys.push(...shape.fixedCounters.map(() => scoped.counters));
      counterArguments.push(...tokenCounterArguments(shape.fixedCounters, lease.startMs));
    }
    const keys = [...lease.runs.map((run) => run.hash), ...wallClock, ...counterKeys];
    const [scope] = lease.shared;
    if (keys.length === 0 || scope === undefined) return;
    const runIds = lease.runs.map((run) => run.id);
    const args = [-tokens, -requests, runIds.length, ...runIds, wallClock.length, ...counterArguments];
    this.#track(this.#options.batches.reconcile(scope.id, keys, args, false));
  }

  /**
   * Gives the lease back when it ends even if no request comes to notice (other processes may need the units). Its
   * end is a time on the ledger's clock, which a timer only estimates: one that fires while the clock is short of
   * the end (a test's manual clock, which real time outruns on a loaded machine) waits for the rest. Ended early,
   * the lease's record would leave the provider's windows (LEARN_LUA) while this process may still send its units,
   * and a report from then would count none of them. A clock stepped back before the lease's start ends it: nothing
   * is spent from it then (`spend`), so waiting would only hold its units from the fleet for as long as the step.
   */
  #endWhenDue(lease: BudgetLease, delayMs: number): void {
    lease.timer = setTimeout(
      () => {
        const nowMs = this.#options.clock.now();
        if (nowMs >= lease.startMs && nowMs < lease.endMs) this.#endWhenDue(lease, lease.endMs - nowMs);
        else this.end(lease, "all");
      },
      Math.max(1, delayMs),
    );
    lease.timer.unref();
  }

  /** Tracks a give-back write (sent again after a failure) until it is answered or given up. */
  #track(write: Promise<void>): void {
    const sent: Promise<void> = write.finally(() => this.#givingBack.delete(sent));
    this.#givingBack.add(sent);
  }
}
