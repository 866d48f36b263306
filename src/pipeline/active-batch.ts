// A batch as the runner holds it while it runs (ActiveBatch: its lines, what waits, what is in flight or unwritten),
// and the small rules over it the runner's steps share: turns, parked lines, plan keys, a line's body.

import type { Logger } from "../logger.ts";
import { lineBody } from "../protocols/batches/batch-line-body.ts";
import type { BatchEndpoint, BatchLine, BatchObject } from "../protocols/batches/batch-objects.ts";
import type { ResultRow } from "../state/batch-rows.ts";
import type { BatchBooks } from "./batch-books.ts";
import type { MutableUsage } from "./batch-lines.ts";
import type { GatewayRuntime } from "./gateway-runtime.ts";

/** Results read at once, in bytes of lines (each page one read of the store, then a turn of the loop). */
export const RESULTS_PAGE_BYTES = 256 * 1024;

/** What the runner's steps kept in modules of their own read and write through: the runner's own, bound to it. */
export interface BatchSteps {
  readonly books: BatchBooks;
  readonly runtime: GatewayRuntime;
  /** The runner's compare-and-set change of a kept batch (undefined: no change); the batch written, if one was. */
  update(id: string, change: (batch: BatchObject) => BatchObject | undefined): Promise<BatchObject | undefined>;
  nowSeconds(): number;
  /** The gateway's exit began. */
  isStopping(): boolean;
  readonly log: Logger;
}

/** A finished line's result the store refused (locked, unreachable): kept until a write of it gets through. */
export interface UnwrittenResult {
  readonly result: ResultRow;
  /** The answer's body, for the usage it adds once written. */
  readonly answer: unknown;
}

export interface ActiveBatch {
  readonly id: string;
  readonly owner: string;
  readonly endpoint: BatchEndpoint;
  /** The input file's bytes (one Buffer for every batch of the same file: inputOf shares it). */
  readonly input: Buffer;
  readonly lines: readonly BatchLine[];
  /** Indexes not yet tried, in order. */
  readonly pending: number[];
  /**
   * Lines tried that wait for a limit, by what they ask for (planKey): they hold no slot meanwhile, so a batch on a
   * 1-rpm model cannot keep every slot asleep while other batches' lines, or its own lines for another model, could
   * run now. A line of `pending` whose key is parked joins it untried (its plan would say the same). Bounded as
   * `pending` is: each line is in one of them at most once.
   */
  readonly parked: Map<string, ParkedLines>;
  inFlight: number;
  /**
   * Lines started here and without a result row yet, by index: a line leaves it when its result is written, or when
   * its run ends before the exit. What the exit aborts (or whose result it cannot write) stays, and its warning names
   * those lines: they may have been sent, and they run again after a restart.
   */
  readonly unanswered: Set<number>;
  isCancelling: boolean;
  isExpiring: boolean;
  completed: number;
  failed: number;
  usage: MutableUsage;
  /** Aborted by the gateway's exit: the lines in flight are not written and run again after a restart. */
  readonly controller: AbortController;
  /** Its end is being written (once). */
  isSettled: boolean;
  /**
   * Finished lines whose result the store refused, by line: written again with backoff (BatchResults); the batch does not
   * end before they are written, and they are lost only with the process (then they have no row and run again).
   */
  readonly unwritten: Map<number, UnwrittenResult>;
  /**
   * Tries that ended in a 5xx from every candidate, by line, while the line pauses before its next (off its slot,
   * parked under its own key: lineKey). Dropped when the line ends.
   */
  readonly serverErrors: Map<number, number>;
}

/** A batch's lines that wait for the same limit (one model and its fallbacks), until `untilMs`. */
export interface ParkedLines {
  /** In order. */
  readonly indexes: number[];
  untilMs: number;
  /** Pumps once `untilMs` is reached. */
  timer: NodeJS.Timeout | undefined;
  /** They wait for a line of their key to be reserved (LineOrder #launching), not for a limit: woken then. */
  isHeldForLaunch: boolean;
}

/** A line to start: its body parsed (undefined when it does not parse: its run reports that). */
export interface PickedLine {
  readonly line: BatchLine;
  readonly key: string;
  readonly body: Record<string, unknown> | undefined;
}

/**
 * A line's run ended (written, or to run again after a restart), or it waits `waitMs` off its slot: for a limit, with
 * the lines of its plan's key; or alone (`isLineOnly`: a pause after a 5xx, which says nothing of the other lines).
 */
export type LineOutcome = { readonly waitMs: number; readonly isLineOnly?: boolean } | undefined;

export function customIdOf(active: ActiveBatch, index: number): string | undefined {
  return active.lines[index]?.customId;
}

/** The first ready name after `last` in `order` (from the start again at its end; from the start when `last` is gone). */
export function nextInTurn(
  order: readonly string[],
  last: string | undefined,
  isReady: (name: string) => boolean,
): string | undefined {
  const from = last === undefined ? -1 : order.indexOf(last);
  for (let step = 1; step <= order.length; step++) {
    const name = order[(from + step) % order.length];
    if (name !== undefined && isReady(name)) return name;
  }
  return undefined;
}

/** Stops what a batch has left to start (a cancel, its window's end, its lease lost): pending and parked lines. */
export function dropWork(active: ActiveBatch): void {
  active.pending.length = 0;
  for (const group of active.parked.values()) clearTimeout(group.timer);
  active.parked.clear();
}

/** The parked key whose time came with the first line, if any (few keys: a batch's models). */
export function dueParked(
  active: ActiveBatch,
  nowMs: number,
): { readonly key: string; readonly group: ParkedLines; readonly index: number } | undefined {
  let due: { readonly key: string; readonly group: ParkedLines; readonly index: number } | undefined;
  for (const [key, group] of active.parked) {
    const index = group.indexes[0];
    if (group.untilMs > nowMs || index === undefined) continue;
    if (due === undefined || index < due.index) due = { key, group, index };
  }
  return due;
}

/**
 * The parked key of a line pausing alone (after a 5xx): never a planKey (those are JSON arrays, or ""), so no pending
 * line joins it.
 */
export function lineKey(index: number): string {
  return `line:${index}`;
}

/** What a line's plan depends on besides its batch's client: its model and fallbacks. */
export function planKey(body: Record<string, unknown> | undefined): string {
  if (body === undefined) return "";
  return JSON.stringify([body.model ?? null, Array.isArray(body.models) ? body.models : null]);
}

/**
 * The line's raw bytes exceed the body limit. Its `body` is only part of the line, so a line up to its wrapper's size
 * (`custom_id`, `method`, `url`: ~100 bytes) over the limit whose body alone is within it is refused too.
 */
export function isLineOverLimit(line: BatchLine, bodyLimitBytes: number): boolean {
  return line.end - line.start > bodyLimitBytes;
}

export function bodyOrUndefined(input: Buffer, line: BatchLine): Record<string, unknown> | undefined {
  try {
    return lineBody(input, line);
  } catch {
    return undefined;
  }
}

/** Into a sorted list (a line parked again goes back to its place: lines start in the file's order). */
export function insertInOrder(indexes: number[], index: number): void {
  let low = 0;
  let high = indexes.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if ((indexes[middle] ?? 0) < index) low = middle + 1;
    else high = middle;
  }
  indexes.splice(low, 0, index);
}
