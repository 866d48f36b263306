// `GET /v1/gateway/route?model=X`: the plan a request for X would get now, with every score term, and why each
// left-out candidate is left out (cooldown after a 429, a budget, the context window, a bad key). /stats carries
// the same score terms.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import { ManualClock } from "../../src/clock.ts";
import type { ExplainedCandidate, RouteExplanation } from "../../src/router/explain-route.ts";
import { CHAT_ROUTE, chatRequests, errorOf, postChat, send, useGateway, useMock } from "../helpers/e2e.ts";
import { chatCompletion, rateLimited } from "../helpers/mock-upstream.ts";

const STRONG = "llama-3.3-70b-versatile";
const WEAK = "llama-3.1-8b-instant";

async function scene(t: TestContext, options: { strongModel?: string; weakModel?: string } = {}) {
  const clock = new ManualClock();
  const strong = await useMock(t);
  const weak = await useMock(t);
  const gateway = await useGateway(
    t,
    `providers:
  - name: strong
    base_url: ${strong.baseUrl}
    api_key: sk-strong-secret
    retries: 0
    models:
      ${STRONG}: ${options.strongModel ?? "{}"}
  - name: weak
    base_url: ${weak.baseUrl}
    api_key: sk-weak-secret
    retries: 0
    models:
      ${WEAK}: ${options.weakModel ?? "{}"}
meta_models:
  best: [${STRONG}, ${WEAK}]
routing:
  max_wait_for_better_ms: 0
`,
    { clock },
  );
  const explain = async (query: string): Promise<RouteExplanation> => {
    const response = await send(gateway, "GET", `/v1/gateway/route?${query}`);
    assert.equal(response.status, 200, response.text);
    return response.json as RouteExplanation;
  };
  return { clock, strong, weak, gateway, explain };
}

/** `base × (priority + leaderboard + params + context + adjustment) − health`, from the explained terms. */
function sumOfTerms(candidate: ExplainedCandidate): number {
  const terms = candidate.terms;
  assert.ok(terms !== null, `${candidate.upstream_id} has no terms`);
  return (
    terms.base_priority *
      (terms.priority +
        terms.leaderboard.weighted +
        terms.params.weighted +
        terms.context.weighted +
        terms.adjustment.weighted) -
    terms.health_penalty.weighted
  );
}

