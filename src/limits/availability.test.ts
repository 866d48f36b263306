import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { cooldownSettings } from "../../test/helpers/cooldown-settings.ts";
import { ManualClock } from "../clock.ts";
import type { CooldownSettings } from "../config/types.ts";
import {
  type Availability,
  AvailabilityBook,
  type Cooldown,
  type CooldownChange,
  keyFingerprint,
} from "./availability.ts";

const T0 = Date.UTC(2026, 0, 1, 12);

const SETTINGS: CooldownSettings = cooldownSettings({
  rateLimitMaxMs: 5_000,
  failureWindowMs: 10_000,
  failureRateThreshold: 0.5,
});

function setup(settings: Partial<CooldownSettings> = {}) {
  const clock = new ManualClock(T0);
  const book = new AvailabilityBook(clock, { ...SETTINGS, ...settings });
  return { clock, book };
}

function assertUnavailable(availability: Availability, expected: { untilMs: number; cause: string }): void {
  assert.equal(availability.isAvailable, false, "expected unavailable");
  if (availability.isAvailable) return;
  assert.equal(availability.untilMs, expected.untilMs, new Date(availability.untilMs).toISOString());
  assert.equal(availability.cause, expected.cause);
}

const AVAILABLE = { isAvailable: true, isProbe: false };
const PROBE = { isAvailable: true, isProbe: true };

describe("AvailabilityBook: 429 cooldowns", () => {
  it("without a hint: base × 2^(n−1) for the n-th consecutive 429, capped at the maximum", () => {
    const { clock, book } = setup();
    const delays: number[] = [];
    for (let index = 0; index < 6; index++) {
      const cooldown = book.recordRateLimited("p/m", undefined, "rate_limited", "429");
      assert.equal(cooldown.source, "guessed");
      delays.push(cooldown.untilMs - clock.now());
      clock.set(cooldown.untilMs);
    }
    assert.deepEqual(delays, [1_000, 2_000, 4_000, 5_000, 5_000, 5_000]);
  });

  it("daily 429s whose reset reads now: the backoff twice, then parked until the day's end; a success starts over", () => {
    const { clock, book } = setup();
    const dayEnd = { untilMs: Date.UTC(2026, 0, 2), reason: "3 daily 429s in a row whose reset reads now: parked" };
    const reset = (): Cooldown => {
      const cooldown = book.recordRateLimited(
        "p/m",
        undefined,
        "daily_quota",
        "rolled over",
        { sentAtMs: clock.now() },
        dayEnd,
      );
      clock.set(cooldown.untilMs);
      return cooldown;
    };
    assert.deepEqual(
      [reset(), reset()].map((cooldown) => cooldown.reason),
      ["rolled over", "rolled over"],
    );
    const parked = reset();
    assert.deepEqual(parked, {
      untilMs: dayEnd.untilMs,
      cause: "daily_quota",
      source: "guessed",
      reason: dayEnd.reason,
    });
    // Counted afresh after the park, and a success ends a streak.
    assert.equal(reset().reason, "rolled over");
    book.recordSuccess("p/m");
    assert.equal(reset().reason, "rolled over");
    assert.equal(reset().reason, "rolled over");
    // Another 429 between them (a short window's) ends it too.
    book.recordRateLimited("p/m", undefined, "rate_limited", "429");
    assert.equal(reset().reason, "rolled over");
  });

  it("daily 429s whose reset reads now, to requests in flight together (a roll-over's moment), count once", () => {
    const { clock, book } = setup();
    const dayEnd = { untilMs: Date.UTC(2026, 0, 2), reason: "parked" };
    const sentAtMs = clock.now();
    clock.advance(100);
    for (let index = 0; index < 5; index++) {
      const cooldown = book.recordRateLimited("p/m", undefined, "daily_quota", "rolled over", { sentAtMs }, dayEnd);
      assert.equal(cooldown.reason, "rolled over", `429 #${index + 1} of requests sent together`);
    }
  });

  it("a success resets the backoff to the base", () => {
    const { clock, book } = setup();
    clock.set(book.recordRateLimited("p/m", undefined, "rate_limited", "429").untilMs);
    clock.set(book.recordRateLimited("p/m", undefined, "rate_limited", "429").untilMs);
    book.recordSuccess("p/m");
    const cooldown = book.recordRateLimited("p/m", undefined, "rate_limited", "429");
    assert.equal(cooldown.untilMs - clock.now(), 1_000);
  });

  it("the provider's hint is used exactly, even beyond the backoff cap", () => {
    const { clock, book } = setup();
    const cooldown = book.recordRateLimited("p/m", { delayMs: 578_016 }, "rate_limited", "TPD");
    assert.deepEqual(cooldown, { untilMs: T0 + 578_016, cause: "rate_limited", source: "provider", reason: "TPD" });
    clock.set(T0 + 578_015);
    assertUnavailable(book.peek("p/m", "p"), { untilMs: T0 + 578_016, cause: "rate_limited" });
    clock.set(T0 + 578_016);
    assert.deepEqual(book.peek("p/m", "p"), AVAILABLE);
    assert.equal(book.cooldownOf("p/m", "p"), undefined);
  });

  it("a short 429 from a request already in flight does not cut a longer cooldown short", () => {
    const { book } = setup();
    const midnight = Date.UTC(2026, 0, 2);
    book.park("p/m", midnight, "daily_quota", "RPD used up", "guessed");
    const kept = book.recordRateLimited("p/m", { delayMs: 2_000 }, "rate_limited", "per minute");
    assert.equal(kept.untilMs, midnight);
    assertUnavailable(book.peek("p/m", "p"), { untilMs: midnight, cause: "daily_quota" });
    // A longer one still replaces a shorter one.
    book.recordRateLimited("q/m", { delayMs: 2_000 }, "rate_limited", "short");
    book.recordRateLimited("q/m", { delayMs: 9_000 }, "daily_quota", "long");
    assertUnavailable(book.peek("q/m", "q"), { untilMs: T0 + 9_000, cause: "daily_quota" });
  });

  it("cooldowns are per deployment", () => {
    const { book } = setup();
    book.recordRateLimited("p/a", { delayMs: 9_000 }, "capacity", "busy");
    assertUnavailable(book.peek("p/a", "p"), { untilMs: T0 + 9_000, cause: "capacity" });
    assert.deepEqual(book.peek("p/b", "p"), AVAILABLE);
    assert.deepEqual(book.peek("q/a", "q"), AVAILABLE);
  });
});

