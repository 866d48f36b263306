import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError } from "../config/config-error.ts";
import type { Env } from "../config/env.ts";
import { parseConfigText } from "../config/load.ts";
import type { RawProvider } from "../config/schema.ts";
import { RATE_LIMIT_DIALECTS } from "../limits/header-dialects.ts";
import { costClassOf } from "./catalog.ts";
import { matchPresetUrl, presetBaseUrlTemplates } from "./preset-urls.ts";
import {
  createPresetResolver,
  loadPresets,
  mergeProvider,
  overrideVariableName,
  PRESETS_DIR,
  presetAvailability,
  presetKeyVariables,
  presetOnlyConfig,
} from "./presets.ts";

/** The presets the issue asks for; more may be added, none may go missing. */
const REQUIRED_PRESETS = [
  "openrouter",
  "gemini",
  "groq",
  "cerebras",
  "mistral",
  "codestral",
  "nvidia",
  "github",
  "cohere",
  "cloudflare",
  "sambanova",
  "together",
  "fireworks",
  "hyperbolic",
  "scaleway",
  "chutes",
  "huggingface",
];

function load(text: string, env: Env = {}) {
  return parseConfigText(text, "test.yaml", { env, resolvePreset: createPresetResolver(loadPresets(env)) });
}

function configError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  assert.fail("expected a ConfigError");
}

describe("preset files", () => {
  const presets = loadPresets({});

  it("cover every provider of the free-tier catalog", () => {
    for (const name of REQUIRED_PRESETS) assert.ok(presets.has(name), `no preset "${name}"`);
  });

  it("each name a known rate-limit dialect, a key variable and at least one dated source", () => {
    for (const preset of presets.values()) {
      const dialect = preset.provider.rate_limit_dialect ?? "generic";
      assert.ok(dialect in RATE_LIMIT_DIALECTS, `${preset.name}: unknown dialect "${dialect}"`);
      assert.match(presetKeyVariables(preset)[0] ?? "", /^[A-Z][A-Z0-9_]*$/, preset.name);
      assert.ok(preset.sources.length > 0, `${preset.name}: no sources`);
      for (const source of preset.sources) assert.match(source.date, /^20\d\d-\d\d-\d\d$/, preset.name);
    }
  });

  it("each says whether it costs money; OpenRouter's `:free` ids are free, its others paid, one pool per key", () => {
    for (const preset of presets.values()) {
      assert.ok(preset.provider.cost === "free" || preset.provider.cost === "paid", `${preset.name}: no cost`);
    }
    assert.equal(presets.get("groq")?.provider.cost, "free");
    assert.equal(presets.get("fireworks")?.provider.cost, "paid");
    const config = load(
      "providers:\n  - preset: openrouter\n    api_key: sk-or\n    models: { a: { id: 'meta/llama:free' }, b: { id: 'openai/gpt-4o' } }\n",
    );
    const openrouter = config.config.providers[0];
    assert.ok(openrouter !== undefined);
    assert.equal(openrouter.rateLimitScope, "account");
    const [free, paid] = openrouter.models ?? [];
    assert.ok(free !== undefined && paid !== undefined);
    assert.equal(costClassOf(free, openrouter), "free");
    assert.equal(costClassOf(paid, openrouter), "paid");
    assert.equal(costClassOf({ ...paid, cost: "free" }, openrouter), "free");
  });

  it("use the documented base URLs and key variables", () => {
    const expected: Record<string, [string, string]> = {
      openrouter: ["https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"],
      gemini: ["https://generativelanguage.googleapis.com/v1beta/openai", "GEMINI_API_KEY"],
      groq: ["https://api.groq.com/openai/v1", "GROQ_API_KEY"],
      cerebras: ["https://api.cerebras.ai/v1", "CEREBRAS_API_KEY"],
      mistral: ["https://api.mistral.ai/v1", "MISTRAL_API_KEY"],
      codestral: ["https://codestral.mistral.ai/v1", "CODESTRAL_API_KEY"],
      github: ["https://models.github.ai/inference", "GITHUB_TOKEN"],
      cohere: ["https://api.cohere.ai/compatibility/v1", "COHERE_API_KEY"],
      huggingface: ["https://router.huggingface.co/v1", "HF_TOKEN"],
    };
    for (const [name, [baseUrl, variable]] of Object.entries(expected)) {
      const preset = presets.get(name);
      assert.equal(preset?.provider.base_url, baseUrl, name);
      assert.equal(preset?.provider.api_key_env_var, variable, name);
    }
    assert.deepEqual(presets.get("gemini")?.provider.api_key_env_var_aliases, ["GOOGLE_API_KEY"]);
    assert.equal(presets.get("gemini")?.provider.day_reset, "00:00 America/Los_Angeles");
    assert.equal(presets.get("openrouter")?.provider.discovery_include, ":free$");
    assert.deepEqual(presets.get("openrouter")?.provider.limits, { rpm: 20, rpd: 50 });
  });

  it("interpolate variables from the environment (Cloudflare's account id)", () => {
    const cloudflare = loadPresets({ CLOUDFLARE_ACCOUNT_ID: "acc123" }).get("cloudflare");
    assert.equal(cloudflare?.provider.base_url, "https://api.cloudflare.com/client/v4/accounts/acc123/ai/v1");
    assert.match(cloudflare?.provider.model_url ?? "", /accounts\/acc123\/ai\/models\/search\?task=/);
  });
});

