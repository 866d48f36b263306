// The CLI as a process, the way users run it: `check`, `providers`, `models`, `route MODEL --explain`, their
// `--json` forms, exit codes (0 ok, 1 something does not work, 2 config or usage error), and colour only on a
// terminal without NO_COLOR. Each run gets a temp working directory and an environment without keys.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { describe, type TestContext, test } from "node:test";
import type { RouteExplanation } from "../../src/router/explain-route.ts";
import { waitFor } from "../helpers/background-steps.ts";
import { ANSI_ESCAPE, type CliResult, hasPseudoTerminal, runCli, tempDir, writeFiles } from "../helpers/cli-process.ts";
import { send, useGateway, useMock } from "../helpers/e2e.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { startGatewayProcess } from "../helpers/gateway-process.ts";
import { writeTruncatedStateFile } from "../helpers/truncated-state-file.ts";

const STRONG = "llama-3.3-70b-versatile";
const WEAK = "llama-3.1-8b-instant";
const COMMANDS = ["serve", "demo", "check", "providers", "models", "route"];

/** Two providers with listed models (no discovery), state in memory: nothing touches the network or the disk. */
function twoProviderYaml(strongUrl = "http://127.0.0.1:9/v1", weakUrl = "http://127.0.0.1:9/v1"): string {
  return `providers:
  - name: strong
    base_url: ${strongUrl}
    api_key: sk-strong
    models:
      ${STRONG}: {}
  - name: weak
    base_url: ${weakUrl}
    api_key: sk-weak
    models:
      ${WEAK}: { context: 8000 }
  - name: gamma
    base_url: http://127.0.0.1:9/v1
    api_key_env_var: GAMMA_API_KEY
    models:
      gamma-model: {}
meta_models:
  best: [${STRONG}, ${WEAK}]
state:
  path: ":memory:"
`;
}

function configIn(t: TestContext, yaml: string): { dir: string; path: string } {
  const dir = tempDir(t);
  return { dir, path: writeFiles(dir, { "gateway.yaml": yaml }) };
}

function parseJson<T>(result: CliResult): T {
  try {
    return JSON.parse(result.stdout) as T;
  } catch {
    assert.fail(`stdout is not JSON:\n${result.stdout}\nstderr:\n${result.stderr}`);
  }
}

function assertNoAnsi(result: CliResult, what: string): void {
  assert.doesNotMatch(result.stdout, ANSI_ESCAPE, `${what}: ANSI escape in stdout`);
  assert.doesNotMatch(result.stderr, ANSI_ESCAPE, `${what}: ANSI escape in stderr`);
}

function tableRow(output: string, first: string): string[] | undefined {
  return output
    .split("\n")
    .map((line) => line.trim().split(/\s{2,}/))
    .find((cells) => cells[0] === first);
}

/** The day's request count a state file holds for a budget scope; undefined before it is written. */
function dayRequestsInFile(statePath: string, scopeId: string): number | undefined {
  if (!existsSync(statePath)) return undefined;
  const reader = new DatabaseSync(statePath, { readOnly: true });
  try {
    // The file is new: until the gateway has switched it to WAL, its write would lock this read out.
    reader.exec("PRAGMA busy_timeout = 1000");
    const row = reader.prepare("SELECT state FROM budget_scopes WHERE scope_id = ?").get(scopeId);
    return row === undefined
      ? undefined
      : (JSON.parse(String(row.state)) as { day?: { requests?: number } }).day?.requests;
  } finally {
    reader.close();
  }
}

