// Hot reload (docs/configuration.md "Reloading the config"): POST /admin/reload, a change of the config file and
// SIGHUP load and validate the config again; a valid one is swapped in atomically (in-flight streams finish on
// the old one, a removed provider gets no new request, learned state carries over), an invalid one is refused
// with every problem and the old config keeps serving.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, type TestContext, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { stringify } from "yaml";
import { estimateChatPrompt } from "../../src/limits/token-estimate.ts";
import { MAIN, REPO_ROOT } from "../helpers/cli-process.ts";
import { chatRequests, errorOf, postChat, send, useGateway, useMock } from "../helpers/e2e.ts";
import { startGatewayProcess } from "../helpers/gateway-process.ts";
import { chatCompletion, chatStream, type MockUpstream, rateLimited } from "../helpers/mock-upstream.ts";
import { postJson, readTimed, strictSseData } from "../helpers/sse-client.ts";

const CHAT_ROUTE = "POST /v1/chat/completions";
const ADMIN_KEY = "admin-secret";
const EXIT_WITH_PARENT = join(REPO_ROOT, "test", "helpers", "exit-with-parent.ts");

function provider(name: string, mock: MockUpstream, models: Record<string, unknown>): Record<string, unknown> {
  return { name, base_url: mock.baseUrl, api_key: `sk-${name}-secret`, retries: 0, timeout_ms: 5_000, models };
}

/** A mock provider whose chat answers say `name` (as the model `${name}-m`), closed when the test ends. */
async function answeringMock(t: TestContext, name: string): Promise<MockUpstream> {
  const mock = await useMock(t);
  mock.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion(name, `${name}-m`) });
  return mock;
}

/** A config with provider `name` alone, serving `m` as `${name}-m`. */
function onlyProviderYaml(name: string, mock: MockUpstream): string {
  return stringify({ providers: [provider(name, mock, { m: { id: `${name}-m` } })] });
}

function configYaml(providers: Record<string, unknown>[], extra: Record<string, unknown> = {}): string {
  return stringify({
    server: { port: 0, host: "127.0.0.1", admin_keys: [ADMIN_KEY] },
    providers,
    routing: { max_wait_for_better_ms: 0 },
    ...extra,
  });
}

interface HealthConfig {
  config: { loaded_at: string; hash: string; refused_reload: { at: string; problems: number } | null };
}

async function configInfo(gateway: Parameters<typeof send>[0]): Promise<HealthConfig["config"]> {
  const response = await send(gateway, "GET", "/health");
  return (response.json as HealthConfig).config;
}

