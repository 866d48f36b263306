// Each place a 429 can say how long to wait, alone, end to end: `retry-after-ms` and the `x-ratelimit-reset`
// family in every dialect that sends one (OpenAI/Groq Go durations, Cerebras's per-period seconds, OpenRouter's
// epoch milliseconds, also relayed inside its error body, Together's seconds, a generic server's epoch seconds).
// The client's 429 states that wait (message and Retry-After), /health shows a cooldown of exactly that length
// with where the wait came from, and the upstream gets nothing until it ends. A manual clock makes every time exact.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import { ManualClock } from "../../src/clock.ts";
import { errorOf } from "../helpers/e2e.ts";
import { assertServedBy, startScene } from "../helpers/limits-scene.ts";
import { chatCompletion, type MockStep, rateLimited } from "../helpers/mock-upstream.ts";

const START_MS = Date.UTC(2026, 0, 1, 12);
const CHAT_ROUTE = "POST /v1/chat/completions";

interface WaitCase {
  readonly name: string;
  /** alpha's `rate_limit_dialect` (the scene's default otherwise). */
  readonly dialect?: string;
  readonly step: MockStep;
  readonly waitMs: number;
  /** How the cooldown's reason names the source. */
  readonly words: string;
}

const WAIT_CASES: readonly WaitCase[] = [
  {
    name: "retry-after-ms alone (no retry-after next to it)",
    step: rateLimited({ headers: { "retry-after-ms": "2500" } }),
    waitMs: 2_500,
    words: "retry-after-ms header",
  },
  {
    name: "openai: x-ratelimit-reset-tokens on the empty tokens window (Go duration)",
    dialect: "openai",
    step: rateLimited({
      headers: {
        "x-ratelimit-limit-requests": "500",
        "x-ratelimit-remaining-requests": "499",
        "x-ratelimit-reset-requests": "120ms",
        "x-ratelimit-limit-tokens": "30000",
        "x-ratelimit-remaining-tokens": "0",
        "x-ratelimit-reset-tokens": "6m0s",
      },
    }),
    waitMs: 360_000,
    words: "x-ratelimit-reset headers",
  },
  {
    name: "groq: x-ratelimit-reset-requests on the empty requests window",
    dialect: "groq",
    step: rateLimited({
      headers: {
        "x-ratelimit-limit-requests": "14400",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "2m59.56s",
        "x-ratelimit-limit-tokens": "6000",
        "x-ratelimit-remaining-tokens": "5990",
        "x-ratelimit-reset-tokens": "100ms",
      },
    }),
    waitMs: 179_560,
    words: "x-ratelimit-reset headers",
  },
  {
    name: "cerebras: x-ratelimit-reset-tokens-minute in fractional seconds",
    dialect: "cerebras",
    step: rateLimited({
      headers: {
        "x-ratelimit-limit-tokens-minute": "60000",
        "x-ratelimit-remaining-tokens-minute": "0",
        "x-ratelimit-reset-tokens-minute": "41.25",
        "x-ratelimit-limit-requests-day": "14400",
        "x-ratelimit-remaining-requests-day": "14000",
        "x-ratelimit-reset-requests-day": "33011.38",
      },
    }),
    waitMs: 41_250,
    words: "x-ratelimit-reset headers",
  },
  {
    name: "openrouter: x-ratelimit-reset as an epoch instant in milliseconds",
    dialect: "openrouter",
    step: rateLimited({
      headers: {
        "x-ratelimit-limit": "20",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": String(START_MS + 37_000),
      },
    }),
    waitMs: 37_000,
    words: "x-ratelimit-reset headers",
  },
  {
    name: "openrouter: X-RateLimit-Reset relayed inside the error body",
    dialect: "openrouter",
    step: rateLimited({
      body: {
        error: {
          message: "Rate limit exceeded: free-models-per-min.",
          code: 429,
          metadata: {
            headers: {
              "X-RateLimit-Limit": "20",
              "X-RateLimit-Remaining": "0",
              "X-RateLimit-Reset": String(START_MS + 23_000),
            },
          },
        },
      },
    }),
    waitMs: 23_000,
    words: "x-ratelimit-reset headers",
  },
  {
    name: "together: x-ratelimit-reset in seconds until the bucket refills",
    dialect: "together",
    step: rateLimited({
      headers: { "x-ratelimit-limit": "10", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "7" },
    }),
    waitMs: 7_000,
    words: "x-ratelimit-reset headers",
  },
  {
    name: "generic: x-ratelimit-reset as an epoch instant in seconds",
    step: rateLimited({ headers: { "x-ratelimit-reset": String((START_MS + 90_000) / 1000) } }),
    waitMs: 90_000,
    words: "x-ratelimit-reset headers",
  },
  {
    // SambaNova's day reset is read both ways in the wild: an epoch instant where a delay was expected is that
    // instant, not 31 years clamped to the longest wait (32 days) as it once was.
    name: "generic: x-ratelimit-reset-requests-day as an epoch instant in seconds",
    step: rateLimited({
      headers: {
        "x-ratelimit-limit-requests-day": "100",
        "x-ratelimit-remaining-requests-day": "0",
        "x-ratelimit-reset-requests-day": String((START_MS + 7_200_000) / 1000),
      },
    }),
    waitMs: 7_200_000,
    words: "x-ratelimit-reset headers",
  },
];