/** A loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  assert.ok(address !== null && typeof address === "object");
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return address.port;
}

describe("usage", () => {
  test("`--help` lists every command and exits 0", async (t) => {
    const result = await runCli(["--help"], { cwd: tempDir(t) });
    assert.equal(result.code, 0, result.stderr);
    for (const command of COMMANDS) assert.match(result.stdout, new RegExp(`^  ${command}\\b`, "m"), command);
    assert.match(result.stdout, /--json/);
    assert.match(result.stdout, /--explain/);
    assert.match(result.stdout, /NO_COLOR/);
  });

  test("an unknown command or option exits 2 with the usage on stderr", async (t) => {
    const dir = tempDir(t);
    const command = await runCli(["frobnicate"], { cwd: dir });
    assert.equal(command.code, 2);
    assert.match(command.stderr, /Unknown command "frobnicate"/);
    assert.match(command.stderr, /Usage: llm-gateway/);
    assert.equal(command.stdout, "");
    const option = await runCli(["check", "--frobnicate"], { cwd: dir });
    assert.equal(option.code, 2);
    assert.match(option.stderr, /Usage: llm-gateway/);
  });

  test("a misspelt command or option is named with the one it is close to; --port and --host say where those go", async (t) => {
    const dir = tempDir(t);
    const cases: [readonly string[], string][] = [
      [["modles"], 'Unknown command "modles"; did you mean "models"?'],
      [["route", "best", "--explian"], 'Unknown option "--explian"; did you mean "--explain"?'],
      [["check", "--jsno"], 'Unknown option "--jsno"; did you mean "--json"?'],
      [
        ["--port", "8080"],
        'Unknown option "--port": the port is set with PORT=12346 (environment or .env) or server.port in the config.',
      ],
      [
        ["--host=0.0.0.0"],
        'Unknown option "--host": the listen address is set with HOST=0.0.0.0 (environment or .env) or server.host in the config.',
      ],
      // Nothing close: no suggestion, and not node:util's advice about positionals after `--`.
      [["check", "--frobnicate"], 'Unknown option "--frobnicate".'],
    ];
    for (const [args, firstLine] of cases) {
      const result = await runCli(args, { cwd: dir });
      assert.equal(result.code, 2, args.join(" "));
      assert.equal(result.stderr.split("\n")[0], firstLine);
      assert.doesNotMatch(result.stderr, /positional argument/);
    }
  });
});

describe("words and options a command does not read", () => {
  test("are refused with exit 2, named, with the close command or option, and the command does not run", async (t) => {
    const { dir, path } = configIn(t, twoProviderYaml());
    const cases: [readonly string[], string][] = [
      [["check", "foo"], 'Unexpected "foo" after `check`: `check` takes no arguments.'],
      [["check", "json"], 'Unexpected "json" after `check`: `check` takes no arguments; did you mean "--json"?'],
      [
        ["models", "provders"],
        'Unexpected "provders" after `models`: `models` takes no arguments; did you mean "providers"?',
      ],
      [
        ["check", "models"],
        'Unexpected "models" after `check`: `check` takes no arguments; one command at a time: `llm-gateway models`.',
      ],
      [["route", "best", "extra"], 'Unexpected "extra" after `route MODEL`: `route MODEL` takes 1 argument.'],
      [["serve", "now"], 'Unexpected "now" after `serve`: `serve` takes no arguments.'],
      [
        ["check", "--explain"],
        'Option "--explain" is not one of `check`\'s (--config, --json); it goes with `route MODEL`.',
      ],
      [
        ["serve", "--json"],
        'Option "--json" is not one of `serve`\'s (--config); it goes with `check`, `providers`, `models`, `route MODEL`.',
      ],
      // serve is the default command: its options are the ones that count.
      [["--explain"], 'Option "--explain" is not one of `serve`\'s (--config); it goes with `route MODEL`.'],
    ];
    for (const [args, firstLine] of cases) {
      const result = await runCli([...args, "--config", path], { cwd: dir, env: { PORT: "0" } });
      assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
      assert.equal(result.stderr.split("\n")[0], firstLine);
      assert.match(result.stderr, /Usage: llm-gateway/);
      assert.equal(result.stdout, "", `${args.join(" ")} ran`);
    }
    // The demo reads no config: its stray word alone.
    const demo = await runCli(["demo", "x"], { cwd: dir, env: { PORT: "0" } });
    assert.equal(demo.code, 2);
    assert.equal(demo.stderr.split("\n")[0], 'Unexpected "x" after `demo`: `demo` takes no arguments.');
    assert.equal(demo.stdout, "");
  });

  test("a repeated `serve` (`npm start -- serve`, npm start running `serve` already) is the command itself", async (t) => {
    // No provider enabled: `serve` stops with its own message, so the message shows which command ran.
    const { dir, path } = configIn(
      t,
      `providers:\n  - name: alpha\n    base_url: http://127.0.0.1:9/v1\n    api_key: \${ALPHA_KEY}\n    models: { m: {} }\n`,
    );
    const [once, twice] = await Promise.all(
      [["serve"], ["serve", "serve"]].map((words) => runCli([...words, "--config", path], { cwd: dir })),
    );
    assert.equal(once?.code, 2, once?.stderr);
    assert.match(once?.stderr ?? "", /^No provider is enabled/);
    assert.equal(twice?.code, 2, twice?.stderr);
    assert.equal(twice?.stderr, once?.stderr);
    // Only the one repeat: any other word after it is still refused, a third `serve` too.
    const refused: [readonly string[], string][] = [
      [["serve", "serve", "now"], 'Unexpected "now" after `serve`: `serve` takes no arguments.'],
      [
        ["serve", "serve", "serve"],
        'Unexpected "serve" after `serve`: `serve` takes no arguments; one command at a time: `llm-gateway serve`.',
      ],
      [
        ["serve", "check"],
        'Unexpected "check" after `serve`: `serve` takes no arguments; one command at a time: `llm-gateway check`.',
      ],
    ];
    for (const [words, firstLine] of refused) {
      const result = await runCli([...words, "--config", path], { cwd: dir });
      assert.equal(result.code, 2, `${words.join(" ")}: ${result.stderr}`);
      assert.equal(result.stderr.split("\n")[0], firstLine);
    }
  });

  test("what each command does read is still accepted", async (t) => {
    const { dir, path } = configIn(t, twoProviderYaml());
    const route = await runCli(["route", "best", "--explain", "--json", "--config", path], { cwd: dir });
    assert.equal(route.code, 0, route.stderr);
    assert.equal(parseJson<RouteExplanation>(route).model, "best");
    const check = await runCli(["check", "--json", "--config", path], { cwd: dir });
    assert.equal(check.code, 0, check.stderr);
    const demo = await runCli(["demo", "--config", path], { cwd: dir, env: { PORT: "0" } });
    assert.equal(demo.code, 2);
    assert.match(demo.stderr, /^demo reads no config/);
  });
});

describe("check", () => {
  test("a good config: exit 0, enabled and skipped providers with the missing key variable", async (t) => {
    const { dir, path } = configIn(t, twoProviderYaml());
    const result = await runCli(["check", "--config", path], { cwd: dir });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`^Config OK: ${escapeRegExp(path)}$`, "m"));
    assert.deepEqual(tableRow(result.stdout, "strong")?.slice(0, 3), ["strong", "enabled", "http://127.0.0.1:9/v1"]);
    assert.deepEqual(tableRow(result.stdout, "weak")?.slice(0, 2), ["weak", "enabled"]);
    const gamma = tableRow(result.stdout, "gamma");
    assert.equal(gamma?.[1], "skipped");
    assert.match(gamma?.[2] ?? "", /GAMMA_API_KEY/);
    assert.match(result.stdout, /meta models: best/);
    assertNoAnsi(result, "check");

    // With the key set, the provider is enabled.
    const withKey = await runCli(["check", "--config", path], { cwd: dir, env: { GAMMA_API_KEY: "sk-gamma" } });
    assert.equal(withKey.code, 0, withKey.stderr);
    assert.equal(tableRow(withKey.stdout, "gamma")?.[1], "enabled");
  });

  test("a preset skipped for lack of a key names its entry's file and line, in `check` and in the start-up warning", async (t) => {
    const mock = await useMock(t);
    const yaml = `providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha
    models:
      m: {}
  - preset: cerebras
state:
  path: ":memory:"
`;
    const { dir, path } = configIn(t, yaml);
    const result = await runCli(["check", "--config", path], { cwd: dir });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(
      tableRow(result.stdout, "cerebras")?.[2],
      `no API key: environment variable CEREBRAS_API_KEY is not set (${path}:7)`,
    );
    const json = parseJson<{ skipped: { name: string; reason: string; location: string }[] }>(
      await runCli(["check", "--config", path, "--json"], { cwd: dir }),
    );
    assert.deepEqual(json.skipped, [
      {
        name: "cerebras",
        reason: "no API key: environment variable CEREBRAS_API_KEY is not set",
        location: `${path}:7`,
      },
    ]);

    const gateway = await startGatewayProcess(t, yaml);
    const warning = gateway.logs.find((line) => /skipped/.test(line.msg));
    // The helper writes a `server:` block above the entries: the line is found in the file it wrote.
    const line = readFileSync(gateway.configPath, "utf8").split("\n").indexOf("  - preset: cerebras") + 1;
    assert.equal(
      warning?.msg,
      `provider "cerebras" (${gateway.configPath}:${line}) skipped: no API key: environment variable CEREBRAS_API_KEY is not set`,
    );
    // /health lists it without the config's file (it names none).
    const health = (await (await fetch(`${gateway.url}/health`)).json()) as { providers: { skipped: unknown[] } };
    assert.deepEqual(health.providers.skipped, [
      { name: "cerebras", reason: "no API key: environment variable CEREBRAS_API_KEY is not set" },
    ]);
  });

  test("`check --json` parses and says the same", async (t) => {
    const { dir, path } = configIn(t, twoProviderYaml());
    const result = await runCli(["check", "--config", path, "--json"], { cwd: dir });
    assert.equal(result.code, 0, result.stderr);
    const report = parseJson<{
      ok: boolean;
      config: string;
      providers: { name: string; models: number | string }[];
      skipped: { name: string; reason: string }[];
      meta_models: string[];
      warnings: string[];
    }>(result);
    assert.equal(report.ok, true);
    assert.equal(report.config, path);
    assert.deepEqual(
      report.providers.map((provider) => [provider.name, provider.models]),
      [
        ["strong", 1],
        ["weak", 1],
      ],
    );
    assert.deepEqual(
      report.skipped.map((skipped) => skipped.name),
      ["gamma"],
    );
    assert.match(report.skipped[0]?.reason ?? "", /GAMMA_API_KEY/);
    assert.deepEqual(report.meta_models, ["best"]);
  });

  test("a broken config: exit 2, every problem as file:line key.path: message; `--json` lists them", async (t) => {
    const { dir, path } = configIn(
      t,
      `providers:
  - name: alpha
    base_url: http://127.0.0.1:9/v1
    api_key: sk-alpha
    timeout_ms: -5
    models:
      m: { priority: high }
routing:
  strategy: fastest
`,
    );
    const result = await runCli(["check", "--config", path], { cwd: dir });
    assert.equal(result.code, 2, result.stdout);
    assert.doesNotMatch(result.stderr, /\n\s+at /, "no stack trace");
    const lines = result.stderr.split("\n").filter((line) => line.startsWith(`${path}:`));
    const at = escapeRegExp(path);
    assert.ok(
      lines.some((line) => new RegExp(`^${at}:5 providers\\.0\\.timeout_ms: `).test(line)),
      lines.join("\n"),
    );
    assert.ok(lines.some((line) => new RegExp(`^${at}:7 providers\\.0\\.models\\.m\\.priority: `).test(line)));
    assert.ok(lines.some((line) => new RegExp(`^${at}:9 routing\\.strategy: `).test(line)));
    assertNoAnsi(result, "check (broken)");

    const json = await runCli(["check", "--config", path, "--json"], { cwd: dir });
    assert.equal(json.code, 2);
    const report = parseJson<{ ok: boolean; problems: { location: string; path: string; message: string }[] }>(json);
    assert.equal(report.ok, false);
    assert.deepEqual(report.problems.map((problem) => [problem.location, problem.path]).sort(), [
      [`${path}:5`, "providers.0.timeout_ms"],
      [`${path}:7`, "providers.0.models.m.priority"],
      [`${path}:9`, "routing.strategy"],
    ]);
  });

  test("problems of the config and of its scoring adjustments file are listed in one run", async (t) => {
    const dir = tempDir(t);
    const path = writeFiles(dir, {
      "gateway.yaml": `providers:
  - name: alpha
    base_url: http://127.0.0.1:9/v1
    api_key: sk-alpha
    models:
      m: { priority: high }
scoring:
  adjustments_file: adjust.yaml
`,
      "adjust.yaml": "models:\n  m: lots\n",
    });
    const result = await runCli(["check", "--config", path, "--json"], { cwd: dir });
    assert.equal(result.code, 2, result.stderr);
    const report = parseJson<{ problems: { location: string; path: string }[] }>(result);
    assert.deepEqual(
      report.problems.map((problem) => problem.location),
      [`${path}:6`, `${join(dir, "adjust.yaml")}:1`],
      "before, the adjustments file's problem showed only once the config's was fixed",
    );
  });

  test("no provider enabled: exit 2 with `serve`'s own message, as `serve` exits; `--json` says ok: false", async (t) => {
    const { dir, path } = configIn(
      t,
      `providers:
  - name: alpha
    base_url: http://127.0.0.1:9/v1
    api_key: \${ALPHA_KEY}
    models: { m: {} }
  - name: beta
    base_url: http://127.0.0.1:9/v1
    api_key_env_var: BETA_KEY
    models: { m: {} }
`,
    );
    const checked = await runCli(["check", "--config", path], { cwd: dir });
    const served = await runCli(["--config", path], { cwd: dir });
    assert.equal(served.code, 2, served.stderr);
    assert.equal(checked.code, 2, checked.stdout);
    assert.doesNotMatch(checked.stdout, /Config OK/);
    assert.match(
      served.stderr,
      /^No provider is enabled in .*\n(.*\n)* {2}alpha \(.*gateway\.yaml:2\): ALPHA_KEY\n {2}beta \(.*gateway\.yaml:6\): BETA_KEY\n/,
    );
    // The same block, except that `check` does not send the user to run `check` (it is running).
    assert.equal(
      checked.stderr,
      `Config error: ${served.stderr.replace("and start again:", "and run this again:").replace(/^Check the keys without starting: .*\n/m, "")}`,
    );
    // Every command that loads the config stops the same way (README "Exit codes").
    const commands = [["providers"], ["models"], ["route", "m", "--explain"]];
    const results = await Promise.all(commands.map((args) => runCli([...args, "--config", path], { cwd: dir })));
    for (const [index, result] of results.entries()) {
      const args = commands[index]?.join(" ");
      assert.equal(result.code, 2, `${args}: ${result.stdout}${result.stderr}`);
      assert.equal(result.stderr, checked.stderr, args);
      assert.equal(result.stdout, "", args);
    }

    const json = await runCli(["check", "--config", path, "--json"], { cwd: dir });
    assert.equal(json.code, 2);
    const report = parseJson<{
      ok: boolean;
      problems: { location: string; path: string; message: string }[];
      skipped: { name: string }[];
    }>(json);
    assert.equal(report.ok, false);
    assert.deepEqual(
      report.problems.map((problem) => [problem.location, problem.path]),
      [[path, "providers"]],
    );
    assert.match(report.problems[0]?.message ?? "", /no provider is enabled/);
    assert.deepEqual(
      report.skipped.map((skipped) => skipped.name),
      ["alpha", "beta"],
    );
    const modelsJson = await runCli(["models", "--config", path, "--json"], { cwd: dir });
    assert.equal(modelsJson.code, 2);
    assert.deepEqual(parseJson<{ problems: unknown }>(modelsJson).problems, report.problems);
  });

  test("a key in .env under another name: the skipped provider names it, with a config file or without", async (t) => {
    const dir = tempDir(t);
    writeFiles(dir, { ".env": "GROQ_KEY=gsk_not_shown_1234\n" });
    const withoutFile = await runCli(["check"], { cwd: dir });
    assert.equal(withoutFile.code, 2);
    assert.match(withoutFile.stderr, /^ {2}groq: GROQ_API_KEY \(GROQ_KEY is set, under another name\)$/m);
    const path = writeFiles(dir, { "gateway.yaml": "providers:\n  - preset: groq\n  - preset: cerebras\n" });
    const withFile = await runCli(["check", "--config", path], { cwd: dir });
    assert.equal(withFile.code, 2);
    // With a file, each entry's line too (the no-config mode has none to name).
    assert.match(
      withFile.stderr,
      /^ {2}groq \(.*gateway\.yaml:2\): GROQ_API_KEY \(GROQ_KEY is set, under another name\)$/m,
    );
    assert.match(withFile.stderr, /^ {2}cerebras \(.*gateway\.yaml:3\): CEREBRAS_API_KEY$/m);
    for (const output of [withoutFile.stderr, withFile.stderr]) assert.ok(!output.includes("gsk_not_shown"), output);
  });

  test("server.api_keys all empty after interpolation: exit 2 naming the variable (auth would be off); one empty among others warns", async (t) => {
    const { dir, path } = configIn(
      t,
      `server:
  api_keys: ["\${GW_KEY}"]
${twoProviderYaml()}`,
    );
    const refused = new RegExp(
      `^${escapeRegExp(path)}:2 server\\.api_keys: every entry is empty \\(environment variable GW_KEY is not set\\), so client authentication would be off`,
      "m",
    );
    const checked = await runCli(["check", "--config", path], { cwd: dir });
    assert.equal(checked.code, 2, checked.stdout);
    assert.match(checked.stderr, refused);
    const served = await runCli(["--config", path], { cwd: dir });
    assert.equal(served.code, 2, served.stderr);
    assert.match(served.stderr, refused);

    // A key from ALLOWED_BEARER_TOKENS keeps authentication on: the empty entry is only a warning, shown by `check`.
    const withToken = await runCli(["check", "--config", path], { cwd: dir, env: { ALLOWED_BEARER_TOKENS: "tok" } });
    assert.equal(withToken.code, 0, withToken.stderr);
    assert.match(
      withToken.stdout,
      new RegExp(
        `^  ${escapeRegExp(path)}:2 server\\.api_keys\\.0: empty \\(environment variable GW_KEY is not set\\)`,
        "m",
      ),
    );
    const json = await runCli(["check", "--config", path, "--json"], {
      cwd: dir,
      env: { ALLOWED_BEARER_TOKENS: "tok" },
    });
    assert.ok(
      parseJson<{ warnings: string[] }>(json).warnings.some((warning) => warning.includes("server.api_keys.0: empty")),
      json.stdout,
    );
  });

  test("LLM_GATEWAY_CONFIG set but empty is unset: the default file is read and named", async (t) => {
    const dir = tempDir(t);
    mkdirSync(join(dir, "config"));
    writeFiles(dir, { "config/meta-providers.yaml": twoProviderYaml() });
    const result = await runCli(["check"], { cwd: dir, env: { LLM_GATEWAY_CONFIG: "" } });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.split("\n")[0], `Config OK: ${join(dir, "config", "meta-providers.yaml")}`);
  });

  test("an empty config file, or one without providers: exit 2 saying so, not asking for keys", async (t) => {
    const dir = tempDir(t);
    const empty = writeFiles(dir, { "empty.yaml": "" });
    const none = writeFiles(dir, { "none.yaml": "server:\n  port: 0\n" });
    const [checked, served, noneChecked] = await Promise.all([
      runCli(["check", "--config", empty], { cwd: dir }),
      runCli(["serve", "--config", empty], { cwd: dir }),
      runCli(["check", "--config", none], { cwd: dir }),
    ]);
    for (const result of [checked, served, noneChecked]) {
      assert.equal(result.code, 2, result.stderr);
      assert.doesNotMatch(result.stderr, /set a key variable/);
    }
    assert.match(served.stderr, new RegExp(`^No provider is configured: ${escapeRegExp(empty)} is empty\\.\n`));
    assert.equal(
      checked.stderr,
      `Config error: ${served.stderr.replace(/^Check the keys without starting: .*\n/m, "")}`,
    );
    assert.doesNotMatch(checked.stderr, /llm-gateway check/);
    assert.match(noneChecked.stderr, new RegExp(`${escapeRegExp(none)} lists no providers\\.`));
    const json = await runCli(["check", "--config", empty, "--json"], { cwd: dir });
    assert.equal(json.code, 2);
    assert.match(parseJson<{ problems: { message: string }[] }>(json).problems[0]?.message ?? "", /lists no providers/);
  });

  test("a config file that does not exist: exit 2", async (t) => {
    const dir = tempDir(t);
    const result = await runCli(["check", "--config", "missing.yaml"], { cwd: dir });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /missing\.yaml/);
  });
});

describe("providers", () => {
  test("a /models list without end is an error at upstream_limits.max_response_bytes, not read until the timeout", async (t) => {
    const endless = await useMock(t);
    endless.setDefault("GET /v1/models", {
      kind: "handler",
      handle: (_request, response) => {
        response.writeHead(200, { "content-type": "application/json" });
        response.write('{"data":[');
        const chunk = Buffer.from(`{"id":"${"m".repeat(1_000)}"},`);
        const pump = (): void => {
          while (!response.destroyed && response.write(chunk)) {}
          if (!response.destroyed) response.once("drain", pump);
        };
        pump();
      },
    });
    const { dir, path } = configIn(
      t,
      `providers:
  - name: endless
    base_url: ${endless.baseUrl}
    api_key: sk-endless
    models:
      m: {}
state:
  path: ":memory:"
upstream_limits:
  max_response_bytes: 1048576
discovery:
  timeout_ms: 20000
`,
    );
    const startedMs = Date.now();
    const result = await runCli(["providers", "--config", path, "--json"], { cwd: dir });
    assert.ok(Date.now() - startedMs < 10_000, `took ${Date.now() - startedMs} ms (the 20 s timeout)`);
    const report = parseJson<{ providers: { provider: string; status: string; detail: string }[] }>(result);
    assert.equal(report.providers[0]?.status, "error", result.stdout);
    assert.match(report.providers[0]?.detail ?? "", /larger than upstream_limits\.max_response_bytes/);
  });

  test("probes each key: ok / invalid key / rate-limited / unreachable, with timings; exit 1 when one fails", async (t) => {
    const ok = await useMock(t, { models: [{ id: "a" }, { id: "b" }, { id: "c" }] });
    const invalid = await useMock(t);
    invalid.setDefault("GET /v1/models", {
      kind: "json",
      status: 401,
      body: { error: { message: "Invalid API Key", type: "invalid_request_error" } },
    });
    const limited = await useMock(t);
    limited.setDefault("GET /v1/models", { kind: "json", status: 429, headers: { "retry-after": "5" }, body: {} });
    const silent = await useMock(t);
    silent.setDefault("GET /v1/models", { kind: "hang" });
    const port = await closedPort();
    const provider = (name: string, url: string, key: string) => `  - name: ${name}
    base_url: ${url}
    ${key}
    models:
      m-${name}: {}
`;
    const { dir, path } = configIn(
      t,
      `providers:
${provider("ok", ok.baseUrl, "api_key_env_var: OK_API_KEY")}${provider("invalid", invalid.baseUrl, "api_key: sk-wrong")}${provider("limited", limited.baseUrl, "api_key: sk-limited")}${provider("down", `http://127.0.0.1:${port}/v1`, "api_key: sk-down")}${provider("silent", silent.baseUrl, "api_key: sk-silent")}${provider("nokey", "http://127.0.0.1:9/v1", "api_key_env_var: NOKEY_API_KEY")}state:
  path: ":memory:"
discovery:
  timeout_ms: 1500
`,
    );
    // 1.5 s for the hanging one to time out: with 300 ms a loaded machine (the whole suite on 2 cores) once took the
    // 401's answer for no answer ("unreachable").
    const env = { OK_API_KEY: "sk-ok-from-env" };
    // Text and JSON at once: each waits the 1.5 s for the hanging one; neither changes what the other reads.
    const [result, json] = await Promise.all([
      runCli(["providers", "--config", path], { cwd: dir, env }),
      runCli(["providers", "--config", path, "--json"], { cwd: dir, env }),
    ]);
    assert.equal(result.code, 1, `${result.stdout}\n${result.stderr}`);
    const row = (name: string) => {
      const cells = tableRow(result.stdout, name);
      assert.ok(cells !== undefined, `no row for ${name}:\n${result.stdout}`);
      return cells;
    };
    assert.deepEqual(row("ok").slice(1, 2), ["ok"]);
    assert.equal(row("ok")[3], "3 models");
    assert.deepEqual(row("invalid").slice(1, 2), ["invalid key"]);
    assert.equal(row("invalid")[3], "HTTP 401");
    assert.deepEqual(row("limited").slice(1, 2), ["rate-limited"]);
    assert.deepEqual(row("down").slice(1, 2), ["unreachable"]);
    assert.match(row("down")[3] ?? "", /ECONNREFUSED/);
    // No answer within discovery.timeout_ms: said so (before: the timeout's numeric DOMException code, "23").
    assert.deepEqual(row("silent").slice(1, 2), ["unreachable"]);
    assert.match(row("silent").slice(3).join(" "), /^(no answer in 1500 ms|UND_ERR_HEADERS_TIMEOUT)$/);
    for (const name of ["ok", "invalid", "limited", "down", "silent"])
      assert.match(row(name)[2] ?? "", /^\d+ ms$/, name);
    // A provider without its key is not probed; it is listed with the variable to set.
    assert.match(result.stdout, /^nokey \(.*gateway\.yaml:\d+\): no API key: .*NOKEY_API_KEY/m);
    assertNoAnsi(result, "providers");
    // The probe is GET /models with the key from the environment.
    const probes = ok.requests.filter((request) => request.method === "GET" && request.path === "/v1/models");
    assert.deepEqual(
      probes.map((probe) => probe.headers.authorization),
      ["Bearer sk-ok-from-env", "Bearer sk-ok-from-env"],
    );

    assert.equal(json.code, 1);
    const report = parseJson<{
      providers: { provider: string; status: string; detail: string; ms: number }[];
      skipped: { name: string; reason: string }[];
    }>(json);
    assert.deepEqual(
      report.providers.map((item) => [item.provider, item.status]),
      [
        ["down", "unreachable"],
        ["invalid", "invalid key"],
        ["limited", "rate-limited"],
        ["ok", "ok"],
        ["silent", "unreachable"],
      ],
    );
    for (const item of report.providers) assert.ok(Number.isInteger(item.ms) && item.ms >= 0, item.provider);
    assert.deepEqual(
      report.skipped.map((item) => item.name),
      ["nokey"],
    );
  });

  test("every key works (a rate-limited key still works): exit 0", async (t) => {
    const ok = await useMock(t);
    const limited = await useMock(t);
    limited.setDefault("GET /v1/models", { kind: "json", status: 429, body: {} });
    const { dir, path } = configIn(
      t,
      `providers:
  - name: ok
    base_url: ${ok.baseUrl}
    api_key: sk-ok
    models:
      a: {}
  - name: limited
    base_url: ${limited.baseUrl}
    api_key: sk-limited
    models:
      b: {}
state:
  path: ":memory:"
`,
    );
    const result = await runCli(["providers", "--config", path], { cwd: dir });
    assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
  });
});

describe("models", () => {
  test("`models --json` lists public names, providers, context and score", async (t) => {
    const { dir, path } = configIn(t, twoProviderYaml());
    const result = await runCli(["models", "--config", path, "--json"], { cwd: dir });
    assert.equal(result.code, 0, result.stderr);
    const { models } = parseJson<{
      models: {
        model: string;
        provider: string;
        upstream_id: string;
        context: number | null;
        params_b: number | null;
        score: number;
        leaderboard: number | null;
      }[];
    }>(result);
    assert.deepEqual(
      models.map((row) => [row.model, row.provider, row.context, row.params_b]),
      [
        [WEAK, "weak", 8000, 8],
        [STRONG, "strong", 128_000, 70],
      ],
    );
    const strong = models.find((row) => row.model === STRONG);
    const weak = models.find((row) => row.model === WEAK);
    assert.ok(strong !== undefined && weak !== undefined);
    assert.ok(strong.score > weak.score, "the 70B scores above the 8B");
    assert.ok(strong.leaderboard !== null && strong.leaderboard > 0 && strong.leaderboard < 1);

    const text = await runCli(["models", "--config", path], { cwd: dir });
    assert.equal(text.code, 0, text.stderr);
    assert.deepEqual(tableRow(text.stdout, STRONG)?.slice(0, 5), [STRONG, "strong", STRONG, "chat", "128000"]);
    assert.equal(tableRow(text.stdout, STRONG)?.at(-1), String(strong.score));
    assertNoAnsi(text, "models");
  });
});

describe("models: what upstreams listed is redacted", () => {
  test("a key an upstream echoed inside a listed model id is not printed, as text or as JSON", async (t) => {
    // Not shaped like a key: only the configured secret's own redaction catches it.
    const key = "plainKEYforModels0123";
    const echoing = await useMock(t, { models: [{ id: `echo-${key}-chat` }, { id: "clean-model" }] });
    const { dir, path } = configIn(
      t,
      `providers:
  - name: echoing
    base_url: ${echoing.baseUrl}
    api_key: ${key}
discovery:
  cache_dir: ${JSON.stringify(join(tempDir(t), "cache"))}
state:
  path: ":memory:"
`,
    );
    const text = await runCli(["models", "--config", path], { cwd: dir });
    assert.equal(text.code, 0, text.stderr);
    assert.equal(tableRow(text.stdout, "clean-model")?.[1], "echoing", text.stdout);
    assert.match(text.stdout, /echo-\[redacted\]-chat/);
    assert.ok(!`${text.stdout}${text.stderr}`.includes(key), text.stdout);
    const json = await runCli(["models", "--config", path, "--json"], { cwd: dir });
    assert.equal(json.code, 0, json.stderr);
    assert.ok(!`${json.stdout}${json.stderr}`.includes(key), json.stdout);
    assert.deepEqual(
      parseJson<{ models: { upstream_id: string }[] }>(json)
        .models.map((row) => row.upstream_id)
        .sort(),
      ["clean-model", "echo-[redacted]-chat"],
    );
  });
});

describe("a catalog with gaps", () => {
  test("`models` and `route` say why a provider serves nothing and a meta model is missing, on stderr", async (t) => {
    const port = await closedPort();
    const dir = tempDir(t);
    const path = writeFiles(dir, {
      "gateway.yaml": `providers:
  - name: listed
    base_url: http://127.0.0.1:9/v1
    api_key: sk-listed
    models:
      ${WEAK}: {}
  - name: offline
    base_url: http://127.0.0.1:${port}/v1
    api_key: sk-offline
meta_models:
  best: [${STRONG}]
discovery:
  cache_dir: ${JSON.stringify(join(dir, "cache"))}
state:
  path: ":memory:"
`,
    });
    const discoveryFailed = /provider "offline": GET \/models failed \(.*ECONNREFUSED.*\) and there is no cached list/;
    const metaUnserved = /meta model `best`: no provider serves any of its models/;
    const models = await runCli(["models", "--config", path], { cwd: dir });
    assert.equal(models.code, 0, models.stderr);
    assert.match(models.stderr, discoveryFailed);
    assert.match(models.stderr, metaUnserved);
    assert.equal(tableRow(models.stdout, WEAK)?.[1], "listed");
    const json = await runCli(["models", "--config", path, "--json"], { cwd: dir });
    assert.match(json.stderr, discoveryFailed);
    assert.deepEqual(
      parseJson<{ models: { model: string }[] }>(json).models.map((row) => row.model),
      [WEAK],
    );
    // Before, only "The model `best` does not exist on this gateway" with nothing about why.
    const route = await runCli(["route", "best", "--config", path], { cwd: dir });
    assert.equal(route.code, 1);
    assert.match(route.stderr, metaUnserved);
    assert.match(route.stderr, /`best`/);
  });
});

describe("route", () => {
  test("`route` reads a serving gateway's state file (its budgets) without locking, writing or moving it", async (t) => {
    const mock = await useMock(t);
    const statePath = join(tempDir(t), "state.db");
    const gateway = await startTestGateway(
      `providers:
  - name: strong
    base_url: ${mock.baseUrl}
    api_key: sk-strong
    models:
      ${STRONG}: { limits: { rpd: 1 } }
  - name: weak
    base_url: ${mock.baseUrl}
    api_key: sk-weak
    models:
      ${WEAK}: {}
meta_models:
  best: [${STRONG}, ${WEAK}]
state:
  path: ${JSON.stringify(statePath)}
  flush_interval_ms: 50
request_log:
  enabled: false
`,
    );
    t.after(() => gateway.close());
    const answered = await send(gateway, "POST", "/v1/chat/completions", {
      body: { model: STRONG, messages: [{ role: "user", content: "hi" }] },
    });
    assert.equal(answered.status, 200);
    // The day's request reaches the file at the next flush (50 ms): polled, as a fixed 300 ms wait was a guess.
    await waitFor(() => dayRequestsInFile(statePath, `deployment:strong/${STRONG}`) === 1, "the flush", 15_000);
    // Another process holds the file's write lock meanwhile: a reader must not need it.
    const other = new DatabaseSync(statePath);
    other.exec("PRAGMA busy_timeout = 0; BEGIN IMMEDIATE");
    t.after(() => {
      if (other.isTransaction) other.exec("ROLLBACK");
      other.close();
    });
    const before = readdirSync(dirname(statePath)).sort();
    const result = await runCli(["route", "best", "--json", "--config", gateway.configPath], {
      cwd: dirname(gateway.configPath),
    });
    assert.equal(result.code, 0, result.stderr);
    const explanation = parseJson<{ skipped: { provider: string; cause: string }[] }>(result);
    assert.deepEqual(
      explanation.skipped.map((skip) => skip.provider),
      ["strong"],
      "the day's budget spent by the serving gateway, read from its file",
    );
    assert.deepEqual(readdirSync(dirname(statePath)).sort(), before);
    other.exec("ROLLBACK");
    // The serving gateway was never told another process had its file open (route took no lock).
    assert.doesNotMatch(gateway.runtime.state.status().detail, /another gateway process/);
  });

  test("`route` leaves a damaged state file where it is, and creates none where there is none", async (t) => {
    const dir = tempDir(t);
    const damaged = join(dir, "state.db");
    writeTruncatedStateFile(damaged);
    const yaml = twoProviderYaml().replace('path: ":memory:"', `path: ${JSON.stringify(damaged)}`);
    const path = writeFiles(dir, { "gateway.yaml": yaml });
    const result = await runCli(["route", "best", "--config", path], { cwd: dir });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^Route for best/m);
    assert.deepEqual(readdirSync(dir).sort(), ["gateway.yaml", "state.db"], "the damaged file was moved or touched");
    assert.equal(statSync(damaged).size, 300_000);

    const missing = join(dir, "nowhere", "state.db");
    const other = writeFiles(dir, {
      "other.yaml": twoProviderYaml().replace('path: ":memory:"', `path: ${JSON.stringify(missing)}`),
    });
    assert.equal((await runCli(["route", "best", "--config", other], { cwd: dir })).code, 0);
    assert.equal(existsSync(join(dir, "nowhere")), false, "route created the state file's folder");
  });

  test("`route` explains a rerank, speech or image model as a request of its own endpoint, not as a chat request", async (t) => {
    const { dir, path } = configIn(
      t,
      `providers:
  - name: host
    base_url: http://127.0.0.1:9/v1
    api_key: sk-host
    models:
      reranker: { id: bge-reranker-v2-m3 }
      voice: { id: playai-tts }
      painter: { id: black-forest-labs/FLUX.1-schnell }
state:
  path: ":memory:"
`,
    );
    for (const [model, kind] of [
      ["reranker", "rerank"],
      ["voice", "speech"],
      ["painter", "image"],
    ]) {
      const result = await runCli(["route", model as string, "--config", path], { cwd: dir });
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, new RegExp(`^Route for ${model} \\(a ${kind} request, strategy `, "m"));
      assert.deepEqual(tableRow(result.stdout, "1")?.slice(1, 2), ["host"]);
      const json = parseJson<{ kind: string }>(
        await runCli(["route", model as string, "--json", "--config", path], { cwd: dir }),
      );
      assert.equal(json.kind, kind);
    }
  });

  test("`route best --explain`: candidates best first, with every score term", async (t) => {
    const { dir, path } = configIn(t, twoProviderYaml());
    const result = await runCli(["route", "best", "--explain", "--config", path], { cwd: dir });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^Route for best \(strategy best\):/m);
    const header = result.stdout.split("\n").find((line) => line.startsWith("#"));
    assert.deepEqual(header?.trim().split(/\s+/), [
      "#",
      "provider",
      "model",
      "score",
      "base",
      "prio",
      "board",
      "params",
      "ctx",
      "adjust",
      "health",
    ]);
    const first = tableRow(result.stdout, "1");
    const second = tableRow(result.stdout, "2");
    assert.deepEqual(first?.slice(1, 3), ["strong", STRONG]);
    assert.deepEqual(second?.slice(1, 3), ["weak", WEAK]);
    assert.equal(first?.at(-1), "cold");
    // score = base × (prio + board + params + ctx + adjust) − health
    const numbers = (first ?? []).slice(3, 10).map(Number);
    const [score, base, priority, board, params, context, adjust] = numbers;
    assert.ok(numbers.every(Number.isFinite), first?.join(" | "));
    assert.ok(
      Math.abs(
        (base ?? 0) * ((priority ?? 0) + (board ?? 0) + (params ?? 0) + (context ?? 0) + (adjust ?? 0)) - (score ?? 0),
      ) < 0.01,
    );
    assert.match(result.stdout, /neutral value/);
    assertNoAnsi(result, "route --explain");

    // Without --explain: only rank, provider, model and score.
    const plain = await runCli(["route", "best", "--config", path], { cwd: dir });
    assert.equal(plain.code, 0, plain.stderr);
    assert.equal(tableRow(plain.stdout, "1")?.length, 4);
  });

  test("`route --explain` says which candidates are paid when free ones go first whatever the scores", async (t) => {
    // `strong` is written without a preset or `cost`, as the Python project's entries are: paid, so it comes after
    // the free one although it scores far higher. Before, the table showed only the scores, out of order.
    const { dir, path } = configIn(
      t,
      `providers:
  - name: strong
    base_url: http://127.0.0.1:9/v1
    api_key: sk-strong
    base_priority: 2
    models:
      ${STRONG}: { priority: 10 }
  - name: weak
    base_url: http://127.0.0.1:9/v1
    api_key: sk-weak
    cost: free
    models:
      ${WEAK}: {}
meta_models:
  best: [${STRONG}, ${WEAK}]
state:
  path: ":memory:"
`,
    );
    const result = await runCli(["route", "best", "--explain", "--config", path], { cwd: dir });
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(tableRow(result.stdout, "1")?.slice(1, 3), ["weak", WEAK]);
    assert.doesNotMatch(tableRow(result.stdout, "1")?.[3] ?? "", /paid/);
    assert.deepEqual(tableRow(result.stdout, "2")?.slice(1, 3), ["strong", STRONG]);
    assert.match(tableRow(result.stdout, "2")?.[3] ?? "", /^\d+(\.\d+)? \(paid\)$/);
    assert.ok(
      Number.parseFloat(tableRow(result.stdout, "2")?.[3] ?? "") >
        Number.parseFloat(tableRow(result.stdout, "1")?.[3] ?? ""),
    );
    assert.match(result.stdout, /^paid: tried after every free candidate \(routing\.paid: last_resort\)/m);
    // All paid (or all free): the order is the scores', nothing marked.
    const allPaid = configIn(t, twoProviderYaml());
    const plain = await runCli(["route", "best", "--explain", "--config", allPaid.path], { cwd: allPaid.dir });
    assert.equal(plain.code, 0, plain.stderr);
    assert.doesNotMatch(plain.stdout, /paid/);
  });

  test("`route --json` has the HTTP endpoint's shape and values", async (t) => {
    const yaml = twoProviderYaml();
    const { dir, path } = configIn(t, yaml);
    const result = await runCli(["route", "best", "--explain", "--json", "--config", path], { cwd: dir });
    assert.equal(result.code, 0, result.stderr);
    const fromCli = parseJson<RouteExplanation>(result);

    const gateway = await useGateway(t, yaml);
    const response = await send(gateway, "GET", "/v1/gateway/route?model=best");
    assert.equal(response.status, 200, response.text);
    assert.deepEqual(fromCli, response.json);
    assert.deepEqual(
      fromCli.candidates.map((candidate) => candidate.upstream_id),
      [STRONG, WEAK],
    );
  });

  test("`route` without a model exits 2; an unknown model exits 1 with the reason", async (t) => {
    const { dir, path } = configIn(t, twoProviderYaml());
    const missing = await runCli(["route", "--config", path], { cwd: dir });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /give a model name/);
    const unknown = await runCli(["route", "no-such-model", "--config", path], { cwd: dir });
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no-such-model/);
    const unknownJson = await runCli(["route", "no-such-model", "--json", "--config", path], { cwd: dir });
    assert.equal(unknownJson.code, 1);
    assert.match(parseJson<{ error: string }>(unknownJson).error, /no-such-model/);
  });
});

describe("colour", () => {
  test("on a terminal the output is coloured, unless NO_COLOR is set; piped output never is", async (t) => {
    const { dir, path } = configIn(t, twoProviderYaml());
    if (!(await hasPseudoTerminal(dir))) {
      t.skip("util-linux `script` is not available to give the CLI a terminal");
      return;
    }
    const coloured = await runCli(["check", "--config", path], { cwd: dir, isTty: true });
    assert.equal(coloured.code, 0, coloured.stdout);
    assert.match(coloured.stdout, ANSI_ESCAPE, "a terminal gets colour (else this test proves nothing)");

    const commands = [
      ["check", "--config", path],
      ["models", "--config", path],
      ["route", "best", "--explain", "--config", path],
    ];
    const runs = await Promise.all(
      commands.flatMap((command) => [
        runCli(command, { cwd: dir, isTty: true, env: { NO_COLOR: "1" } }).then((result) => ({
          result,
          what: `NO_COLOR=1 ${command[0]}`,
        })),
        runCli(command, { cwd: dir }).then((result) => ({ result, what: `piped ${command[0]}` })),
      ]),
    );
    for (const { result, what } of runs) {
      assert.equal(result.code, 0, `${what}: ${result.stdout}${result.stderr}`);
      assert.ok(result.stdout.length > 0, what);
      assertNoAnsi(result, what);
    }
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