function reload(gateway: Parameters<typeof send>[0]) {
  return send(gateway, "POST", "/admin/reload", { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
}

/** The test gateway's own `discovery:` and `state:` sections (private cache dir and state file). */
function tailOf(configPath: string): string {
  const text = readFileSync(configPath, "utf8");
  return text.slice(text.search(/^discovery:/m));
}

/** Rewrites the config file in place, keeping the test's own discovery cache and state path lines. */
function rewrite(configPath: string, yamlText: string, tail: string): void {
  writeFileSync(configPath, `${yamlText}\n${tail}`);
}

describe("hot reload", () => {
  test("a reload adds a provider and removes another without dropping an in-flight stream", async (t) => {
    const alpha = await useMock(t);
    const beta = await useMock(t);
    const gamma = await useMock(t);
    const gateway = await useGateway(
      t,
      configYaml([provider("alpha", alpha, { m: { id: "alpha-m" } }), provider("beta", beta, { n: { id: "beta-n" } })]),
    );
    const tail = tailOf(gateway.configPath);
    const before = await configInfo(gateway);
    assert.match(before.hash, /^[0-9a-f]{16}$/);
    assert.ok(!Number.isNaN(Date.parse(before.loaded_at)));

    const words = ["one", "two", "three", "four", "five", "six"];
    alpha.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(words, "alpha-m", { delayMs: 150 }) });
    beta.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("from beta", "beta-n") });
    gamma.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("from gamma", "gamma-m") });
    // Beta learns a cooldown before the reload; it must carry over (beta does not change).
    beta.enqueue(CHAT_ROUTE, rateLimited({ headers: { "retry-after": "30" } }));
    assert.equal((await postChat(gateway, { model: "n" })).status, 429);

    const stream = await postJson(`${gateway.baseUrl}/chat/completions`, {
      model: "m",
      stream: true,
      messages: [{ role: "user", content: "hi" }],
    });
    assert.equal(stream.statusCode, 200);
    const reading = readTimed(stream.body);
    await alpha.waitForRequests(1);

    rewrite(
      gateway.configPath,
      configYaml([provider("gamma", gamma, { m: { id: "gamma-m" } }), provider("beta", beta, { n: { id: "beta-n" } })]),
      tail,
    );
    const reloaded = await reload(gateway);
    assert.equal(reloaded.status, 200, reloaded.text);
    const after = await configInfo(gateway);
    assert.notEqual(after.hash, before.hash);
    assert.equal((reloaded.json as { config: { hash: string } }).config.hash, after.hash);

    // The next request for `m` goes to gamma at once; alpha gets nothing new.
    const served = await postChat(gateway, { model: "m" });
    assert.equal(served.status, 200, served.text);
    assert.equal(served.headers["x-gateway-provider"], "gamma");

    // The stream that started on alpha finishes on the old config, whole.
    const { text } = await reading;
    const data = strictSseData(text);
    assert.equal(data.at(-1), "[DONE]", text);
    const content = data
      .slice(0, -1)
      .map(
        (line) => (JSON.parse(line) as { choices: { delta: { content?: string } }[] }).choices[0]?.delta.content ?? "",
      )
      .join("");
    assert.equal(content, words.join(""));
    assert.equal(chatRequests(alpha).length, 1, "a removed provider gets no new request");

    // Beta's cooldown carried over: still cooling, no upstream call.
    const cooling = await postChat(gateway, { model: "n" });
    assert.equal(cooling.status, 429, cooling.text);
    assert.equal(chatRequests(beta).length, 1);
  });

  test("a request queued across a reload is served by the new config, not the removed provider", async (t) => {
    const alpha = await useMock(t);
    const gamma = await useMock(t);
    alpha.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("alpha", "alpha-m"), delayMs: 800 });
    gamma.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("gamma", "gamma-m") });
    const queueing = { routing: { max_wait_for_better_ms: 0, queue_timeout_ms: 5_000 } };
    const gateway = await useGateway(
      t,
      configYaml([provider("alpha", alpha, { m: { id: "alpha-m", limits: { concurrency: 1 } } })], queueing),
    );
    const tail = tailOf(gateway.configPath);
    const busy = postChat(gateway, { model: "m" });
    await alpha.waitForRequests(1);
    const queued = postChat(gateway, { model: "m" });
    const deadline = Date.now() + 3_000;
    while (((await send(gateway, "GET", "/stats")).json as { queued_requests: number }).queued_requests !== 1) {
      assert.ok(Date.now() < deadline, "the second request never queued");
      await sleep(10);
    }
    rewrite(gateway.configPath, configYaml([provider("gamma", gamma, { m: { id: "gamma-m" } })], queueing), tail);
    assert.equal((await reload(gateway)).status, 200);
    const served = await queued;
    assert.equal(served.status, 200, served.text);
    assert.equal(served.headers["x-gateway-provider"], "gamma");
    assert.equal((await busy).headers["x-gateway-provider"], "alpha", "the in-flight request finished on alpha");
    assert.equal(chatRequests(alpha).length, 1);
  });

  test("budgets carry over a reload that keeps the key; another key (another account) starts afresh", async (t) => {
    const alpha = await answeringMock(t, "alpha");
    const limited = (apiKey: string, timeoutMs = 5_000) =>
      configYaml([
        {
          ...provider("alpha", alpha, { m: { id: "alpha-m", limits: { rpm: 2 } } }),
          api_key: apiKey,
          timeout_ms: timeoutMs,
          limits: { rpd: 3 },
        },
      ]);
    const gateway = await useGateway(t, limited("sk-first-key"));
    const tail = tailOf(gateway.configPath);
    for (let index = 0; index < 2; index++) assert.equal((await postChat(gateway, { model: "m" })).status, 200);
    assert.equal((await postChat(gateway, { model: "m" })).status, 429, "the model's rpm is used up");
    // The same key, another setting: the minute's two requests still count (and the pool's day too).
    rewrite(gateway.configPath, limited("sk-first-key", 6_000), tail);
    assert.equal((await reload(gateway)).status, 200);
    assert.equal((await postChat(gateway, { model: "m" })).status, 429, "budgets carried over the reload");
    // Another key: the model's minute and the provider pool's day start afresh.
    rewrite(gateway.configPath, limited("sk-second-key"), tail);
    assert.equal((await reload(gateway)).status, 200);
    for (let index = 0; index < 2; index++) {
      const answer = await postChat(gateway, { model: "m" });
      assert.equal(answer.status, 200, answer.text);
    }
    assert.equal(alpha.requests.at(-1)?.headers.authorization, "Bearer sk-second-key");
    const third = await postChat(gateway, { model: "m" });
    assert.equal(third.status, 429, "the new key's minute is counted from its own requests");
  });

  test("a key in a credential header (Azure's api-key) rotated by a reload is another account: its invalid-key park goes", async (t) => {
    const alpha = await useMock(t);
    const withHeaderKey = (key: string, timeoutMs = 5_000) =>
      configYaml([
        {
          ...provider("alpha", alpha, { m: { id: "alpha-m" } }),
          headers: { "api-key": key, "x-title": "gateway" },
          timeout_ms: timeoutMs,
        },
      ]);
    const gateway = await useGateway(t, withHeaderKey("azure-old-key"));
    const tail = tailOf(gateway.configPath);
    alpha.enqueue(CHAT_ROUTE, {
      kind: "json",
      status: 401,
      body: { error: { message: "Access denied due to invalid subscription key.", code: "401" } },
    });
    assert.notEqual((await postChat(gateway, { model: "m" })).status, 200);
    assert.equal(alpha.requests.length, 1);
    assert.notEqual((await postChat(gateway, { model: "m" })).status, 200, "parked: the bad key is not asked again");
    assert.equal(alpha.requests.length, 1);
    // Another setting, the same header key: still parked.
    rewrite(gateway.configPath, withHeaderKey("azure-old-key", 6_000), tail);
    assert.equal((await reload(gateway)).status, 200);
    assert.notEqual((await postChat(gateway, { model: "m" })).status, 200, "the park carried over the reload");
    assert.equal(alpha.requests.length, 1);
    // The header key rotated: another account, asked at once.
    rewrite(gateway.configPath, withHeaderKey("azure-new-key"), tail);
    assert.equal((await reload(gateway)).status, 200);
    alpha.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("alpha", "alpha-m") });
    const answer = await postChat(gateway, { model: "m" });
    assert.equal(answer.status, 200, answer.text);
    assert.equal(alpha.requests.at(-1)?.headers["api-key"], "azure-new-key");
  });

  test("a prompt calibration carries over a reload that keeps the upstream model; another model starts afresh", async (t) => {
    const alpha = await useMock(t);
    // alpha's tokenizer counts half of the gateway's estimate: the answers teach a factor of about 0.6.
    alpha.setDefault(CHAT_ROUTE, (request) => {
      const body = request.body as { messages: unknown[] };
      const promptTokens = Math.round(estimateChatPrompt(body.messages, undefined).promptTokens / 2);
      return {
        kind: "json",
        body: chatCompletion("alpha", "alpha-m", { prompt_tokens: promptTokens, completion_tokens: 1 }),
      };
    });
    const withModel = (id: string, timeoutMs = 5_000) =>
      configYaml([{ ...provider("alpha", alpha, { m: { id } }), timeout_ms: timeoutMs }]);
    const gateway = await useGateway(t, withModel("alpha-m"));
    const tail = tailOf(gateway.configPath);
    const factor = async (): Promise<number> => {
      const stats = (await send(gateway, "GET", "/stats")).json as {
        deployments: { provider: string; model: string; prompt_token_factor: number }[];
      };
      const row = stats.deployments.find((deployment) => deployment.provider === "alpha" && deployment.model === "m");
      return row?.prompt_token_factor ?? Number.NaN;
    };
    const long = [{ role: "user", content: "words of text ".repeat(1_000) }];
    for (let index = 0; index < 2; index++)
      assert.equal((await postChat(gateway, { model: "m", messages: long })).status, 200);
    const learned = await factor();
    assert.ok(Math.abs(learned - 0.6) < 0.01, `factor ${learned}`);
    // Another setting, the same upstream model: what it taught holds.
    rewrite(gateway.configPath, withModel("alpha-m", 6_000), tail);
    assert.equal((await reload(gateway)).status, 200);
    assert.equal(await factor(), learned);
    // `m` now names another upstream model (another tokenizer): its estimates are no longer scaled by alpha-m's.
    rewrite(gateway.configPath, withModel("alpha-bigger"), tail);
    assert.equal((await reload(gateway)).status, 200);
    assert.equal(await factor(), 1);
  });

  test("llm_gateway_config_reloads_total counts every applied reload, read or not in between", async (t) => {
    const alpha = await useMock(t);
    const gateway = await useGateway(t, configYaml([provider("alpha", alpha, { m: { id: "alpha-m" } })]));
    const reloads = async (): Promise<number> => {
      const text = (await send(gateway, "GET", "/metrics")).text;
      return Number(/^llm_gateway_config_reloads_total (\d+)$/m.exec(text)?.[1]);
    };
    assert.equal(await reloads(), 0);
    for (let index = 0; index < 3; index++) assert.equal((await reload(gateway)).status, 200);
    assert.equal(await reloads(), 3);
  });

  test("/health's config.hash changes when a reload applies a changed adjustments file alone", async (t) => {
    const alpha = await useMock(t);
    const gateway = await useGateway(t, configYaml([provider("alpha", alpha, { m: { id: "alpha-m" } })]));
    const adjustmentsPath = join(dirname(gateway.configPath), "model-adjustments.yaml");
    const hashAfterReload = async (): Promise<string> => {
      const response = await reload(gateway);
      assert.equal(response.status, 200, response.text);
      return (await configInfo(gateway)).hash;
    };
    const before = await hashAfterReload();
    writeFileSync(adjustmentsPath, 'adjustments:\n  distrusted:\n    priority: -5\n    regex: ["^alpha-"]\n');
    const withFile = await hashAfterReload();
    assert.notEqual(withFile, before, "a new adjustments file changes the hash");
    writeFileSync(adjustmentsPath, 'adjustments:\n  distrusted:\n    priority: -3\n    regex: ["^alpha-"]\n');
    const edited = await hashAfterReload();
    assert.notEqual(edited, withFile, "an edited priority changes the hash");
    assert.equal(await hashAfterReload(), edited, "nothing changed: the same hash");
  });

  test("an invalid config is refused with every problem and the old one keeps serving", async (t) => {
    const alpha = await useMock(t);
    alpha.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("ok", "alpha-m") });
    const valid = configYaml([provider("alpha", alpha, { m: { id: "alpha-m" } })]);
    const gateway = await useGateway(t, valid);
    const tail = tailOf(gateway.configPath);
    const before = await configInfo(gateway);
    writeFileSync(
      gateway.configPath,
      `server:\n  port: 0\n  host: 127.0.0.1\n  admin_keys: [${ADMIN_KEY}]\nroutng:\n  max_attempts: 2\nproviders:\n  - name: alpha\n    base_url: ${alpha.baseUrl}\n    timeout_ms: -5\n`,
    );
    const refused = await reload(gateway);
    assert.equal(refused.status, 400, refused.text);
    const error = errorOf(refused) as ReturnType<typeof errorOf> & { problems?: string[] };
    assert.equal(error.code, "config_invalid");
    assert.ok((error.problems?.length ?? 0) >= 2, `every problem listed: ${JSON.stringify(error.problems)}`);
    assert.ok(
      error.problems?.some((problem) => /meta-providers\.yaml:\d+/.test(problem) && /routng/.test(problem)),
      JSON.stringify(error.problems),
    );
    assert.equal(before.refused_reload, null);
    const after = await configInfo(gateway);
    assert.deepEqual(
      { loaded_at: after.loaded_at, hash: after.hash },
      { loaded_at: before.loaded_at, hash: before.hash },
      "the old config is still the one serving",
    );
    // /health says a reload was refused (counted: the problems name files and paths, for the log and the admin).
    assert.equal(after.refused_reload?.problems, error.problems?.length);
    assert.ok(Number.isFinite(Date.parse(after.refused_reload?.at ?? "")), JSON.stringify(after));
    assert.doesNotMatch(JSON.stringify(after), /routng/);
    const served = await postChat(gateway, { model: "m" });
    assert.equal(served.status, 200, served.text);
    // Mended and applied: nothing refused since.
    rewrite(gateway.configPath, valid, tail);
    assert.equal((await reload(gateway)).status, 200);
    assert.equal((await configInfo(gateway)).refused_reload, null);

    const denied = await send(gateway, "POST", "/admin/reload");
    assert.equal(denied.status, 403, "admin-key protected");
  });

  test("a change of the config file reloads it (debounced)", async (t) => {
    const alpha = await answeringMock(t, "alpha");
    const beta = await answeringMock(t, "beta");
    const gateway = await useGateway(t, configYaml([provider("alpha", alpha, { m: { id: "alpha-m" } })]), {
      watchFiles: true,
      watchDebounceMs: 100,
    });
    const tail = tailOf(gateway.configPath);
    const before = await configInfo(gateway);
    rewrite(gateway.configPath, configYaml([provider("beta", beta, { m: { id: "beta-m" } })]), tail);
    const deadline = Date.now() + 5_000;
    while ((await configInfo(gateway)).hash === before.hash) {
      assert.ok(Date.now() < deadline, "the file change was not picked up");
      await sleep(50);
    }
    const served = await postChat(gateway, { model: "m" });
    assert.equal(served.headers["x-gateway-provider"], "beta", served.text);
  });

  test("SIGHUP reloads the config of a running process and does not stop it", async (t) => {
    if (process.platform === "win32") return;
    const alpha = await answeringMock(t, "alpha");
    const beta = await answeringMock(t, "beta");
    const gateway = await startGatewayProcess(t, onlyProviderYaml("alpha", alpha));
    const health = async (): Promise<HealthConfig["config"]> => {
      const response = await fetch(`${gateway.url}/health`);
      return ((await response.json()) as HealthConfig).config;
    };
    const before = await health();
    const text = readFileSync(gateway.configPath, "utf8").replace(
      /^providers:[\s\S]*?(?=^discovery:)/m,
      onlyProviderYaml("beta", beta),
    );
    writeFileSync(gateway.configPath, text);
    assert.ok(gateway.pid !== undefined);
    process.kill(gateway.pid, "SIGHUP");
    const deadline = Date.now() + 5_000;
    while ((await health()).hash === before.hash) {
      assert.ok(Date.now() < deadline, "SIGHUP did not reload the config");
      await sleep(50);
    }
    process.kill(gateway.pid, "SIGHUP");
    await sleep(200);
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }] }),
    });
    assert.equal(response.status, 200, await response.clone().text());
    assert.equal(response.headers.get("x-gateway-provider"), "beta");
    assert.ok(
      gateway.logs.some((line) => line.msg === "config reloaded"),
      "the reload is logged",
    );
  });
});

