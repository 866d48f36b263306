import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { ConfigError } from "../config/config-error.ts";
import { chooseConfig, loadGatewayConfig } from "./gateway-config.ts";

const work = mkdtempSync(join(tmpdir(), "gateway-config-"));
after(() => rmSync(work, { recursive: true, force: true }));

function configFile(name: string, providers: string): string {
  const path = join(work, name);
  writeFileSync(path, `providers:\n${providers}`);
  return path;
}

const OWN_PROVIDER = "  - name: own\n    base_url: http://127.0.0.1:9/v1\n    api_key: k\n    models: { m: {} }\n";

describe("loadGatewayConfig (presets read only when needed)", () => {
  it("resolves a preset entry from its file", () => {
    const path = configFile("preset.yaml", `${OWN_PROVIDER}  - preset: groq\n`);
    const { loaded } = loadGatewayConfig({ explicitPath: path, env: { GROQ_API_KEY: "gsk-1" }, cwd: work });
    const groq = loaded.config.providers.find((provider) => provider.name === "groq");
    assert.equal(groq?.baseUrl, "https://api.groq.com/openai/v1");
    assert.ok(loaded.config.providers.some((provider) => provider.name === "own"));
  });

  it("loads a config that names no preset", () => {
    const path = configFile("own.yaml", OWN_PROVIDER);
    const { loaded } = loadGatewayConfig({ explicitPath: path, env: {}, cwd: work });
    assert.deepEqual(
      loaded.config.providers.map((provider) => provider.name),
      ["own"],
    );
  });

  it("still reports a mistyped LLM_GATEWAY_PRESET_ variable when the config names no preset", () => {
    const path = configFile("typo.yaml", OWN_PROVIDER);
    assert.throws(
      () => loadGatewayConfig({ explicitPath: path, env: { LLM_GATEWAY_PRESET_GROQ_BASEURL: "http://x" }, cwd: work }),
      (error: unknown) => error instanceof ConfigError && error.issues[0]?.path === "LLM_GATEWAY_PRESET_GROQ_BASEURL",
    );
  });

  it("names an unknown preset as the entry's problem", () => {
    const path = configFile("unknown.yaml", "  - preset: no-such-preset\n");
    assert.throws(
      () => loadGatewayConfig({ explicitPath: path, env: {}, cwd: work }),
      (error: unknown) => error instanceof ConfigError && /unknown preset "no-such-preset"/.test(error.message),
    );
  });
});

describe("chooseConfig", () => {
  it("takes an empty LLM_GATEWAY_CONFIG (or --config) as unset, not as the working directory", () => {
    const dir = mkdtempSync(join(work, "choose-"));
    assert.deepEqual(chooseConfig({ explicitPath: undefined, env: { LLM_GATEWAY_CONFIG: "" }, cwd: dir }), {
      kind: "presets",
    });
    mkdirSync(join(dir, "config"));
    writeFileSync(join(dir, "config", "meta-providers.yaml"), OWN_PROVIDER);
    assert.deepEqual(chooseConfig({ explicitPath: "", env: { LLM_GATEWAY_CONFIG: "" }, cwd: dir }), {
      kind: "file",
      path: join(dir, "config", "meta-providers.yaml"),
    });
  });
});
