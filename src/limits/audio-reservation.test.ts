// A transcription waiting in the queue for its audio-seconds window (`ash` an hour, `asd` a day): the ledger's steps
// (audio-reservation.ts) and the wait queue (wait-queue.ts) together, on node:test's mock clock, so that an hour's
// wait takes no time and its end is checked to the millisecond. The e2e (test/e2e/audio-seconds.test.ts) cannot wait
// an hour.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import { UTC_MIDNIGHT } from "../config/day-reset.ts";
import type { Limits } from "../config/types.ts";
import { reserveWithSeconds, settleSeconds } from "./audio-reservation.ts";
import {
  AUDIO_SCOPE_SUFFIX,
  audioRulesFromLimits,
  type BudgetScope,
  type Denied,
  type Reservation,
  rulesFromLimits,
} from "./budget-types.ts";
import { BudgetBook } from "./budgets.ts";
import { WaitQueue } from "./wait-queue.ts";

const HOUR_MS = 3_600_000;
const DEPLOYMENT = "deployment:groq/whisper-large-v3";

function scopes(limits: Limits): { audio: BudgetScope; request: BudgetScope } {
  return {
    audio: {
      id: DEPLOYMENT + AUDIO_SCOPE_SUFFIX,
      rules: audioRulesFromLimits(limits),
      concurrency: undefined,
      dayReset: UTC_MIDNIGHT,
    },
    request: { id: DEPLOYMENT, rules: rulesFromLimits(limits).rules, concurrency: undefined, dayReset: UTC_MIDNIGHT },
  };
}

/** Reserves `seconds` and the request now (the mock clock's Date.now()), as the pipeline's admission does. */
function reserveNow(book: BudgetBook, scope: { audio: BudgetScope; request: BudgetScope }, seconds: number) {
  const reserved = reserveWithSeconds(
    book,
    { scopes: [scope.audio], seconds },
    [scope.request],
    { tokens: 0 },
    Date.now(),
  );
  assert.ok(!(reserved instanceof Promise), "the embedded book answers at once");
  return reserved;
}

function isDenied(value: Reservation | Denied): value is Denied {
  return !("id" in value);
}

/** What the queue's `tryNow` gets from a reservation: the reservation, or how long until the binding budget frees. */
function tryReserve(book: BudgetBook, scope: { audio: BudgetScope; request: BudgetScope }, seconds: number) {
  return (): { value: Reservation } | { retryInMs: number } => {
    const reserved = reserveNow(book, scope, seconds);
    return isDenied(reserved) ? { retryInMs: reserved.retryAtMs - Date.now() } : { value: reserved };
  };
}

function usedSeconds(book: BudgetBook, scope: BudgetScope, window: "hour" | "day"): number | undefined {
  return book.usage(scope, Date.now()).find((usage) => usage.window === window)?.used;
}

/** Mock timers from `startMs`, and a step that moves them on and lets the waiter's promises run. */
function mockClock(t: TestContext, startMs: number): (ms: number) => Promise<void> {
  t.mock.timers.enable({ apis: ["setTimeout", "setImmediate", "Date"], now: startMs });
  return async (ms: number): Promise<void> => {
    t.mock.timers.tick(ms);
    for (let turn = 0; turn < 20; turn += 1) await Promise.resolve();
  };
}

/** A promise's state without waiting for it. */
function watch<T>(promise: Promise<T>): { readonly isSettled: () => boolean; readonly value: () => T | undefined } {
  let isSettled = false;
  let value: T | undefined;
  void promise.then((settled) => {
    isSettled = true;
    value = settled;
  });
  return { isSettled: () => isSettled, value: () => value };
}

