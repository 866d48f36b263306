// The score decides where a request goes, over real sockets: leaderboard quality between real model ids, cooldowns
// after 429s, the health term, fit checks, `leaderboard:` meta models, strategies, sticky sessions, and the
// `scoring:` section and adjustments file of the config.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import { ManualClock } from "../../src/clock.ts";
import type { RouteExplanation } from "../../src/router/explain-route.ts";
import { runCli, tempDir, writeFiles } from "../helpers/cli-process.ts";
import {
  CHAT_ROUTE,
  chatRequests,
  errorOf,
  postChat,
  type RawResponse,
  send,
  useGateway,
  useMock,
} from "../helpers/e2e.ts";
import type { TestGatewayOptions } from "../helpers/gateway.ts";
import { type MockUpstream, rateLimited } from "../helpers/mock-upstream.ts";

/** Real ids, so that the shipped leaderboards and metadata score them: the 70B scores about 9.3, the 8B about 6.1. */
const STRONG = "llama-3.3-70b-versatile";
const WEAK = "llama-3.1-8b-instant";

interface Scene {
  readonly strong: MockUpstream;
  readonly weak: MockUpstream;
  readonly gateway: Awaited<ReturnType<typeof useGateway>>;
}

/**
 * Provider "strong" serves the 70B, provider "weak" the 8B, with equal priorities unless `strongModel` /
 * `weakModel` (YAML flow maps) say otherwise; the meta model `best` lists both.
 */
async function strongAndWeak(
  t: TestContext,
  options: { strongModel?: string; weakModel?: string; top?: string; gateway?: TestGatewayOptions } = {},
): Promise<Scene> {
  const strong = await useMock(t);
  const weak = await useMock(t);
  const gateway = await useGateway(
    t,
    `providers:
  - name: strong
    base_url: ${strong.baseUrl}
    api_key: sk-strong
    retries: 0
    models:
      ${STRONG}: ${options.strongModel ?? "{}"}
  - name: weak
    base_url: ${weak.baseUrl}
    api_key: sk-weak
    retries: 0
    models:
      ${WEAK}: ${options.weakModel ?? "{}"}
meta_models:
  best: [${STRONG}, ${WEAK}]
${options.top ?? ""}`,
    options.gateway,
  );
  return { strong, weak, gateway };
}

function servedBy(response: RawResponse): string | undefined {
  assert.equal(response.status, 200, response.text);
  return response.headers["x-gateway-model"];
}

async function explain(gateway: Scene["gateway"], query: string): Promise<RouteExplanation> {
  const response = await send(gateway, "GET", `/v1/gateway/route?${query}`);
  assert.equal(response.status, 200, response.text);
  return response.json as RouteExplanation;
}

function serverError(): { kind: "json"; status: number; body: unknown } {
  return { kind: "json", status: 500, body: { error: { message: "internal error", type: "server_error" } } };
}

describe("leaderboard quality and cooldowns", () => {
  test("a meta model goes to the better model, to the next one while it cools down after a 429, and back after", async (t) => {
    const clock = new ManualClock();
    const { strong, weak, gateway } = await strongAndWeak(t, { gateway: { clock } });

    // Equal priorities: only the leaderboard and parameter terms can put the 70B first.
    const plan = await explain(gateway, "model=best");
    assert.deepEqual(
      plan.candidates.map((candidate) => candidate.upstream_id),
      [STRONG, WEAK],
    );
    const [first, second] = plan.candidates;
    assert.ok(first?.terms !== null && second?.terms !== null && first !== undefined && second !== undefined);
    assert.equal(first.terms?.priority, second.terms?.priority);
    assert.ok((first.terms?.leaderboard.weighted ?? 0) > (second.terms?.leaderboard.weighted ?? 0));
    assert.ok((first.terms?.params.weighted ?? 0) > (second.terms?.params.weighted ?? 0));

    assert.equal(servedBy(await postChat(gateway, { model: "best" })), STRONG);

    strong.enqueue(CHAT_ROUTE, rateLimited({ retryAfter: "30" }));
    const limited = await postChat(gateway, { model: "best" });
    assert.equal(servedBy(limited), WEAK);
    assert.equal(limited.headers["x-gateway-attempts"], "2");

    // Cooling: the 70B is not even asked.
    clock.advance(29_000);
    assert.equal(servedBy(await postChat(gateway, { model: "best" })), WEAK);
    assert.equal(chatRequests(strong).length, 2);

    clock.advance(2_000);
    assert.equal(servedBy(await postChat(gateway, { model: "best" })), STRONG);
    assert.equal(chatRequests(strong).length, 3);
    assert.equal(chatRequests(weak).length, 2);
  });
});

