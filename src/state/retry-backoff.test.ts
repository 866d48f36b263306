// The delays between retries of a failed shared write (retry-backoff.ts), with the random source injected: exact.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { FIRST_RETRY_MS, MAX_RETRY_MS, RetryBackoff } from "./retry-backoff.ts";

describe("RetryBackoff", () => {
  test("250 ms doubling to 10 s while the rounds fail, back to 250 ms after one succeeds", () => {
    const middle = new RetryBackoff(() => 0.5); // no jitter
    const delays = Array.from({ length: 9 }, () => middle.nextDelayMs());
    assert.deepEqual(delays, [250, 500, 1_000, 2_000, 4_000, 8_000, 10_000, 10_000, 10_000]);
    middle.reset();
    assert.equal(middle.nextDelayMs(), FIRST_RETRY_MS);
    assert.equal(middle.nextDelayMs(), 2 * FIRST_RETRY_MS);
  });

  test("jitter moves each delay by up to a fifth either way, never past the ceiling's fifth", () => {
    const low = new RetryBackoff(() => 0);
    const high = new RetryBackoff(() => 0.999_999);
    assert.equal(low.nextDelayMs(), 200);
    assert.equal(high.nextDelayMs(), 300);
    for (let round = 0; round < 40; round++) {
      low.nextDelayMs();
      high.nextDelayMs();
    }
    assert.equal(low.nextDelayMs(), 0.8 * MAX_RETRY_MS);
    assert.equal(high.nextDelayMs(), 1.2 * MAX_RETRY_MS);
  });
});