describe("a transcription queued for its audio-seconds window", () => {
  test("`ash`: a 30 s file behind 40 s of 60 waits for the hour to slide past them, and not a millisecond less", async (t) => {
    const startMs = Date.UTC(2026, 11, 6, 12, 0, 0);
    const advance = mockClock(t, startMs);
    const book = new BudgetBook();
    const scope = scopes({ ash: 60 });
    const first = reserveNow(book, scope, 40);
    assert.ok(!isDenied(first));
    settleSeconds(book, first, undefined, Date.now());
    await advance(10 * 60_000);
    const waiter = watch(
      new WaitQueue().wait(10, 2 * HOUR_MS, new AbortController().signal, tryReserve(book, scope, 30)),
    );
    await advance(0);
    assert.equal(waiter.isSettled(), false, "40 + 30 > 60: it waits");
    // The 40 s leave the sliding hour at 13:00:00.000, 50 minutes on.
    await advance(50 * 60_000 - 1);
    assert.equal(waiter.isSettled(), false, "at 12:59:59.999 the 40 s are still in the hour");
    await advance(1);
    assert.equal(waiter.isSettled(), true, "admitted at 13:00");
    const admitted = waiter.value();
    assert.ok(admitted !== undefined);
    assert.equal(admitted.atMs, startMs + HOUR_MS);
    assert.equal(admitted.audio?.tokens, 30, "the request carries its seconds' reservation");
    assert.equal(usedSeconds(book, scope.audio, "hour"), 30);
  });

  test("`asd`: a file waits for the day to reset at 00:00 UTC; with less queue time than that it leaves, charging nothing", async (t) => {
    const startMs = Date.UTC(2026, 11, 6, 20, 0, 0);
    const advance = mockClock(t, startMs);
    const book = new BudgetBook();
    const scope = scopes({ asd: 100, rpd: 1_000 });
    const first = reserveNow(book, scope, 70);
    assert.ok(!isDenied(first));
    settleSeconds(book, first, undefined, Date.now());
    const queue = new WaitQueue();
    const signal = new AbortController().signal;
    // One that may wait an hour: the day resets in four.
    const short = watch(queue.wait(10, HOUR_MS, signal, tryReserve(book, scope, 70)));
    // One behind it that may wait five hours.
    const long = watch(queue.wait(10, 5 * HOUR_MS, signal, tryReserve(book, scope, 70)));
    await advance(HOUR_MS);
    assert.equal(short.isSettled(), true);
    assert.equal(short.value(), undefined, "out of queue time: the 429");
    assert.equal(usedSeconds(book, scope.audio, "day"), 70, "leaving charged no seconds");
    assert.equal(book.usage(scope.request, Date.now()).find((usage) => usage.window === "day")?.used, 1);
    await advance(3 * HOUR_MS - 1);
    assert.equal(long.isSettled(), false, "23:59:59.999: still the same day");
    await advance(1);
    assert.equal(long.isSettled(), true);
    assert.equal(long.value()?.atMs, Date.UTC(2026, 11, 7, 0, 0, 0));
    assert.equal(usedSeconds(book, scope.audio, "day"), 70, "the new day holds only the admitted file's 70 s");
  });

  test("seconds that fit while the request's own `rpm` does not: nothing is held while it waits, both taken at once", async (t) => {
    const startMs = Date.UTC(2026, 11, 6, 12, 0, 0);
    const advance = mockClock(t, startMs);
    const book = new BudgetBook();
    const scope = scopes({ ash: 60, rpm: 1 });
    const first = reserveNow(book, scope, 10);
    assert.ok(!isDenied(first));
    settleSeconds(book, first, undefined, Date.now());
    const waiter = watch(new WaitQueue().wait(10, HOUR_MS, new AbortController().signal, tryReserve(book, scope, 30)));
    await advance(30_000);
    assert.equal(waiter.isSettled(), false);
    // Its 30 s were tried and given back each time: held while it waits, they would shut out every other upload.
    assert.equal(usedSeconds(book, scope.audio, "hour"), 10);
    await advance(30_000);
    assert.equal(waiter.isSettled(), true, "admitted when the minute's request leaves the window");
    assert.equal(waiter.value()?.atMs, startMs + 60_000);
    assert.equal(usedSeconds(book, scope.audio, "hour"), 40);
  });

  test("a verbose_json duration shorter than the estimate gives the window back to the next waiter", async (t) => {
    const startMs = Date.UTC(2026, 11, 6, 12, 0, 0);
    const advance = mockClock(t, startMs);
    const book = new BudgetBook();
    const scope = scopes({ ash: 60 });
    const first = reserveNow(book, scope, 50);
    assert.ok(!isDenied(first));
    // The answer said 5 s: reconciled, 5 + 50 fit at once, no hour's wait.
    settleSeconds(book, first, 5, Date.now());
    const waiter = watch(new WaitQueue().wait(10, HOUR_MS, new AbortController().signal, tryReserve(book, scope, 50)));
    await advance(0);
    assert.equal(waiter.isSettled(), true);
    assert.equal(waiter.value()?.atMs, startMs);
    assert.equal(usedSeconds(book, scope.audio, "hour"), 55);
  });
});