describe("AvailabilityBook: park", () => {
  it("parks until a known instant, with cause and source", () => {
    const { clock, book } = setup();
    const midnight = Date.UTC(2026, 0, 2);
    book.park("p/m", midnight, "daily_quota", "RPD used up", "guessed");
    assert.deepEqual(book.cooldownOf("p/m", "p"), {
      untilMs: midnight,
      cause: "daily_quota",
      source: "guessed",
      reason: "RPD used up",
    });
    clock.set(midnight - 1);
    assertUnavailable(book.peek("p/m", "p"), { untilMs: midnight, cause: "daily_quota" });
    clock.set(midnight);
    assert.deepEqual(book.peek("p/m", "p"), AVAILABLE);
  });

  it("never shortens a longer cooldown, but extends a shorter one", () => {
    const { book } = setup();
    book.recordRateLimited("p/m", { delayMs: 60_000 }, "rate_limited", "long");
    book.park("p/m", T0 + 10_000, "budget_exhausted", "short", "provider");
    assert.equal(book.cooldownOf("p/m", "p")?.reason, "long");
    book.park("p/m", T0 + 120_000, "budget_exhausted", "longer", "provider");
    assert.deepEqual(book.cooldownOf("p/m", "p"), {
      untilMs: T0 + 120_000,
      cause: "budget_exhausted",
      source: "provider",
      reason: "longer",
    });
  });
});

