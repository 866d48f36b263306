import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ManualClock } from "../clock.ts";
import { HealthTracker } from "./health.ts";

function close(actual: number | undefined, expected: number, message?: string): void {
  assert.ok(actual !== undefined && Math.abs(actual - expected) < 1e-9, message ?? `${actual} ≈ ${expected}`);
}

describe("HealthTracker", () => {
  it("starts empty", () => {
    assert.deepEqual(new HealthTracker(new ManualClock()).snapshot(), { samples: 0 });
  });

  it("averages latency of successes; failures count while they are the latest evidence", () => {
    const tracker = new HealthTracker(new ManualClock());
    tracker.record(true, 100);
    tracker.record(true, 300);
    tracker.record(false, 5);
    close(tracker.snapshot().successEwma, 2 / 3);
    tracker.record(false, 5);
    close(tracker.snapshot().successEwma, 0.5);
    tracker.record(true, 200);
    const snapshot = tracker.snapshot();
    close(snapshot.successEwma, 1, "a success after the failures restores the candidate");
    close(snapshot.latencyEwmaMs, 200);
    close(snapshot.samples, 5);
  });

  it("forgets failures older than the failure memory", () => {
    const clock = new ManualClock();
    const tracker = new HealthTracker(clock);
    for (let attempt = 0; attempt < 5; attempt++) tracker.record(false, 0);
    close(tracker.snapshot(60_000).successEwma, 0);
    clock.advance(60_001);
    close(tracker.snapshot(60_000).successEwma, 1);
    close(tracker.snapshot().successEwma, 0, "without a memory bound they still count");
  });

  it("has no latency until something succeeds", () => {
    const tracker = new HealthTracker(new ManualClock());
    tracker.record(false, 10);
    assert.deepEqual(tracker.snapshot(), { successEwma: 0, samples: 1 });
  });

  it("halves the weight of old attempts every half-life", () => {
    const clock = new ManualClock();
    const tracker = new HealthTracker(clock, { halfLifeMs: 60_000 });
    tracker.record(false, 0);
    tracker.record(false, 0);
    clock.advance(60_000);
    close(tracker.snapshot().samples, 1);
    tracker.record(false, 100);
    // Two failures now weigh 1 together; the fresh one weighs 1.
    close(tracker.snapshot().samples, 2);
    clock.advance(120_000);
    close(tracker.snapshot().samples, 0.5);
    close(tracker.snapshot().successEwma, 0, "the ratio does not drift with time alone");
  });

  it("forgets an idle candidate's failures until it is cold again", () => {
    const clock = new ManualClock();
    const tracker = new HealthTracker(clock);
    for (let attempt = 0; attempt < 10; attempt++) tracker.record(false, 0);
    assert.ok(tracker.snapshot().samples >= 3);
    clock.advance(30 * 60_000);
    assert.ok(tracker.snapshot().samples < 3);
  });

  it("ignores a clock that steps back", () => {
    const clock = new ManualClock();
    const tracker = new HealthTracker(clock, { halfLifeMs: 1000 });
    tracker.record(true, 10);
    clock.advance(-5000);
    close(tracker.snapshot().samples, 1);
  });

  it("rejects a non-positive half-life", () => {
    assert.throws(() => new HealthTracker(new ManualClock(), { halfLifeMs: 0 }), RangeError);
  });
});

describe("HealthTracker: a success sent before the latest failure came back", () => {
  it("counts as one success and forgets no failure; a success sent after it does", () => {
    const clock = new ManualClock(10_000);
    const tracker = new HealthTracker(clock);
    const slowSentAtMs = clock.now();
    clock.advance(100);
    tracker.record(false, 5, clock.now() - 50);
    tracker.record(false, 5, clock.now());
    clock.advance(100);
    tracker.record(true, 200, slowSentAtMs);
    const stale = tracker.snapshot().successEwma ?? 1;
    assert.ok(Math.abs(stale - 1 / 3) < 0.01, `a slow answer of an older request is not a recovery: ${stale}`);
    tracker.record(true, 50, clock.now() - 10);
    close(tracker.snapshot().successEwma, 1, "a request sent after the failures succeeded");
  });

  it("a success sent after the clock stepped back forgets the failures before the step", () => {
    const clock = new ManualClock(100_000);
    const tracker = new HealthTracker(clock);
    tracker.record(false, 5, clock.now());
    clock.advance(-60_000);
    tracker.record(true, 50, clock.now() - 10);
    close(tracker.snapshot().successEwma, 1, "its request was sent after the failure, by any clock");
  });
});