/**
 * Alpha alone (its dialect `dialect` when given), with a 4 s backoff, refuses the first request with a 429 carrying
 * `headers`: the client is told the backoff, and alpha cools for exactly it, a wait the gateway guessed. Returns the
 * scene, its clock and the cooldown, for the test's own checks.
 */
async function backoffAfter429(t: TestContext, headers: Record<string, string>, dialect?: string) {
  const { scene, clock } = await backoffScene(t, START_MS, dialect);
  const first = await refusedAfter(scene, clock, 0, headers);
  assert.equal(first.headers["retry-after"], "4");
  const cooldown = await alphaCooldown(scene);
  assert.equal(cooldown?.remaining_ms, 4_000, JSON.stringify(cooldown));
  assert.equal(cooldown?.source, "guessed");
  return { scene, clock, cooldown };
}

/** Alpha alone (its dialect `dialect` when given), with a 4 s backoff, on a manual clock at `startMs`. */
async function backoffScene(t: TestContext, startMs: number, dialect?: string) {
  const clock = new ManualClock(startMs);
  const scene = await startScene(t, {
    clock,
    beta: false,
    ...(dialect === undefined ? {} : { alpha: { rate_limit_dialect: dialect } }),
    config: { cooldowns: { rate_limit_base_ms: 4_000 } },
  });
  return { scene, clock };
}

type Scene = Awaited<ReturnType<typeof startScene>>;

/** `advanceMs` later, alpha refuses the next request with a 429 carrying `headers`: the client's answer, a 429 too. */
async function refusedAfter(scene: Scene, clock: ManualClock, advanceMs: number, headers: Record<string, string>) {
  clock.advance(advanceMs);
  scene.alpha.enqueue(CHAT_ROUTE, rateLimited({ headers }));
  const answer = await scene.chat();
  assert.equal(answer.status, 429, answer.text);
  return answer;
}

async function alphaCooldown(scene: Scene) {
  return (await scene.health()).deployments.find((row) => row.key === "alpha/m")?.cooldown;
}

/** Cerebras's headers for a day's window with nothing left, its reset at `reset` (epoch seconds, or 0: now). */
function dailyExhausted(reset: string): Record<string, string> {
  return {
    "x-ratelimit-limit-requests-day": "14400",
    "x-ratelimit-remaining-requests-day": "0",
    "x-ratelimit-reset-requests-day": reset,
  };
}

