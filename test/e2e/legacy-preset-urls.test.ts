// A provider file from the Python project (entries with `base_url`, no `preset:`) gets the knowledge of the preset
// whose URL it names: the gateway below talks to `https://api.groq.com/openai/v1/` as written, over a dispatcher
// that connects every origin to a local mock (plain TCP over loopback; no DNS, no TLS), so that what is sent and
// what is learned is the real path for that URL. The CLI half runs `check` as users do, on the default file name.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { describe, type TestContext, test } from "node:test";
import { Agent } from "undici";
import { groq } from "../fixtures/provider-fixtures.ts";
import { runCli, tempDir, writeFiles } from "../helpers/cli-process.ts";
import { postChat, statsOf, useGateway, useMock } from "../helpers/e2e.ts";
import { startGatewayProcess } from "../helpers/gateway-process.ts";
import { chatCompletion, type MockUpstream } from "../helpers/mock-upstream.ts";

const GROQ_CHAT_ROUTE = "POST /openai/v1/chat/completions";

interface Window {
  readonly unit: string;
  readonly window: string;
  readonly limit: number;
  readonly source: string;
}

/** Every upstream connection, whatever its origin (https://api.groq.com included), goes to `mock`. */
function agentTo(t: TestContext, mock: MockUpstream): Agent {
  const agent = new Agent({
    connect: (_options, callback) => {
      const socket = connect(mock.port, "127.0.0.1");
      socket.once("connect", () => callback(null, socket));
      socket.once("error", (error) => callback(error, null));
    },
  });
  t.after(() => agent.close());
  return agent;
}

async function windowsOf(gateway: Awaited<ReturnType<typeof useGateway>>, key: string): Promise<Window[]> {
  const row = (await statsOf(gateway)).get(key) as unknown as { budgets: { windows: Window[] }[] } | undefined;
  assert.ok(row !== undefined, `no /stats row for ${key}`);
  return row.budgets
    .flatMap((budget) => budget.windows)
    .map(({ unit, window, limit, source }) => ({ unit, window, limit, source }));
}

describe("a legacy entry whose base_url is a preset's gets that preset", () => {
  test("groq by URL: its free-tier budgets apply up front and its headers are read as Groq's (requests per day)", async (t) => {
    const mock = await useMock(t);
    mock.setDefault(GROQ_CHAT_ROUTE, {
      kind: "json",
      body: chatCompletion("hello", "llama-3.3-70b-versatile"),
      headers: { ...groq.success.headers },
    });
    const gateway = await useGateway(
      t,
      `providers:
  - name: groq
    base_url: https://api.groq.com/openai/v1/
    api_key_env_var: GROQ_API_KEY
    models:
      llama-3.3-70b-versatile: {}
`,
      { env: { GROQ_API_KEY: "gsk-legacy" }, dispatcher: agentTo(t, mock) },
    );
    const key = "groq/llama-3.3-70b-versatile";
    assert.deepEqual(
      (await windowsOf(gateway, key)).filter((window) => window.source === "config"),
      [
        { unit: "requests", window: "minute", limit: 30, source: "config" },
        { unit: "requests", window: "day", limit: 1000, source: "config" },
        { unit: "tokens", window: "minute", limit: 12000, source: "config" },
        { unit: "tokens", window: "day", limit: 100000, source: "config" },
      ],
      "the groq preset's known_models budgets for this model",
    );

    const answer = await postChat(gateway, { model: "llama-3.3-70b-versatile" });
    assert.equal(answer.status, 200, answer.text);
    const sent = mock.requests.find((recorded) => recorded.method === "POST");
    assert.equal(sent?.path, "/openai/v1/chat/completions");
    assert.equal(sent?.headers.host, "api.groq.com");
    assert.equal(sent?.headers.authorization, "Bearer gsk-legacy");
    // Groq's x-ratelimit-*-requests headers count the day (the generic dialect read them as a minute).
    assert.deepEqual(
      (await windowsOf(gateway, key)).filter((window) => window.source === "provider"),
      [
        { unit: "requests", window: "day", limit: 14400, source: "provider" },
        { unit: "tokens", window: "minute", limit: 18000, source: "provider" },
      ],
    );
  });
  test("a recognised entry under its own name reads the preset provider's model facts (Groq's output limit)", async (t) => {
    const mock = await useMock(t);
    mock.setDefault(GROQ_CHAT_ROUTE, { kind: "json", body: chatCompletion("hello", "llama-3.3-70b-versatile") });
    const gateway = await useGateway(
      t,
      `providers:
  - name: my-groq
    base_url: https://api.groq.com/openai/v1
    api_key_env_var: GROQ_API_KEY
    count_max_tokens: false # else the preset's 12,000 tokens-per-minute budget refuses this max_tokens first
    models:
      llama-3.3-70b-versatile: {}
`,
      { env: { GROQ_API_KEY: "gsk-legacy" }, dispatcher: agentTo(t, mock) },
    );
    // Groq's entry in the metadata table: 128,000 tokens of prompt and a separate 32,768-token output limit. Under
    // the name `my-groq` the lookup fell back to another host's entry (one shared 128,000 window), where a prompt
    // plus this max_tokens does not fit, and the request was refused without reaching Groq.
    const answer = await postChat(gateway, { model: "llama-3.3-70b-versatile", max_tokens: 127_995 });
    assert.equal(answer.status, 200, answer.text);
    assert.equal(mock.requests.filter((recorded) => recorded.method === "POST").length, 1);
  });
});

