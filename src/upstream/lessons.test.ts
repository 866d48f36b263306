import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { providerSettingsSchema } from "../config/schema.ts";
import type { ProviderSettings } from "../config/types.ts";
import type { Verdict } from "./classify-response.ts";
import { lessonFromVerdict } from "./lessons.ts";

const NOW_MS = Date.UTC(2026, 0, 1, 12);

function settings(extra: Record<string, unknown> = {}): ProviderSettings {
  return providerSettingsSchema.parse({ name: "p", base_url: "https://p.example/v1", api_key: "sk", ...extra });
}

function rateLimited(limitKind: "short" | "daily" | "capacity" | "credits", isAccountWide?: boolean): Verdict {
  return {
    kind: "rate_limited",
    limitKind,
    hint: { delayMs: 30_000, source: "retry-after" },
    reason: "limited",
    ...(isAccountWide === undefined ? {} : { isAccountWide }),
  } as Verdict;
}

function kinds(verdict: Verdict, provider: ProviderSettings): string[] {
  return lessonFromVerdict(verdict, provider, NOW_MS).effects.map((effect) => effect.kind);
}

describe("account-wide 429s cool the key's pool", () => {
  it("a 429 naming the account's pool: the model cools, then the pool with it", () => {
    assert.deepEqual(kinds(rateLimited("short", true), settings()), ["cool_down", "cool_pool"]);
    assert.deepEqual(kinds(rateLimited("daily", true), settings()), ["park", "cool_pool"]);
  });

  it("rate_limit_scope: account makes any short or daily 429 the pool's; capacity and credits never", () => {
    const account = settings({ rate_limit_scope: "account" });
    assert.deepEqual(kinds(rateLimited("short"), account), ["cool_down", "cool_pool"]);
    assert.deepEqual(kinds(rateLimited("capacity"), account), ["cool_down"]);
    assert.deepEqual(kinds(rateLimited("credits"), account), ["cool_down"]);
  });

  it("by default a 429 cools the model alone", () => {
    assert.deepEqual(kinds(rateLimited("short"), settings()), ["cool_down"]);
  });
});