describe("a reset instant already past is no wait", () => {
  test("openrouter: an x-ratelimit-reset before now cools for the gateway's backoff, not 0 s", async (t) => {
    const headers = {
      "x-ratelimit-limit": "20",
      "x-ratelimit-remaining": "0",
      "x-ratelimit-reset": String(START_MS - 5_000),
    };
    const { scene } = await backoffAfter429(t, headers, "openrouter");
    const again = await scene.chat();
    assert.equal(again.status, 429, again.text);
    assert.equal(scene.counts().alpha, 1, "alpha was asked again at once");
  });
});

describe("a reset instant already past is no wait, in an exhausted window too", () => {
  test("generic: an x-ratelimit-reset-requests epoch before now cools for the backoff, not 0 s", async (t) => {
    // Epoch seconds 3 s behind the gateway's clock: the provider's clock is behind ours.
    const { scene } = await backoffAfter429(t, {
      "x-ratelimit-limit-requests": "100",
      "x-ratelimit-remaining-requests": "0",
      "x-ratelimit-reset-requests": String((START_MS - 3_000) / 1000),
    });
    const again = await scene.chat();
    assert.equal(again.status, 429, again.text);
    assert.equal(scene.counts().alpha, 1, "alpha was asked again at once");
  });
});

describe("a negative wait is no wait", () => {
  test("a negative retry-after-ms does not hide the retry-after next to it (it was a 0 ms cooldown)", async (t) => {
    const clock = new ManualClock(START_MS);
    const scene = await startScene(t, { clock, beta: false });
    scene.alpha.enqueue(CHAT_ROUTE, rateLimited({ headers: { "retry-after-ms": "-10", "retry-after": "30" } }));
    const first = await scene.chat();
    assert.equal(first.status, 429, first.text);
    assert.equal(first.headers["retry-after"], "30");
    const cooldown = await alphaCooldown(scene);
    assert.equal(cooldown?.remaining_ms, 30_000, JSON.stringify(cooldown));
    assert.equal(cooldown?.source, "provider");
    assert.equal((await scene.chat()).status, 429);
    assert.equal(scene.counts().alpha, 1, "alpha was asked again at once");
  });
});