describe("an entry without `preset:` whose base_url is a preset's (the Python project's files)", () => {
  const templates = presetBaseUrlTemplates(PRESETS_DIR);

  it("the cheap scan of the files' base_url lines gives what their YAML says, for every preset", () => {
    const presets = loadPresets({});
    assert.deepEqual(
      [...templates],
      [...presets.values()].map((preset) => [preset.name, preset.baseUrlTemplate]),
    );
  });

  it("matches the host and path, with or without a trailing slash, whatever the scheme or the host's case", () => {
    for (const url of [
      "https://api.groq.com/openai/v1",
      "https://api.groq.com/openai/v1/",
      "http://api.groq.com/openai/v1",
      "https://API.Groq.com:443/openai/v1//",
    ]) {
      assert.deepEqual(matchPresetUrl(url, templates), { preset: "groq", variables: {} }, url);
    }
    for (const url of [
      "https://api.groq.com/openai",
      "https://api.groq.com/openai/v1/chat",
      "https://api.groq.com/openai/v1?x=1",
      "https://api.groq.com:8443/openai/v1",
      "https://groq.example.com/openai/v1",
      "https://api.cloudflare.com/client/v4/accounts//ai/v1",
    ]) {
      assert.equal(matchPresetUrl(url, templates), undefined, url);
    }
    assert.deepEqual(matchPresetUrl("https://api.cloudflare.com/client/v4/accounts/abc123/ai/v1/", templates), {
      preset: "cloudflare",
      variables: { CLOUDFLARE_ACCOUNT_ID: "abc123" },
    });
  });

  it("gets the preset's dialect, budgets, free marking and key aliases; what the entry writes wins", () => {
    const { config } = load(
      `providers:
  - base_url: https://api.groq.com/openai/v1/
    api_key_env_var: GROQ_API_KEY
    limits: { rpd: 500 }
    known_models:
      llama-3.3-70b-versatile: { limits: { rpm: 5 } }
  - name: gem
    base_url: https://generativelanguage.googleapis.com/v1beta/openai
`,
      { GROQ_API_KEY: "gsk-1", GOOGLE_API_KEY: "g-1" },
    );
    const [groq, gemini] = config.providers;
    assert.equal(groq?.name, "groq");
    assert.equal(groq?.baseUrl, "https://api.groq.com/openai/v1");
    assert.deepEqual(groq?.presetOrigin, { preset: "groq", by: "base_url" });
    assert.equal(groq?.rateLimitDialect, "groq");
    assert.equal(groq?.cost, "free");
    assert.deepEqual(groq?.limits, { rpd: 500, window: "bucket", windowSource: groq?.limits?.windowSource });
    assert.deepEqual(groq?.knownModels["llama-3.3-70b-versatile"]?.limits, {
      rpm: 5,
      rpd: 1000,
      tpm: 12000,
      tpd: 100000,
    });
    // The entry's name stays its own: pinned names (`gem/...`) and stored budgets keep theirs.
    assert.equal(gemini?.name, "gem");
    assert.deepEqual(gemini?.apiKeys, ["g-1"], "the preset's key variable and its alias GOOGLE_API_KEY");
    assert.equal(gemini?.discoveryIdStripPrefix, "models/");
    assert.deepEqual(gemini?.presetOrigin, { preset: "gemini", by: "base_url" });
  });

  it("a Cloudflare URL with its account id needs no CLOUDFLARE_ACCOUNT_ID, and lists models of that account", () => {
    const { config } = load("providers:\n  - base_url: https://api.cloudflare.com/client/v4/accounts/abc123/ai/v1\n", {
      CLOUDFLARE_API_TOKEN: "cf-1",
      CLOUDFLARE_ACCOUNT_ID: "someone-else",
    });
    const [cloudflare] = config.providers;
    assert.equal(cloudflare?.name, "cloudflare");
    assert.deepEqual(cloudflare?.apiKeys, ["cf-1"]);
    assert.match(cloudflare?.modelUrl ?? "", /\/accounts\/abc123\/ai\/models\/search\?task=/);
    const unset = load("providers:\n  - base_url: https://api.cloudflare.com/client/v4/accounts/abc123/ai/v1\n", {
      CLOUDFLARE_API_TOKEN: "cf-1",
    });
    assert.deepEqual(unset.config.skippedProviders, []);
    assert.equal(unset.config.providers[0]?.discoveryIdField, "name");
  });

  it("an entry writing `api_key` keeps it: an unset variable there leaves it skipped, not on the preset's variable", () => {
    const { config } = load(`providers:\n  - base_url: https://api.groq.com/openai/v1\n    api_key: \${MY_GROQ}\n`, {
      GROQ_API_KEY: "gsk-other",
    });
    assert.deepEqual(config.providers, []);
    assert.match(config.skippedProviders[0]?.reason ?? "", /MY_GROQ/);
  });

  it("a `- preset:` entry writing `api_key` keeps it too: unset there, it has no key rather than the preset's", () => {
    const env = { GROQ_API_KEY: "gsk-other", OTHER_KEY: "k-other" };
    const { config } = load(
      `providers:
  - preset: groq
    api_key: \${MY_GROQ}
  - name: own-variable
    base_url: http://127.0.0.1:9/v1
    api_key: \${MY_LOCAL}
    api_key_env_var: OTHER_KEY
    models: { m: {} }
  - name: written-empty
    base_url: http://127.0.0.1:9/v1
    api_key: ""
    models: { m: {} }
  - preset: groq
    name: fallback
`,
      env,
    );
    // Before, the first two sent with GROQ_API_KEY's and OTHER_KEY's keys.
    assert.deepEqual(
      config.providers.map((provider) => [provider.name, provider.apiKeys]),
      [["fallback", ["gsk-other"]]],
    );
    assert.deepEqual(config.skippedProviders, [
      {
        name: "groq",
        reason:
          "no API key: environment variable MY_GROQ is not set; GROQ_API_KEY is set but not used in its place (api_key is written): remove api_key to use it",
        location: "test.yaml:2",
      },
      {
        name: "own-variable",
        reason:
          "no API key: environment variable MY_LOCAL is not set; OTHER_KEY is set but not used in its place (api_key is written): remove api_key to use it",
        location: "test.yaml:4",
      },
      { name: "written-empty", reason: "no API key: api_key is empty", location: "test.yaml:9" },
    ]);
  });

  it("`preset: none` keeps an entry as written; other URLs are not recognised", () => {
    const { config } = load(
      `providers:
  - base_url: https://api.groq.com/openai/v1
    api_key: k
    preset: none
  - base_url: http://127.0.0.1:9/v1
    api_key: k
`,
    );
    const [groq, local] = config.providers;
    assert.equal(groq?.presetOrigin, undefined);
    assert.equal(groq?.rateLimitDialect, "generic");
    assert.equal(groq?.cost, "paid");
    assert.deepEqual(groq?.knownModels, {});
    assert.equal(local?.presetOrigin, undefined);
    // And without presets at all (the demo's config), `none` is not an unknown preset.
    assert.equal(
      parseConfigText("providers:\n  - base_url: http://127.0.0.1:9/v1\n    api_key: k\n    preset: none\n", "t.yaml", {
        env: {},
      }).config.providers.length,
      1,
    );
  });

  it("a `- preset: groq` entry says so too", () => {
    const { config } = load("providers:\n  - preset: groq\n", { GROQ_API_KEY: "gsk-1" });
    assert.deepEqual(config.providers[0]?.presetOrigin, { preset: "groq", by: "name" });
  });
});

