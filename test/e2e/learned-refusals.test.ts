// A provider that refuses a feature of the request as not supported ("This model does not support tools") is
// remembered for that feature: later requests carrying it go to another provider first, with no upstream round trip
// wasted on the refusal, while requests without it still go to the refusing provider first. Real gateway, two
// scripted mock upstreams over loopback.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, type TestContext, test } from "node:test";
import { runCli } from "../helpers/cli-process.ts";
import { CHAT_ROUTE, chatRequests, postChat, rowOf, send, statsOf, useGateway, useMock } from "../helpers/e2e.ts";
import { chatCompletion, type MockStep, type RecordedRequest } from "../helpers/mock-upstream.ts";

const ADMIN_KEY = "admin-key-123";

const TOOLS = [
  {
    type: "function",
    function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } },
  },
];

/** Ollama-style wording ("<model> does not support tools"), as classify-response.ts recognises it. */
const TOOLS_REFUSAL: MockStep = {
  kind: "json",
  status: 400,
  body: { error: { message: "This model does not support tools", type: "invalid_request_error", param: null } },
};

function hasTools(request: RecordedRequest): boolean {
  return Array.isArray((request.body as { tools?: unknown } | undefined)?.tools);
}

/** alpha (priority 10) refuses every request with tools and answers the others; beta (priority 1) answers all. */
async function scene(t: TestContext, options: { readonly extraConfig?: string } = {}) {
  const alpha = await useMock(t);
  const beta = await useMock(t);
  alpha.setDefault(CHAT_ROUTE, (request) =>
    hasTools(request) ? TOOLS_REFUSAL : { kind: "json", status: 200, body: chatCompletion("alpha here", "alpha-m") },
  );
  const yaml = `server:
  port: 0
  host: 127.0.0.1
  admin_keys: [${ADMIN_KEY}]
providers:
  - name: alpha
    base_url: ${alpha.baseUrl}
    api_key: sk-alpha-secret
    retries: 0
    models:
      m: { id: alpha-m, priority: 10 }
  - name: beta
    base_url: ${beta.baseUrl}
    api_key: sk-beta-secret
    retries: 0
    models:
      m: { id: beta-m, priority: 1 }
routing:
  max_wait_for_better_ms: 0
${options.extraConfig ?? ""}`;
  return { alpha, beta, gateway: await useGateway(t, yaml), yaml };
}

interface Explained {
  candidates: { provider: string; refused_feature: { feature: string; reason: string; until: string } | null }[];
  skipped: unknown[];
}