describe("GET /v1/gateway/route", () => {
  test("ordered candidates with every score term; the terms add up to the score", async (t) => {
    const { explain, strong, weak } = await scene(t, { strongModel: "{ priority: 0.5 }" });
    const plan = await explain("model=best");
    assert.equal(plan.model, "best");
    assert.equal(plan.kind, "chat");
    assert.equal(plan.strategy, "best");
    assert.deepEqual(plan.skipped, []);
    assert.deepEqual(plan.unknown_names, []);
    assert.equal(plan.wait_for, null);
    assert.deepEqual(
      plan.candidates.map((candidate) => [candidate.rank, candidate.provider, candidate.upstream_id]),
      [
        [1, "strong", STRONG],
        [2, "weak", WEAK],
      ],
    );
    const [first, second] = plan.candidates;
    assert.ok(first !== undefined && second !== undefined);
    assert.ok(first.score > second.score);
    assert.deepEqual(Object.keys(first.terms ?? {}).sort(), [
      "adjustment",
      "base_priority",
      "context",
      "health_penalty",
      "leaderboard",
      "params",
      "priority",
    ]);
    assert.equal(first.terms?.priority, 0.5);
    assert.equal(first.terms?.base_priority, 1);
    assert.equal(first.terms?.leaderboard.board, null);
    assert.equal(first.terms?.leaderboard.is_neutral, false);
    assert.equal(first.params_b, 70);
    assert.equal(first.context_tokens, 128_000);
    assert.ok(first.leaderboard_matches.some((match) => match.board === "lmarena_text"));
    for (const candidate of plan.candidates) {
      assert.ok(Math.abs(sumOfTerms(candidate) - candidate.score) < 0.01, `${candidate.upstream_id}`);
      assert.equal(candidate.terms?.health_penalty.is_cold, true);
    }
    // Explaining sends nothing upstream.
    assert.equal(chatRequests(strong).length + chatRequests(weak).length, 0);
  });

  test("a candidate cooling down after a 429 is skipped until the time the provider gave", async (t) => {
    const { clock, explain, gateway, strong } = await scene(t);
    strong.enqueue(CHAT_ROUTE, rateLimited({ retryAfter: "30" }));
    const startMs = clock.now();
    assert.equal((await postChat(gateway, { model: "best" })).headers["x-gateway-provider"], "weak");

    const plan = await explain("model=best");
    assert.deepEqual(
      plan.candidates.map((candidate) => candidate.upstream_id),
      [WEAK],
    );
    assert.equal(plan.skipped.length, 1);
    const skip = plan.skipped[0];
    assert.equal(skip?.provider, "strong");
    assert.equal(skip?.model, STRONG);
    assert.equal(skip?.cause, "cooldown");
    assert.match(skip?.reason ?? "", /^429\b/);
    assert.equal(skip?.until, new Date(startMs + 30_000).toISOString());
    assert.ok((skip?.score ?? 0) > (plan.candidates[0]?.score ?? 0), "a skipped candidate still shows its score");

    clock.advance(30_000);
    const later = await explain("model=best");
    assert.deepEqual(later.skipped, []);
    assert.equal(later.candidates[0]?.upstream_id, STRONG);
  });

  test("a candidate over its rpd budget is skipped until the day resets", async (t) => {
    const { clock, explain, gateway } = await scene(t, { weakModel: "{ limits: { rpd: 1 } }" });
    assert.equal((await postChat(gateway, { model: WEAK })).status, 200);
    const plan = await explain("model=best");
    assert.deepEqual(
      plan.candidates.map((candidate) => candidate.upstream_id),
      [STRONG],
    );
    const skip = plan.skipped[0];
    assert.equal(skip?.provider, "weak");
    assert.equal(skip?.cause, "budget");
    assert.match(skip?.reason ?? "", /rpd budget \(1\/1\)/);
    assert.ok(skip?.until !== null && skip?.until !== undefined);
    const untilMs = Date.parse(skip.until);
    assert.ok(untilMs > clock.now() && untilMs <= clock.now() + 24 * 3_600_000, skip.until);
  });

  test("`tokens=` skips candidates whose context is too small; nothing large enough is 400 no_capable_model", async (t) => {
    const { explain, gateway } = await scene(t, { strongModel: "{ context: 2000 }" });
    const plan = await explain("model=best&tokens=5000");
    assert.deepEqual(
      plan.candidates.map((candidate) => candidate.upstream_id),
      [WEAK],
    );
    assert.deepEqual(
      plan.skipped.map((skip) => [skip.provider, skip.cause, skip.reason, skip.until]),
      [
        [
          "strong",
          "context",
          "needs ~5000 tokens of context, has 2000 (prompt ~5000 + max_tokens 0 share one window)",
          null,
        ],
      ],
    );
    // Small enough for both: both are candidates.
    assert.equal((await explain("model=best&tokens=1000")).candidates.length, 2);

    const tooLarge = await send(gateway, "GET", "/v1/gateway/route?model=best&tokens=500000");
    assert.equal(tooLarge.status, 400, tooLarge.text);
    assert.equal(errorOf(tooLarge).code, "no_capable_model");
    assert.match(errorOf(tooLarge).message, /context/);

    const notANumber = await send(gateway, "GET", "/v1/gateway/route?model=best&tokens=lots");
    assert.equal(notANumber.status, 400, notANumber.text);
    assert.equal(errorOf(notANumber).param, "tokens");
  });

  test("after a 401 the provider's key counts as invalid: skipped for an hour, without the key in the answer", async (t) => {
    const { clock, explain, gateway, strong } = await scene(t);
    strong.enqueue(CHAT_ROUTE, {
      kind: "json",
      status: 401,
      body: { error: { message: "Invalid API Key", type: "invalid_request_error", code: "invalid_api_key" } },
    });
    const startMs = clock.now();
    assert.equal((await postChat(gateway, { model: "best" })).headers["x-gateway-provider"], "weak");
    const response = await send(gateway, "GET", "/v1/gateway/route?model=best");
    assert.ok(!response.text.includes("sk-strong-secret"));
    const plan = await explain("model=best");
    const skip = plan.skipped[0];
    assert.equal(skip?.provider, "strong");
    assert.equal(skip?.cause, "cooldown");
    assert.match(skip?.reason ?? "", /key rejected: HTTP 401/);
    assert.equal(skip?.until, new Date(startMs + 3_600_000).toISOString());
  });

  test("a recovery probe is ranked without its failures, and its explained terms (health marked probe) add up to that score", async (t) => {
    const { clock, explain, gateway, strong } = await scene(t);
    // Two answers, then two 500s (asked of strong alone): four health samples, half of them failures (a large
    // penalty), the latest evidence a failure. The circuit stays closed (2 < failure_threshold 3).
    for (const status of [200, 200, 500, 500]) {
      strong.enqueue(
        CHAT_ROUTE,
        status === 200
          ? { kind: "json", body: chatCompletion("hi", STRONG) }
          : { kind: "json", status, body: { error: { message: "down" } } },
      );
      const answer = await postChat(gateway, { model: STRONG });
      assert.equal(answer.status, status === 200 ? 200 : 502, answer.text);
    }
    assert.deepEqual(
      (await explain("model=best")).candidates.map((candidate) => [
        candidate.provider,
        candidate.terms?.health_penalty.probe,
      ]),
      [
        ["weak", false],
        ["strong", false],
      ],
      "right after a failure, strong is ranked with it",
    );
    // circuit_first_probe_ms after the latest failure: the next request would be strong's probe, in its place.
    clock.advance(2_000);
    const plan = await explain("model=best");
    assert.deepEqual(
      plan.candidates.map((candidate) => [candidate.provider, candidate.terms?.health_penalty.probe]),
      [
        ["strong", true],
        ["weak", false],
      ],
    );
    for (const candidate of plan.candidates) {
      assert.ok(
        Math.abs(sumOfTerms(candidate) - candidate.score) < 0.01,
        `${candidate.upstream_id}: terms ${sumOfTerms(candidate)} vs score ${candidate.score}`,
      );
    }
    const probe = plan.candidates[0]?.terms?.health_penalty;
    assert.match(
      probe?.reason ?? "",
      /recovery probe: .*failures ignored \(failure rate [\d.]+, penalty [\d.]+ outside a probe\)/,
    );
    assert.equal(plan.candidates[1]?.terms?.health_penalty.reason, null);
    // Outside the probe the failures count in full: /stats shows strong's usual penalty, larger than the probe's.
    const stats = (await send(gateway, "GET", "/stats")).json as {
      deployments: { provider: string; score_terms: { health_penalty: number } | null }[];
    };
    const usual = stats.deployments.find((row) => row.provider === "strong")?.score_terms?.health_penalty ?? 0;
    assert.ok(usual > (probe?.weighted ?? 0) + 1, `usual penalty ${usual}, probe's ${probe?.weighted}`);
  });

  test("capability queries: tools, vision and json_schema skip models configured without them", async (t) => {
    const { explain } = await scene(t, {
      strongModel: "{ tools: false, vision: false, json_schema: false }",
      weakModel: "{ tools: true, vision: true, json_schema: true }",
    });
    for (const [query, cause] of [
      ["tools=true", "tools"],
      ["vision=true", "vision"],
      ["json_schema=true", "json_schema"],
    ] as const) {
      const plan = await explain(`model=best&${query}`);
      assert.deepEqual(
        plan.candidates.map((candidate) => candidate.upstream_id),
        [WEAK],
        query,
      );
      assert.deepEqual(
        plan.skipped.map((skip) => [skip.provider, skip.cause]),
        [["strong", cause]],
        query,
      );
    }
  });

  test("capability queries take true or false: another value is a 400 naming it, not a query that asks for nothing", async (t) => {
    const { explain, gateway } = await scene(t, {
      strongModel: "{ tools: false, vision: false, json_schema: false }",
      weakModel: "{ tools: true, vision: true, json_schema: true }",
    });
    for (const name of ["tools", "vision", "json_schema"]) {
      for (const value of ["yes", "1", "TRUE", ""]) {
        const bad = await send(gateway, "GET", `/v1/gateway/route?model=best&${name}=${value}`);
        assert.equal(bad.status, 400, `${name}=${value}: ${bad.text}`);
        assert.equal(errorOf(bad).param, name);
        assert.equal(errorOf(bad).code, "invalid_value");
      }
      // `false` asks for nothing, as leaving it out does: the strong model stays a candidate.
      const plan = await explain(`model=best&${name}=false`);
      assert.ok(
        plan.candidates.some((candidate) => candidate.upstream_id !== WEAK),
        `${name}=false`,
      );
    }
  });

  test("errors: `model` missing is 400, an unknown model 404; unknown names in a list are reported", async (t) => {
    const { explain, gateway } = await scene(t);
    const missing = await send(gateway, "GET", "/v1/gateway/route");
    assert.equal(missing.status, 400);
    assert.equal(errorOf(missing).param, "model");
    const unknown = await send(gateway, "GET", "/v1/gateway/route?model=no-such-model");
    assert.equal(unknown.status, 404, unknown.text);
    assert.equal(errorOf(unknown).code, "model_not_found");
    const partly = await explain(`model=${encodeURIComponent(`no-such-model,${WEAK}`)}`);
    assert.deepEqual(partly.unknown_names, ["no-such-model"]);
    assert.deepEqual(
      partly.candidates.map((candidate) => candidate.upstream_id),
      [WEAK],
    );
  });
});

