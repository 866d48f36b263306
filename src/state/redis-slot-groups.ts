// On a Redis Cluster, whether each hash tag's slot answers (a provider's budget keys all carry its tag: one slot, one
// master). A master dead without a replica to take its slots leaves the others answering: only the providers whose
// tag sat on it are served from local state, and the rest keep sharing their budgets. Before 2026-12-07 the whole
// link went down after three failures on the dead master and came back at the next PING to a live one, about once
// a second: every provider flapped between Redis and local state, and each flap was logged.
//
// A group goes down after FAILURES_BEFORE_DOWN failed commands in a row on its tag, and comes back after
// PROBES_BEFORE_UP probes in a row (one a second, redis-state.ts) answer: a slot that answers now and then stays
// down, and says so once. One warning when a group goes down, one line when it is back.
import { providerTag } from "./redis-keys.ts";
import type { StateLogger } from "./state-types.ts";

/** Consecutive failed commands (timeouts, errors) on an open connection that count as "down". */
export const FAILURES_BEFORE_DOWN = 3;
/** Consecutive answered probes (PROBE_INTERVAL_MS apart) before a group that was down is shared again. */
export const PROBES_BEFORE_UP = 3;

/**
 * Error replies that say the slot has no master to answer for it now (a master failed, a failover under way), not
 * that the command was wrong: they count as a failure to reach the slot, not as a rejected command.
 */
const UNSERVED_SLOT_REPLY = /^(CLUSTERDOWN|TRYAGAIN|MASTERDOWN|LOADING|MOVED|ASK)\b/;

export function isUnservedSlotReply(error: unknown): boolean {
  return error instanceof Error && UNSERVED_SLOT_REPLY.test(error.message);
}

interface Group {
  failures: number;
  isDown: boolean;
  downSinceMs: number;
  answeredProbes: number;
  lastError: string;
  /**
   * A provider's or a deployment's scope failed on this tag (not only a client's budget, `client:NAME`, whose tag is
   * the client's name): only such tags are named by status, since /health is open to client keys and a named client
   * must not learn the others' names (as /stats shows it its own budgets only).
   */
  isProvider: boolean;
}

export class SlotGroups {
  readonly #target: string;
  readonly #logger: StateLogger | undefined;
  readonly #now: () => number;
  readonly #groups = new Map<string, Group>();
  readonly #upListeners: ((tag: string) => void)[] = [];

  constructor(target: string, logger: StateLogger | undefined, now: () => number) {
    this.#target = target;
    this.#logger = logger;
    this.#now = now;
  }

  /** The tag of a budget scope id (`provider:groq`, `deployment:groq/m` -> `groq`). */
  static tagOf(scopeId: string): string {
    return providerTag(scopeId);
  }

  isDown(tag: string): boolean {
    return this.#groups.get(tag)?.isDown === true;
  }

  /** The providers' tags served from local state now (no client's name), sorted. */
  downProviderTags(): string[] {
    return this.downTags().filter((tag) => this.#groups.get(tag)?.isProvider === true);
  }

  /** The tags served from local state now (clients' too: each is probed), sorted. */
  downTags(): string[] {
    return [...this.#groups]
      .filter(([, group]) => group.isDown)
      .map(([tag]) => tag)
      .sort();
  }

  /** Called (without awaiting) when a group is shared again: replay what it reserved locally meanwhile. */
  onUp(listener: (tag: string) => void): void {
    this.#upListeners.push(listener);
  }

  recordSuccess(tag: string): void {
    const group = this.#groups.get(tag);
    if (group === undefined) return;
    // A command that answered while the group is down (sent before it went down) proves little: the probes decide.
    if (group.isDown) return;
    this.#groups.delete(tag);
  }

  recordFailure(tag: string, error: string, isClient = false): void {
    const group = this.#groupOf(tag);
    group.lastError = error;
    if (!isClient) group.isProvider = true;
    if (group.isDown) return;
    group.failures += 1;
    if (group.failures < FAILURES_BEFORE_DOWN) return;
    group.isDown = true;
    group.downSinceMs = this.#now();
    group.answeredProbes = 0;
    this.#logger?.warn(
      { redis: this.#target, provider: tag, error, providersLocal: this.downTags().length },
      `Redis Cluster slot of ${group.isProvider ? "provider" : "client"} ${tag} does not answer: its budgets are served from local state (per process) until it does`,
    );
  }

  /** A probe of a down group's slot answered (`error` undefined) or failed. */
  probed(tag: string, error: string | undefined): void {
    const group = this.#groups.get(tag);
    if (group === undefined || !group.isDown) return;
    if (error !== undefined) {
      group.answeredProbes = 0;
      group.lastError = error;
      return;
    }
    group.answeredProbes += 1;
    if (group.answeredProbes < PROBES_BEFORE_UP) return;
    this.#groups.delete(tag);
    this.#logger?.info(
      { redis: this.#target, provider: tag, downForMs: this.#now() - group.downSinceMs },
      `Redis Cluster slot of ${group.isProvider ? "provider" : "client"} ${tag} answers again: its budgets are shared again`,
    );
    for (const listener of this.#upListeners) listener(tag);
  }

  /** What status() adds while groups are down, or undefined. */
  describeDown(): string | undefined {
    const down = [...this.#groups].filter(([, group]) => group.isDown);
    if (down.length === 0) return undefined;
    const sinceMs = Math.min(...down.map(([, group]) => group.downSinceMs));
    const [, firstGroup] = down[0] ?? [];
    const names = down.filter(([, group]) => group.isProvider).map(([tag]) => tag);
    names.sort();
    const clients = down.length - names.length;
    const what = [
      ...(names.length === 0 ? [] : [names.length === 1 ? "1 provider" : `${names.length} providers`]),
      ...(clients === 0 ? [] : [clients === 1 ? "1 client budget" : `${clients} client budgets`]),
    ].join(" and ");
    const since = `their Cluster slot not answering since ${new Date(sinceMs).toISOString()}`;
    const named = names.length === 0 ? "" : `: ${names.join(", ")}`;
    return `${what} served from local state, ${since} (${firstGroup?.lastError ?? "unknown"})${named}`;
  }

  #groupOf(tag: string): Group {
    let group = this.#groups.get(tag);
    if (group === undefined) {
      group = { failures: 0, isDown: false, downSinceMs: 0, answeredProbes: 0, lastError: "", isProvider: false };
      this.#groups.set(tag, group);
    }
    return group;
  }
}
