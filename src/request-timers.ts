// The per-request timeouts (an attempt's deadline and headers wait, the early head, a stream's keep-alive, idle and
// duration timers, ...) share one Node timer, armed for the earliest of them: a min-heap of due times in JS.
//
// Why: Node keeps one timer list per duration and frees a list when its last ref'd timer is cleared, so at concurrency
// 1 every request made and dropped a list (and a priority-queue insert and removal) for each of its timers' durations,
// on top of a `Timeout` object each (its async id, a clock read in C++); a stream armed nine, four of them making a
// list, most before its first byte. Here arming is an object and a heap insert (a handful of entries: log n moves),
// cancelling a heap removal; the one Node timer is re-armed only when a timer due earlier than it is added (at
// concurrency 1, about once per shortest interval: the previous request's timers were cancelled, the Node timer was
// left armed for the earliest of them, fires with nothing due and is armed for what is there then). bench/README.md
// section 45 has the counts and the CPU.
//
// Timing is Node's: a timer runs once `performance.now()` has passed its due time (never before), in a macrotask of
// its own like a Node timer's; timers due together run in the order they were armed (or refreshed), and, as between
// Node timers, what one of them set going (its promise callbacks, its nextTicks) runs before the next one, which it
// may cancel (a headers timeout failing the request before its early head was due). What differs: the
// Node timer is unref'd, so these never keep the process alive (each belongs to a request whose sockets do); their
// callbacks run in the async context of the one Node timer's arming, not their own (nothing in the gateway reads an
// AsyncLocalStorage in them); a callback that throws does not stop the others due with it and reaches
// `uncaughtException` on the next tick, as a throwing Node timer would.
import { performance } from "node:perf_hooks";

/** One armed callback: `cancel` (idempotent) keeps it from running; `refresh` makes it due its delay from now. */
export interface RequestTimer {
  cancel(): void;
  /** Due `delayMs` from now, armed again if it has run; nothing after `cancel` (as Node's `refresh` after a clear). */
  refresh(): void;
}

/** Where the heap gets its time and its one real timer (tests: a manual clock and a manual trigger). */
export interface TimerHost {
  now(): number;
  /** Runs `callback` once, after `delayMs`; the returned function cancels it. */
  arm(callback: () => void, delayMs: number): () => void;
  /**
   * Runs `callback` once what the running code set going has run (its promise callbacks and nextTicks, in the same
   * turn of the event loop). Without it (a manual host in a test), timers due together run one after the other.
   */
  afterMicrotasks?(callback: () => void): void;
}

/** The longest delay a Node timer takes (a longer one fires after 1 ms, with a warning): longer waits are re-armed. */
const LONGEST_NODE_DELAY_MS = 2_147_483_647;

const nodeHost: TimerHost = {
  now: () => performance.now(),
  arm: (callback, delayMs) => {
    const timer = setTimeout(callback, delayMs);
    timer.unref();
    return () => clearTimeout(timer);
  },
  // A nextTick queued from a microtask runs once the microtask queue is empty, chains of promise callbacks included
  // (Node drains it before it takes the next tick): what Node runs between two timers.
  afterMicrotasks: (callback) => queueMicrotask(() => process.nextTick(callback)),
};

class Entry implements RequestTimer {
  readonly #owner: RequestTimers;
  readonly delayMs: number;
  readonly callback: () => void;
  dueMs = 0;
  /** Arming order, for timers due at the same time. */
  order = 0;
  /** Its place in the heap, -1 when not in it (run, or cancelled). */
  index = -1;
  isCancelled = false;

  constructor(owner: RequestTimers, delayMs: number, callback: () => void) {
    this.#owner = owner;
    this.delayMs = delayMs;
    this.callback = callback;
  }

  cancel(): void {
    this.isCancelled = true;
    if (this.index !== -1) this.#owner.remove(this);
  }

  refresh(): void {
    if (!this.isCancelled) this.#owner.schedule(this);
  }
}

/** Node's rule for a delay: below 1 ms, or not a number (NaN, which Math.max would keep), is 1 ms. */
function atLeastOneMs(delayMs: number): number {
  if (!(delayMs >= 1)) return 1;
  return delayMs;
}

function isEarlier(a: Entry, b: Entry): boolean {
  return a.dueMs < b.dueMs || (a.dueMs === b.dueMs && a.order < b.order);
}

export class RequestTimers {
  readonly #host: TimerHost;
  readonly #heap: Entry[] = [];
  #nextOrder = 0;
  /** When the real timer is due (Infinity: none armed), and how to cancel it. */
  #armedDueMs = Number.POSITIVE_INFINITY;
  #disarm: (() => void) | undefined;

