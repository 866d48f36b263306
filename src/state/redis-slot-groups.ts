// On a Redis Cluster, whether each master answers for the slots of the keys the gateway writes (a provider's budget
// keys all carry its tag: one slot, one master). A master dead or hung without a replica to take its slots leaves the
// others answering: only the providers whose tag sits on it are served from local state, and the rest keep sharing
// their budgets. Before 2026-12-07 the whole link went down after three failures on the dead master and came back at
// the next PING to a live one, about once a second: every provider flapped between Redis and local state, and each
// flap was logged.
//
// Failures count per master (the one the cluster connection's slot table names for the tag's slot; the tag's slot
// where it names none): a hung master (SIGSTOP, a stuck disk) answers no slot of its own, so three timeouts on any of
// its providers' keys, its once-writes or its cooldowns take all of them local at once. Counted per tag, as before
// 2026-12-07, each provider on it paid three command timeouts of its own first, and writes of keys without a
// provider (cooldowns, lessons, calibration) timed out uncounted. A group goes down after FAILURES_BEFORE_DOWN failed
// commands in a row, and comes back after PROBES_BEFORE_UP probes in a row (one a second, redis-state.ts) answer: a
// master that answers now and then stays down, and says so once. One warning when a group goes down, one line when
// it is back.
import { hashPartOf, hashSlot } from "./redis-hash-slot.ts";
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

/**
 * What a tag names: a provider (`provider:groq`, `deployment:groq/m`), a client's budget (`client:NAME`, whose tag is
 * the client's name) or a key without either (a cooldown, a lesson): only providers are named by status, since
 * /health is open to client keys and a named client must not learn the others' names (as /stats shows it its own
 * budgets only).
 */
export type TagKind = "provider" | "client" | "key";

/** A down group, for the probes: its id, and a tag whose slot it serves (the probe's key carries it). */
export interface DownGroup {
  readonly id: string;
  readonly probeTag: string;
}

interface Group {
  failures: number;
  isDown: boolean;
  downSinceMs: number;
  answeredProbes: number;
  lastError: string;
  /** The tags that failed on it, or were asked for while it was down (served locally), with what they name. */
  readonly tags: Map<string, TagKind>;
  probeTag: string;
}

export class SlotGroups {
  readonly #target: string;
  readonly #logger: StateLogger | undefined;
  readonly #now: () => number;
  /** The master serving a slot now (`host:port`), or undefined when the cluster connection does not know yet. */
  readonly #masterOfSlot: (slot: number) => string | undefined;
  readonly #groups = new Map<string, Group>();
  readonly #slots = new Map<string, number>();
  readonly #upListeners: ((tags: readonly string[]) => void)[] = [];

  constructor(
    target: string,
    logger: StateLogger | undefined,
    now: () => number,
    masterOfSlot: (slot: number) => string | undefined = () => undefined,
  ) {
    this.#target = target;
    this.#logger = logger;
    this.#now = now;
    this.#masterOfSlot = masterOfSlot;
  }

  /** The tag of a budget scope id (`provider:groq`, `deployment:groq/m` -> `groq`). */
  static tagOf(scopeId: string): string {
    return providerTag(scopeId);
  }

  /** The tag of a key: what the cluster hashes of it (its `{...}`, or the whole key). */
  static tagOfKey(key: string): string {
    return hashPartOf(key);
  }

