// The final error's words: the 429 names the candidate that frees up first, whichever check found it.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { providerSettingsSchema } from "../config/schema.ts";
import { buildCatalog } from "../providers/catalog.ts";
import type { RoutePlan } from "../router/plan-route.ts";
import { finalError } from "./final-error.ts";

const NOW_MS = Date.UTC(2026, 0, 1, 12);

const [alpha, beta] = buildCatalog(
  ["alpha", "beta"].map((name) =>
    providerSettingsSchema.parse({ name, base_url: `https://${name}.example/v1`, api_key: "k", models: { m: {} } }),
  ),
  new Map(),
).deployments;

describe("finalError", () => {
  it("a 429 names the candidate whose reset set retry-after: an attempt-time budget skip as well as a plan skip", () => {
    assert.ok(alpha !== undefined && beta !== undefined);
    // alpha cools for 300 s (the plan saw it); beta looked free, but its reserve found the shared budget full for 59 s.
    const plan: RoutePlan = {
      requested: "m",
      candidates: [],
      waitFor: undefined,
      skipped: [
        {
          deployment: alpha,
          cause: "cooldown",
          reason: "429",
          score: 1,
          untilMs: NOW_MS + 300_000,
          cooldownCause: "rate_limited",
          board: undefined,
        },
      ],
      unknownNames: [],
    };
    const skips = [
      { deploymentKey: beta.key, reason: "over its rpm budget (5/5)", untilMs: NOW_MS + 59_000, isLimit: true },
    ];
    const error = finalError(plan, [], skips, undefined, 300_000, NOW_MS);
    assert.equal(error.status, 429);
    assert.match(error.message, /available again in 59 s \(beta\/m at 2026-01-01T12:00:59\.000Z\)/);
  });

  it("names why each candidate was skipped, the first few, then how many more; a 503 too", () => {
    const deployments = buildCatalog(
      ["p1", "p2", "p3", "p4", "p5", "p6"].map((name) =>
        providerSettingsSchema.parse({ name, base_url: `https://${name}.example/v1`, api_key: "k", models: { m: {} } }),
      ),
      new Map(),
    ).deployments;
    const plan: RoutePlan = {
      requested: "m",
      candidates: [],
      waitFor: undefined,
      skipped: deployments.map((deployment, index) => ({
        deployment,
        cause: "budget",
        reason: `over its tpm budget (${25 + index}/30 tokens, needs 8)`,
        score: 1,
        untilMs: NOW_MS + (index + 1) * 1000,
      })),
      unknownNames: [],
    };
    const error = finalError(plan, [], [], undefined, 1000, NOW_MS);
    assert.equal(error.status, 429);
    assert.match(
      error.message,
      /^Every candidate for `m` is rate-limited or cooling down; the first is available again in 1 s/,
    );
    assert.match(
      error.message,
      / Skipped: p1\/m: over its tpm budget \(25\/30 tokens, needs 8\) until 2026-01-01T12:00:01\.000Z; p2\/m: over its tpm budget \(26\/30 tokens, needs 8\) until 2026-01-01T12:00:02\.000Z; p3\/m: .*; p4\/m: over its tpm budget \(28\/30 tokens, needs 8\) until 2026-01-01T12:00:04\.000Z; and 2 more\.$/,
    );
    assert.doesNotMatch(error.message, /p5\/m/);

    const [first] = deployments;
    assert.ok(first !== undefined);
    const failing: RoutePlan = {
      ...plan,
      skipped: [
        {
          deployment: first,
          cause: "cooldown",
          reason: "circuit open after repeated failures",
          score: 1,
          untilMs: NOW_MS + 30_000,
          cooldownCause: "circuit_open",
        },
      ],
    };
    const unavailable = finalError(failing, [], [], undefined, 30_000, NOW_MS);
    assert.equal(unavailable.status, 503);
    assert.match(
      unavailable.message,
      /; the next try is in 30 s\. Skipped: p1\/m: circuit open after repeated failures until 2026-01-01T12:00:30\.000Z\.$/,
    );
  });

  it("a 413 for prompts the credits do not cover advises a shorter prompt, unless a budget refused a candidate too", () => {
    assert.ok(alpha !== undefined && beta !== undefined);
    const plan: RoutePlan = { requested: "m", candidates: [], waitFor: undefined, skipped: [], unknownNames: [] };
    const plannedBoth: RoutePlan = {
      ...plan,
      candidates: [alpha, beta].map((deployment) => ({ deployment, score: 1, group: 0 })),
    };
    const promptRefused = (deploymentKey: string, affordable: number) => ({
      provider: deploymentKey.split("/")[0] ?? "",
      model: "m",
      deploymentKey,
      status: 402,
      outcome: "rate_limited" as const,
      reason: `the credits left cover a prompt of ${affordable} tokens, not this request's 64128 (402)`,
      startedAtMs: NOW_MS,
      durationMs: 5,
      effects: [],
      isRequestTooLarge: true as const,
      affordablePromptTokens: affordable,
    });
    const both = finalError(
      plannedBoth,
      [promptRefused(alpha.key, 6964), promptRefused(beta.key, 9000)],
      [],
      undefined,
      undefined,
      NOW_MS,
      { hasClientOutputLimit: true },
    );
    assert.equal(both.status, 413, both.message);
    assert.match(
      both.message,
      /credits cover a prompt of only ~9000 tokens, whatever the output limit: send a shorter/,
    );
    assert.doesNotMatch(both.message, /max_tokens/);
    // beta was left out by a token budget (its estimate counts a client's max_tokens): the general advice.
    const budget = {
      deploymentKey: beta.key,
      reason: "larger than its whole tpm budget",
      untilMs: Infinity,
      isLimit: true,
    };
    const mixed = finalError(plannedBoth, [promptRefused(alpha.key, 6964)], [budget], undefined, undefined, NOW_MS);
    assert.equal(mixed.status, 413, mixed.message);
    assert.match(
      mixed.message,
      /The gateway's own token budget for .* is the binding limit .*; send a shorter prompt or a smaller max_tokens, or ask the gateway's operator to raise that budget\./,
    );
  });

  it("a skip reason quoting an upstream's long text is clipped: four 8 KB reasons make a short message", () => {
    // A cooldown's reason can quote the provider (a Gemini 429's quota id, an x-ratelimit-type header): an upstream
    // that sends 8 KB there must not make every refusal while it cools a 32 KB error message.
    const deployments = buildCatalog(
      ["p1", "p2", "p3", "p4", "p5"].map((name) =>
        providerSettingsSchema.parse({ name, base_url: `https://${name}.example/v1`, api_key: "k", models: { m: {} } }),
      ),
      new Map(),
    ).deployments;
    const longReason = `Gemini quota GenerateRequestsPerDay${"x".repeat(8192)} exhausted; cooling down for the wait in the provider's error body`;
    const plan: RoutePlan = {
      requested: "m",
      candidates: [],
      waitFor: undefined,
      skipped: deployments.map((deployment) => ({
        deployment,
        cause: "cooldown",
        reason: longReason,
        score: 1,
        untilMs: NOW_MS + 60_000,
        cooldownCause: "rate_limited",
      })),
      unknownNames: [],
    };
    const error = finalError(plan, [], [], undefined, 60_000, NOW_MS);
    assert.equal(error.status, 429);
    assert.ok(error.message.length < 2_000, `${error.message.length} characters`);
    assert.match(
      error.message,
      / Skipped: p1\/m: Gemini quota GenerateRequestsPerDayx+… until 2026-01-01T12:01:00\.000Z; /,
    );
    assert.match(error.message, /; and 1 more\.$/);
  });

  it("an upstream message that ends its sentence is not given a second full stop", () => {
    assert.ok(alpha !== undefined);
    const plan: RoutePlan = { requested: "m", candidates: [], waitFor: undefined, skipped: [], unknownNames: [] };
    const failed = (reason: string) => ({
      provider: "alpha",
      model: "m",
      deploymentKey: alpha.key,
      status: 500,
      outcome: "server_error" as const,
      reason,
      startedAtMs: NOW_MS,
      durationMs: 5,
      effects: [],
    });
    const ended = finalError(plan, [failed("HTTP 500: The server had an error.")], [], undefined, undefined, NOW_MS);
    assert.match(ended.message, / Attempts: alpha\/m: HTTP 500: The server had an error\.$/);
    const open = finalError(plan, [failed("HTTP 500: boom")], [], undefined, undefined, NOW_MS);
    assert.match(open.message, / Attempts: alpha\/m: HTTP 500: boom\.$/);
    // A reason cut at MAX_SHOWN_REASON_CHARS ends with the cut's `…`, and a Chinese provider's sentence with `。`
    // or `！`: before, `….` and `。.`.
    const cut = finalError(plan, [failed(`HTTP 500: ${"x".repeat(400)}`)], [], undefined, undefined, NOW_MS);
    assert.match(cut.message, /x…$/);
    const chinese = finalError(plan, [failed("HTTP 500: 服务器繁忙，请稍后再试。")], [], undefined, undefined, NOW_MS);
    assert.match(chinese.message, /请稍后再试。$/);
    const exclaimed = finalError(plan, [failed("HTTP 500: 请求过多！")], [], undefined, undefined, NOW_MS);
    assert.match(exclaimed.message, /请求过多！$/);
  });
});