describe("AvailabilityBook: invalid keys", () => {
  it("an invalid key cools the whole provider for invalid_key_ms, other providers untouched", () => {
    const { clock, book } = setup();
    book.recordInvalidKey("p", "key rejected: HTTP 401");
    for (const key of ["p/a", "p/b", "p/never-used"]) {
      assertUnavailable(book.peek(key, "p"), { untilMs: T0 + 3_600_000, cause: "invalid_key" });
    }
    assert.deepEqual(book.peek("q/a", "q"), AVAILABLE);
    assert.equal(book.providerCooldown("p")?.cause, "invalid_key");
    assert.equal(book.providerCooldown("p")?.source, "guessed");
    clock.set(T0 + 3_600_000);
    assert.deepEqual(book.peek("p/a", "p"), AVAILABLE);
    assert.equal(book.providerCooldown("p"), undefined);
  });

  it("out of credits parks the provider the same way, with its own cause", () => {
    const { book } = setup();
    book.recordInvalidKey("p", "402 Payment Required", "credits_exhausted");
    assertUnavailable(book.peek("p/a", "p"), { untilMs: T0 + 3_600_000, cause: "credits_exhausted" });
  });

  it("a parked key parks only a provider configured with that key: locally, after a reload, on import", () => {
    const { clock, book } = setup();
    book.setProviderKeys([{ name: "p", apiKeys: ["sk-bad"] }]);
    const changes: CooldownChange[] = [];
    book.onCooldown((change) => changes.push(change));
    book.recordInvalidKey("p", "key rejected: HTTP 401");
    assertUnavailable(book.peek("p/a", "p"), { untilMs: T0 + 3_600_000, cause: "invalid_key" });
    const exported = JSON.stringify(book.exportCooldowns());
    assert.equal(changes[0]?.cooldown.keyFingerprint, keyFingerprint("sk-bad"));
    assert.match(keyFingerprint("sk-bad"), /^[0-9a-f]{12}$/);
    assert.doesNotMatch(exported, /sk-bad/, "the key itself is never stored");

    // Another replica, or a restart, configured with the fixed key: the park is not its own.
    const fixed = new AvailabilityBook(clock, SETTINGS);
    fixed.setProviderKeys([{ name: "p", apiKeys: ["sk-new"] }]);
    fixed.importCooldowns(JSON.parse(exported));
    assert.deepEqual(fixed.peek("p/a", "p"), AVAILABLE);
    // One still on the bad key takes it.
    const stale = new AvailabilityBook(clock, SETTINGS);
    stale.setProviderKeys([{ name: "p", apiKeys: ["sk-bad"] }]);
    stale.importCooldowns(JSON.parse(exported));
    assertUnavailable(stale.peek("p/a", "p"), { untilMs: T0 + 3_600_000, cause: "invalid_key" });

    // A reload to the fixed key ends the park here; one back to the bad key does not bring it back from disk.
    book.takeDirty();
    book.setProviderKeys([{ name: "p", apiKeys: ["sk-new"] }]);
    assert.deepEqual(book.peek("p/a", "p"), AVAILABLE);
    assert.equal(book.takeDirty(), true, "the dropped park is written out");
    book.importCooldowns(JSON.parse(exported));
    assert.deepEqual(book.peek("p/a", "p"), AVAILABLE, "the old key's park, loaded again, stays inert");
    // A 401 to a request sent with the old key before the reload: shared for the replicas on that key, not applied.
    book.recordInvalidKey("p", "late 401", "invalid_key", keyFingerprint("sk-bad"));
    assert.deepEqual(book.peek("p/a", "p"), AVAILABLE);
    assert.equal(changes.at(-1)?.cooldown.reason, "late 401");
  });

  it("other provider cooldowns apply whatever the key: an account-wide 429 after a reload", () => {
    const { book } = setup();
    book.setProviderKeys([{ name: "p", apiKeys: ["sk-new"] }]);
    book.importCooldowns({
      deployments: [],
      providers: [["p", { untilMs: T0 + 60_000, cause: "rate_limited", source: "provider", reason: "pool" }]],
    });
    assertUnavailable(book.peek("p/a", "p"), { untilMs: T0 + 60_000, cause: "rate_limited" });
    book.setProviderKeys([{ name: "p", apiKeys: ["sk-other"] }]);
    assertUnavailable(book.peek("p/a", "p"), { untilMs: T0 + 60_000, cause: "rate_limited" });
  });

  it("a provider cooldown is reported before a deployment's own", () => {
    const { book } = setup();
    book.recordRateLimited("p/a", { delayMs: 5_000 }, "rate_limited", "429");
    book.recordInvalidKey("p", "401");
    assert.equal(book.cooldownOf("p/a", "p")?.cause, "invalid_key");
  });
});