describe("a day's window whose reset reads a moment ago has just rolled over", () => {
  test("cerebras: x-ratelimit-reset-requests-day 2 s behind (clock skew) cools for the backoff, not until the day ends", async (t) => {
    // The provider's day ended 2 s ago by our clock (epoch seconds): its count of 0 left is yesterday's. Parked
    // until the configured day's end, this was 12 hours (START_MS is noon UTC): Retry-After 43200.
    const headers = dailyExhausted(String((START_MS - 2_000) / 1000));
    const { scene, clock, cooldown } = await backoffAfter429(t, headers, "cerebras");
    assert.match(cooldown?.reason ?? "", /just rolled over/);
    clock.advance(4_000);
    const served = await scene.chat();
    assert.equal(served.status, 200, served.text);
    assert.equal(scene.counts().alpha, 2, "alpha was asked again once the backoff ended");
  });

  test("a provider still refusing with the same past reset: the backoff doubles, and once the reset is 5 min back it is parked", async (t) => {
    // A stale reset (or one that dates the window's start) must not have a day's empty quota asked again every few
    // seconds all day: the roll-over is believed only while the reset reads at most ROLLED_OVER_WITHIN_MS back.
    const headers = dailyExhausted(String((START_MS - 2_000) / 1000));
    const { scene, clock } = await backoffAfter429(t, headers, "cerebras");
    const second = await refusedAfter(scene, clock, 4_000, headers);
    assert.equal(second.headers["retry-after"], "8", "the second 429's backoff is twice the first");
    await refusedAfter(scene, clock, 5 * 60_000, headers);
    const cooldown = await alphaCooldown(scene);
    assert.match(cooldown?.reason ?? "", /parked until the provider's day ends/, JSON.stringify(cooldown));
    assert.equal(scene.counts().alpha, 3);
  });
});

describe("a day's reset that reads now with every 429 (delay 0)", () => {
  test("cerebras: x-ratelimit-reset-requests-day 0 each time: the backoff twice, then parked until the day ends", async (t) => {
    // Taken as a roll-over every time, such a provider was asked again on the capped backoff (60 s) all day.
    const headers = dailyExhausted("0");
    const { scene, clock } = await backoffAfter429(t, headers, "cerebras");
    const second = await refusedAfter(scene, clock, 4_000, headers);
    assert.equal(second.headers["retry-after"], "8", "the second is still taken as a roll-over: the backoff");
    const third = await refusedAfter(scene, clock, 8_000, headers);
    const endOfDayMs = Date.UTC(2026, 0, 2);
    const nowMs = START_MS + 12_000;
    assert.equal(third.headers["retry-after"], String((endOfDayMs - nowMs) / 1000));
    const cooldown = await alphaCooldown(scene);
    assert.match(
      cooldown?.reason ?? "",
      /3 daily 429s in a row whose reset reads now: parked until the provider's day ends/,
    );
    assert.equal(cooldown?.remaining_ms, endOfDayMs - nowMs, JSON.stringify(cooldown));
    clock.advance(60_000);
    assert.equal((await scene.chat()).status, 429);
    assert.equal(scene.counts().alpha, 3, "not asked again after the capped backoff");
  });

  test("a success to a request sent before the streak (a slow answer ending meanwhile) does not start it over", async (t) => {
    // It says how the provider was before its day ran out, not now: counted, the slow answers and streams of the
    // day's last minutes put off the park, and a provider whose every later 429 reads now was asked again meanwhile.
    const headers = dailyExhausted("0");
    const { scene, clock } = await backoffScene(t, START_MS, "cerebras");
    let release = (): void => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    scene.alpha.enqueue(CHAT_ROUTE, {
      kind: "handler",
      handle: async (_request, response) => {
        await released;
        response.writeHead(200, { "content-type": "application/json" });
        response.end(JSON.stringify(chatCompletion("slow", "m")));
      },
    });
    const slow = scene.chat();
    while (scene.counts().alpha < 1) await new Promise((resolve) => setTimeout(resolve, 5));
    await refusedAfter(scene, clock, 1_000, headers);
    await refusedAfter(scene, clock, 4_000, headers);
    release();
    assert.equal((await slow).status, 200);
    await refusedAfter(scene, clock, 8_000, headers);
    const cooldown = await alphaCooldown(scene);
    assert.match(cooldown?.reason ?? "", /3 daily 429s in a row whose reset reads now/, JSON.stringify(cooldown));
    assert.equal(cooldown?.remaining_ms, Date.UTC(2026, 0, 2) - (START_MS + 13_000));
  });
});

describe("a streak of daily 429s whose reset reads now does not outlive its day", () => {
  test("2 at 23:50, then one at a real roll-over just after midnight: the backoff, not the whole new day parked", async (t) => {
    // The new day's first 429 (the provider's count a moment behind ours at midnight) is a roll-over, as the first of
    // any day is: counted as the 3rd of yesterday's, it parked the candidate until the next midnight.
    const headers = dailyExhausted("0");
    const { scene, clock } = await backoffScene(t, Date.UTC(2026, 0, 1, 23, 50), "cerebras");
    for (let index = 0; index < 3; index++) scene.alpha.enqueue(CHAT_ROUTE, rateLimited({ headers }));
    assert.equal((await scene.chat()).headers["retry-after"], "4");
    clock.advance(4_000);
    assert.equal((await scene.chat()).headers["retry-after"], "8");
    clock.set(Date.UTC(2026, 0, 2, 0, 0, 0, 500));
    const rolledOver = await scene.chat();
    assert.equal(rolledOver.status, 429, rolledOver.text);
    const cooldown = await alphaCooldown(scene);
    assert.match(cooldown?.reason ?? "", /just rolled over/, JSON.stringify(cooldown));
    assert.ok((cooldown?.remaining_ms ?? Infinity) <= 16_000, JSON.stringify(cooldown));
    clock.advance(16_000);
    assertServedBy(await scene.chat(), "alpha");
  });
});

describe("a rolling day's 429 whose own wait is 0", () => {
  test("retry-after 0 on a bucket provider: cooled for the backoff, not 0 ms, so three requests at once park nothing", async (t) => {
    // Cooled for its 0 s, the next request went at once: three in the same moment parked until the day's end a
    // provider whose day refills continuously, without the backoff a roll-over (or a refill) is given.
    const clock = new ManualClock(START_MS);
    const scene = await startScene(t, {
      clock,
      beta: false,
      alpha: { limits: { window: "bucket" } },
      config: { cooldowns: { rate_limit_base_ms: 4_000 } },
    });
    const daily = rateLimited({
      retryAfter: "0",
      body: { error: { message: "Rate limit reached on requests per day (RPD): Limit 1000, Used 1000, Requested 1." } },
    });
    for (let index = 0; index < 3; index++) scene.alpha.enqueue(CHAT_ROUTE, daily);
    const first = await scene.chat();
    assert.equal(first.status, 429, first.text);
    assert.equal(first.headers["retry-after"], "4", "the backoff");
    assert.equal((await scene.chat()).status, 429);
    assert.equal((await scene.chat()).status, 429);
    assert.equal(scene.counts().alpha, 1, "not asked again while cooling");
    const cooldown = await alphaCooldown(scene);
    assert.equal(cooldown?.remaining_ms, 4_000, JSON.stringify(cooldown));
    assert.match(cooldown?.reason ?? "", /gateway's backoff/);
    // Still "now" each time, after each backoff: the 3rd parks, as with a reset header that reads now.
    clock.advance(4_000);
    assert.equal((await scene.chat()).headers["retry-after"], "8");
    clock.advance(8_000);
    const third = await scene.chat();
    assert.equal(third.headers["retry-after"], String((Date.UTC(2026, 0, 2) - START_MS - 12_000) / 1000));
    assert.equal(scene.counts().alpha, 3);
  });
});

describe("each 429 wait source sets the client's Retry-After and the cooldown", () => {
  for (const waitCase of WAIT_CASES) {
    test(waitCase.name, async (t) => {
      const clock = new ManualClock(START_MS);
      const scene = await startScene(t, {
        clock,
        beta: false,
        ...(waitCase.dialect === undefined ? {} : { alpha: { rate_limit_dialect: waitCase.dialect } }),
      });
      scene.alpha.enqueue(CHAT_ROUTE, waitCase.step);
      const waitS = Math.ceil(waitCase.waitMs / 1000);

      const first = await scene.chat();
      assert.equal(first.status, 429, first.text);
      assert.equal(first.headers["retry-after"], String(waitS));
      assert.match(errorOf(first).message, new RegExp(`; the first is available again in ${waitS} s`));

      const health = await scene.health();
      const cooldown = health.deployments.find((row) => row.key === "alpha/m")?.cooldown;
      assert.equal(cooldown?.remaining_ms, waitCase.waitMs, JSON.stringify(cooldown));
      assert.equal(cooldown?.source, "provider");
      assert.ok(
        cooldown?.reason.endsWith(`cooling down for the wait in the provider's ${waitCase.words}`),
        cooldown?.reason,
      );
      assert.equal(health.providers.cooling[0]?.until, new Date(START_MS + waitCase.waitMs).toISOString());

      // Up to its last millisecond the cooldown holds: a 429 at once saying what is left, and no upstream call.
      clock.advance(waitCase.waitMs - 1);
      const during = await scene.chat();
      assert.equal(during.status, 429, during.text);
      assert.equal(during.headers["retry-after"], "1");
      assert.equal(scene.counts().alpha, 1, "alpha was asked while cooling");

      clock.advance(1);
      assertServedBy(await scene.chat(), "alpha");
      assert.equal(scene.counts().alpha, 2);
    });
  }
});
