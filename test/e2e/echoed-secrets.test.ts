// An upstream that echoes what it was sent (the request, the Authorization header) may quote any secret the gateway
// knows, not only its own key: a client key or an admin key a client pasted into a prompt, a body rule's `${VAR}`
// value. Every output that shows upstream text is redacted of all of them, through the one redaction
// (pipeline/logged-secrets.ts): the client's error (JSON, and in-stream through each front door), the reasons a
// deployment cools down, is left out or refused a feature (route explanations over HTTP and from the CLI, /stats,
// /health, the dashboard, the state file), OTLP spans, the request log and the log lines. Real gateway, scripted mock
// upstream and an OTLP receiver over loopback; the secrets have no key shape, so only the config can say they are.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Writable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { runCli } from "../helpers/cli-process.ts";
import { CHAT_ROUTE, HELLO, type RawResponse, send } from "../helpers/e2e.ts";
import { startTestGateway, type TestGateway } from "../helpers/gateway.ts";
import {
  chatChunk,
  type MockStep,
  type MockUpstream,
  type RecordedRequest,
  startMockUpstream,
} from "../helpers/mock-upstream.ts";
import { type OtlpCollector, otlpCollector } from "../helpers/otlp-collector.ts";
import { waitUntil } from "../helpers/sse-client.ts";

const CLIENT_KEY = "Cl1entQ8wErTy5UiOp3AsDfGh7Jk";
/** With a backslash: JSON escapes it, so its escaped form (`\\`) must be found in JSON outputs too. */
const ADMIN_KEY = "Adm1n\\Po9Iu8Yt7Re6Wq5As4Df";
const TENANT_TOKEN = "tenant-7Hq2Zp9Lr4VxK3";
const PROVIDER_KEY = "ProvZx4Cv6Bn8Mq2Wl9Ep5Rt3Yu";
const SECRETS = [CLIENT_KEY, ADMIN_KEY, TENANT_TOKEN, PROVIDER_KEY];
/** Each secret as written, and as it appears inside a JSON string. */
const FORMS = [...new Set(SECRETS.flatMap((secret) => [secret, JSON.stringify(secret).slice(1, -1)]))];

const ECHO = `echo: sent ${PROVIDER_KEY}, client ${CLIENT_KEY}, admin ${ADMIN_KEY}, user ${TENANT_TOKEN}`;

function leaksIn(text: string): string[] {
  return FORMS.filter((form) => text.includes(form));
}

function assertClean(what: string, text: string): void {
  assert.deepEqual(leaksIn(text), [], `${what} leaks a secret: ${text}`);
}

/** The echoing error, for a model by its upstream id. */
function echoingStep(recorded: RecordedRequest): MockStep {
  const model = (recorded.body as { model?: string } | undefined)?.model;
  const error = (message: string, extra: Record<string, unknown> = {}) => ({
    error: { message, type: "invalid_request_error", code: null, param: null, ...extra },
  });
  switch (model) {
    case "beta-parked":
      return { kind: "json", status: 401, body: error(`invalid key, ${ECHO}`) };
    case "alpha-gone":
      return { kind: "json", status: 404, body: error(`The model does not exist, ${ECHO}`) };
    case "alpha-tools":
      return { kind: "json", status: 400, body: error(`tools are not supported, ${ECHO}`, { param: "tools" }) };
    case "alpha-rejected":
      return { kind: "json", status: 400, body: error(`bad request, ${ECHO}`) };
    case "alpha-broken":
      return { kind: "json", status: 500, body: error(`internal error, ${ECHO}`) };
    default:
      // alpha-stream: content, then an error event quoting the secrets.
      return {
        kind: "sse",
        events: [{ data: chatChunk("Hel", "alpha-stream", { role: true }) }, { data: error(`stream failed, ${ECHO}`) }],
        end: "hang",
      };
  }
}

const asClient = { authorization: `Bearer ${CLIENT_KEY}` };
const asAdmin = { authorization: `Bearer ${ADMIN_KEY}` };