describe("a config file reached through a symlink is watched", () => {
  /** Served by `name`'s provider? A process started on alpha; the test points its config at beta. */
  async function servedBy(url: string): Promise<string | null> {
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }] }),
    });
    await response.arrayBuffer();
    return response.headers.get("x-gateway-provider");
  }

  async function waitServedBy(url: string, name: string): Promise<void> {
    const deadline = Date.now() + 5_000;
    while ((await servedBy(url)) !== name) {
      assert.ok(Date.now() < deadline, `the change was not picked up: still not served by ${name}`);
      await sleep(100);
    }
  }

  async function mocks(t: Parameters<typeof startGatewayProcess>[0]) {
    const alpha = await answeringMock(t, "alpha");
    const beta = await answeringMock(t, "beta");
    return { alpha, beta, yaml: onlyProviderYaml };
  }

  test("a Kubernetes ConfigMap update (the ..data symlink swapped to a new folder) reloads", async (t) => {
    if (process.platform === "win32") return;
    const { alpha, beta, yaml } = await mocks(t);
    // A ConfigMap volume: conf/config.yaml -> ..data/config.yaml, ..data -> ..v1 (a timestamped folder).
    const gateway = await startGatewayProcess(t, yaml("alpha", alpha), {
      configFile: "conf/..v1/config.yaml",
      beforeStart: (dir) => {
        symlinkSync("..v1", join(dir, "conf", "..data"));
        symlinkSync("..data/config.yaml", join(dir, "conf", "config.yaml"));
        return join(dir, "conf", "config.yaml");
      },
    });
    assert.equal(await servedBy(gateway.url), "alpha");
    const conf = dirname(dirname(gateway.configPath));
    const text = readFileSync(gateway.configPath, "utf8").replace(
      /^providers:[\s\S]*?(?=^discovery:)/m,
      yaml("beta", beta),
    );
    // What the kubelet does: write the new folder, point ..data_tmp at it, rename it over ..data, drop the old one.
    mkdirSync(join(conf, "..v2"));
    writeFileSync(join(conf, "..v2", "config.yaml"), text);
    symlinkSync("..v2", join(conf, "..data_tmp"));
    renameSync(join(conf, "..data_tmp"), join(conf, "..data"));
    rmSync(join(conf, "..v1"), { recursive: true });
    await waitServedBy(gateway.url, "beta");
    assert.ok(
      gateway.logs.some((line) => line.msg === "config reloaded" && line.trigger === "file changed: config.yaml"),
    );
    assert.ok(
      !gateway.logs.some((line) => /config watch failed/.test(line.msg)),
      "the old folder's removal is no failure",
    );

    // And the next update too: the watch follows the new target.
    const third = text.replace(/beta/g, "alpha").replace(beta.baseUrl, alpha.baseUrl);
    mkdirSync(join(conf, "..v3"));
    writeFileSync(join(conf, "..v3", "config.yaml"), third);
    symlinkSync("..v3", join(conf, "..data_tmp"));
    renameSync(join(conf, "..data_tmp"), join(conf, "..data"));
    rmSync(join(conf, "..v2"), { recursive: true });
    await waitServedBy(gateway.url, "alpha");
  });

  test("a config symlinked to a file in another folder, edited there in place, reloads", async (t) => {
    if (process.platform === "win32") return;
    const { alpha, beta, yaml } = await mocks(t);
    const gateway = await startGatewayProcess(t, yaml("alpha", alpha), {
      configFile: "elsewhere/gateway.yaml",
      beforeStart: (dir) => {
        mkdirSync(join(dir, "conf"));
        symlinkSync(join(dir, "elsewhere", "gateway.yaml"), join(dir, "conf", "config.yaml"));
        return join(dir, "conf", "config.yaml");
      },
    });
    assert.equal(await servedBy(gateway.url), "alpha");
    const text = readFileSync(gateway.configPath, "utf8").replace(
      /^providers:[\s\S]*?(?=^discovery:)/m,
      yaml("beta", beta),
    );
    writeFileSync(gateway.configPath, text);
    await waitServedBy(gateway.url, "beta");
  });
});

