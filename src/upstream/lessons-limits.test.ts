// What a 429 teaches about the limits, as the effect the recorder applies.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { groq, mistral, NOW_MS, openRouter } from "../../test/fixtures/provider-fixtures.ts";
import { buildConfig } from "../config/load.ts";
import { classifyResponse } from "./classify-response.ts";
import type { Effect } from "./effects.ts";
import { lessonFromVerdict, lessonsFromHeaders } from "./lessons.ts";

function settingsOf(extra: Record<string, unknown>, name = "groq") {
  const { config } = buildConfig(
    { providers: [{ name, base_url: "http://127.0.0.1:9/v1", api_key: "k", ...extra }] },
    undefined,
    { env: {} },
  );
  const settings = config.providers[0];
  assert.ok(settings !== undefined);
  return settings;
}

function learnLimits(effects: readonly Effect[]) {
  const effect = effects.find((candidate) => candidate.kind === "learn_limits");
  assert.ok(effect !== undefined && effect.kind === "learn_limits", JSON.stringify(effects));
  return effect;
}

function learnEffect(effects: readonly Effect[]) {
  return learnLimits(effects).refusal;
}

describe("lessons: learning limits from a 429", () => {
  it("states Groq's limits, takes the body's exact wait over the whole-second retry-after, and the window algorithm", () => {
    const fixture = groq.tokensPerMinute429;
    const settings = settingsOf({ rate_limit_dialect: "groq", limits: { window: "bucket" } });
    const verdict = classifyResponse(fixture.status, fixture.headers, fixture.bodyText, NOW_MS);
    const lesson = lessonFromVerdict(verdict, settings, NOW_MS, {
      headers: fixture.headers,
      bodyText: fixture.bodyText,
    });
    assert.ok(
      lesson.effects.some((effect) => effect.kind === "cool_down"),
      "the cooldown still applies",
    );
    const refusal = learnEffect(lesson.effects);
    assert.equal(refusal.hintDelayMs, 11_455, "11.455s from the body, not retry-after: 12");
    assert.equal(refusal.algorithm, "bucket");
    assert.deepEqual(refusal.stated.map((rule) => `${rule.unit}/${rule.window}=${rule.limit}`).sort(), [
      "requests/day=1000",
      "tokens/minute=12000",
    ]);
  });

  it("a capacity 429 teaches nothing about the limits", () => {
    const settings = settingsOf({ rate_limit_dialect: "groq" });
    const bodyText = JSON.stringify({ error: { message: "queue full", code: "queue_exceeded" } });
    const verdict = classifyResponse(429, {}, bodyText, NOW_MS);
    const lesson = lessonFromVerdict(verdict, settings, NOW_MS, { headers: {}, bodyText });
    assert.equal(
      lesson.effects.some((effect) => effect.kind === "learn_limits"),
      false,
    );
  });

  it("an account-wide 429 is learned for the pool: OpenRouter's free-models-per-min, any 429 of an account-scoped key", () => {
    const openrouterSettings = settingsOf({ rate_limit_dialect: "openrouter" }, "openrouter");
    const fixture = openRouter.freeModelsPerMinute429;
    const verdict = classifyResponse(fixture.status, fixture.headers, fixture.bodyText, NOW_MS);
    const lesson = lessonFromVerdict(verdict, openrouterSettings, NOW_MS, fixture);
    const effect = learnLimits(lesson.effects);
    assert.equal(effect.isAccountWide, true, "the body names the account's pool");
    assert.deepEqual(
      effect.refusal.stated.map((rule) => `${rule.window}=${rule.limit}`),
      ["minute=20"],
    );
    const mistralFixture = mistral.rateLimited429;
    const mistralVerdict = classifyResponse(429, mistralFixture.headers, mistralFixture.bodyText, NOW_MS);
    const perKey = settingsOf({ rate_limit_dialect: "mistral" }, "mistral");
    const perAccount = settingsOf({ rate_limit_dialect: "mistral", rate_limit_scope: "account" }, "mistral");
    assert.equal(
      learnLimits(lessonFromVerdict(mistralVerdict, perKey, NOW_MS, mistralFixture).effects).isAccountWide,
      false,
    );
    assert.equal(
      learnLimits(lessonFromVerdict(mistralVerdict, perAccount, NOW_MS, mistralFixture).effects).isAccountWide,
      true,
    );
  });

  it("a success's headers are the pool's on an account-scoped provider", () => {
    const fixture = openRouter.success;
    const pooled = lessonsFromHeaders(
      fixture.headers,
      settingsOf({ rate_limit_dialect: "openrouter", rate_limit_scope: "account" }, "openrouter"),
      NOW_MS,
    );
    const own = lessonsFromHeaders(
      fixture.headers,
      settingsOf({ rate_limit_dialect: "openrouter" }, "openrouter"),
      NOW_MS,
    );
    const isAccountWide = (effects: readonly Effect[]) => {
      const effect = effects.find((candidate) => candidate.kind === "learn_windows");
      return effect?.kind === "learn_windows" ? effect.isAccountWide : undefined;
    };
    assert.equal(isAccountWide(pooled), true);
    assert.equal(isAccountWide(own), false);
  });
});
