import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, type TestContext, test } from "node:test";
import { loadEnv } from "./env.ts";
import { parseConfigText } from "./load.ts";

function dirWithDotEnv(t: TestContext, text: string | undefined): string {
  const dir = mkdtempSync(join(tmpdir(), "llm-gateway-env-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  if (text !== undefined) writeFileSync(join(dir, ".env"), text);
  return dir;
}

describe("loadEnv", () => {
  test(".env fills in variables; the real environment wins over it", (t) => {
    const dir = dirWithDotEnv(t, 'GROQ_API_KEY=from-dotenv\nOTHER_KEY="quoted value"\n# a comment\nEMPTY=\n');
    const env = loadEnv(dir, { GROQ_API_KEY: "from-process", PATH: "/bin" });
    assert.equal(env.GROQ_API_KEY, "from-process");
    assert.equal(env.OTHER_KEY, "quoted value");
    assert.equal(env.EMPTY, "");
    assert.equal(env.PATH, "/bin");
    assert.ok(Object.isFrozen(env));
  });

  test("no .env file: the real environment alone", (t) => {
    const dir = dirWithDotEnv(t, undefined);
    assert.deepEqual({ ...loadEnv(dir, { ONLY: "this" }) }, { ONLY: "this" });
  });
});

describe("keys from the environment", () => {
  const yaml = `providers:
  - name: alpha
    base_url: http://127.0.0.1:1/v1
    api_key_env_var: ALPHA_KEY
    models: { m: {} }
  - name: beta
    base_url: http://127.0.0.1:2/v1
    api_key: \${BETA_KEY:-sk-beta-default}
    models: { m: {} }
  - name: gamma
    base_url: http://127.0.0.1:3/v1
    api_key_env_var: GAMMA_KEY
    models: { m: {} }
`;

  test("a .env value reaches the provider when the environment has none; the environment wins when it has one", (t) => {
    const dir = dirWithDotEnv(t, "ALPHA_KEY=sk-alpha-dotenv\nGAMMA_KEY=sk-gamma-dotenv\n");
    const { config, warnings } = parseConfigText(yaml, "test.yaml", {
      env: loadEnv(dir, { GAMMA_KEY: "sk-gamma-process" }),
    });
    const keys = Object.fromEntries(config.providers.map((provider) => [provider.name, provider.apiKeys]));
    assert.deepEqual(keys, {
      alpha: ["sk-alpha-dotenv"],
      beta: ["sk-beta-default"],
      gamma: ["sk-gamma-process"],
    });
    assert.deepEqual(warnings, []);
  });

  test("an unset variable skips its provider with a warning naming the variable", () => {
    const { config, warnings } = parseConfigText(yaml, "test.yaml", { env: { ALPHA_KEY: "sk-alpha" } });
    assert.deepEqual(
      config.providers.map((provider) => provider.name),
      ["alpha", "beta"],
    );
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] ?? "", /"gamma" skipped.*GAMMA_KEY/);
    assert.deepEqual(
      config.skippedProviders.map((entry) => entry.name),
      ["gamma"],
    );
  });
});