  /** Whether the tag's master is down; a tag asked for while it is counts as served locally (status names it). */
  isDown(tag: string, kind: TagKind = "provider"): boolean {
    if (this.#groups.size === 0) return false;
    const group = this.#groups.get(this.#groupIdOf(tag));
    if (group?.isDown !== true) return false;
    noteTag(group, tag, kind);
    return true;
  }

  /** The providers' tags served from local state now (no client's name), sorted. */
  downProviderTags(): string[] {
    return this.#downTagsOf("provider");
  }

  /** The down groups, each with a tag to probe it by (one probe per master, not per provider). */
  downGroups(): DownGroup[] {
    return [...this.#groups]
      .filter(([, group]) => group.isDown)
      .map(([id, group]) => ({ id, probeTag: group.probeTag }));
  }

  /** Called (without awaiting) when a group is shared again, with the tags it served locally: replay what they reserved. */
  onUp(listener: (tags: readonly string[]) => void): void {
    this.#upListeners.push(listener);
  }

  recordSuccess(tag: string): void {
    if (this.#groups.size === 0) return;
    const id = this.#groupIdOf(tag);
    const group = this.#groups.get(id);
    if (group === undefined) return;
    // A command that answered while the group is down (sent before it went down) proves little: the probes decide.
    if (group.isDown) return;
    this.#groups.delete(id);
  }

  recordFailure(tag: string, error: string, kind: TagKind = "provider"): void {
    const id = this.#groupIdOf(tag);
    const group = this.#groupOf(id, tag);
    group.lastError = error;
    noteTag(group, tag, kind);
    if (group.isDown) return;
    group.probeTag = tag;
    group.failures += 1;
    if (group.failures < FAILURES_BEFORE_DOWN) return;
    group.isDown = true;
    group.downSinceMs = this.#now();
    group.answeredProbes = 0;
    this.#logger?.warn(
      { redis: this.#target, master: id, providers: namedOf(group), error },
      `Redis Cluster ${describeGroup(id)} does not answer: ${describeTags(group)} served from local state (per process) until it does`,
    );
  }

  /** A probe of a down group answered (`error` undefined) or failed. */
  probed(id: string, error: string | undefined): void {
    const group = this.#groups.get(id);
    if (group === undefined || !group.isDown) return;
    if (error !== undefined) {
      group.answeredProbes = 0;
      group.lastError = error;
      return;
    }
    group.answeredProbes += 1;
    // Its slots moved to another master (a replica promoted in a hung one's place): that one answered, and there is
    // no flapping to wait out. Before 2026-12-07 it took three probes (~3 s), the replays of what was kept waiting.
    if (group.answeredProbes < PROBES_BEFORE_UP && !this.#hasMoved(id, group)) return;
    this.#groups.delete(id);
    this.#logger?.info(
      { redis: this.#target, master: id, providers: namedOf(group), downForMs: this.#now() - group.downSinceMs },
      `Redis Cluster ${describeGroup(id)} answers again: ${describeTags(group)} shared again`,
    );
    for (const listener of this.#upListeners) listener([...group.tags.keys()]);
  }

  /**
   * What status() adds while groups are down, or undefined. A group whose slots all moved to another master (a
   * promoted replica, once the slot table says so) is left out at once, as `isDown` leaves its tags: /health named
   * them local until the old master's group was probed up (~3 s), their reserves meanwhile going to the new master.
   */
  describeDown(): string | undefined {
    const down = [...this.#groups]
      .filter(([id, group]) => group.isDown && !this.#hasMoved(id, group))
      .map(([, group]) => group);
    if (down.length === 0) return undefined;
    const sinceMs = Math.min(...down.map((group) => group.downSinceMs));
    const names = this.#downTagsOf("provider");
    const clients = this.#downTagsOf("client").length;
    const what = [
      ...(names.length === 0 ? [] : [names.length === 1 ? "1 provider" : `${names.length} providers`]),
      ...(clients === 0 ? [] : [clients === 1 ? "1 client budget" : `${clients} client budgets`]),
    ].join(" and ");
    const masters = down.length === 1 ? "their Cluster master" : `their ${down.length} Cluster masters`;
    const since = `${masters} not answering since ${new Date(sinceMs).toISOString()}`;
    const named = names.length === 0 ? "" : `: ${names.join(", ")}`;
    return `${what || "nothing"} served from local state, ${since} (${down[0]?.lastError ?? "unknown"})${named}`;
  }

  /** The tags of `kind` served locally now: noted on a down group whose master still serves their slot. */
  #downTagsOf(kind: TagKind): string[] {
    const tags = new Set<string>();
    for (const [id, group] of this.#groups) {
      if (!group.isDown) continue;
      for (const [tag, tagKind] of group.tags) if (tagKind === kind && this.#groupIdOf(tag) === id) tags.add(tag);
    }
    return [...tags].sort();
  }

  /** Whether no tag the group noted (its probe's either) has its slot on that master any more. */
  #hasMoved(id: string, group: Group): boolean {
    if (this.#groupIdOf(group.probeTag) === id) return false;
    for (const tag of group.tags.keys()) if (this.#groupIdOf(tag) === id) return false;
    return true;
  }

  /** The master of the tag's slot, or (unknown to the connection yet) the slot itself. */
  #groupIdOf(tag: string): string {
    let slot = this.#slots.get(tag);
    if (slot === undefined) {
      slot = hashSlot(tag);
      // Tags are providers, clients and cooldown keys: a bounded set, but a cache must not grow without end.
      if (this.#slots.size >= 10_000) this.#slots.clear();
      this.#slots.set(tag, slot);
    }
    return this.#masterOfSlot(slot) ?? `slot ${slot}`;
  }

  #groupOf(id: string, tag: string): Group {
    let group = this.#groups.get(id);
    if (group === undefined) {
      group = {
        failures: 0,
        isDown: false,
        downSinceMs: 0,
        answeredProbes: 0,
        lastError: "",
        tags: new Map(),
        probeTag: tag,
      };
      this.#groups.set(id, group);
    }
    return group;
  }
}

/** A provider wins over a client or a key for the same tag (a provider named like a client is named). */
function noteTag(group: Group, tag: string, kind: TagKind): void {
  const known = group.tags.get(tag);
  if (known === "provider" || known === kind) return;
  if (known === undefined || kind === "provider" || (kind === "client" && known === "key")) group.tags.set(tag, kind);
}

function namedOf(group: Group): string[] {
  return [...group.tags]
    .filter(([, kind]) => kind === "provider")
    .map(([tag]) => tag)
    .sort();
}

function describeGroup(id: string): string {
  return id.startsWith("slot ") ? id : `master ${id}`;
}

/** "the budgets of provider alpha", "... of providers alpha, zeta and 1 client budget", "its keys". */
function describeTags(group: Group): string {
  const names = namedOf(group);
  const clients = [...group.tags.values()].filter((kind) => kind === "client").length;
  const parts = [
    ...(names.length === 0 ? [] : [`${names.length === 1 ? "provider" : "providers"} ${names.join(", ")}`]),
    ...(clients === 0 ? [] : [clients === 1 ? "1 client budget" : `${clients} client budgets`]),
  ];
  return parts.length === 0 ? "its keys are" : `the budgets of ${parts.join(" and ")} are`;
}