describe("health", () => {
  /** The same model on two providers; "flaky" has one point of priority more, so it starts first. */
  async function flakyAndSteady(t: TestContext, clock: ManualClock) {
    const flaky = await useMock(t);
    const steady = await useMock(t);
    const gateway = await useGateway(
      t,
      `providers:
  - name: flaky
    base_url: ${flaky.baseUrl}
    api_key: sk-flaky
    retries: 0
    models:
      ${STRONG}: { priority: 1 }
  - name: steady
    base_url: ${steady.baseUrl}
    api_key: sk-steady
    retries: 0
    models:
      ${STRONG}: {}
cooldowns:
  failure_threshold: 100
`,
      { clock },
    );
    return { flaky, steady, gateway };
  }

  test("a candidate failing with 500s drops below a healthy one of slightly lower score; a cold one is not punished", async (t) => {
    const clock = new ManualClock();
    const { flaky, steady, gateway } = await flakyAndSteady(t, clock);
    flaky.enqueue(CHAT_ROUTE, serverError(), serverError(), serverError());
    const providerOrder = async () =>
      (await explain(gateway, `model=${STRONG}`)).candidates.map((candidate) => candidate.provider);

    // Two failures are fewer than HEALTH_MIN_SAMPLES (3): still cold, still first.
    for (let index = 0; index < 2; index++) {
      const response = await postChat(gateway, { model: STRONG });
      assert.equal(response.headers["x-gateway-provider"], "steady", response.text);
    }
    const cold = await explain(gateway, `model=${STRONG}`);
    assert.deepEqual(
      cold.candidates.map((candidate) => candidate.provider),
      ["flaky", "steady"],
    );
    assert.deepEqual(cold.candidates[0]?.terms?.health_penalty, {
      weighted: 0,
      is_cold: true,
      failure_rate: null,
      latency: null,
      probe: false,
      reason: null,
    });
    assert.equal(chatRequests(flaky).length, 2);

    // The third failure makes the record count: a 100 % failure rate costs HEALTH_PENALTY_SCALAR (10) points.
    await postChat(gateway, { model: STRONG });
    assert.equal(chatRequests(flaky).length, 3);
    assert.deepEqual(await providerOrder(), ["steady", "flaky"]);
    const warm = await explain(gateway, `model=${STRONG}`);
    const penalty = warm.candidates[1]?.terms?.health_penalty;
    assert.equal(penalty?.is_cold, false);
    assert.equal(penalty?.failure_rate, 1);
    assert.equal(penalty?.weighted, 10);
    // The steady candidate has answered three times too: warm, and healthy costs nothing.
    assert.equal(warm.candidates[0]?.terms?.health_penalty.is_cold, false);
    assert.equal(warm.candidates[0]?.terms?.health_penalty.weighted, 0);

    const response = await postChat(gateway, { model: STRONG });
    assert.equal(response.headers["x-gateway-provider"], "steady");
    assert.equal(response.headers["x-gateway-attempts"], "1");
    assert.equal(chatRequests(flaky).length, 3, "the failing candidate is no longer tried first");

    // /stats shows the same penalty in its score terms.
    const stats = (await send(gateway, "GET", "/stats")).json as {
      deployments: { provider: string; score: number; score_terms: { health_penalty: number } | null }[];
    };
    const flakyRow = stats.deployments.find((row) => row.provider === "flaky");
    assert.equal(flakyRow?.score_terms?.health_penalty, 10);

    // Failures fade: after one half-life (5 min) the 3 samples weigh 1.5, below the minimum, and it is tried again.
    clock.advance(5 * 60_000);
    assert.deepEqual(await providerOrder(), ["flaky", "steady"]);
    assert.equal(flaky.pendingSteps(CHAT_ROUTE), 0, "its script is used up: it answers 200 now");
    const recovered = await postChat(gateway, { model: STRONG });
    assert.equal(recovered.headers["x-gateway-provider"], "flaky");
    assert.equal(chatRequests(steady).length, 4, "the steady one served every request the flaky one failed or skipped");
  });
});

