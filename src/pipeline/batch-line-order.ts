// Which batch line starts next and when: the clients' and their batches' turns, the lines waiting off their slots
// for a limit (parked by their plan's key), one line per key between its plan and its reservation, and live traffic
// first (no line starts while a live request waits in the route queue).

import type { BatchLine } from "../protocols/batches/batch-objects.ts";
import {
  type ActiveBatch,
  type BatchSteps,
  bodyOrUndefined,
  dueParked,
  insertInOrder,
  isLineOverLimit,
  type LineOutcome,
  lineKey,
  nextInTurn,
  type PickedLine,
  planKey,
} from "./active-batch.ts";

/** ms between looks at the route queue while live requests wait in it. */
const LIVE_FIRST_POLL_MS = 50;
/** Longest single wait off a slot for a limit or a 5xx (the plan is made again after it: a reload, a freed slot). */
const MAX_PACING_SLEEP_MS = 5_000;
/**
 * Longest wait of lines held while a line of their key is between its plan and its reservation (#launching): they are
 * woken when it is reserved or ends; this only bounds a wake that never came.
 */
const LAUNCH_WAIT_MS = 1_000;
/** Lines moved from `pending` to a parked key in one pump at most (each is parsed): the event loop stays free. */
const MAX_PARKED_PER_PUMP = 500;

/** What the order asks of its runner. */
export interface OrderRunner {
  /** The batches running here. */
  batches(): Iterable<ActiveBatch>;
  /** Starts lines while slots are free. */
  pump(): void;
}

export class LineOrder {
  readonly #steps: BatchSteps;
  readonly #runner: OrderRunner;
  /** The turn of nextBatch: the owner served last, and each owner's batch served last. */
  #lastOwner: string | undefined;
  readonly #lastBatchOf = new Map<string, string>();
  /** Pumps again while live requests wait in the route queue (no line starts meanwhile). */
  #liveFirstTimer: NodeJS.Timeout | undefined;
  /**
   * The launch keys (launchKeys: its plan key, its client's when the client has budgets) of each line started and not
   * yet reserved (its tokens not yet counted in a budget), across batches: no other line with one of those keys starts
   * meanwhile. Both would be planned on the same room, and with concurrency above what a `tpm` holds, the second was
   * sent and refused by its own pipeline (a 429 record).
   */
  readonly #launching = new Map<string, object>();

  constructor(steps: BatchSteps, runner: OrderRunner) {
    this.#steps = steps;
    this.#runner = runner;
  }