describe("AvailabilityBook: circuit breaker", () => {
  it("opens after failure_threshold failures within failure_window_ms, for circuit_open_ms", () => {
    const { clock, book } = setup();
    book.recordFailure("p/m");
    clock.set(T0 + 5_000);
    book.recordFailure("p/m");
    assert.equal(book.circuitState("p/m"), "closed");
    // Suspect: closed, one request at a time (ranked with its failures until circuit_first_probe_ms passed).
    assert.deepEqual(book.peek("p/m", "p"), AVAILABLE);
    clock.set(T0 + 9_999);
    book.recordFailure("p/m");
    assert.equal(book.circuitState("p/m"), "open");
    assertUnavailable(book.peek("p/m", "p"), { untilMs: T0 + 9_999 + 30_000, cause: "circuit_open" });
    assert.equal(book.cooldownOf("p/m", "p"), undefined, "a circuit is not a cooldown");
  });

  it("the live state sees an open circuit as a circuit_open cooldown until its next probe, a cooldown first", () => {
    const { book } = setup();
    for (let index = 0; index < 3; index++) book.recordFailure("p/m");
    assert.deepEqual(book.liveCooldownOf("p/m", "p"), {
      untilMs: T0 + 30_000,
      cause: "circuit_open",
      source: "guessed",
      reason: "circuit open after repeated failures",
    });
    book.recordInvalidKey("p", "401");
    assert.equal(book.liveCooldownOf("p/m", "p")?.cause, "invalid_key");
    const { clock: otherClock, book: other } = setup();
    for (let index = 0; index < 3; index++) other.recordFailure("p/m");
    otherClock.set(T0 + 30_000);
    assert.equal(other.circuitState("p/m"), "half_open");
    assert.equal(other.liveCooldownOf("p/m", "p"), undefined, "due for its probe: nothing to count down");
  });

  it("failures further apart than the window do not add up", () => {
    const { clock, book } = setup();
    book.recordFailure("p/m");
    clock.set(T0 + 5_000);
    book.recordFailure("p/m");
    clock.set(T0 + 10_000);
    // The first failure is exactly failure_window_ms old: it no longer counts.
    book.recordFailure("p/m");
    assert.equal(book.circuitState("p/m"), "closed");
    clock.set(T0 + 14_999);
    book.recordFailure("p/m");
    assert.equal(book.circuitState("p/m"), "open");
  });

  it("a success clears the consecutive failure count (the failure-rate rule off)", () => {
    const { book } = setup({ failureRateThreshold: 1 });
    book.recordFailure("p/m");
    book.recordFailure("p/m");
    book.recordSuccess("p/m");
    book.recordFailure("p/m");
    book.recordFailure("p/m");
    assert.equal(book.circuitState("p/m"), "closed");
  });

  function openCircuit(book: AvailabilityBook, clock: ManualClock): void {
    for (let index = 0; index < 3; index++) book.recordFailure("p/m");
    assert.equal(book.circuitState("p/m"), "open");
    clock.advance(30_000);
  }

  it("half-open lets exactly one probe through; its success closes the circuit", () => {
    const { clock, book } = setup();
    openCircuit(book, clock);
    assert.equal(book.circuitState("p/m"), "half_open");
    // peek is side-effect free: it may say "probe" any number of times.
    assert.deepEqual(book.peek("p/m", "p"), PROBE);
    assert.deepEqual(book.peek("p/m", "p"), PROBE);
    assert.deepEqual(book.acquire("p/m", "p"), PROBE);
    const second = book.acquire("p/m", "p");
    assert.equal(second.isAvailable, false);
    if (!second.isAvailable) assert.match(second.reason, /probe in flight/);
    assert.equal(book.peek("p/m", "p").isAvailable, false);

    book.recordSuccess("p/m");
    assert.equal(book.circuitState("p/m"), "closed");
    assert.deepEqual(book.acquire("p/m", "p"), AVAILABLE);
    assert.deepEqual(book.acquire("p/m", "p"), AVAILABLE);
  });

  it("a failed probe re-opens the circuit for another circuit_open_ms", () => {
    const { clock, book } = setup();
    openCircuit(book, clock);
    assert.deepEqual(book.acquire("p/m", "p"), PROBE);
    clock.advance(250);
    book.recordFailure("p/m");
    assert.equal(book.circuitState("p/m"), "open");
    assertUnavailable(book.peek("p/m", "p"), { untilMs: clock.now() + 30_000, cause: "circuit_open" });
    clock.advance(30_000);
    assert.deepEqual(book.acquire("p/m", "p"), PROBE);
  });

  it("a released probe (client gone, budget refused) frees the slot for exactly one new probe", () => {
    const { clock, book } = setup();
    openCircuit(book, clock);
    assert.deepEqual(book.acquire("p/m", "p"), PROBE);
    book.releaseProbe("p/m");
    assert.deepEqual(book.acquire("p/m", "p"), PROBE);
    assert.equal(book.acquire("p/m", "p").isAvailable, false, "a second request slipped through a half-open circuit");
  });

  it("a probe answered with a 429 cools down, then the next request is again the only probe", () => {
    const { clock, book } = setup();
    openCircuit(book, clock);
    assert.deepEqual(book.acquire("p/m", "p"), PROBE);
    book.recordRateLimited("p/m", { delayMs: 2_000 }, "rate_limited", "429");
    assert.equal(book.acquire("p/m", "p").isAvailable, false);
    clock.advance(2_000);
    assert.deepEqual(book.acquire("p/m", "p"), PROBE);
    assert.equal(book.acquire("p/m", "p").isAvailable, false);
  });
});