describe("fit: candidates that cannot serve the request are skipped", () => {
  const longPrompt = [{ role: "user", content: "word ".repeat(5000) }];
  /** Over 2000 tokens, under 4000. */
  const mediumPrompt = [{ role: "user", content: "word ".repeat(3000) }];
  const tools = [{ type: "function", function: { name: "lookup", parameters: { type: "object", properties: {} } } }];
  const image = [
    {
      role: "user",
      content: [
        { type: "text", text: "What is in this picture?" },
        { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } },
      ],
    },
  ];
  const jsonSchema = {
    type: "json_schema",
    json_schema: { name: "answer", schema: { type: "object", properties: { a: { type: "string" } } } },
  };

  test("context, tools, images and json_schema each skip the better model that cannot take them", async (t) => {
    const { strong, gateway } = await strongAndWeak(t, {
      strongModel: "{ context: 2000, tools: false, vision: false, json_schema: false }",
      // The metadata table knows the 8B as text-only; say otherwise, so that it can take every request here.
      weakModel: "{ tools: true, vision: true, json_schema: true }",
    });
    // Control: a plain small request goes to the better model.
    assert.equal(servedBy(await postChat(gateway, { model: "best" })), STRONG);
    assert.equal(
      servedBy(await postChat(gateway, { model: "best", response_format: { type: "json_object" } })),
      STRONG,
    );
    assert.equal(chatRequests(strong).length, 2);

    assert.equal(servedBy(await postChat(gateway, { model: "best", messages: longPrompt })), WEAK);
    assert.equal(servedBy(await postChat(gateway, { model: "best", tools })), WEAK);
    assert.equal(servedBy(await postChat(gateway, { model: "best", messages: image })), WEAK);
    assert.equal(servedBy(await postChat(gateway, { model: "best", response_format: jsonSchema })), WEAK);
    assert.equal(chatRequests(strong).length, 2, "skipped candidates get no upstream request");
  });

  test("when nothing fits: 400 no_capable_model saying why, and no upstream request", async (t) => {
    const { strong, weak, gateway } = await strongAndWeak(t, {
      strongModel: "{ context: 2000, tools: false }",
      weakModel: "{ context: 4000, tools: false }",
    });
    const tooLong = await postChat(gateway, { model: "best", messages: longPrompt });
    assert.equal(tooLong.status, 400, tooLong.text);
    const error = errorOf(tooLong);
    assert.equal(error.code, "no_capable_model");
    assert.equal(error.param, "messages");
    assert.match(error.message, /no configured model .*context/i);
    assert.match(error.message, /the largest is 4000/);

    const noTools = await postChat(gateway, { model: STRONG, tools });
    assert.equal(noTools.status, 400, noTools.text);
    assert.equal(errorOf(noTools).code, "no_capable_model");
    assert.match(errorOf(noTools).message, /tools/);

    // Different reasons: each candidate is named with its own, not one reason that is wrong for the other.
    const mixed = await postChat(gateway, { model: "best", messages: mediumPrompt, tools });
    assert.equal(mixed.status, 400, mixed.text);
    assert.equal(errorOf(mixed).code, "no_capable_model");
    assert.equal(errorOf(mixed).param, "model");
    assert.match(errorOf(mixed).message, /strong\/llama-3\.3-70b-versatile needs ~\d+ tokens of context, has 2000/);
    assert.match(errorOf(mixed).message, /weak\/llama-3\.1-8b-instant does not support tools/);
    assert.equal(chatRequests(strong).length + chatRequests(weak).length, 0);
  });
});