describe("`check` on a legacy config/meta-providers.yaml", () => {
  const LEGACY = `providers:
  - name: groq
    base_url: https://api.groq.com/openai/v1/
    api_key_env_var: GROQ_API_KEY
  - base_url: https://api.cloudflare.com/client/v4/accounts/abc123/ai/v1
    api_key: \${CF_TOKEN}
  - name: plain
    base_url: https://api.mistral.ai/v1
    api_key_env_var: MISTRAL_API_KEY
    preset: none
`;

  test("names each provider recognised by its URL, and the Cloudflare one needs no CLOUDFLARE_ACCOUNT_ID", async (t) => {
    const dir = tempDir(t);
    writeFiles(dir, { ".env": "GROQ_API_KEY=gsk-1\nCF_TOKEN=cf-1\nMISTRAL_API_KEY=m-1\n" });
    mkdirSync(join(dir, "config"));
    writeFiles(dir, { "config/meta-providers.yaml": LEGACY });

    const text = await runCli(["check"], { cwd: dir });
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^ {2}groq: recognised as the groq preset by its base_url$/m);
    assert.match(text.stdout, /^ {2}cloudflare: recognised as the cloudflare preset by its base_url$/m);
    assert.doesNotMatch(text.stdout, /plain: recognised/);
    assert.match(text.stdout, /`preset: none`/);

    const json = await runCli(["check", "--json"], { cwd: dir });
    assert.equal(json.code, 0, json.stderr);
    const report = JSON.parse(json.stdout) as {
      providers: { name: string; preset: unknown }[];
      skipped: unknown[];
    };
    assert.deepEqual(
      report.providers.map((provider) => [provider.name, provider.preset]),
      [
        ["groq", { preset: "groq", by: "base_url" }],
        ["cloudflare", { preset: "cloudflare", by: "base_url" }],
        ["plain", null],
      ],
    );
    assert.deepEqual(report.skipped, []);
  });
});

test("`check`: a `- preset:` entry whose `api_key` names an unset variable is skipped, saying the preset's variable is not used", async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, { ".env": "GROQ_API_KEY=gsk-1\n" });
  mkdirSync(join(dir, "config"));
  writeFiles(dir, {
    "config/meta-providers.yaml": `providers:
  - preset: groq
    api_key: \${MY_GROQ}
  - name: local
    base_url: http://127.0.0.1:9/v1
    api_key: sk-local
    models:
      m: {}
`,
  });
  const text = await runCli(["check"], { cwd: dir });
  assert.equal(text.code, 0, text.stderr);
  assert.match(
    text.stdout,
    /^groq +skipped +no API key: environment variable MY_GROQ is not set; GROQ_API_KEY is set but not used in its place \(api_key is written\): remove api_key to use it/m,
  );
  const json = await runCli(["check", "--json"], { cwd: dir });
  const report = JSON.parse(json.stdout) as { providers: { name: string }[]; skipped: { name: string }[] };
  assert.deepEqual(
    report.providers.map((provider) => provider.name),
    ["local"],
    "not enabled on GROQ_API_KEY's key",
  );
  assert.deepEqual(
    report.skipped.map((skipped) => skipped.name),
    ["groq"],
  );
});

test("`providers --json` says which preset each probed provider has, and how (as `check --json` does)", async (t) => {
  const mock = await useMock(t, { models: [{ id: "llama-3.3-70b-versatile" }] });
  const dir = tempDir(t);
  // Groq's URL as written (recognised); its probe goes to the mock through model_url, so nothing leaves the machine.
  const path = writeFiles(dir, {
    "gateway.yaml": `providers:
  - name: legacy-groq
    base_url: https://api.groq.com/openai/v1/
    model_url: ${mock.baseUrl}
    api_key_env_var: GROQ_API_KEY
  - name: named-groq
    preset: groq
    base_url: ${mock.baseUrl}
  - name: plain
    base_url: ${mock.baseUrl}
    api_key: sk-plain
    models:
      m: {}
state:
  path: ":memory:"
`,
  });
  const result = await runCli(["providers", "--config", path, "--json"], { cwd: dir, env: { GROQ_API_KEY: "gsk-1" } });
  assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
  const report = JSON.parse(result.stdout) as { providers: { provider: string; status: string; preset: unknown }[] };
  assert.deepEqual(
    report.providers.map((provider) => [provider.provider, provider.status, provider.preset]),
    [
      ["legacy-groq", "ok", { preset: "groq", by: "base_url" }],
      ["named-groq", "ok", { preset: "groq", by: "name" }],
      ["plain", "ok", null],
    ],
  );
  assert.equal(mock.requests.filter((recorded) => recorded.path === "/v1/models").length, 3, "each key was probed");
});

test("`serve` logs each provider recognised by its URL at start", async (t) => {
  const gateway = await startGatewayProcess(
    t,
    `providers:
  - base_url: https://generativelanguage.googleapis.com/v1beta/openai/
    api_key_env_var: GEMINI_API_KEY
    models:
      gemini-2.5-flash: {}
`,
    { dotEnv: "GEMINI_API_KEY=g-1\n" },
  );
  const line = gateway.logs.find((log) => log.msg.includes("recognised as"));
  assert.equal(line?.msg.split(" (")[0], "googleapis: recognised as the gemini preset by its base_url");
  assert.equal(line?.provider, "googleapis", "an unnamed entry keeps the name its URL gives it");
  assert.equal(line?.preset, "gemini");
});