describe("- preset: name in a config file", () => {
  it("a bare `- preset: groq` takes the key from its usual variable", () => {
    const { config } = load("providers:\n  - preset: groq\n", { GROQ_API_KEY: "gsk-1" });
    const [groq] = config.providers;
    assert.equal(groq?.name, "groq");
    assert.equal(groq?.baseUrl, "https://api.groq.com/openai/v1");
    assert.deepEqual(groq?.apiKeys, ["gsk-1"]);
    assert.equal(groq?.rateLimitDialect, "groq");
    assert.equal(groq?.knownModels["llama-3.3-70b-versatile"]?.limits?.rpd, 1000);
  });

  it("any field can be overridden; limits and known models merge, models replace", () => {
    const { config } = load(
      `providers:
  - preset: openrouter
    base_priority: 2
    limits: { rpd: 1000 }
    known_models:
      "x/y:free": { context: 8192 }
    models:
      llama: { id: "meta-llama/llama-3.3-70b-instruct:free" }
`,
      { OPENROUTER_API_KEY: "sk-or" },
    );
    const [openrouter] = config.providers;
    assert.equal(openrouter?.basePriority, 2);
    assert.deepEqual(openrouter?.limits, { rpm: 20, rpd: 1000 });
    assert.equal(openrouter?.knownModels["x/y:free"]?.contextTokens, 8192);
    assert.deepEqual(
      openrouter?.models?.map((model) => model.id),
      ["meta-llama/llama-3.3-70b-instruct:free"],
    );
  });

  it("an unknown preset is a config error at the entry's line that lists the known ones", () => {
    const error = configError(() => load("providers:\n  - preset: groq\n  - preset: grok\n", { GROQ_API_KEY: "k" }));
    const [issue] = error.issues;
    assert.equal(issue?.location, "test.yaml:3");
    assert.equal(issue?.path, "providers.1.preset");
    assert.match(issue?.message ?? "", /unknown preset "grok"; did you mean "groq"\?; known presets: .*groq/);
    assert.match(issue?.message ?? "", /openrouter/);
  });

  it("a provider needing an unset variable besides its key is skipped with the reason", () => {
    const { config, warnings } = load("providers:\n  - preset: cloudflare\n", { CLOUDFLARE_API_TOKEN: "cf" });
    assert.equal(config.providers.length, 0);
    assert.deepEqual(config.skippedProviders, [
      { name: "cloudflare", reason: "environment variable CLOUDFLARE_ACCOUNT_ID is not set", location: "test.yaml:2" },
    ]);
    assert.equal(
      warnings.join("\n"),
      'provider "cloudflare" (test.yaml:2) skipped: environment variable CLOUDFLARE_ACCOUNT_ID is not set',
    );
  });

  it("a key alias stands in for the preset's variable; an entry's own variable drops the aliases", () => {
    const viaAlias = load("providers:\n  - preset: gemini\n", { GOOGLE_API_KEY: "g-alias" });
    assert.deepEqual(viaAlias.config.providers[0]?.apiKeys, ["g-alias"]);
    const own = load("providers:\n  - preset: gemini\n    api_key_env_var: MY_GEMINI\n", { GOOGLE_API_KEY: "g" });
    assert.equal(own.config.providers.length, 0);
    assert.match(own.config.skippedProviders[0]?.reason ?? "", /MY_GEMINI is not set/);
  });
});

