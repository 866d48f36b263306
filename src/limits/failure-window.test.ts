import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FailureWindow } from "./failure-window.ts";

const T0 = Date.UTC(2026, 0, 1, 12);
const WINDOW_MS = 60_000;

describe("FailureWindow", () => {
  it("counts successes and failures, a success erasing nothing", () => {
    const window = new FailureWindow();
    assert.deepEqual(window.counts(T0, WINDOW_MS), { attempts: 0, failures: 0 });
    for (let index = 0; index < 10; index++) window.add(T0 + index * 1_000, WINDOW_MS, index % 2 === 0);
    assert.deepEqual(window.counts(T0 + 10_000, WINDOW_MS), { attempts: 10, failures: 5 });
  });

  it("forgets verdicts once they are a window old, in steps of a tenth of it", () => {
    const window = new FailureWindow();
    window.add(T0, WINDOW_MS, true);
    window.add(T0 + 30_000, WINDOW_MS, false);
    assert.deepEqual(window.counts(T0 + 59_999, WINDOW_MS), { attempts: 2, failures: 1 });
    assert.deepEqual(window.counts(T0 + 60_000, WINDOW_MS), { attempts: 1, failures: 0 });
    // A verdict late in its tenth of a window (a 6 s bucket) leaves with that bucket: after 54.5 s rather than 60 s.
    window.add(T0 + 65_500, WINDOW_MS, true);
    assert.deepEqual(window.counts(T0 + 119_999, WINDOW_MS), { attempts: 1, failures: 1 });
    assert.deepEqual(window.counts(T0 + 120_000, WINDOW_MS), { attempts: 0, failures: 0 });
  });

  it("reuses a bucket a window later without carrying its old counts", () => {
    const window = new FailureWindow();
    window.add(T0, WINDOW_MS, true);
    window.add(T0 + WINDOW_MS, WINDOW_MS, false);
    assert.deepEqual(window.counts(T0 + WINDOW_MS, WINDOW_MS), { attempts: 1, failures: 0 });
  });

  it("a success can become a failure while it is in the window; when none is left, nothing changes", () => {
    const window = new FailureWindow();
    window.add(T0, WINDOW_MS, false);
    window.add(T0 + 7_000, WINDOW_MS, false);
    // Since T0 + 6.5 s: the success at T0 + 7 s (the one at T0 is in an earlier 6 s bucket) becomes a failure.
    assert.equal(window.failSuccessSince(T0 + 6_500, T0 + 8_000, WINDOW_MS), true);
    assert.deepEqual(window.counts(T0 + 8_000, WINDOW_MS), { attempts: 2, failures: 1 });
    assert.equal(window.failSuccessSince(T0 + 7_000, T0 + 8_000, WINDOW_MS), false, "that bucket has no success left");
    // Gone from the window: nothing to turn.
    assert.equal(window.failSuccessSince(T0, T0 + 2 * WINDOW_MS, WINDOW_MS), false);
  });

  it("memory stays fixed: a million verdicts in a window are ten buckets of counts", () => {
    const window = new FailureWindow();
    for (let index = 0; index < 1_000_000; index++) window.add(T0 + (index % 60_000), WINDOW_MS, index % 1000 === 0);
    assert.deepEqual(window.counts(T0 + 59_999, WINDOW_MS), { attempts: 1_000_000, failures: 1_000 });
  });

  it("clear forgets everything; another window length starts afresh", () => {
    const window = new FailureWindow();
    window.add(T0, WINDOW_MS, true);
    window.clear();
    assert.deepEqual(window.counts(T0, WINDOW_MS), { attempts: 0, failures: 0 });
    window.add(T0, WINDOW_MS, true);
    assert.deepEqual(window.counts(T0, 10_000), { attempts: 0, failures: 0 });
    window.add(T0, 10_000, false);
    assert.deepEqual(window.counts(T0, 10_000), { attempts: 1, failures: 0 });
  });

  it("ignores buckets from the future when the clock goes back", () => {
    const window = new FailureWindow();
    window.add(T0 + 30_000, WINDOW_MS, true);
    assert.deepEqual(window.counts(T0, WINDOW_MS), { attempts: 0, failures: 0 });
  });
});
