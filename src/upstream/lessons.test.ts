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
