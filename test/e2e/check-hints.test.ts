// What `check` tells someone whose config does not work yet, run as users run it: the files of the Python project
// in their usual places (config/meta-providers.yaml, config/model-adjustments.yaml, .env), the CLI as a process.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { describe, type TestContext, test } from "node:test";
import { type CliResult, runCli, tempDir, writeFiles } from "../helpers/cli-process.ts";

/** A working directory holding `files` (paths relative to it; `config/` is created). */
function project(t: TestContext, files: Readonly<Record<string, string>>): string {
  const dir = tempDir(t);
  mkdirSync(join(dir, "config"));
  writeFiles(dir, files);
  return dir;
}

function problemLines(result: CliResult): string[] {
  return result.stderr.split("\n").filter((line) => line.includes(": unknown"));
}

describe("`check` on a config that does not work yet", () => {
  test("an unknown key close to a known one is named with it, in the config and in the adjustments file", async (t) => {
    const dir = project(t, {
      "config/meta-providers.yaml": `providers:
  - name: local
    base_url: http://127.0.0.1:9/v1
    apiKeyEnvVar: LOCAL_KEY
    modles:
      some-model: {}
routing:
  max_atempts: 2
`,
      "config/model-adjustments.yaml": "adjustments:\n  small:\n    priorty: -1\n    regex: ['-1b$']\n",
    });
    const result = await runCli(["check"], { cwd: dir });
    assert.equal(result.code, 2, result.stdout);
    const path = join(dir, "config", "meta-providers.yaml");
    assert.deepEqual(problemLines(result), [
      `${path}:4 providers.0.apiKeyEnvVar: unknown key "apiKeyEnvVar"; did you mean "api_key_env_var"?`,
      `${path}:5 providers.0.modles: unknown key "modles"; did you mean "models"?`,
      `${path}:8 routing.max_atempts: unknown key "max_atempts"; did you mean "max_attempts"?`,
      `${join(dir, "config", "model-adjustments.yaml")}:3 adjustments.small.priorty: unknown key (expected "priority" and "regex"); did you mean "priority"?`,
    ]);

    const json = await runCli(["check", "--json"], { cwd: dir });
    const report = JSON.parse(json.stdout) as { problems: { path: string; message: string }[] };
    assert.equal(
      report.problems.find((problem) => problem.path === "providers.0.modles")?.message,
      'unknown key "modles"; did you mean "models"?',
    );
    // The adjustments file's problems carry their key path as the config's do (it was left in the message).
    assert.deepEqual(
      report.problems.find((problem) => problem.path === "adjustments.small.priorty")?.message,
      'unknown key (expected "priority" and "regex"); did you mean "priority"?',
    );
  });

  test("an unknown key inside a client key's object form is named (it was only `Invalid input`)", async (t) => {
    const dir = project(t, {
      "config/meta-providers.yaml": `server:
  api_keys:
    - { key: "\${TEAM_KEY}", nmae: team-a }
providers:
  - name: local
    base_url: http://127.0.0.1:9/v1
    api_key: k
`,
      ".env": "TEAM_KEY=sk-team-a-0123456789\n",
    });
    const result = await runCli(["check"], { cwd: dir });
    assert.equal(result.code, 2, result.stdout);
    assert.match(
      result.stderr,
      /meta-providers\.yaml:3 server\.api_keys\.0\.nmae: unknown key "nmae"; did you mean "name"\?$/m,
    );
    assert.doesNotMatch(result.stderr, /sk-team-a/, "the key's value is not echoed");
  });

  test("no provider enabled: `check` says where a key goes, not to run `check`", async (t) => {
    const dir = project(t, {
      "config/meta-providers.yaml": "providers:\n  - preset: groq\n  - preset: gemini\n",
    });
    const checked = await runCli(["check"], { cwd: dir });
    assert.equal(checked.code, 2, checked.stdout);
    assert.doesNotMatch(checked.stderr, /llm-gateway check/, "`check` sent the user to run `check`");
    assert.match(checked.stderr, /^ {2}groq: GROQ_API_KEY$/m);
    assert.match(
      checked.stderr,
      new RegExp(
        `^Set them in ${escapeRegExp(join(dir, ".env"))} \\(one VARIABLE=value per line\\), e\\.g\\.:\n {2}GROQ_API_KEY=<value>$`,
        "m",
      ),
    );
    assert.match(checked.stderr, /and run this again:$/m);
    assert.match(checked.stderr, /npm run demo/);

    // Following the advice is enough: the same `check` now passes.
    writeFiles(dir, { ".env": "GROQ_API_KEY=gsk-1\n" });
    const fixed = await runCli(["check"], { cwd: dir });
    assert.equal(fixed.code, 0, fixed.stderr);

    // `serve` still points to `check`, which tells the same without starting.
    const emptyDir = project(t, { "config/meta-providers.yaml": "providers:\n  - preset: groq\n" });
    const served = await runCli(["serve"], { cwd: emptyDir });
    assert.equal(served.code, 2);
    assert.match(served.stderr, /and start again:$/m);
    assert.match(served.stderr, /^Check the keys without starting: +npx llm-gateway check$/m);
    assert.match(served.stderr, /^ {2}GROQ_API_KEY=<value>$/m);
  });

  test("the Cloudflare preset without its key names CLOUDFLARE_ACCOUNT_ID too, not only once the key is set", async (t) => {
    const dir = project(t, {
      "config/meta-providers.yaml": `providers:
  - preset: cloudflare
  - name: local
    base_url: http://127.0.0.1:9/v1
    api_key: k
`,
    });
    const table = await runCli(["check"], { cwd: dir });
    assert.equal(table.code, 0, table.stderr);
    assert.match(
      table.stdout,
      /^cloudflare +skipped +no API key: environment variable CLOUDFLARE_API_TOKEN or CLOUDFLARE_API_KEY is not set; also required and not set: CLOUDFLARE_ACCOUNT_ID/m,
    );
    const json = JSON.parse((await runCli(["check", "--json"], { cwd: dir })).stdout) as {
      skipped: { name: string; reason: string }[];
    };
    assert.match(json.skipped[0]?.reason ?? "", /CLOUDFLARE_ACCOUNT_ID/);

    // Alone in the config: the block lists both, as the no-config mode does.
    const alone = project(t, { "config/meta-providers.yaml": "providers:\n  - preset: cloudflare\n" });
    const checked = await runCli(["check"], { cwd: alone });
    assert.equal(checked.code, 2);
    assert.match(
      checked.stderr,
      /^ {2}cloudflare: CLOUDFLARE_API_TOKEN or CLOUDFLARE_API_KEY and CLOUDFLARE_ACCOUNT_ID$/m,
    );

    // With the key set, the account id is still named (as before).
    writeFiles(alone, { ".env": "CLOUDFLARE_API_TOKEN=cf-1\n" });
    const keyed = await runCli(["check"], { cwd: alone });
    assert.match(keyed.stderr, /^ {2}cloudflare: CLOUDFLARE_ACCOUNT_ID$/m);
    assert.match(keyed.stderr, /^ {2}CLOUDFLARE_ACCOUNT_ID=<value>$/m);
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