describe("AvailabilityBook: recovery on evidence", () => {
  const LAST_RESORT = { isAvailable: true, isProbe: false, isLastResort: true };

  it("a suspect candidate (latest evidence a recent failure) lets one request at a time be its probe", () => {
    // Three failures of four would open the circuit by their rate, which has its own tests.
    const { clock, book } = setup({ circuitFirstProbeMs: 2_000, failureRateThreshold: 1 });
    book.recordFailure("p/m");
    // Right after the failure: one attempt at a time, ranked with its failures.
    assert.deepEqual(book.acquire("p/m", "p"), AVAILABLE);
    // That attempt is in flight: others may use the candidate only as a last resort.
    assert.deepEqual(book.peek("p/m", "p"), LAST_RESORT);
    assert.deepEqual(book.acquire("p/m", "p"), LAST_RESORT);
    book.recordFailure("p/m");
    clock.advance(2_000);
    // circuit_first_probe_ms after the latest failure: the next request is a probe, ranked in its place.
    assert.deepEqual(book.acquire("p/m", "p"), PROBE);
    assert.deepEqual(book.peek("p/m", "p"), LAST_RESORT);
    book.recordSuccess("p/m");
    assert.deepEqual(book.peek("p/m", "p"), AVAILABLE);
    // A failure older than the window is no longer evidence.
    book.recordFailure("p/m");
    clock.advance(10_000);
    assert.deepEqual(book.peek("p/m", "p"), AVAILABLE);
  });

  it("an attempt sent before the failure was known holds the one slot until it ends", () => {
    const { book } = setup();
    // Two attempts out while the candidate is healthy; the first fails.
    book.attemptStarted("p/m");
    book.attemptStarted("p/m");
    book.attemptFinished("p/m");
    book.recordFailure("p/m");
    // The second is still out: it finds out whether the candidate healed, so no new attempt joins it.
    assert.deepEqual(book.acquire("p/m", "p"), LAST_RESORT);
    book.attemptFinished("p/m");
    book.recordFailure("p/m");
    assert.deepEqual(book.acquire("p/m", "p"), AVAILABLE);
    book.attemptStarted("p/m");
    assert.deepEqual(book.acquire("p/m", "p"), LAST_RESORT);
  });

  it("a late failure of an older attempt does not free the slot of the attempt in flight", () => {
    const { book } = setup({ failureThreshold: 10 });
    book.attemptStarted("p/m"); // old, sent while healthy
    book.recordFailure("p/m"); // another attempt failed meanwhile
    book.attemptFinished("p/m");
    assert.deepEqual(book.acquire("p/m", "p"), AVAILABLE);
    book.attemptStarted("p/m"); // the one attempt at a time
    book.recordFailure("p/m"); // ...and a failure from a third one, sent before the first failure, comes back
    assert.deepEqual(book.acquire("p/m", "p"), LAST_RESORT, "a second attempt joined the one in flight");
    book.attemptFinished("p/m");
    book.attemptFinished("p/m"); // more ends than starts (a reload forgot the record) never go below zero
    assert.deepEqual(book.acquire("p/m", "p"), AVAILABLE);
  });

  it("recoveryOf says whether a deployment is suspect and how many attempts it has out", () => {
    const { clock, book } = setup({ failureThreshold: 2 });
    const none = { attempts: 0, failures: 0 };
    assert.deepEqual(book.recoveryOf("p/m"), { isSuspect: false, attemptsInFlight: 0, recent: none });
    book.attemptStarted("p/m");
    assert.deepEqual(book.recoveryOf("p/m"), { isSuspect: false, attemptsInFlight: 1, recent: none });
    book.attemptFinished("p/m");
    book.recordFailure("p/m");
    const oneFailure = { attempts: 1, failures: 1 };
    assert.deepEqual(book.recoveryOf("p/m"), { isSuspect: true, attemptsInFlight: 0, recent: oneFailure });
    // An open circuit is not "suspect": its own state says more.
    book.recordFailure("p/m");
    const twoFailures = { attempts: 2, failures: 2 };
    assert.deepEqual(book.recoveryOf("p/m"), { isSuspect: false, attemptsInFlight: 0, recent: twoFailures });
    clock.advance(30_000);
    book.recordSuccess("p/m");
    book.recordFailure("p/m");
    book.recordSuccess("p/m");
    // The probe's success cleared the window and is its first verdict.
    assert.deepEqual(book.recoveryOf("p/m").recent, { attempts: 3, failures: 1 });
    // A failure older than the window is no longer evidence.
    clock.advance(10_000);
    assert.deepEqual(book.recoveryOf("p/m"), { isSuspect: false, attemptsInFlight: 0, recent: none });
  });

  it("probe pauses double from circuit_first_probe_ms up to circuit_open_ms; a recovery that holds resets them", () => {
    const { clock, book } = setup({ circuitFirstProbeMs: 2_000, circuitOpenMs: 10_000 });
    for (let index = 0; index < 3; index++) book.recordFailure("p/m");
    const pauses: number[] = [];
    for (let round = 0; round < 5; round++) {
      const availability = book.peek("p/m", "p");
      assert.equal(availability.isAvailable, false);
      if (availability.isAvailable) return;
      pauses.push(availability.untilMs - clock.now());
      clock.set(availability.untilMs);
      assert.deepEqual(book.acquire("p/m", "p"), PROBE);
      assert.equal(book.acquire("p/m", "p").isAvailable, false, "one probe at a time");
      book.recordFailure("p/m");
    }
    assert.deepEqual(pauses, [2_000, 4_000, 8_000, 10_000, 10_000]);
    clock.advance(10_000);
    assert.deepEqual(book.acquire("p/m", "p"), PROBE);
    book.recordSuccess("p/m");
    assert.deepEqual(book.peek("p/m", "p"), AVAILABLE);
    // Failing again within failure_window_ms (10 s here) of the recovery: it flaps, the streak goes on (capped).
    clock.advance(9_999);
    for (let index = 0; index < 3; index++) book.recordFailure("p/m");
    const flapped = book.peek("p/m", "p");
    assert.ok(!flapped.isAvailable && flapped.untilMs - clock.now() === 10_000, "the streak goes on");
    // A recovery that holds for the window: the next outage starts over at circuit_first_probe_ms.
    clock.advance(10_000);
    assert.deepEqual(book.acquire("p/m", "p"), PROBE);
    book.recordSuccess("p/m");
    clock.advance(10_000);
    for (let index = 0; index < 3; index++) book.recordFailure("p/m");
    const reopened = book.peek("p/m", "p");
    assert.ok(!reopened.isAvailable && reopened.untilMs - clock.now() === 2_000, "the streak starts over");
  });
});