test("SIGHUP while the gateway starts (models still being discovered) does not end it; the reload follows the start", async (t) => {
  if (process.platform === "win32") return;
  const alpha = await useMock(t);
  alpha.models = [{ id: "alpha-m" }];
  // Discovery answers after 1.5 s: the start is under way, and the signal lands in it.
  alpha.enqueue("GET /v1/models", {
    kind: "json",
    body: { object: "list", data: [{ id: "alpha-m" }] },
    delayMs: 1_500,
  });
  alpha.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("alpha", "alpha-m") });
  const dir = mkdtempSync(join(tmpdir(), "llm-gateway-sighup-start-"));
  const configPath = join(dir, "gateway.yaml");
  writeFileSync(
    configPath,
    stringify({
      server: { port: 0, host: "127.0.0.1", log_level: "info" },
      providers: [{ name: "alpha", base_url: alpha.baseUrl, api_key: "sk-alpha-secret" }],
      discovery: { cache_dir: join(dir, "cache") },
      state: { path: ":memory:" },
    }),
  );
  const child = spawn(process.execPath, ["--import", EXIT_WITH_PARENT, MAIN, "serve", "--config", configPath], {
    cwd: dir,
    stdio: ["pipe", "pipe", "pipe"],
    env: { PATH: process.env.PATH ?? "", NODE_NO_WARNINGS: "1" },
  });
  const exited = once(child, "exit");
  t.after(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGKILL");
    await exited;
  });
  let stdout = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  await alpha.waitForRequests(1, 15_000); // GET /v1/models: the gateway is starting, not yet listening
  assert.doesNotMatch(stdout, /listening on/);
  child.kill("SIGHUP");
  const deadline = Date.now() + 15_000;
  while (!/"trigger":"SIGHUP \(during start-up\)"[^\n]*"msg":"config reloaded"/.test(stdout)) {
    assert.ok(child.exitCode === null && child.signalCode === null, `the gateway ended: ${child.signalCode}`);
    assert.ok(Date.now() < deadline, `no reload after the start:\n${stdout}`);
    await sleep(50);
  }
  assert.match(stdout, /listening on/);
});