describe("/stats score_terms", () => {
  test("every deployment carries its score terms, and they add up to its score", async (t) => {
    const { gateway } = await scene(t, { weakModel: "{ priority: 1 }" });
    const stats = (await send(gateway, "GET", "/stats")).json as {
      deployments: {
        provider: string;
        upstream_id: string;
        score: number;
        score_terms: Record<string, number> | null;
      }[];
    };
    assert.equal(stats.deployments.length, 2);
    for (const row of stats.deployments) {
      const terms = row.score_terms;
      assert.ok(terms !== null, row.upstream_id);
      assert.deepEqual(Object.keys(terms).sort(), [
        "adjustment",
        "base_priority",
        "context",
        "health_penalty",
        "leaderboard",
        "params",
        "priority",
      ]);
      const sum =
        (terms.base_priority ?? 0) *
          ((terms.priority ?? 0) +
            (terms.leaderboard ?? 0) +
            (terms.params ?? 0) +
            (terms.context ?? 0) +
            (terms.adjustment ?? 0)) -
        (terms.health_penalty ?? 0);
      assert.ok(Math.abs(sum - row.score) < 1e-9, `${row.upstream_id}: ${sum} vs ${row.score}`);
    }
    const weakRow = stats.deployments.find((row) => row.provider === "weak");
    assert.equal(weakRow?.score_terms?.priority, 1);
    assert.ok((weakRow?.score_terms?.leaderboard ?? 0) > 0);
  });
});