describe("AvailabilityBook: failure rate (intermittent failures)", () => {
  /** One verdict: "F" a failure, "S" a success. */
  function record(book: AvailabilityBook, verdicts: string): void {
    for (const verdict of verdicts) {
      if (verdict === "F") book.recordFailure("p/m");
      else book.recordSuccess("p/m");
    }
  }

  it("a candidate failing every other request opens its circuit at its failure_threshold-th failure", () => {
    const { clock, book } = setup();
    record(book, "FSFS");
    assert.equal(book.circuitState("p/m"), "closed");
    record(book, "F");
    // Three failures of five verdicts (60 % ≥ 50 %), though a success came after each.
    assert.equal(book.circuitState("p/m"), "open");
    assertUnavailable(book.peek("p/m", "p"), { untilMs: clock.now() + 30_000, cause: "circuit_open" });
    // The same probe rules as for consecutive failures: one probe, and its failure doubles nothing past the cap.
    clock.advance(30_000);
    assert.deepEqual(book.acquire("p/m", "p"), PROBE);
    assert.equal(book.acquire("p/m", "p").isAvailable, false, "one probe at a time");
  });

  it("a stream cut after it opened is one failed request, not a success and a failure: half of them cut trips", () => {
    const { clock, book } = setup();
    // Four streams open (a success each); two of them are cut later: two of four requests failed.
    for (let index = 0; index < 4; index++) {
      clock.set(T0 + index * 100);
      book.recordSuccess("p/m", { sentAtMs: clock.now() });
    }
    for (const opened of [0, 2]) {
      clock.set(T0 + 1_000 + opened);
      book.recordFailure("p/m", { sentAtMs: T0 + opened * 100, replacesSuccess: true });
    }
    assert.deepEqual(book.recoveryOf("p/m").recent, { attempts: 4, failures: 2 });
    // A third cut stream: 3 of 5 requests (not 3 of 8 verdicts) failed, at failure_threshold 3: open.
    clock.set(T0 + 2_000);
    book.recordSuccess("p/m", { sentAtMs: clock.now() });
    assert.equal(book.circuitState("p/m"), "closed");
    clock.set(T0 + 2_500);
    book.recordFailure("p/m", { sentAtMs: T0 + 2_000, replacesSuccess: true });
    assert.deepEqual(book.recoveryOf("p/m").recent, { attempts: 5, failures: 3 });
    assert.equal(book.circuitState("p/m"), "open");
  });

  it("a busy healthy candidate with rare failures never trips: 3 failures in 1000 attempts within the window", () => {
    const { clock, book } = setup();
    for (let index = 0; index < 1000; index++) {
      clock.set(T0 + index * 9);
      if (index === 100 || index === 500 || index === 900) book.recordFailure("p/m");
      else book.recordSuccess("p/m");
      assert.equal(book.circuitState("p/m"), "closed", `opened at attempt ${index}`);
    }
    assert.deepEqual(book.recoveryOf("p/m").recent, { attempts: 1000, failures: 3 });
  });

  it("the share is the threshold: below it the failures do not open the circuit, at it they do", () => {
    const { book } = setup({ failureRateThreshold: 0.4 });
    record(book, "FSSFSSF");
    // 3 of 7 (43 %) ≥ 40 %.
    assert.equal(book.circuitState("p/m"), "open");
    const { book: other } = setup({ failureRateThreshold: 0.5 });
    record(other, "FSSFSSF");
    assert.equal(other.circuitState("p/m"), "closed");
    record(other, "F");
    // 4 of 8.
    assert.equal(other.circuitState("p/m"), "open");
  });

  it("failure_rate_threshold 1 switches the rule off: only consecutive failures open the circuit", () => {
    const { book } = setup({ failureRateThreshold: 1 });
    record(book, "FSFSFSFSFSFS");
    assert.equal(book.circuitState("p/m"), "closed");
    record(book, "FFF");
    assert.equal(book.circuitState("p/m"), "open");
  });

  it("a successful probe closes the circuit and clears the window: a healed candidate is back at once", () => {
    const { clock, book } = setup({ circuitFirstProbeMs: 2_000, circuitOpenMs: 16_000 });
    record(book, "FSFSF");
    assert.equal(book.circuitState("p/m"), "open");
    clock.advance(2_000);
    assert.deepEqual(book.acquire("p/m", "p"), PROBE);
    book.recordSuccess("p/m", { sentAtMs: clock.now() });
    assert.equal(book.circuitState("p/m"), "closed");
    assert.deepEqual(book.recoveryOf("p/m").recent, { attempts: 1, failures: 0 });
    // Two failures after the probe are not three: the outage's failures were cleared with it.
    record(book, "FS");
    record(book, "F");
    assert.equal(book.circuitState("p/m"), "closed");
    assert.deepEqual(book.peek("p/m", "p"), AVAILABLE);
    // Still failing every other request within the window of its recovery: it flaps, and the pause doubles.
    record(book, "SF");
    assert.equal(book.circuitState("p/m"), "open");
    assertUnavailable(book.peek("p/m", "p"), { untilMs: clock.now() + 4_000, cause: "circuit_open" });
  });

  it("a success of an attempt sent before the circuit opened does not close it, nor does a stream's end", () => {
    const { clock, book } = setup({ circuitFirstProbeMs: 2_000 });
    const sentAtMs = clock.now();
    clock.advance(100);
    record(book, "FSFSF");
    clock.advance(100);
    // A slow answer (or a long stream's end) to a request sent before the opening.
    book.recordSuccess("p/m", { sentAtMs });
    book.recordSuccess("p/m", { sentAtMs, isCounted: true });
    assert.equal(book.circuitState("p/m"), "open");
    // It is counted in the window (the stream's end adds nothing: its opening was counted).
    assert.deepEqual(book.recoveryOf("p/m").recent, { attempts: 6, failures: 3 });
    clock.advance(2_000);
    assert.deepEqual(book.acquire("p/m", "p"), PROBE);
    book.recordSuccess("p/m", { sentAtMs: clock.now() });
    assert.equal(book.circuitState("p/m"), "closed");
  });

  it("the window slides: verdicts older than failure_window_ms are forgotten", () => {
    const { clock, book } = setup();
    record(book, "FSF");
    clock.set(T0 + 9_999);
    // Still within the window: a third failure of five opens the circuit.
    const { clock: otherClock, book: other } = setup();
    record(other, "FSF");
    otherClock.set(T0 + 9_999);
    record(other, "SF");
    assert.equal(other.circuitState("p/m"), "open");
    // A window later, the first two failures are gone: one failure of two is not three.
    clock.set(T0 + 10_000);
    record(book, "SF");
    assert.equal(book.circuitState("p/m"), "closed");
    assert.deepEqual(book.recoveryOf("p/m").recent, { attempts: 2, failures: 1 });
  });
});