/** `${NAME}` in a config value: the loader puts the variable's value there. */
function variable(name: string): string {
  return `\${${name}}`;
}

describe("a reload that would leave the gateway unusable or open is refused", () => {
  test("no provider left (.env emptied) and client keys gone: refused, the old config keeps serving", async (t) => {
    if (process.platform === "win32") return;
    const alpha = await answeringMock(t, "alpha");
    const gateway = await startGatewayProcess(
      t,
      stringify({
        server: { port: 0, host: "127.0.0.1", log_level: "info", api_keys: [variable("GW_CLIENT_KEY")] },
        providers: [{ ...provider("alpha", alpha, { m: { id: "alpha-m" } }), api_key: variable("ALPHA_KEY") }],
      }),
      { dotEnv: "ALPHA_KEY=sk-alpha-secret\nGW_CLIENT_KEY=client-key\n" },
    );
    const envPath = join(dirname(gateway.configPath), ".env");
    const chat = (key?: string) =>
      fetch(`${gateway.url}/v1/chat/completions`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...(key === undefined ? {} : { authorization: `Bearer ${key}` }),
        },
        body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }] }),
      });
    const refusals = () => gateway.logs.filter((line) => String(line.msg).startsWith("config reload refused"));
    const sighupUntilRefused = async (count: number): Promise<string> => {
      assert.ok(gateway.pid !== undefined);
      process.kill(gateway.pid, "SIGHUP");
      const deadline = Date.now() + 5_000;
      while (refusals().length < count) {
        assert.ok(Date.now() < deadline, "the reload was not refused");
        await sleep(50);
      }
      return String(refusals()[count - 1]?.msg);
    };
    assert.equal((await chat("client-key")).status, 200);
    assert.equal((await chat()).status, 401);

    // The client key's variable is gone: authentication would be off (a config error at any load).
    writeFileSync(envPath, "ALPHA_KEY=sk-alpha-secret\n");
    assert.match(await sighupUntilRefused(1), /client authentication would be off/);
    assert.equal((await chat()).status, 401, "still closed to requests without a key");
    assert.equal((await chat("client-key")).status, 200);

    // Every provider key is gone: every request would be a 404.
    writeFileSync(envPath, "GW_CLIENT_KEY=client-key\n");
    assert.match(await sighupUntilRefused(2), /no provider would be left/);
    assert.equal((await chat("client-key")).status, 200, "the old config keeps serving");
  });

  test("the file emptied by an editor mid-save: refused as empty, then the finished save is applied", async (t) => {
    if (process.platform === "win32") return;
    const alpha = await answeringMock(t, "alpha");
    const beta = await answeringMock(t, "beta");
    const gateway = await startGatewayProcess(t, onlyProviderYaml("alpha", alpha));
    const full = readFileSync(gateway.configPath, "utf8");
    const logged = async (message: RegExp): Promise<string> => {
      const deadline = Date.now() + 5_000;
      for (;;) {
        const found = gateway.logs.find((line) => message.test(String(line.msg)));
        if (found !== undefined) return String(found.msg);
        assert.ok(Date.now() < deadline, `no log line matching ${message}`);
        await sleep(50);
      }
    };
    writeFileSync(gateway.configPath, "");
    assert.ok(gateway.pid !== undefined);
    process.kill(gateway.pid, "SIGHUP");
    assert.match(await logged(/^config reload refused/), /config\.yaml is empty \(a save under way\?\)/);
    writeFileSync(
      gateway.configPath,
      full.replace(/^providers:[\s\S]*?(?=^discovery:)/m, onlyProviderYaml("beta", beta)),
    );
    process.kill(gateway.pid, "SIGHUP");
    await logged(/^config reloaded/);
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }] }),
    });
    assert.equal(response.headers.get("x-gateway-provider"), "beta");
  });

  test("one provider's key gone from .env: applied without it, and the log says why it went", async (t) => {
    if (process.platform === "win32") return;
    const alpha = await answeringMock(t, "alpha");
    const beta = await answeringMock(t, "beta");
    const gateway = await startGatewayProcess(
      t,
      stringify({
        providers: [
          { ...provider("alpha", alpha, { m: { id: "alpha-m" } }), api_key: variable("ALPHA_KEY") },
          { ...provider("beta", beta, { m: { id: "beta-m" } }), api_key: variable("BETA_KEY") },
        ],
      }),
      { dotEnv: "ALPHA_KEY=sk-alpha-secret\nBETA_KEY=sk-beta-secret\n" },
    );
    writeFileSync(join(dirname(gateway.configPath), ".env"), "ALPHA_KEY=sk-alpha-secret\n");
    assert.ok(gateway.pid !== undefined);
    process.kill(gateway.pid, "SIGHUP");
    const deadline = Date.now() + 5_000;
    while (!gateway.logs.some((line) => line.msg === "config reloaded")) {
      assert.ok(Date.now() < deadline, "the reload was not applied");
      await sleep(50);
    }
    const reloaded = gateway.logs.find((line) => line.msg === "config reloaded");
    assert.deepEqual(reloaded?.providers, ["alpha"]);
    const why = gateway.logs.filter((line) =>
      /^config reload: provider "beta" \(\S+:\d+\) skipped/.test(String(line.msg)),
    );
    assert.equal(why.length, 1, "the reload says why beta is gone");
    assert.match(String(why[0]?.msg), /environment variable BETA_KEY is not set/);
    assert.ok(!JSON.stringify(gateway.logs).includes("sk-alpha-secret"), "no key in the log");
  });
});