describe("mergeProvider", () => {
  const preset: RawProvider = {
    name: "p",
    base_url: "https://p.example/v1",
    api_key_env_var: "P_KEY",
    api_key_env_var_aliases: ["P_OTHER_KEY"],
    headers: { "x-a": "1" },
    limits: { rpm: 10, rpd: 100 },
    known_models: { m: { context: 1000, limits: { rpd: 5, tpm: 50 } } },
  };

  it("the entry wins field by field; headers, limits and known models merge", () => {
    const merged = mergeProvider(preset, {
      preset: "p",
      headers: { "x-b": "2" },
      limits: { rpd: 200 },
      known_models: { m: { limits: { rpd: 7 } }, n: { context: 5 } },
    });
    assert.deepEqual(merged.headers, { "x-a": "1", "x-b": "2" });
    assert.deepEqual(merged.limits, { rpm: 10, rpd: 200 });
    assert.deepEqual(merged.known_models, { m: { context: 1000, limits: { rpd: 7, tpm: 50 } }, n: { context: 5 } });
    assert.deepEqual(merged.api_key_env_var_aliases, ["P_OTHER_KEY"]);
  });

  it("an entry with its own key keeps none of the preset's aliases", () => {
    assert.equal(mergeProvider(preset, { api_key: "literal" }).api_key_env_var_aliases, undefined);
    assert.equal(mergeProvider(preset, { api_key_env_var: ["A", "B"] }).api_key_env_var_aliases, undefined);
  });
});