describe("a daily quota's retry hint", () => {
  function dailyWithHint(delayMs: number): Verdict {
    return {
      kind: "rate_limited",
      limitKind: "daily",
      hint: { delayMs, source: "retry-after" },
      reason: "requests per day (RPD) limit",
    } as Verdict;
  }
  const endOfDayMs = Date.UTC(2026, 0, 2);

  it("on a rolling day (Groq's dialect) is when a request fits again; on a wall-clock day only from an hour", () => {
    // Groq's RPD 429: retry-after 87, "Please try again in 1m26.4s".
    const [effect] = lessonFromVerdict(dailyWithHint(87_000), settings({ rate_limit_dialect: "groq" }), NOW_MS).effects;
    assert.equal(effect?.kind, "cool_down");
    assert.equal(effect?.kind === "cool_down" ? effect.hint?.delayMs : undefined, 87_000);
    // Gemini's per-day quota with a RetryInfo of 30 s: a wall-clock day, parked until it ends.
    const gemini = settings({ day_reset: "00:00" });
    const [parked] = lessonFromVerdict(dailyWithHint(30_000), gemini, NOW_MS).effects;
    assert.equal(parked?.kind, "park");
    assert.equal(parked?.kind === "park" ? parked.untilMs : undefined, endOfDayMs);
    // An hour or more is the reset itself (GitHub's "wait 57829 seconds").
    assert.deepEqual(kinds(dailyWithHint(3_600_000), gemini), ["cool_down"]);
  });

  it("a day that just rolled over (its reset a moment ago, no hint) cools for the backoff instead of parking", () => {
    const rolledOver = {
      kind: "rate_limited",
      limitKind: "daily",
      hint: undefined,
      reason: "x-ratelimit-remaining-requests-day is 0, but x-ratelimit-reset-requests-day is already past",
      isWindowRolledOver: true,
    } as Verdict;
    const [effect] = lessonFromVerdict(rolledOver, settings({ day_reset: "00:00" }), NOW_MS).effects;
    assert.equal(effect?.kind, "cool_down");
    assert.equal(effect?.kind === "cool_down" ? effect.hint : "none", undefined);
    const { isWindowRolledOver: _, ...notRolledOver } = rolledOver as Verdict & { isWindowRolledOver?: true };
    assert.deepEqual(kinds(notRolledOver as Verdict, settings({ day_reset: "00:00" })), ["park"]);
  });

  it("a day's reset that reads now cools like a roll-over, carrying the day's end for a streak of them", () => {
    const endOfDayMs = Date.UTC(2026, 0, 2);
    const resetNow = {
      kind: "rate_limited",
      limitKind: "daily",
      hint: undefined,
      reason: "x-ratelimit-reset-requests-day is already past",
      isWindowRolledOver: true,
      isResetNow: true,
    } as Verdict;
    const [effect] = lessonFromVerdict(resetNow, settings({ day_reset: "00:00" }), NOW_MS).effects;
    assert.equal(effect?.kind, "cool_down");
    const dayEnd = effect?.kind === "cool_down" ? effect.dayEnd : undefined;
    assert.equal(dayEnd?.untilMs, endOfDayMs);
    assert.match(
      dayEnd?.reason ?? "",
      /3 daily 429s in a row whose reset reads now: parked until the provider's day ends/,
    );
    // A fixed instant a moment ago (a real roll-over) carries none.
    const { isResetNow: _, ...rolledOver } = resetNow as Verdict & { isResetNow?: true };
    const [plain] = lessonFromVerdict(rolledOver as Verdict, settings({ day_reset: "00:00" }), NOW_MS).effects;
    assert.equal(plain?.kind === "cool_down" ? plain.dayEnd : "none", undefined);
    // A rolling day's hint of 0 (retry-after: 0 with every daily 429) reads now too.
    const zeroHint = { ...rolledOver, isWindowRolledOver: undefined, hint: { delayMs: 0, source: "retry-after" } };
    const [rolling] = lessonFromVerdict(
      zeroHint as Verdict,
      settings({ limits: { window: "bucket" } }),
      NOW_MS,
    ).effects;
    assert.equal(rolling?.kind === "cool_down" ? rolling.dayEnd?.untilMs : undefined, endOfDayMs);
  });

  it("on a provider counting in buckets (limits.window: bucket) too", () => {
    const bucket = settings({ limits: { window: "bucket" } });
    assert.deepEqual(kinds(dailyWithHint(30_000), bucket), ["cool_down"]);
  });
});