describe("a feature a provider refused is remembered", () => {
  test("tools refused once: the next tools request goes straight to the other provider, one without tools does not", async (t) => {
    const { alpha, beta, gateway } = await scene(t);

    // The first request finds out, as before: alpha refuses, beta answers.
    const first = await postChat(gateway, { model: "m", tools: TOOLS });
    assert.equal(first.status, 200, first.text);
    assert.equal(first.headers["x-gateway-provider"], "beta");
    assert.equal(first.headers["x-gateway-attempts"], "2");
    assert.equal(chatRequests(alpha).length, 1);

    // The second goes to beta at once: one upstream call, none to alpha.
    const second = await postChat(gateway, { model: "m", tools: TOOLS, stream: true });
    assert.equal(second.status, 200, second.text);
    assert.equal(second.headers["x-gateway-provider"], "beta");
    assert.equal(second.headers["x-gateway-attempts"], "1");
    assert.equal(chatRequests(alpha).length, 1, "alpha was not asked again with tools");
    assert.equal(chatRequests(beta).length, 2);

    // Without tools alpha is first as always.
    const plain = await postChat(gateway, { model: "m" });
    assert.equal(plain.status, 200, plain.text);
    assert.equal(plain.headers["x-gateway-provider"], "alpha");
    assert.equal(plain.headers["x-gateway-attempts"], "1");
    assert.equal(chatRequests(alpha).length, 2);
    assert.equal(chatRequests(beta).length, 2);

    // The route explanation says why alpha is last for tools, and nothing for a request without them.
    const withTools = (await send(gateway, "GET", "/v1/gateway/route?model=m&tools=true")).json as Explained;
    assert.deepEqual(
      withTools.candidates.map((candidate) => candidate.provider),
      ["beta", "alpha"],
    );
    const refused = withTools.candidates[1]?.refused_feature;
    assert.equal(refused?.feature, "tools");
    assert.match(refused?.reason ?? "", /HTTP 400: This model does not support tools/);
    const hoursLeft = (Date.parse(refused?.until ?? "") - Date.now()) / 3_600_000;
    assert.ok(hoursLeft > 5.9 && hoursLeft <= 6, `lesson ends in ${hoursLeft} h`);
    assert.deepEqual(withTools.skipped, [], "ranked last, not left out");
    const without = (await send(gateway, "GET", "/v1/gateway/route?model=m")).json as Explained;
    assert.deepEqual(
      without.candidates.map((candidate) => [candidate.provider, candidate.refused_feature]),
      [
        ["alpha", null],
        ["beta", null],
      ],
    );

    // /stats lists what each deployment refused.
    const stats = await statsOf(gateway);
    assert.deepEqual(
      rowOf(stats, "alpha/m").refused_features.map((refusal) => refusal.feature),
      ["tools"],
    );
    assert.deepEqual(rowOf(stats, "beta/m").refused_features, []);

    // The request record of the second request shows it too.
    const records = await send(gateway, "GET", "/v1/gateway/requests?limit=3");
    const secondRecord = (
      records.json as { data: { isStream: boolean; candidates: { provider: string; refusedFeature?: string }[] }[] }
    ).data.find((record) => record.isStream);
    assert.deepEqual(
      secondRecord?.candidates.map((candidate) => [candidate.provider, candidate.refusedFeature]),
      [
        ["beta", undefined],
        ["alpha", "tools: HTTP 400: This model does not support tools"],
      ],
    );

    // The operator's reset forgets it: alpha is asked first again (and refuses again).
    const reset = await send(gateway, "POST", "/admin/cooldowns/reset", {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    });
    assert.equal(reset.status, 200, reset.text);
    const afterReset = await postChat(gateway, { model: "m", tools: TOOLS });
    assert.equal(afterReset.headers["x-gateway-attempts"], "2");
    assert.equal(chatRequests(alpha).length, 3);
  });

  test("kept in the embedded state file: a restarted gateway still sends tools requests to the other provider first", async (t) => {
    const directory = mkdtempSync(join(tmpdir(), "refused-"));
    t.after(() => rmSync(directory, { recursive: true, force: true }));
    // Written when the gateway closes (and every flush interval, here longer than the test).
    const state = `state:\n  path: ${JSON.stringify(join(directory, "state.db"))}\n  flush_interval_ms: 60000\n`;
    const { alpha, beta, gateway, yaml } = await scene(t, { extraConfig: state });
    assert.equal((await postChat(gateway, { model: "m", tools: TOOLS })).headers["x-gateway-provider"], "beta");
    assert.equal(chatRequests(alpha).length, 1);
    const [learned] = rowOf(await statsOf(gateway), "alpha/m").refused_features;
    await gateway.close();

    const restarted = await useGateway(t, yaml);
    assert.deepEqual(
      rowOf(await statsOf(restarted), "alpha/m").refused_features,
      [learned],
      "the same lesson, same end",
    );
    const again = await postChat(restarted, { model: "m", tools: TOOLS });
    assert.equal(again.status, 200, again.text);
    assert.equal(again.headers["x-gateway-provider"], "beta");
    assert.equal(again.headers["x-gateway-attempts"], "1");
    assert.equal(chatRequests(alpha).length, 1, "the restarted gateway paid alpha's refusal again");
    assert.equal(chatRequests(beta).length, 2);
  });

  test("`llm-gateway route --tools`, `--vision` and `--json-schema` show the lessons kept in the state file as the HTTP explanation does", async (t) => {
    const { alpha, gateway } = await scene(t);
    assert.equal((await postChat(gateway, { model: "m", tools: TOOLS })).headers["x-gateway-provider"], "beta");
    // Two more lessons, one for each of the other flags, so that each is seen to ask for its own feature.
    alpha.enqueue(CHAT_ROUTE, {
      kind: "json",
      status: 400,
      body: { error: { message: "response_format `json_schema` is not supported by alpha-m" } },
    });
    const jsonSchema = { type: "json_schema", json_schema: { name: "x", schema: { type: "object" } } };
    assert.equal(
      (await postChat(gateway, { model: "m", response_format: jsonSchema })).headers["x-gateway-provider"],
      "beta",
    );
    alpha.enqueue(CHAT_ROUTE, {
      kind: "json",
      status: 400,
      body: { error: { message: "This model does not support vision" } },
    });
    const image = { type: "image_url", image_url: { url: "https://example.com/chart.png" } };
    const withImage = [{ role: "user", content: [{ type: "text", text: "What is this?" }, image] }];
    assert.equal((await postChat(gateway, { model: "m", messages: withImage })).headers["x-gateway-provider"], "beta");
    // Each flag, the HTTP explanation's query it stands for, and the lesson it shows.
    const flags = [
      ["--tools", "tools=true", "tools"],
      ["--vision", "vision=true", "images"],
      ["--json-schema", "json_schema=true", "json_schema"],
    ] as const;
    const refusalsOf = (explained: Explained) =>
      explained.candidates.map((candidate) => [candidate.provider, candidate.refused_feature] as const);
    const fromHttp = new Map<string, unknown>();
    for (const [flag, query] of flags) {
      fromHttp.set(
        flag,
        refusalsOf((await send(gateway, "GET", `/v1/gateway/route?model=m&${query}`)).json as Explained),
      );
    }
    await gateway.close(); // the lessons are written to the state file, which the command reads
    const route = (...options: string[]) =>
      runCli(["route", "m", "--config", gateway.configPath, ...options], { cwd: dirname(gateway.configPath) });
    const explained = async (...options: string[]) => {
      const result = await route("--json", ...options);
      assert.equal(result.code, 0, result.stderr);
      return refusalsOf(JSON.parse(result.stdout) as Explained);
    };
    for (const [flag, query, feature] of flags) {
      const candidates = await explained(flag);
      assert.deepEqual(candidates, fromHttp.get(flag), `the same lesson, ranked the same, as ${query}`);
      assert.deepEqual(
        candidates.map(([provider, refused]) => [provider, refused?.feature ?? null]),
        [
          ["beta", null],
          ["alpha", feature],
        ],
        flag,
      );
    }
    assert.deepEqual(
      await explained(),
      [
        ["alpha", null],
        ["beta", null],
      ],
      "a request asking for none of them goes to alpha first",
    );
    // The table says why alpha is last.
    const text = await route("--explain", "--tools");
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^ *1 +beta +beta-m /m);
    assert.match(
      text.stdout,
      /^refused: alpha\/alpha-m tools: HTTP 400: This model does not support tools \(until \S+\)$/m,
    );
  });

  test("still the last resort: when the other provider fails, the refusing one is tried, and a success clears it", async (t) => {
    const { alpha, beta, gateway } = await scene(t);
    await postChat(gateway, { model: "m", tools: TOOLS });
    assert.equal(chatRequests(alpha).length, 1);

    // alpha learned tools meanwhile (a model update); beta fails: alpha is tried last and answers.
    alpha.setDefault(CHAT_ROUTE, { kind: "json", status: 200, body: chatCompletion("alpha with tools", "alpha-m") });
    beta.enqueue(CHAT_ROUTE, { kind: "json", status: 500, body: { error: { message: "boom" } } });
    const rescued = await postChat(gateway, { model: "m", tools: TOOLS });
    assert.equal(rescued.status, 200, rescued.text);
    assert.equal(rescued.headers["x-gateway-provider"], "alpha");
    assert.equal(rescued.headers["x-gateway-attempts"], "2");

    // That success was evidence: alpha is first for tools again.
    const next = await postChat(gateway, { model: "m", tools: TOOLS });
    assert.equal(next.headers["x-gateway-provider"], "alpha");
    assert.equal(next.headers["x-gateway-attempts"], "1");
  });

  test("a refusal that names no feature of the request teaches nothing", async (t) => {
    const { alpha, beta, gateway } = await scene(t);
    // vLLM's bare pydantic message names no field: it could be about tools or anything else the body carries.
    alpha.setDefault(CHAT_ROUTE, {
      kind: "json",
      status: 400,
      body: { object: "error", message: "Extra inputs are not permitted", type: "BadRequestError", code: 400 },
    });
    for (let index = 0; index < 2; index++) {
      const response = await postChat(gateway, { model: "m", tools: TOOLS, seed: 3 });
      assert.equal(response.headers["x-gateway-provider"], "beta");
      assert.equal(response.headers["x-gateway-attempts"], "2", "alpha asked first every time");
    }
    assert.equal(chatRequests(alpha).length, 2);
    assert.equal(chatRequests(beta).length, 2);
  });

  test("a parameter named in a vLLM refusal is remembered for that parameter only", async (t) => {
    const { alpha, gateway } = await scene(t);
    alpha.setDefault(CHAT_ROUTE, (request) =>
      (request.body as { parallel_tool_calls?: unknown }).parallel_tool_calls === undefined
        ? { kind: "json", status: 200, body: chatCompletion("alpha here", "alpha-m") }
        : {
            kind: "json",
            status: 400,
            body: {
              object: "error",
              message:
                "[{'type': 'extra_forbidden', 'loc': ('body', 'parallel_tool_calls'), 'msg': 'Extra inputs are not permitted', 'input': False}]",
              type: "BadRequestError",
              param: null,
              code: 400,
            },
          },
    );
    await postChat(gateway, { model: "m", parallel_tool_calls: false });
    const again = await postChat(gateway, { model: "m", parallel_tool_calls: false });
    assert.equal(again.headers["x-gateway-provider"], "beta");
    assert.equal(again.headers["x-gateway-attempts"], "1");
    const other = await postChat(gateway, { model: "m", seed: 1 });
    assert.equal(other.headers["x-gateway-provider"], "alpha");
    assert.equal(chatRequests(alpha).length, 2);
    const explained = (await send(gateway, "GET", "/v1/gateway/route?model=m&parameters=parallel_tool_calls"))
      .json as Explained;
    assert.equal(explained.candidates.at(-1)?.refused_feature?.feature, "parallel_tool_calls");
  });

  test("`cooldowns.unsupported_feature_ms` sets how long it is remembered", async (t) => {
    const { gateway } = await scene(t, { extraConfig: "cooldowns:\n  unsupported_feature_ms: 60000" });
    const learnedAtMs = Date.now();
    await postChat(gateway, { model: "m", tools: TOOLS });
    const explained = (await send(gateway, "GET", "/v1/gateway/route?model=m&tools=true")).json as Explained;
    const untilMs = Date.parse(explained.candidates.at(-1)?.refused_feature?.until ?? "");
    assert.ok(untilMs >= learnedAtMs + 60_000 && untilMs <= Date.now() + 60_000, `until ${untilMs - learnedAtMs} ms`);
  });
});