describe("meta model filters", () => {
  test("`{ min_context, leaderboard: bigcodebench }` keeps the models that board knows and ranks them by it", async (t) => {
    const mock = await useMock(t);
    const gateway = await useGateway(
      t,
      `providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha
    retries: 0
    models:
      ${STRONG}: {}
      gemini-2.0-flash: {}
      kimi-k2-instruct: {}
      deepseek-v3: { context: 16000 }
meta_models:
  coder: { min_context: 32000, leaderboard: bigcodebench }
  big: { min_params_b: 30 }
`,
    );
    // Overall, DeepSeek V3, Gemini 2.0 Flash and Kimi K2 all rank above the 70B ...
    const overall = await explain(gateway, "model=priority-auto");
    const overallOrder = overall.candidates.map((candidate) => candidate.upstream_id);
    assert.ok(overallOrder.indexOf("gemini-2.0-flash") < overallOrder.indexOf(STRONG), overallOrder.join(", "));

    // ... but on BigCodeBench the 70B beats Gemini; Kimi K2 is not on that board, DeepSeek V3's context is too small.
    const coder = await explain(gateway, "model=coder");
    assert.deepEqual(
      coder.candidates.map((candidate) => candidate.upstream_id),
      [STRONG, "gemini-2.0-flash"],
    );
    for (const candidate of coder.candidates) {
      const terms = candidate.terms;
      assert.ok(terms !== null);
      assert.equal(terms.leaderboard.board, "bigcodebench");
      // The terms shown add up to the score the filter ranks by.
      const sum =
        terms.base_priority *
          (terms.priority +
            terms.leaderboard.weighted +
            terms.params.weighted +
            terms.context.weighted +
            terms.adjustment.weighted) -
        terms.health_penalty.weighted;
      assert.ok(Math.abs(sum - candidate.score) < 0.01, `${candidate.upstream_id}: terms ${sum} vs ${candidate.score}`);
    }

    assert.equal(servedBy(await postChat(gateway, { model: "coder" })), STRONG);

    // `min_params_b` counts what the score knows (parsed from the id, BigCodeBench sizes), not only config.
    const big = await explain(gateway, "model=big");
    assert.deepEqual(
      big.candidates.map((candidate) => [candidate.upstream_id, candidate.params_b]),
      [
        ["deepseek-v3", 671],
        [STRONG, 70],
      ],
    );
  });
});

describe("strategies", () => {
  async function twins(t: TestContext, strategy: "best" | "spread") {
    const first = await useMock(t);
    const second = await useMock(t);
    const gateway = await useGateway(
      t,
      `providers:
  - name: first
    base_url: ${first.baseUrl}
    api_key: sk-first
    models:
      ${STRONG}: {}
  - name: second
    base_url: ${second.baseUrl}
    api_key: sk-second
    models:
      ${STRONG}: {}
routing:
  strategy: ${strategy}
`,
    );
    return { first, second, gateway };
  }

  const REQUESTS = 60;

  test("`spread` shares requests between equal candidates", async (t) => {
    const { first, second, gateway } = await twins(t, "spread");
    for (let index = 0; index < REQUESTS; index++) {
      assert.equal((await postChat(gateway, { model: STRONG })).status, 200);
    }
    const counts = [chatRequests(first).length, chatRequests(second).length];
    assert.equal(chatRequests(first).length + chatRequests(second).length, REQUESTS);
    // Each gets about half; both getting at least one fails by chance with probability 2^-59.
    assert.ok(
      counts.every((count) => count > 0),
      `counts ${counts.join(" / ")}`,
    );
  });

  test("`best` sends every request to the top candidate", async (t) => {
    const { first, second, gateway } = await twins(t, "best");
    for (let index = 0; index < REQUESTS; index++) {
      assert.equal((await postChat(gateway, { model: STRONG })).status, 200);
    }
    assert.equal(chatRequests(first).length, REQUESTS);
    assert.equal(chatRequests(second).length, 0);
  });
});