describe("LLM_GATEWAY_PRESET_<PRESET>_<FIELD>", () => {
  it("overrides a preset field, parsed as YAML; the config entry still wins", () => {
    const env = {
      GROQ_API_KEY: "k",
      [overrideVariableName("groq", "base_url")]: "http://127.0.0.1:9/v1",
      [overrideVariableName("groq", "limits")]: "{ rpm: 3 }",
    };
    const presets = loadPresets(env);
    assert.equal(presets.get("groq")?.provider.base_url, "http://127.0.0.1:9/v1");
    assert.deepEqual(presets.get("groq")?.provider.limits, { rpm: 3 });
    const { config } = load("providers:\n  - preset: groq\n    limits: { rpm: 4 }\n", env);
    assert.equal(config.providers[0]?.baseUrl, "http://127.0.0.1:9/v1");
    assert.deepEqual(config.providers[0]?.limits, { rpm: 4 });
  });

  it("a variable naming no preset field, or an invalid value, is an error naming the variable", () => {
    const typo = configError(() => loadPresets({ LLM_GATEWAY_PRESET_GROQ_BASEURL: "http://x" }));
    assert.equal(typo.issues[0]?.path, "LLM_GATEWAY_PRESET_GROQ_BASEURL");
    assert.equal(typo.issues[0]?.message, 'names no preset field; did you mean "LLM_GATEWAY_PRESET_GROQ_BASE_URL"?');
    const inner = configError(() => loadPresets({ LLM_GATEWAY_PRESET_GROQ_LIMITS: "{ rmp: 3 }" }));
    assert.deepEqual(
      inner.issues.map((issue) => `${issue.location} ${issue.path}: ${issue.message}`),
      ['environment LLM_GATEWAY_PRESET_GROQ_LIMITS limits.rmp: unknown key "rmp"; did you mean "rpm"?'],
    );
    const far = configError(() => loadPresets({ LLM_GATEWAY_PRESET_NOPE: "1" }));
    assert.match(far.issues[0]?.message ?? "", /^names no preset field: expected LLM_GATEWAY_PRESET_<PRESET>_<FIELD>/);
    const invalid = configError(() => loadPresets({ LLM_GATEWAY_PRESET_GROQ_TIMEOUT_MS: "-5" }));
    assert.equal(invalid.issues[0]?.location, "environment LLM_GATEWAY_PRESET_GROQ_TIMEOUT_MS");
    // A body rule's value JSON cannot carry (it was sent as null) is refused from the environment too.
    const body = configError(() =>
      loadPresets({ LLM_GATEWAY_PRESET_GROQ_BODY: "{ defaults: { temperature: .nan } }" }),
    );
    assert.deepEqual(
      body.issues.map((issue) => `${issue.location} ${issue.path}`),
      ["environment LLM_GATEWAY_PRESET_GROQ_BODY body.defaults.temperature"],
    );
    const fine = loadPresets({ LLM_GATEWAY_PRESET_GROQ_BODY: "{ defaults: { temperature: 0.6 }, drop: [logprobs] }" });
    assert.deepEqual(fine.get("groq")?.provider.body, { defaults: { temperature: 0.6 }, drop: ["logprobs"] });
  });
});

