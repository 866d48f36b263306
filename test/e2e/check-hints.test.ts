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
    assert.match(checked.stderr, /^ {2}groq \(.*meta-providers\.yaml:\d+\): GROQ_API_KEY$/m);
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
      /^ {2}cloudflare \(.*meta-providers\.yaml:2\): CLOUDFLARE_API_TOKEN or CLOUDFLARE_API_KEY and CLOUDFLARE_ACCOUNT_ID$/m,
    );

    // With the key set, the account id is still named (as before).
    writeFiles(alone, { ".env": "CLOUDFLARE_API_TOKEN=cf-1\n" });
    const keyed = await runCli(["check"], { cwd: alone });
    assert.match(keyed.stderr, /^ {2}cloudflare \(.*meta-providers\.yaml:2\): CLOUDFLARE_ACCOUNT_ID$/m);
    assert.match(keyed.stderr, /^ {2}CLOUDFLARE_ACCOUNT_ID=<value>$/m);
  });

  test("YAML indentation mistakes, tabs, a key given twice and a backslash in double quotes say how to fix them", async (t) => {
    const provider = "  - name: local\n    base_url: http://127.0.0.1:9/v1\n    api_key: k\n";
    const cases: { yaml: string; expected: RegExp }[] = [
      // A provider's key indented one space too little: yaml said only "Sequence item without - indicator".
      {
        yaml: "providers:\n  - name: local\n   base_url: http://127.0.0.1:9/v1\n",
        expected: /meta-providers\.yaml:3: .*\(column 1\): line this key up with the keys above it/,
      },
      // `models:` indented under `base_url: ...` (a key that has a value): two grammar errors, now one line.
      {
        yaml: "providers:\n- name: local\n  base_url: http://127.0.0.1:9/v1\n    models:\n      a: {}\n",
        expected: /meta-providers\.yaml:3: .*: the next line is indented deeper than the keys on this one: line it up/,
      },
      // A provider entry pasted at the end of the file, under `meta_models:`.
      {
        yaml: `providers:\n${provider}meta_models:\n  best: [a]\n  - preset: groq\n`,
        expected: /:7: .*: a `- ` list entry stands among `key: value` lines: move it under the key whose list it is/,
      },
      { yaml: `server:\n\tport: 1\nproviders:\n${provider}`, expected: /:2: .*: indent with spaces, not tabs$/m },
      {
        yaml: `server:\n  port: 1\n  port: 2\nproviders:\n${provider}`,
        expected: /:3: key "port" is given twice in one mapping \(keys must be unique\): keep one$/m,
      },
      {
        yaml: `providers:\n${provider}meta_models:\n  best: "\\Agpt"\n`,
        expected: /:6: Invalid escape sequence \\A \(column 10\): .*write the value in single quotes/,
      },
    ];
    for (const { yaml, expected } of cases) {
      const dir = project(t, { "config/meta-providers.yaml": yaml });
      const result = await runCli(["check"], { cwd: dir });
      assert.equal(result.code, 2, result.stdout);
      assert.match(result.stderr, expected, yaml);
      // One problem per mistake: yaml's second error at the same place is not repeated.
      assert.match(result.stderr, /^Config error \(1 problem\)/, result.stderr);
    }

    // The adjustments file goes through the same hints.
    const adjusted = project(t, {
      "config/meta-providers.yaml": `providers:\n${provider}`,
      "config/model-adjustments.yaml": 'adjustments:\n  small:\n    priority: -1\n    regex: ["\\A1b"]\n',
    });
    const result = await runCli(["check"], { cwd: adjusted });
    assert.equal(result.code, 2, result.stdout);
    assert.match(
      result.stderr,
      /model-adjustments\.yaml:4: Invalid escape sequence .*write the value in single quotes/,
    );
  });

  test("a key written one level too far out, an empty section and a meta model given as a string say what to do", async (t) => {
    const dir = project(t, {
      "config/meta-providers.yaml": `server:
port: 12345
providers:
  - name: local
    base_url: http://127.0.0.1:9/v1
    api_key: k
max_attempts: 3
meta_models:
  best: gpt-4.1, llama-3.3-70b
`,
    });
    const result = await runCli(["check"], { cwd: dir });
    assert.equal(result.code, 2, result.stdout);
    const path = join(dir, "config", "meta-providers.yaml");
    assert.deepEqual(
      result.stderr.split("\n").filter((line) => line.startsWith(path)),
      [
        `${path}:1 server: is empty: its keys go on the lines below it, indented under it (or leave the section out)`,
        `${path}:2 port: unknown key "port"; it is a key of \`server\`: indent it under \`server:\``,
        `${path}:7 max_attempts: unknown key "max_attempts"; it is a key of \`routing\`: indent it under \`routing:\``,
        `${path}:9 meta_models.best: expected a list of model names (\`best: [model-a, model-b]\`) or a filter (\`{ tools: true, min_context: 32000 }\`)`,
      ],
    );

    // Provider entries pasted as the whole file, without their `providers:` line.
    const listed = project(t, { "config/meta-providers.yaml": "- preset: groq\n  api_key_env_var: [GROQ_API_KEY]\n" });
    const listedResult = await runCli(["check"], { cwd: listed });
    assert.equal(listedResult.code, 2, listedResult.stdout);
    assert.match(
      listedResult.stderr,
      /meta-providers\.yaml:1: the file must be a mapping of sections .*: a list of `- preset: \.\.\.` entries goes under `providers:`, indented$/m,
    );
  });

  test("a key of a named entry (a model, a meta model) points under an entry's name; a file of one line of text is not called a list", async (t) => {
    const dir = project(t, {
      "config/meta-providers.yaml": `providers:
  - name: local
    base_url: http://127.0.0.1:9/v1
    api_key: k
    id: some-model
    models:
      some-model: {}
tools: true
`,
    });
    const result = await runCli(["check"], { cwd: dir });
    assert.equal(result.code, 2, result.stdout);
    const path = join(dir, "config", "meta-providers.yaml");
    // Before: "indent it under `models:`" and "under `meta_models:`", which make a model named `id` and a meta model
    // named `tools`: a second error, not the fix.
    assert.deepEqual(problemLines(result), [
      `${path}:5 providers.0.id: unknown key "id"; it is a key of each entry of \`models\`: indent it under an entry's name (\`models:\`, then \`<name>:\`)`,
      `${path}:8 tools: unknown key "tools"; it is a key of each entry of \`meta_models\`: indent it under an entry's name (\`meta_models:\`, then \`<name>:\`)`,
    ]);

    // A `.env` line given as the config: one string, no list of entries to move under `providers:`.
    const text = project(t, { "config/meta-providers.yaml": "GROQ_API_KEY=gsk-not-a-real-key\n" });
    const textResult = await runCli(["check"], { cwd: text });
    assert.equal(textResult.code, 2, textResult.stdout);
    assert.match(
      textResult.stderr,
      /meta-providers\.yaml:1: the file must be a mapping of sections \(`providers:`, `server:`, \.\.\.\), of `key: value` lines; it reads as one string$/m,
    );
    assert.doesNotMatch(textResult.stderr, /a list of|gsk-not-a-real-key/);
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