/** The request log is written after the answer: wait until the record is there. */
async function recordOf(gateway: TestGateway, id: string): Promise<RawResponse> {
  for (let tries = 0; tries < 100; tries++) {
    const record = await send(gateway, "GET", `/v1/gateway/requests/${id}`, { headers: asClient });
    if (record.status === 200) return record;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.fail(`no record ${id}`);
}

function assertAnswerClean(name: string, answer: RawResponse): void {
  assertClean(name, answer.text);
  for (const [header, value] of Object.entries(answer.headers)) assertClean(`${name}'s header ${header}`, value);
}

/**
 * The gateway's config: the client and admin keys; provider `alpha` with the provider key, the body rule that sends
 * TENANT_TOKEN, `alphaKeys` (YAML lines at the provider's level) and `alphaModels` (YAML lines at the models'
 * level); `rest` (more providers and sections); the state file in `stateDir`, flushed every 50 ms.
 */
function configText(
  mock: MockUpstream,
  stateDir: string,
  alpha: { readonly keys?: string; readonly models: string },
  rest = "",
): string {
  return `server:
  port: 0
  host: 127.0.0.1
  api_keys: [${CLIENT_KEY}]
  admin_keys: [${ADMIN_KEY}]
providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: ${PROVIDER_KEY}
${alpha.keys ?? ""}    body:
      override: { user: "\${TENANT_TOKEN}" }
    models:
${alpha.models}${rest}state:
  path: ${JSON.stringify(join(stateDir, "state.db"))}
  flush_interval_ms: 50
`;
}

/** The state files (not their locks). */
function stateFiles(stateDir: string): string[] {
  return readdirSync(stateDir).filter((file) => !file.endsWith(".lock"));
}

/** Waits until a state file holds `text` (the books are written every 50 ms). */
async function waitForStateText(stateDir: string, text: string, what: string): Promise<void> {
  await waitUntil(
    () => stateFiles(stateDir).some((file) => readFileSync(join(stateDir, file)).toString("latin1").includes(text)),
    what,
    5_000,
  );
}

/** `route ARGS` read from the gateway's config and state file: it succeeds, shows the reason, and no secret. */
async function assertRouteShowsClean(gateway: TestGateway, args: readonly string[], reason: RegExp): Promise<void> {
  const explained = await runCli([...args, "--config", gateway.configPath], {
    cwd: dirname(gateway.configPath),
    env: { TENANT_TOKEN },
  });
  assert.equal(explained.code, 0, explained.stderr);
  assert.match(explained.stdout, reason, `${args.join(" ")} shows the reason: ${explained.stdout}`);
  assertClean(args.join(" "), `${explained.stdout}${explained.stderr}`);
}

interface Scene {
  readonly mock: MockUpstream;
  readonly gateway: TestGateway;
  readonly receiver: OtlpCollector;
  readonly stateDir: string;
  readonly logLines: string[];
  /** What each request was answered, by name. */
  readonly answers: Map<string, RawResponse>;
}

/**
 * One gateway in front of an upstream that echoes every secret in each error: each request below leaves its
 * upstream's text in the client's answer, the books (cooldowns, refused features), the records, spans and logs.
 */
async function startScene(): Promise<Scene> {
  const mock = await startMockUpstream();
  mock.setDefault(CHAT_ROUTE, echoingStep);
  const receiver = await otlpCollector(undefined);
  const stateDir = mkdtempSync(join(tmpdir(), "llm-gateway-echoed-"));
  const logLines: string[] = [];
  const gateway = await startTestGateway(
    configText(
      mock,
      stateDir,
      {
        keys: "    retries: 0\n",
        models: `      gone: { id: alpha-gone }
      tools: { id: alpha-tools }
      rejected: { id: alpha-rejected }
      broken: { id: alpha-broken }
      stream: { id: alpha-stream }
`,
      },
      `  - name: beta
    base_url: ${mock.baseUrl}
    api_key: beta-key-not-echoed-0000
    retries: 0
    models:
      parked: { id: beta-parked }
cooldowns:
  failure_threshold: 100
routing:
  max_wait_for_better_ms: 0
traces:
  otlp_endpoint: ${receiver.url}
`,
    ),
    {
      env: { TENANT_TOKEN },
      logLevel: "trace",
      logStream: new Writable({
        write(chunk: Buffer, _encoding, done) {
          logLines.push(chunk.toString("utf8"));
          done();
        },
      }),
    },
  );
  const chat = (model: string, extra: Record<string, unknown> = {}) =>
    send(gateway, "POST", "/v1/chat/completions", { headers: asClient, body: { model, messages: HELLO, ...extra } });
  const answers = new Map<string, RawResponse>();
  answers.set("rejected", await chat("rejected"));
  answers.set("failed", await chat("broken"));
  answers.set("chat stream", await chat("stream", { stream: true }));
  answers.set(
    "Responses stream",
    await send(gateway, "POST", "/v1/responses", {
      headers: asClient,
      body: { model: "stream", input: "hi", stream: true },
    }),
  );
  answers.set(
    "Messages stream",
    await send(gateway, "POST", "/v1/messages", {
      headers: asClient,
      body: { model: "stream", max_tokens: 16, messages: HELLO, stream: true },
    }),
  );
  // Availability reasons: a 404's "does not serve the model", a refused feature, a 401's parked key (last: it parks
  // the provider).
  answers.set("404", await chat("gone"));
  answers.set("refused tools", await chat("tools", { tools: [{ type: "function", function: { name: "f" } }] }));
  answers.set("401", await chat("parked"));
  return { mock, gateway, receiver, stateDir, logLines, answers };
}

describe("secrets an upstream echoes (client, admin, body-rule and provider keys) reach no output", () => {
  let scene: Scene;
  before(async () => {
    scene = await startScene();
  });
  after(async () => {
    await scene?.gateway.close();
    await scene?.mock.close();
    await scene?.receiver.close();
    if (scene !== undefined) rmSync(scene.stateDir, { recursive: true, force: true });
  });
  const answer = (name: string): RawResponse => {
    const found = scene.answers.get(name);
    assert.ok(found !== undefined, name);
    return found;
  };

  test("the upstream was sent the body rule's value and the key, and echoed them (else every check is vacuous)", () => {
    const sent = scene.mock.requests.find((recorded) => recorded.method === "POST");
    assert.equal((sent?.body as { user?: string } | undefined)?.user, TENANT_TOKEN);
    assert.equal(sent?.headers.authorization, `Bearer ${PROVIDER_KEY}`);
  });

  test("the client's error: a rejected request's (the upstream's 400 passed on), a failed one's (attempts listed)", () => {
    assert.equal(answer("rejected").status, 400, answer("rejected").text);
    assert.equal(answer("failed").status, 502, answer("failed").text);
    for (const name of ["rejected", "failed"]) {
      assert.match(answer(name).text, /echo: sent \[redacted\]/, answer(name).text);
      assertAnswerClean(name, answer(name));
    }
  });

  for (const door of ["chat", "Responses", "Messages"]) {
    test(`the error event ending a ${door} stream after its first content`, () => {
      const streamed = answer(`${door} stream`);
      assert.equal(streamed.status, 200, streamed.text);
      assert.match(streamed.text, /Hel/, "the content came first");
      assert.match(streamed.text, /echo: sent \[redacted\]/, `the echo reached the client, redacted: ${streamed.text}`);
      assertAnswerClean(`the ${door} stream`, streamed);
    });
  }

  test("availability reasons in /stats, /health, route explanations, /metrics and the dashboard", async () => {
    const { gateway } = scene;
    const stats = await send(gateway, "GET", "/stats", { headers: asClient });
    assert.match(stats.text, /"refused_features":\[\{"feature":"tools"/, "the refusal was learned, with its reason");
    assert.match(stats.text, /does not serve the model: The model does not exist, echo/, "the 404's reason is shown");
    assertAnswerClean("/stats", stats);
    for (const query of ["model=gone", "model=tools&tools=true", "model=parked"]) {
      const route = await send(gateway, "GET", `/v1/gateway/route?${query}`, { headers: asClient });
      assert.equal(route.status, 200, route.text);
      assert.match(route.text, /echo: sent/, `the route (${query}) explains with the upstream's reason: ${route.text}`);
      assertAnswerClean(`/v1/gateway/route?${query}`, route);
    }
    const health = await send(gateway, "GET", "/health", { headers: asClient });
    assert.match(health.text, /echo: sent/, `the parked provider's reason: ${health.text}`);
    assertAnswerClean("/health", health);
    assertAnswerClean("/metrics", await send(gateway, "GET", "/metrics", { headers: asClient }));
    const dashboard = await send(gateway, "GET", "/dashboard/api/state", { headers: asAdmin });
    assert.equal(dashboard.status, 200, dashboard.text);
    assertAnswerClean("the dashboard's state", dashboard);
  });

  test("the state file, and `route` reading it", async () => {
    const { stateDir, gateway } = scene;
    await waitForStateText(stateDir, "invalid key, echo", "the parked key to be written to the state file");
    for (const file of stateFiles(stateDir))
      assertClean(`the state file ${file}`, readFileSync(join(stateDir, file)).toString("latin1"));
    await assertRouteShowsClean(gateway, ["route", "gone", "--explain"], /echo: sent/);
    await assertRouteShowsClean(gateway, ["route", "parked", "--json"], /echo: sent/);
  });

  test("OTLP spans (each failed attempt's reason)", async () => {
    const { receiver } = scene;
    await waitUntil(() => receiver.bodies.join("").includes("invalid key, echo"), "the spans with the reasons", 5_000);
    assertClean("an OTLP export", receiver.bodies.join("\n"));
  });

  test("the request log and the dashboard's memory of each request", async () => {
    for (const [name, answered] of scene.answers) {
      const id = answered.headers["x-request-id"];
      assert.ok(id !== undefined, name);
      assertAnswerClean(`the request log's record of ${name}`, await recordOf(scene.gateway, id));
      const remembered = await send(scene.gateway, "GET", `/dashboard/api/requests/${id}`, { headers: asAdmin });
      assert.equal(remembered.status, 200, remembered.text);
      assertAnswerClean(`the dashboard's record of ${name}`, remembered);
    }
  });

  test("log lines at every level", () => {
    assert.ok(
      scene.logLines.some((line) => line.includes("echo: sent")),
      "a line quoted the upstream (else vacuous)",
    );
    for (const line of scene.logLines) assertClean("a log line", line);
  });
});

test("reasons that reached the books unredacted (a state file an earlier version wrote) are shown redacted", async () => {
  const mock = await startMockUpstream();
  const stateDir = mkdtempSync(join(tmpdir(), "llm-gateway-echoed-"));
  const gateway = await startTestGateway(
    configText(mock, stateDir, { models: "      gone: { id: alpha-gone }\n      tools: { id: alpha-tools }\n" }),
    { env: { TENANT_TOKEN } },
  );
  try {
    // What an earlier version kept (its reasons were redacted of the answering provider's keys only).
    const { availability, refusedFeatures, clock } = gateway.runtime;
    availability.recordModelUnavailable("alpha/gone", `HTTP 404: does not serve the model: ${ECHO}`);
    refusedFeatures.learn("alpha/tools", "tools", `HTTP 400: no tools, ${ECHO}`, clock.now());
    const shown: [string, RawResponse][] = [
      ["/stats", await send(gateway, "GET", "/stats", { headers: asClient })],
      ["/health", await send(gateway, "GET", "/health", { headers: asClient })],
      ["/v1/gateway/route", await send(gateway, "GET", "/v1/gateway/route?model=gone", { headers: asClient })],
      [
        "/v1/gateway/route tools",
        await send(gateway, "GET", "/v1/gateway/route?model=tools&tools=true", { headers: asClient }),
      ],
      ["the dashboard's state", await send(gateway, "GET", "/dashboard/api/state", { headers: asAdmin })],
    ];
    for (const [name, answer] of shown) {
      assert.equal(answer.status, 200, `${name}: ${answer.text}`);
      assertAnswerClean(name, answer);
    }
    assert.match(shown[0]?.[1].text ?? "", /echo: sent \[redacted\]/, "the reason is shown, redacted");
    assert.match(shown[3]?.[1].text ?? "", /no tools, echo: sent \[redacted\]/, "the refusal is shown, redacted");
    // `route` reads them from the state file.
    await waitForStateText(stateDir, "no tools, echo", "the books to be written to the state file");
    await assertRouteShowsClean(gateway, ["route", "gone", "--explain"], /echo: sent \[redacted\]/);
    await assertRouteShowsClean(gateway, ["route", "gone", "--json"], /echo: sent \[redacted\]/);
  } finally {
    await gateway.close();
    await mock.close();
    rmSync(stateDir, { recursive: true, force: true });
  }
});