describe("AvailabilityBook: verdicts of attempts sent before the probe", () => {
  /** Opens the circuit with three failures at T0 and claims the probe two seconds later. */
  function probing() {
    const scene = setup({ circuitFirstProbeMs: 2_000, circuitOpenMs: 16_000 });
    const { clock, book } = scene;
    for (let index = 0; index < 3; index++) book.recordFailure("p/m", { sentAtMs: T0 - 1_000 });
    assert.equal(book.circuitState("p/m"), "open");
    clock.advance(2_000);
    assert.deepEqual(book.acquire("p/m", "p"), PROBE);
    return { ...scene, probeSentAtMs: clock.now() };
  }

  it("a timeout of a request sent before the circuit opened does not fail the probe, whose success then closes it", () => {
    const { clock, book, probeSentAtMs } = probing();
    // A request sent before the opening times out while the probe is out (timeout_ms is often longer than the pause).
    clock.advance(500);
    book.recordFailure("p/m", { sentAtMs: T0 - 1_000 });
    assert.equal(book.circuitState("p/m"), "half_open");
    assert.equal(book.acquire("p/m", "p").isAvailable, false, "still one probe at a time");
    // The probe's own success closes the circuit (before, the stale failure had reopened it for twice as long and
    // the probe's success was then "sent before the opening" and ignored).
    clock.advance(100);
    book.recordSuccess("p/m", { sentAtMs: probeSentAtMs });
    assert.equal(book.circuitState("p/m"), "closed");
    assert.deepEqual(book.peek("p/m", "p"), AVAILABLE);
  });

  it("a 429, a client gone or a refusal of an earlier request does not hand the probe's slot to a second probe", () => {
    const { clock, book, probeSentAtMs } = probing();
    clock.advance(100);
    book.recordRateLimited("p/m", { delayMs: 0 }, "rate_limited", "429", { sentAtMs: T0 - 1_000 });
    book.releaseProbe("p/m", { sentAtMs: T0 - 1_000 });
    assert.equal(book.acquire("p/m", "p").isAvailable, false, "the probe is still out");
    // The probe's own verdict-less end does hand it back.
    book.releaseProbe("p/m", { sentAtMs: probeSentAtMs });
    assert.deepEqual(book.acquire("p/m", "p"), PROBE);
    // And the next probe's own failure reopens the circuit for twice as long.
    const nextProbeSentAtMs = clock.now();
    clock.advance(500);
    book.recordFailure("p/m", { sentAtMs: nextProbeSentAtMs });
    assertUnavailable(book.peek("p/m", "p"), { untilMs: clock.now() + 4_000, cause: "circuit_open" });
  });
});

