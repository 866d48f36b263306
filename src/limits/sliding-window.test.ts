import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MAX_EXACT_RUNS, SlidingWindow } from "./sliding-window.ts";

const MINUTE_MS = 60_000;

describe("SlidingWindow", () => {
  it("is an exact log while it holds fewer than MAX_EXACT_RUNS runs", () => {
    const window = new SlidingWindow(MINUTE_MS);
    for (let index = 0; index < MAX_EXACT_RUNS; index++) window.charge(index, 10, index);
    assert.equal(window.runCount, MAX_EXACT_RUNS);
    window.expire(MINUTE_MS + 9);
    // Charges made at 0..9 left at exactly 60 000..60 009.
    assert.equal(window.requests, MAX_EXACT_RUNS - 10);
    assert.equal(window.tokens, (MAX_EXACT_RUNS - 10) * 10);
    assert.equal(window.oldestLeavesAtMs, MINUTE_MS + 10);
  });

  it("beyond that, joins charges into the newest run, which leaves with its last charge", () => {
    const window = new SlidingWindow(MINUTE_MS);
    for (let index = 0; index < MAX_EXACT_RUNS; index++) window.charge(0, 1, 0);
    const run = window.charge(100, 5, 100);
    const joined = window.charge(200, 5, 200);
    assert.equal(joined, run);
    assert.deepEqual([run?.firstMs, run?.lastMs, run?.requests, run?.tokens], [0, 200, 3, 11]);
    // W/64 = 937.5 ms after the run's first charge, a new run starts.
    const next = window.charge(938, 1, 938);
    assert.notEqual(next, run);
    // The 63 runs of one charge at 0 left at 60 000; the joined run (its charges at 0, 100, 200) only leaves with
    // its last charge, at 60 200; the run started at 938 is still in.
    window.expire(MINUTE_MS + 199);
    assert.equal(window.requests, 4);
    window.expire(MINUTE_MS + 200);
    assert.equal(window.requests, 1);
  });

  it("never holds more than 2 × MAX_EXACT_RUNS + 1 runs, whatever the rate", () => {
    const window = new SlidingWindow(MINUTE_MS);
    let most = 0;
    for (let atMs = 0; atMs < 5 * MINUTE_MS; atMs += 3) {
      window.expire(atMs);
      window.charge(atMs, 1, atMs);
      most = Math.max(most, window.runCount);
    }
    assert.ok(most <= 2 * MAX_EXACT_RUNS + 1, `held ${most}`);
    // An exact log would count the 20 000 charges of the last minute; runs count them all, and at most the
    // charges of 1/64 of a minute more (conservative: never fewer).
    assert.ok(window.requests >= 20_000, `counts ${window.requests}`);
    assert.ok(window.requests <= 20_000 + Math.ceil(MINUTE_MS / MAX_EXACT_RUNS / 3), `counts ${window.requests}`);
  });

  it("a charge older than the newest run is ordered by when it leaves; one that already left is not counted", () => {
    const window = new SlidingWindow(MINUTE_MS);
    window.charge(1_000, 1, 1_000);
    window.charge(500, 2, 1_000);
    assert.equal(window.oldestLeavesAtMs, 500 + MINUTE_MS);
    assert.equal(window.charge(0, 4, MINUTE_MS), undefined);
    assert.equal(window.tokens, 3);
  });

  it("adjust moves a live run's tokens (floored at 0) and ignores a run that left", () => {
    const window = new SlidingWindow(MINUTE_MS);
    const first = window.charge(0, 100, 0);
    const second = window.charge(10, 50, 10);
    assert.ok(first !== undefined && second !== undefined);
    window.adjust(second, -80);
    assert.equal(window.tokens, 100);
    window.expire(MINUTE_MS);
    window.adjust(first, 1_000);
    assert.equal(window.tokens, 0);
  });

  it("export and fromRuns round-trip", () => {
    const window = new SlidingWindow(MINUTE_MS);
    for (let index = 0; index < 100; index++) window.charge(index * 5, index, index * 5);
    const copy = SlidingWindow.fromRuns(MINUTE_MS, window.export());
    assert.deepEqual(copy.export(), window.export());
    assert.equal(copy.tokens, window.tokens);
    assert.equal(copy.requests, window.requests);
  });

  it("retime moves a run to its send and keeps the runs ordered by leaving time", () => {
    const window = new SlidingWindow(MINUTE_MS);
    const first = window.charge(0, 1, 0);
    window.charge(10, 1, 10);
    window.charge(20, 1, 20);
    assert.ok(first !== undefined);
    assert.equal(window.retime(first, 1, 15, 30), first);
    // It now leaves at 60 015, between the runs charged at 10 and 20.
    assert.equal(window.oldestLeavesAtMs, MINUTE_MS + 10);
    window.expire(MINUTE_MS + 10);
    assert.equal(window.requests, 2);
    window.expire(MINUTE_MS + 15);
    assert.equal(window.requests, 1);
    // A run that left is charged anew from a send that still counts, not from one that has left too.
    assert.equal(window.retime(first, 1, 5, MINUTE_MS + 15), undefined);
    const again = window.retime(first, 1, 30, MINUTE_MS + 15);
    assert.ok(again !== undefined && again !== first && again.lastMs === 30);
    assert.equal(window.requests, 2);
    assert.equal(window.runCount, 2);
  });
});