  /** The gateway's exit: no more looks at the route queue. */
  close(): void {
    if (this.#liveFirstTimer !== undefined) clearTimeout(this.#liveFirstTimer);
  }

  /**
   * The picked line starts under its launch keys: its `reserved` (call it once reserved, ended or waiting; idempotent),
   * or undefined when a line of one of its keys is still between its plan and its reservation (parkForLaunch).
   */
  launch(active: ActiveBatch, key: string): (() => void) | undefined {
    const keys = this.#launchKeys(active, key);
    if (keys.some((launchKey) => this.#launching.has(launchKey))) return undefined;
    const launch = {};
    for (const launchKey of keys) this.#launching.set(launchKey, launch);
    return (): void => this.#reserved(keys, launch);
  }

  /**
   * A line's try ended: done (its 5xx count goes), or it waits `waitMs` off its slot with its plan's key's lines, or
   * alone (`isLineOnly`: a pause after a 5xx).
   */
  ranLine(active: ActiveBatch, picked: PickedLine, outcome: LineOutcome): void {
    const { index } = picked.line;
    if (outcome === undefined) active.serverErrors.delete(index);
    else this.parkLine(active, outcome.isLineOnly === true ? lineKey(index) : picked.key, index, outcome.waitMs);
  }

  /** A line whose key is launching waits until that line is reserved (or LAUNCH_WAIT_MS), holding no slot. */
  parkForLaunch(active: ActiveBatch, key: string, index: number): void {
    this.parkLine(active, key, index, LAUNCH_WAIT_MS, true);
  }

  /** What a line shares budgets through with other lines: its model and fallbacks; its client, if it has budgets. */
  #launchKeys(active: ActiveBatch, planKey: string): readonly string[] {
    const hasClientBudgets = active.owner !== "" && this.#steps.runtime.snapshot.clientScopes.has(active.owner);
    return hasClientBudgets ? [planKey, `client:${active.owner}`] : [planKey];
  }

  /**
   * The line started under `launch` is reserved (or ended, or waits): the next line of its keys may start, and the
   * lines held for a launch are woken to look again (in the next turn: this runs inside the line's pipeline).
   */
  #reserved(keys: readonly string[], launch: object): void {
    if (keys.every((key) => this.#launching.get(key) !== launch)) return;
    for (const key of keys) if (this.#launching.get(key) === launch) this.#launching.delete(key);
    let isWoken = false;
    for (const active of this.#runner.batches()) {
      for (const group of active.parked.values()) {
        if (!group.isHeldForLaunch) continue;
        group.isHeldForLaunch = false;
        group.untilMs = 0;
        clearTimeout(group.timer);
        group.timer = undefined;
        isWoken = true;
      }
    }
    if (isWoken) setImmediate(() => this.#runner.pump());
  }

  /**
   * Live traffic first: while a live request waits in the route queue, no line starts (it would take the slot or the
   * last of a budget that request waits for); the pump looks again every LIVE_FIRST_POLL_MS. Waiting here, not in a
   * started line, holds no slot: the lines in flight finish and give theirs back.
   */
  isLiveWaiting(): boolean {
    if (this.#steps.runtime.queuedRequests === 0) return false;
    if (this.#liveFirstTimer === undefined) {
      this.#liveFirstTimer = setTimeout(() => {
        this.#liveFirstTimer = undefined;
        this.#runner.pump();
      }, LIVE_FIRST_POLL_MS);
      this.#liveFirstTimer.unref();
    }
    return true;
  }

  /**
   * The batch's next line to start, in order: the first of a parked key whose time came, or of `pending`. A pending
   * line whose key is parked joins it without a try (up to MAX_PARKED_PER_PUMP per pump: "yield", the pump goes on in
   * the next turn); "none" when every line left waits.
   */
  nextLine(active: ActiveBatch): PickedLine | "none" | "yield" {
    const nowMs = this.#steps.runtime.clock.now();
    for (let moved = 0; moved < MAX_PARKED_PER_PUMP; ) {
      const due = dueParked(active, nowMs);
      const head = active.pending[0];
      if (due !== undefined && (head === undefined || due.index < head)) {
        const line = active.lines[due.index];
        due.group.indexes.shift();
        if (due.group.indexes.length === 0) {
          clearTimeout(due.group.timer);
          active.parked.delete(due.key);
        }
        if (line === undefined) continue;
        // Its plan's key, not the group's: a line that paused alone (lineKey) waits with its model's lines next time.
        const body = this.#plannedBody(active, line);
        return { line, key: planKey(body), body };
      }
      if (head === undefined) return "none";
      active.pending.shift();
      const line = active.lines[head];
      if (line === undefined) continue;
      const body = this.#plannedBody(active, line);
      const key = planKey(body);
      const group = active.parked.get(key);
      if (group === undefined || group.untilMs <= nowMs) return { line, key, body };
      insertInOrder(group.indexes, head);
      moved += 1;
    }
    return "yield";
  }

  /** The line's body for its plan's key; not parsed when the line is over the body limit (LineRuns.run refuses it unread). */
  #plannedBody(active: ActiveBatch, line: BatchLine): Record<string, unknown> | undefined {
    const bodyLimitBytes = this.#steps.runtime.snapshot.config.server.bodyLimitBytes;
    return isLineOverLimit(line, bodyLimitBytes) ? undefined : bodyOrUndefined(active.input, line);
  }

  /**
   * The line waits `waitMs` (at most MAX_PACING_SLEEP_MS: then it is planned again, after a reload or a freed slot)
   * with the lines of its key, holding no slot. The key's time is the latest word on it.
   */
  parkLine(active: ActiveBatch, key: string, index: number, waitMs: number, isHeldForLaunch = false): void {
    if (active.isSettled || active.isCancelling || active.isExpiring || this.#steps.isStopping()) return;
    const delayMs = Math.max(1, Math.min(waitMs, MAX_PACING_SLEEP_MS));
    const group = active.parked.get(key) ?? { indexes: [], untilMs: 0, timer: undefined, isHeldForLaunch };
    active.parked.set(key, group);
    insertInOrder(group.indexes, index);
    group.isHeldForLaunch = isHeldForLaunch;
    group.untilMs = this.#steps.runtime.clock.now() + delayMs;
    clearTimeout(group.timer);
    group.timer = setTimeout(() => {
      group.timer = undefined;
      // Due now, whatever the clock reads: a timer may fire a millisecond before the clock reaches `untilMs`, and a
      // group still not due then had no timer left to wake it (its batch stalled for good).
      group.untilMs = 0;
      this.#runner.pump();
    }, delayMs);
    group.timer.unref();
  }

  /**
   * Whose line goes next: the clients (named keys; "" for the unnamed) take turns, and a client's batches take turns
   * among themselves, one line each. Oldest first instead let one 50,000-line batch hold every slot for hours while a
   * 1-line batch (of another client, or the same one) waited behind it, up to its window's end.
   */
  nextBatch(): ActiveBatch | undefined {
    const byOwner = new Map<string, ActiveBatch[]>();
    for (const active of this.#runner.batches()) {
      const owned = byOwner.get(active.owner) ?? [];
      owned.push(active);
      byOwner.set(active.owner, owned);
    }
    const nowMs = this.#steps.runtime.clock.now();
    const hasPending = (active: ActiveBatch): boolean =>
      active.pending.length > 0 || dueParked(active, nowMs) !== undefined;
    const owner = nextInTurn(
      [...byOwner.keys()],
      this.#lastOwner,
      (name) => byOwner.get(name)?.some(hasPending) ?? false,
    );
    if (owner === undefined) return undefined;
    const owned = byOwner.get(owner) ?? [];
    const batchId = nextInTurn(
      owned.map((active) => active.id),
      this.#lastBatchOf.get(owner),
      (id) => owned.some((active) => active.id === id && hasPending(active)),
    );
    const active = owned.find((candidate) => candidate.id === batchId);
    if (active === undefined) return undefined;
    this.#lastOwner = owner;
    this.#lastBatchOf.set(owner, active.id);
    return active;
  }
}