describe("a reload reads the config file chosen at start", () => {
  const CLIENT_KEY = "client-key";
  /** A config found without --config (default path or LLM_GATEWAY_CONFIG), with client keys, and a preset key in .env. */
  async function startFound(
    t: Parameters<typeof startGatewayProcess>[0],
    placement: { configFile: string; dotEnvExtra: string },
  ) {
    const alpha = await answeringMock(t, "alpha");
    // A preset key too: without the file, the no-config mode would have a provider to enable.
    const dotEnv = `GROQ_API_KEY=gsk-test\nLLM_GATEWAY_PRESET_GROQ_BASE_URL=${alpha.baseUrl}\n${placement.dotEnvExtra}`;
    const gateway = await startGatewayProcess(
      t,
      stringify({
        server: { port: 0, host: "127.0.0.1", log_level: "info", api_keys: [CLIENT_KEY] },
        providers: [provider("alpha", alpha, { m: { id: "alpha-m" } })],
      }),
      { dotEnv, configFile: placement.configFile, isConfigFlagged: false },
    );
    const chat = (key?: string) =>
      fetch(`${gateway.url}/v1/chat/completions`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...(key === undefined ? {} : { authorization: `Bearer ${key}` }),
        },
        body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }] }),
      });
    const sighupUntil = async (message: RegExp): Promise<string> => {
      const seen = gateway.logs.length;
      assert.ok(gateway.pid !== undefined);
      process.kill(gateway.pid, "SIGHUP");
      const deadline = Date.now() + 5_000;
      for (;;) {
        const found = gateway.logs.slice(seen).find((line) => message.test(String(line.msg)));
        if (found !== undefined) return String(found.msg);
        assert.ok(Date.now() < deadline, `no log line matching ${message}`);
        await sleep(50);
      }
    };
    assert.equal((await chat()).status, 401);
    assert.equal((await chat(CLIENT_KEY)).status, 200);
    return { gateway, chat, sighupUntil, envPath: join(dirname(gateway.configPath), ".env"), dotEnv };
  }

  test("started without a config file: one created at the default path is noticed and said to wait for a restart", async (t) => {
    if (process.platform === "win32") return;
    const alpha = await answeringMock(t, "alpha");
    // The config the helper writes is not where the gateway looks: it starts in the no-config mode (presets).
    const gateway = await startGatewayProcess(t, stringify({ providers: [] }), {
      dotEnv: `GROQ_API_KEY=gsk-test\nLLM_GATEWAY_PRESET_GROQ_BASE_URL=${alpha.baseUrl}\n`,
      configFile: "elsewhere/unused.yaml",
      isConfigFlagged: false,
    });
    assert.ok(
      gateway.logs.some((line) => /^no config file/.test(line.msg)),
      "started in the no-config mode",
    );
    const dir = dirname(dirname(gateway.configPath));
    mkdirSync(join(dir, "config"));
    await sleep(600); // the folder's creation is a reload of its own; then the file in it is watched
    writeFileSync(
      join(dir, "config", "meta-providers.yaml"),
      stringify({ providers: [provider("alpha", alpha, { m: { id: "alpha-m" } })] }),
    );
    const deadline = Date.now() + 5_000;
    while (
      !gateway.logs.some((line) => /config file would now be .*meta-providers\.yaml.*next restart/.test(line.msg))
    ) {
      assert.ok(Date.now() < deadline, "creating the default config file went unnoticed");
      await sleep(50);
    }
    assert.ok(!gateway.logs.some((line) => /watch/.test(line.msg)), "no watch failure for the missing folder");
  });

  test("the default file moved away: refused as file not found, client keys still required", async (t) => {
    if (process.platform === "win32") return;
    const { gateway, chat, sighupUntil } = await startFound(t, {
      configFile: "config/meta-providers.yaml",
      dotEnvExtra: "",
    });
    renameSync(gateway.configPath, `${gateway.configPath}.moved`);
    const refusal = await sighupUntil(/^config reload refused|^config reloaded/);
    assert.match(refusal, /^config reload refused/);
    assert.match(refusal, /meta-providers\.yaml: file not found/);
    assert.equal((await chat()).status, 401, "authentication stays on");
    assert.equal((await chat(CLIENT_KEY)).status, 200, "the old config keeps serving");
  });

  test("LLM_GATEWAY_CONFIG gone from .env: the same file is read again, client keys still required", async (t) => {
    if (process.platform === "win32") return;
    const { chat, sighupUntil, envPath, dotEnv } = await startFound(t, {
      configFile: "gateway.yaml",
      dotEnvExtra: "LLM_GATEWAY_CONFIG=gateway.yaml\n",
    });
    writeFileSync(envPath, dotEnv.replace("LLM_GATEWAY_CONFIG=gateway.yaml\n", ""));
    assert.equal(await sighupUntil(/^config reload refused|^config reloaded/), "config reloaded");
    assert.equal((await chat()).status, 401, "authentication stays on");
    assert.equal((await chat(CLIENT_KEY)).status, 200);
  });
});