describe("AvailabilityBook: sharing, persistence and reset", () => {
  it("listeners hear every new cooldown, deployment or provider", () => {
    const { book } = setup();
    const changes: CooldownChange[] = [];
    book.onCooldown((change) => changes.push(change));
    book.recordRateLimited("p/m", { delayMs: 1_000 }, "rate_limited", "429");
    book.park("p/m", T0 + 50_000, "daily_quota", "day", "guessed");
    book.recordInvalidKey("q", "401");
    assert.deepEqual(
      changes.map((change) => [change.scope, change.key, change.cooldown.cause]),
      [
        ["deployment", "p/m", "rate_limited"],
        ["deployment", "p/m", "daily_quota"],
        ["provider", "q", "invalid_key"],
      ],
    );
  });

  it("export and import carry active cooldowns only; on import a later end wins", () => {
    const { clock, book } = setup();
    book.recordRateLimited("p/a", { delayMs: 10_000 }, "rate_limited", "a");
    book.recordRateLimited("p/b", { delayMs: 1_000 }, "rate_limited", "b");
    book.recordInvalidKey("q", "401");
    clock.advance(1_000);
    const exported = book.exportCooldowns();
    assert.deepEqual(
      exported.deployments.map(([key]) => key),
      ["p/a"],
    );
    assert.deepEqual(
      exported.providers.map(([name]) => name),
      ["q"],
    );

    const other = new AvailabilityBook(clock, SETTINGS);
    other.park("p/a", T0 + 60_000, "daily_quota", "longer already", "guessed");
    other.importCooldowns(JSON.parse(JSON.stringify(exported)));
    assert.equal(other.cooldownOf("p/a", "p")?.reason, "longer already");
    assert.equal(other.providerCooldown("q")?.cause, "invalid_key");
    assert.equal(other.takeDirty(), true, "park marks the book dirty");
  });

  it("reset clears cooldowns, provider cooldowns and circuits, and marks the book dirty", () => {
    const { book } = setup();
    book.recordRateLimited("p/a", { delayMs: 10_000 }, "rate_limited", "a");
    book.recordInvalidKey("q", "401");
    for (let index = 0; index < 3; index++) book.recordFailure("p/c");
    book.takeDirty();
    book.reset();
    assert.equal(book.takeDirty(), true);
    assert.equal(book.takeDirty(), false);
    assert.deepEqual(book.peek("p/a", "p"), AVAILABLE);
    assert.deepEqual(book.peek("q/a", "q"), AVAILABLE);
    assert.equal(book.circuitState("p/c"), "closed");
  });
});
