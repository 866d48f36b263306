// A success whose request was sent before a failure streak began (a slow call, a long stream) says how the deployment
// was before it: it ends neither the 429 backoff nor the suspect state nor the suspect's one probe. Nor does a stream's
// opening, or a whole answer followed by the provider's 429 in its stream (SuccessEvidence.keepsBackoff).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { cooldownSettings } from "../../test/helpers/cooldown-settings.ts";
import { ManualClock } from "../clock.ts";
import { AvailabilityBook } from "./availability.ts";

const T0 = Date.UTC(2026, 0, 1, 12);

const SETTINGS = cooldownSettings();

function setup() {
  const clock = new ManualClock(T0);
  return { clock, book: new AvailabilityBook(clock, SETTINGS) };
}

/** A 429 without a hint to a request sent now, answered at once: the backoff it set, in ms. */
function rateLimitedNow(book: AvailabilityBook, clock: ManualClock): number {
  const cooldown = book.recordRateLimited("p/m", undefined, "rate_limited", "429", { sentAtMs: clock.now() });
  return cooldown.untilMs - clock.now();
}

describe("a stale success and the 429 backoff", () => {
  it("a slow success sent before the 429s began does not reset their backoff", () => {
    const { clock, book } = setup();
    // Request A is sent at T0 and answers slowly; requests sent each time the cooldown ends get 429s meanwhile.
    const slowSentAtMs = T0;
    clock.set(T0 + 100);
    const delays = [rateLimitedNow(book, clock)];
    clock.advance(delays[0] ?? 0);
    delays.push(rateLimitedNow(book, clock));
    // A's success comes back now, in the middle of the streak.
    clock.advance(500);
    book.recordSuccess("p/m", { sentAtMs: slowSentAtMs });
    clock.advance((delays[1] ?? 0) - 500);
    delays.push(rateLimitedNow(book, clock));
    assert.deepEqual(delays, [1_000, 2_000, 4_000], "the third 429 in a row backs off 4 s, not 1 s again");
  });

  it("a success sent once the streak began (the provider has room again) resets it", () => {
    const { clock, book } = setup();
    clock.set(T0 + 100);
    rateLimitedNow(book, clock);
    clock.advance(1_000);
    rateLimitedNow(book, clock);
    const sentAtMs = clock.now() + 2_000;
    clock.set(sentAtMs + 300);
    book.recordSuccess("p/m", { sentAtMs });
    assert.equal(rateLimitedNow(book, clock), 1_000);
  });

  it("a stream's opening, and a whole answer its provider then said 429 after, leave the backoff growing", () => {
    const { clock, book } = setup();
    const delays = [rateLimitedNow(book, clock)];
    for (const keepsBackoff of ["stream_opening", "rate_limited"] as const) {
      clock.advance(delays[delays.length - 1] ?? 0);
      book.recordSuccess("p/m", { sentAtMs: clock.now(), keepsBackoff });
      delays.push(rateLimitedNow(book, clock));
    }
    assert.deepEqual(delays, [1_000, 2_000, 4_000], "each in-stream 429 is the next of the streak");
    // The stream's end without a 429 is the success that tells the provider has room again.
    clock.advance(4_000);
    book.recordSuccess("p/m", { sentAtMs: clock.now(), isCounted: true });
    assert.equal(rateLimitedNow(book, clock), 1_000);
  });
});

describe("a stale success and the suspect state", () => {
  it("a failure that came back after the success's request was sent keeps the deployment suspect", () => {
    const { clock, book } = setup();
    const slowSentAtMs = T0;
    clock.set(T0 + 100);
    book.recordFailure("p/m", { sentAtMs: T0 + 50 });
    clock.set(T0 + 200);
    book.recordSuccess("p/m", { sentAtMs: slowSentAtMs });
    assert.equal(book.recoveryOf("p/m").isSuspect, true);
    // A success of a request sent after the failure came back clears it.
    book.recordSuccess("p/m", { sentAtMs: T0 + 150 });
    assert.equal(book.recoveryOf("p/m").isSuspect, false);
  });

  it("a stale success does not hand the suspect's probe slot to a second request", () => {
    const { clock, book } = setup();
    clock.set(T0 + 100);
    book.recordFailure("p/m", { sentAtMs: T0 + 50 });
    clock.set(T0 + 40_000);
    // The probe is claimed (ranked as if it had not failed, circuitFirstProbeMs later), waiting for its admission.
    assert.equal(book.acquire("p/m", "p").isAvailable, true);
    // Another request, sent before the failure, answers while the probe is out.
    clock.advance(100);
    book.recordSuccess("p/m", { sentAtMs: T0 });
    const next = book.peek("p/m", "p");
    assert.deepEqual(next, { isAvailable: true, isProbe: false, isLastResort: true }, "still one at a time");
  });
});

describe("a clock that steps back (the wall clock set back by a minute)", () => {
  it("a success sent after the step is not taken for one sent before the failures that came back before it", () => {
    const { clock, book } = setup();
    clock.set(T0 + 100);
    book.recordFailure("p/m", { sentAtMs: T0 + 50 });
    rateLimitedNow(book, clock);
    clock.set(T0 - 60_000);
    // A request sent after the step answers: its clock reads earlier than the failure's, but nothing was in flight.
    clock.advance(1_000);
    book.recordSuccess("p/m", { sentAtMs: clock.now() - 500 });
    assert.equal(book.recoveryOf("p/m").isSuspect, false, "not one request at a time for the minute the clock lost");
    // Once the clock is past the cooldown again, the next 429 is the first of a new streak.
    clock.set(T0 + 2_000);
    assert.equal(rateLimitedNow(book, clock), 1_000, "the backoff starts over");
  });
});