describe("sticky routing (`routing.sticky_ttl_ms`)", () => {
  test("a session keeps the deployment that served it, until it fails or the TTL passes", async (t) => {
    const clock = new ManualClock();
    const { strong, weak, gateway } = await strongAndWeak(t, {
      gateway: { clock },
      top: "routing:\n  sticky_ttl_ms: 60000\n  max_wait_for_better_ms: 0\n",
    });
    const chat = (session: Record<string, unknown>, headers: Record<string, string> = {}) =>
      postChat(gateway, { model: "best", ...session }, headers);

    // The 70B is rate-limited when sessions "u1" (body `user`) and "s1" (x-session-id) start: the 8B serves them.
    strong.enqueue(CHAT_ROUTE, rateLimited({ retryAfter: "10" }));
    assert.equal(servedBy(await chat({ user: "u1" })), WEAK);
    assert.equal(servedBy(await chat({}, { "x-session-id": "s1" })), WEAK);
    assert.equal(servedBy(await chat({ user: "u2" })), WEAK);
    clock.advance(11_000);

    // The 70B is back and scores higher, but the sessions stay; requests without a session take the 70B.
    assert.equal(servedBy(await chat({})), STRONG);
    assert.equal(servedBy(await chat({ user: "u1" })), WEAK);
    assert.equal(servedBy(await chat({}, { "x-session-id": "s1" })), WEAK);
    assert.equal(servedBy(await chat({ user: "someone-new" })), STRONG);
    // x-session-id wins over `user`: session s1 with user "someone-new" stays on the 8B.
    assert.equal(servedBy(await chat({ user: "someone-new" }, { "x-session-id": "s1" })), WEAK);

    // A list of names is the client's order of preference: a session only reorders within one name.
    assert.equal(servedBy(await chat({ user: "u2", model: `${STRONG},${WEAK}` })), STRONG);

    // A failure of the session's deployment ends the stickiness: the 70B answers and is kept from then on.
    weak.enqueue(CHAT_ROUTE, serverError());
    const failedOver = await chat({ user: "u1" });
    assert.equal(servedBy(failedOver), STRONG);
    assert.equal(failedOver.headers["x-gateway-attempts"], "2");
    assert.equal(servedBy(await chat({ user: "u1" })), STRONG);

    // The TTL counts from the session's last request: s1 (last at this clock time) expires 60 s later.
    clock.advance(59_000);
    assert.equal(servedBy(await chat({}, { "x-session-id": "s1" })), WEAK);
    clock.advance(60_001);
    assert.equal(servedBy(await chat({}, { "x-session-id": "s1" })), STRONG);
  });

  test("a named client's sessions are its own: another client's same session id neither steers it nor is steered", async (t) => {
    const clock = new ManualClock();
    const keys = {
      teamA: "team-a-secret-key",
      teamB: "team-b-secret-key",
      plain: "plain-key-1",
      plain2: "plain-key-2",
    };
    const { strong, gateway } = await strongAndWeak(t, {
      gateway: { clock },
      top: `routing:
  sticky_ttl_ms: 60000
  max_wait_for_better_ms: 0
server:
  port: 0
  host: 127.0.0.1
  api_keys:
    - { key: ${keys.teamA}, name: team-a }
    - { key: ${keys.teamB}, name: team-b }
    - ${keys.plain}
    - ${keys.plain2}
`,
    });
    const chat = (key: string, session: Record<string, unknown>, headers: Record<string, string> = {}) =>
      postChat(gateway, { model: "best", ...session }, { authorization: `Bearer ${key}`, ...headers });

    // While the 70B is rate-limited, team-a's sessions (header and body `user`) and an unnamed key's start on the 8B.
    strong.enqueue(CHAT_ROUTE, rateLimited({ retryAfter: "10" }));
    assert.equal(servedBy(await chat(keys.teamA, {}, { "x-session-id": "s1" })), WEAK);
    assert.equal(servedBy(await chat(keys.teamA, { user: "u1" })), WEAK);
    assert.equal(servedBy(await chat(keys.plain, {}, { "x-session-id": "s1" })), WEAK);
    clock.advance(11_000);

    // team-b sending the same ids is not steered to team-a's deployment: it gets the better 70B ...
    assert.equal(servedBy(await chat(keys.teamB, {}, { "x-session-id": "s1" })), STRONG);
    assert.equal(servedBy(await chat(keys.teamB, { user: "u1" })), STRONG);
    // ... and taking its own route did not move team-a's sessions, which stay where they were.
    assert.equal(servedBy(await chat(keys.teamA, {}, { "x-session-id": "s1" })), WEAK);
    assert.equal(servedBy(await chat(keys.teamA, { user: "u1" })), WEAK);
    // Unnamed keys share one space, as before client names: another unnamed key follows the session.
    assert.equal(servedBy(await chat(keys.plain2, {}, { "x-session-id": "s1" })), WEAK);
  });
});