test("a reload that changes a setting read only at start applies the rest and says which settings wait for a restart", async (t) => {
  if (process.platform === "win32") return;
  const alpha = await answeringMock(t, "alpha");
  const beta = await answeringMock(t, "beta");
  const yaml = (name: string, mock: MockUpstream, extra: Record<string, unknown> = {}) =>
    stringify({ providers: [provider(name, mock, { m: { id: `${name}-m` } })], ...extra });
  const gateway = await startGatewayProcess(t, yaml("alpha", alpha));
  const text = readFileSync(gateway.configPath, "utf8").replace(
    /^providers:[\s\S]*?(?=^discovery:)/m,
    yaml("beta", beta, {
      metrics: { enabled: false },
      log: { content: true },
      traces: { otlp_endpoint: "http://127.0.0.1:4318" },
      responses: { store: { max_entries: 5 } },
    }),
  );
  writeFileSync(gateway.configPath, text);
  assert.ok(gateway.pid !== undefined);
  process.kill(gateway.pid, "SIGHUP");
  const deadline = Date.now() + 5_000;
  const warning = () => gateway.logs.find((line) => String(line.msg).includes("applies at the next restart"));
  while (warning() === undefined) {
    assert.ok(Date.now() < deadline, "no warning about the settings that wait for a restart");
    await sleep(50);
  }
  assert.deepEqual(warning()?.settings, ["log.content", "metrics", "traces", "responses.store"]);
  // The rest applied: beta serves.
  const response = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }] }),
  });
  assert.equal(response.headers.get("x-gateway-provider"), "beta");
});