describe("an unsupported refusal teaches the feature it names", () => {
  const refusal = (message: string, refusalKind: "unsupported" | "request" = "unsupported"): Verdict => ({
    kind: "rejected",
    refusal: refusalKind,
    status: 400,
    error: { message },
    raw: "",
  });

  it("tied to a feature of the request: a refused_feature effect, its reason the refusal's gist", () => {
    const lesson = lessonFromVerdict(refusal("This model does not support tools"), settings(), NOW_MS, undefined, [
      "tools",
      "temperature",
    ]);
    assert.equal(lesson.outcome, "unsupported");
    assert.deepEqual(lesson.effects, [
      { kind: "refused_feature", feature: "tools", reason: "HTTP 400: This model does not support tools" },
    ]);
    const long = lessonFromVerdict(
      refusal(`tools are not supported. ${"x".repeat(10_000)}`),
      settings(),
      NOW_MS,
      undefined,
      ["tools"],
    );
    const [effect] = long.effects;
    assert.ok(effect?.kind === "refused_feature" && effect.reason.length <= 310, "reason capped");
  });

  it("a role-order refusal: the order is learned, whatever features the request carries", () => {
    const lesson = lessonFromVerdict(refusal("Unexpected role 'user' after role 'tool'"), settings(), NOW_MS);
    assert.equal(lesson.outcome, "unsupported");
    assert.deepEqual(lesson.effects, [
      {
        kind: "refused_feature",
        feature: "message_order:strict",
        reason: "HTTP 400: Unexpected role 'user' after role 'tool'",
      },
    ]);
    const [alternate] = lessonFromVerdict(
      refusal("After the optional system message, conversation roles must alternate user/assistant"),
      settings(),
      NOW_MS,
      undefined,
      ["tools"],
    ).effects;
    assert.ok(alternate?.kind === "refused_feature" && alternate.feature === "message_order:alternate");
  });

  it("a role-order phrase that is also in the request sent (an echo) teaches nothing; a refused `prefix` is learned", () => {
    const echo = refusal("Blocked input: 'explain why roles must alternate'");
    const sent = { messages: [{ role: "user", content: "explain why roles must alternate" }] };
    const asSent = { body: sent, hasPrefix: false };
    assert.deepEqual(lessonFromVerdict(echo, settings(), NOW_MS, undefined, [], undefined, asSent).effects, []);
    const prefixRefusal = refusal(
      "[{'type': 'extra_forbidden', 'loc': ('body', 'messages', 1, 'prefix'), 'msg': 'Extra inputs are not permitted'}]",
    );
    const withPrefix = { body: sent, hasPrefix: true };
    const [prefix] = lessonFromVerdict(prefixRefusal, settings(), NOW_MS, undefined, [], undefined, withPrefix).effects;
    assert.ok(prefix?.kind === "refused_feature" && prefix.feature === "message_order:prefix");
    // None was sent: the refusal is about something else, and teaches nothing about it.
    assert.deepEqual(
      lessonFromVerdict(prefixRefusal, settings(), NOW_MS, undefined, [], undefined, asSent).effects,
      [],
    );
  });

  it("a refusal of something else that echoes the request's messages (their `prefix` key) teaches no `prefix` refusal", () => {
    const sent = {
      body: {
        messages: [
          { role: "user", content: "hi" },
          { role: "assistant", content: "Hel", prefix: true },
        ],
      },
      hasPrefix: true,
    };
    // A proxy quoting what it was sent (Python's repr, or the JSON body), a validator quoting the message it
    // failed: the field is only a key of the echoed message, the refusal is about tools.
    for (const message of [
      "litellm.BadRequestError: tools are not supported. Received Messages=[{'role': 'user', 'content': 'hi'}, {'role': 'assistant', 'content': 'Hel', 'prefix': True}]",
      `This model does not support tools (request: ${JSON.stringify(sent.body)})`,
    ]) {
      const [effect] = lessonFromVerdict(
        refusal(message),
        settings(),
        NOW_MS,
        undefined,
        ["tools"],
        undefined,
        sent,
      ).effects;
      assert.ok(effect?.kind === "refused_feature", message);
      assert.equal(effect.feature, "tools", message);
    }
    // Nor does a refusal quoting the prompt that names the word.
    const asked = {
      body: {
        messages: [
          { role: "user", content: "What does the 'prefix' option do?" },
          { role: "assistant", content: "It", prefix: true },
        ],
      },
      hasPrefix: true,
    };
    const quoted = refusal("Unsupported content: 'What does the 'prefix' option do?' is not supported");
    assert.deepEqual(lessonFromVerdict(quoted, settings(), NOW_MS, undefined, [], undefined, asked).effects, []);
    // The field's own refusal still teaches it, quoted as a location or a name.
    for (const message of [
      `{"detail":[{"type":"extra_forbidden","loc":["body","messages",1,"prefix"],"msg":"Extra inputs are not permitted","input":true}]}`,
      "Additional properties are not allowed ('prefix' was unexpected)",
      `{"messages": {"1": {"prefix": ["Unknown field."]}}}`,
    ]) {
      const [effect] = lessonFromVerdict(refusal(message), settings(), NOW_MS, undefined, [], undefined, sent).effects;
      assert.ok(effect?.kind === "refused_feature" && effect.feature === "message_order:prefix", message);
    }
  });

  it("a refusal of something else that echoes the messages sent (their `reasoning_content` key) teaches no refusal of it", () => {
    const sent = {
      body: {
        messages: [
          { role: "user", content: "hi" },
          { role: "assistant", content: null, reasoning_content: "Call it.", tool_calls: [] },
        ],
      },
      hasPrefix: false,
      hasReasoning: true,
    };
    // A proxy quoting what it was sent (Python's repr, or the JSON body): the field is only a key of the echoed
    // message, with the reasoning as its value; the refusal is about tools. Learned, the host was sent no reasoning
    // from then on (DeepSeek behind it refuses a tool turn without) and the tools refusal was never learned.
    for (const message of [
      "litellm.BadRequestError: tools are not supported. Received Messages=[{'role': 'user', 'content': 'hi'}, {'role': 'assistant', 'content': None, 'reasoning_content': 'Call it.'}]",
      `This model does not support tools (request: ${JSON.stringify(sent.body)})`,
      `This model does not support tools (request: ${JSON.stringify(sent.body, null, 2)})`,
    ]) {
      const [effect] = lessonFromVerdict(
        refusal(message),
        settings(),
        NOW_MS,
        undefined,
        ["tools"],
        undefined,
        sent,
      ).effects;
      assert.ok(effect?.kind === "refused_feature", message);
      assert.equal(effect.feature, "tools", message);
    }
    // The field's own refusal still teaches it: a location, a name, a key holding its errors.
    for (const message of [
      "messages.1.assistant.reasoning_content: property 'messages.1.assistant.reasoning_content' is unsupported",
      `{"detail":[{"type":"extra_forbidden","loc":["body","messages",1,"reasoning_content"],"msg":"Extra inputs are not permitted","input":"Call it."}]}`,
      "'messages.1' : for 'role:assistant' the following must be satisfied[('messages.1' : property 'reasoning_content' is unsupported)]",
      `{"messages": {"1": {"reasoning_content": ["Unknown field."]}}} is not supported`,
    ]) {
      const [effect] = lessonFromVerdict(refusal(message), settings(), NOW_MS, undefined, [], undefined, sent).effects;
      assert.ok(effect?.kind === "refused_feature", message);
      assert.equal(effect.feature, "message_order:reasoning_content", message);
    }
  });

  it("not tied, or not an unsupported refusal: nothing learned", () => {
    assert.deepEqual(kinds(refusal("Extra inputs are not permitted"), settings()), []);
    assert.deepEqual(
      lessonFromVerdict(refusal("This model does not support tools"), settings(), NOW_MS, undefined, ["seed"]).effects,
      [],
    );
    assert.deepEqual(
      lessonFromVerdict(refusal("tools: invalid schema", "request"), settings(), NOW_MS, undefined, ["tools"]).effects,
      [],
    );
  });
});

describe("a route refusal teaches the provider's endpoint, not the deployment's model", () => {
  const verdict: Verdict = {
    kind: "rejected",
    refusal: "unserved_endpoint",
    status: 404,
    error: { message: "Not Found" },
    raw: '{"detail":"Not Found"}',
  };

  it("names the path it was sent to; no cooldown, no circuit", () => {
    const lesson = lessonFromVerdict(verdict, settings(), NOW_MS, undefined, [], "/images/generations");
    assert.equal(lesson.outcome, "unserved_endpoint");
    assert.deepEqual(lesson.effects, [
      {
        kind: "unserved_endpoint",
        endpointPath: "/images/generations",
        reason: "HTTP 404: this provider has no /images/generations route: Not Found",
      },
    ]);
  });

  it("without the planned path (a native call went elsewhere): the outcome only, nothing learned", () => {
    const lesson = lessonFromVerdict(verdict, settings(), NOW_MS);
    assert.equal(lesson.outcome, "unserved_endpoint");
    assert.deepEqual(lesson.effects, []);
  });
});