describe("the `scoring:` section and the adjustments file", () => {
  test("weights from YAML change the order: without the leaderboard term, priorities decide", async (t) => {
    // The 8B has 2 points of priority: not enough against the leaderboard term (9.3 vs 8.1) ...
    const defaults = await strongAndWeak(t, { weakModel: "{ priority: 2 }" });
    assert.equal(servedBy(await postChat(defaults.gateway, { model: "best" })), STRONG);

    // ... but enough once MODEL_LEADERBOARD_SCORE_SCALAR is 0 (3.1 vs 4.1).
    const noBoards = await strongAndWeak(t, {
      weakModel: "{ priority: 2 }",
      top: "scoring:\n  MODEL_LEADERBOARD_SCORE_SCALAR: 0\n",
    });
    assert.equal(servedBy(await postChat(noBoards.gateway, { model: "best" })), WEAK);
    const plan = await explain(noBoards.gateway, "model=best");
    assert.deepEqual(
      plan.candidates.map((candidate) => candidate.upstream_id),
      [WEAK, STRONG],
    );
    for (const candidate of plan.candidates) {
      assert.equal(candidate.terms?.leaderboard.weighted, 0);
      assert.equal(candidate.terms?.leaderboard.is_neutral, false, "the board still matched; it is only weighted 0");
    }
    assert.equal(chatRequests(noBoards.strong).length, 0);
  });

  test("a `model-adjustments.yaml` next to the config with a negative group pushes a model down", async (t) => {
    const { strong, gateway } = await strongAndWeak(t, {
      gateway: {
        files: {
          "model-adjustments.yaml": `adjustments:
  distrusted:
    priority: -5
    regex: ["^llama-3\\\\.3-", "never-matches"]
  unrelated:
    priority: 100
    regex: ["gpt-"]
`,
        },
      },
    });
    const plan = await explain(gateway, "model=best");
    assert.deepEqual(
      plan.candidates.map((candidate) => candidate.upstream_id),
      [WEAK, STRONG],
    );
    const adjustment = plan.candidates[1]?.terms?.adjustment;
    assert.deepEqual(adjustment, { value: -5, weighted: -5, matched: ["distrusted"] });
    assert.deepEqual(plan.candidates[0]?.terms?.adjustment, { value: 0, weighted: 0, matched: [] });

    assert.equal(servedBy(await postChat(gateway, { model: "best" })), WEAK);
    assert.equal(chatRequests(strong).length, 0);
  });

  test("an unknown `scoring:` key or leaderboard name is a config error: `check` exits 2 with file:line", async (t) => {
    const dir = tempDir(t);
    const provider = `providers:
  - name: alpha
    base_url: http://127.0.0.1:9/v1
    api_key: sk-alpha
    models:
      ${STRONG}: {}
`;
    const badKey = writeFiles(dir, {
      "bad-key.yaml": `${provider}scoring:
  MODEL_LEADERBOARD_SCORE_SCALAR: 5
  MODEL_PARAMS_SCALAR: 3
`,
    });
    const keyResult = await runCli(["check", "--config", badKey], { cwd: dir });
    assert.equal(keyResult.code, 2, keyResult.stderr);
    assert.match(
      keyResult.stderr,
      new RegExp(`^${escapeRegExp(badKey)}:9 scoring\\.MODEL_PARAMS_SCALAR: unknown key`, "m"),
    );
    assert.doesNotMatch(keyResult.stderr, /\n\s+at /, "no stack trace");

    const badBoard = writeFiles(dir, {
      "bad-board.yaml": `${provider}scoring:
  leaderboards:
    lmarena: 1
    arena_hard: 0.5
`,
    });
    const boardResult = await runCli(["check", "--config", badBoard], { cwd: dir });
    assert.equal(boardResult.code, 2, boardResult.stderr);
    assert.match(
      boardResult.stderr,
      new RegExp(
        `^${escapeRegExp(badBoard)}:10 scoring\\.leaderboards\\.arena_hard: unknown leaderboard "arena_hard"; known: .*bigcodebench`,
        "m",
      ),
    );

    // The same config with valid names passes.
    const good = writeFiles(dir, {
      "good.yaml": `${provider}scoring:
  MODEL_LEADERBOARD_SCORE_SCALAR: 5
  leaderboards: [lmarena, aider, bigcodebench, livebench]
`,
    });
    const goodResult = await runCli(["check", "--config", good], { cwd: dir });
    assert.equal(goodResult.code, 0, goodResult.stderr);
  });

  test("a broken adjustments file is a config error too: `check` exits 2 with its file:line", async (t) => {
    const dir = tempDir(t);
    const config = writeFiles(dir, {
      "gateway.yaml": `providers:
  - name: alpha
    base_url: http://127.0.0.1:9/v1
    api_key: sk-alpha
    models:
      ${STRONG}: {}
`,
      "model-adjustments.yaml": `adjustments:
  legacy:
    priority: lots
    regex: ["(?P<v>3)gpt"]
`,
    });
    const result = await runCli(["check", "--config", config], { cwd: dir });
    assert.equal(result.code, 2, result.stderr);
    const adjustments = escapeRegExp(`${dir}/model-adjustments.yaml`);
    assert.match(result.stderr, new RegExp(`^${adjustments}:3 adjustments\\.legacy\\.priority: must be a number`, "m"));
    assert.match(result.stderr, new RegExp(`^${adjustments}:4 adjustments\\.legacy\\.regex\\.0: .*Python-only`, "m"));
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