describe("presetAvailability (no config file)", () => {
  it("enables the presets with keys and names what the others miss", () => {
    const env = { GROQ_API_KEY: "k", GOOGLE_API_KEY: "g", CLOUDFLARE_API_TOKEN: "c" };
    const availability = presetAvailability(loadPresets(env), env);
    assert.deepEqual(availability.enabled, ["gemini", "groq"]);
    const missing = new Map(availability.missing.map((entry) => [entry.name, entry.variables]));
    assert.equal(missing.get("openrouter"), "OPENROUTER_API_KEY");
    assert.equal(missing.get("cloudflare"), "CLOUDFLARE_ACCOUNT_ID");
    assert.equal(missing.get("huggingface"), "HF_TOKEN or HUGGINGFACE_API_KEY or HUGGINGFACEHUB_API_TOKEN");
    assert.deepEqual(presetOnlyConfig(availability), { providers: [{ preset: "gemini" }, { preset: "groq" }] });
  });
});

describe("several keys for one provider", () => {
  it("become one provider per key, named by the key's position, each with one key", () => {
    const { config, warnings } = load(
      "providers:\n  - preset: groq\n    api_key_env_var: [GROQ_KEY_1, GROQ_KEY_2, GROQ_KEY_3]\n",
      { GROQ_KEY_1: "k1", GROQ_KEY_3: "k3" },
    );
    assert.deepEqual(
      config.providers.map((provider) => [provider.name, provider.apiKeys]),
      [
        ["groq", ["k1"]],
        ["groq.3", ["k3"]],
      ],
    );
    assert.equal(config.providers[1]?.baseUrl, "https://api.groq.com/openai/v1");
    assert.match(warnings.join("\n"), /GROQ_KEY_2 is not set; using its other keys/);
  });

  it("a generated name that another entry already uses is a config error", () => {
    const error = configError(() =>
      load(
        `providers:
  - name: groq.2
    base_url: https://other.example/v1
    api_key: x
  - preset: groq
    api_key_env_var: [A, B]
`,
        { A: "a", B: "b" },
      ),
    );
    assert.match(error.issues[0]?.message ?? "", /key 2 would be provider "groq.2"/);
  });
});