  constructor(host: TimerHost = nodeHost) {
    this.#host = host;
  }

  /** Runs `callback` once, `delayMs` from now (below 1, or not a number: 1 ms, as Node's setTimeout). */
  after(delayMs: number, callback: () => void): RequestTimer {
    const entry = new Entry(this, atLeastOneMs(delayMs), callback);
    this.schedule(entry);
    return entry;
  }

  /** Timers armed and not yet run or cancelled. */
  get size(): number {
    return this.#heap.length;
  }

  /** Due `delayMs` from now: put in the heap, or moved in it. Called by `after` and `refresh`. */
  schedule(entry: Entry): void {
    entry.dueMs = this.#host.now() + entry.delayMs;
    entry.order = this.#nextOrder++;
    if (entry.index === -1) {
      entry.index = this.#heap.length;
      this.#heap.push(entry);
      this.#siftUp(entry.index);
    } else {
      // Later than before (the clock does not go back): it can only move down.
      this.#siftDown(entry.index);
    }
    if (entry.dueMs < this.#armedDueMs) this.#arm(entry.dueMs);
  }

  /** Out of the heap. The real timer stays armed: when it fires with nothing due, it is armed for what is there. */
  remove(entry: Entry): void {
    const heap = this.#heap;
    const index = entry.index;
    const last = heap.pop() as Entry;
    entry.index = -1;
    if (last === entry) return;
    heap[index] = last;
    last.index = index;
    this.#siftDown(index);
    this.#siftUp(last.index);
  }

  #arm(dueMs: number): void {
    this.#disarm?.();
    this.#armedDueMs = dueMs;
    const delayMs = Math.min(LONGEST_NODE_DELAY_MS, Math.max(1, Math.ceil(dueMs - this.#host.now())));
    this.#disarm = this.#host.arm(() => this.#fire(), delayMs);
  }

  #fire(): void {
    this.#disarm = undefined;
    this.#armedDueMs = Number.POSITIVE_INFINITY;
    // One reading for the pass: a timer armed by a callback here, due at once, runs in the next pass (as in Node).
    this.#runDue(this.#host.now());
  }

  /**
   * The timers due by `nowMs`, earliest first. Between two of them, what the first set going runs (afterMicrotasks),
   * as Node runs it between two timers: run back to back, a timer whose request the one before had just failed (in a
   * promise callback: the attempt's catch, the pipeline's rejection) still ran, and an early head went out for a
   * request that had its error already, a 200 and an in-stream error instead of the 504 it got before.
   */
  #runDue(nowMs: number): void {
    const heap = this.#heap;
    const continueAfter = this.#host.afterMicrotasks;
    for (let first = heap[0]; first !== undefined && first.dueMs <= nowMs; first = heap[0]) {
      this.remove(first);
      try {
        first.callback();
      } catch (error) {
        process.nextTick(() => {
          throw error;
        });
      }
      const following = heap[0];
      if (continueAfter !== undefined && following !== undefined && following.dueMs <= nowMs) {
        // Looked for again then: the first's promise callbacks may have cancelled it, or armed an earlier one.
        continueAfter(() => this.#runDue(nowMs));
        return;
      }
    }
    const next = heap[0];
    // A callback may have armed one already (schedule arms for anything earlier than what is armed).
    if (next !== undefined && next.dueMs < this.#armedDueMs) this.#arm(next.dueMs);
  }

  #siftUp(start: number): void {
    const heap = this.#heap;
    const entry = heap[start] as Entry;
    let index = start;
    while (index > 0) {
      const parentIndex = (index - 1) >> 1;
      const parent = heap[parentIndex] as Entry;
      if (!isEarlier(entry, parent)) break;
      heap[index] = parent;
      parent.index = index;
      index = parentIndex;
    }
    heap[index] = entry;
    entry.index = index;
  }

  #siftDown(start: number): void {
    const heap = this.#heap;
    const size = heap.length;
    const entry = heap[start] as Entry;
    let index = start;
    for (;;) {
      let child = 2 * index + 1;
      if (child >= size) break;
      const right = heap[child + 1];
      if (right !== undefined && isEarlier(right, heap[child] as Entry)) child++;
      const earlier = heap[child] as Entry;
      if (!isEarlier(earlier, entry)) break;
      heap[index] = earlier;
      earlier.index = index;
      index = child;
    }
    heap[index] = entry;
    entry.index = index;
  }
}

/** The process's request timers: every per-request timeout of the gateway is armed here. */
export const requestTimers = new RequestTimers();
