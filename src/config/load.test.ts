import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, type TestContext, test } from "node:test";
import { ConfigError } from "./config-error.ts";
import { loadEnv, lookalikeVariablesHint } from "./env.ts";
import { parseConfigText } from "./load.ts";
import type { RawProvider } from "./schema.ts";

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

  test("references to other variables in .env values expand as python-dotenv does: environment first, then lines above", (t) => {
    const dir = dirWithDotEnv(
      t,
      `BASE=sk-from-file\nGROQ_API_KEY=\${BASE}\nOTHER=\${FROM_PROCESS}-x\nFALLBACK=\${NOT_SET:-dflt}\nLATER=\${DEFINED_BELOW}\nDEFINED_BELOW=v\n`,
    );
    const env = loadEnv(dir, { FROM_PROCESS: "proc" });
    assert.equal(env.GROQ_API_KEY, "sk-from-file");
    assert.equal(env.OTHER, "proc-x");
    assert.equal(env.FALLBACK, "dflt");
    assert.equal(env.LATER, "", "only lines above are read, as python-dotenv does");
  });

  test("a .env saved by Windows tools (byte-order mark, CRLF) sets its first variable too", (t) => {
    const dir = dirWithDotEnv(t, '\uFEFFGROQ_API_KEY=gsk_first\r\nexport GEMINI_API_KEY="AIza-second" # note\r\n');
    const env = loadEnv(dir, {});
    assert.deepEqual(Object.keys(env).sort(), ["GEMINI_API_KEY", "GROQ_API_KEY"]);
    assert.equal(env.GROQ_API_KEY, "gsk_first");
    assert.equal(env.GEMINI_API_KEY, "AIza-second");
  });

  test("a key variable that is not set names the set variables that look like it (never their values)", () => {
    const env = {
      GROQ_KEY: "gsk_secret",
      groq_api_key: "gsk_other",
      GROQ_BASE_URL: "http://x",
      OTHER_KEY: "k",
      EMPTY_KEY: "",
    };
    assert.equal(
      lookalikeVariablesHint(["GROQ_API_KEY"], env),
      " (GROQ_KEY, groq_api_key are set, under another name)",
      "same first word and a credential word, or the same name in another case; not GROQ_BASE_URL, not OTHER_KEY",
    );
    assert.equal(
      lookalikeVariablesHint(["GEMINI_API_KEY", "GOOGLE_API_KEY"], { GOOGLE_KEY: "AIza" }),
      " (GOOGLE_KEY is set, under another name)",
    );
    assert.equal(lookalikeVariablesHint(["MISTRAL_API_KEY"], env), "");
    assert.equal(lookalikeVariablesHint(["EMPTY_API_KEY"], env), "", "an empty variable is not set");
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
    // The entry's file and line: the variable alone does not say which entry wants it.
    assert.match(warnings[0] ?? "", /^provider "gamma" \(test\.yaml:\d+\) skipped: .*GAMMA_KEY/);
    assert.deepEqual(
      config.skippedProviders.map((entry) => entry.name),
      ["gamma"],
    );
  });

  test("a key substituted where a variable's name belongs (api_key_env_var naming $VAR's value) is refused without printing it", () => {
    // The second and third are shaped like Groq's and Mistral's keys: letters, digits and `_` only, a valid variable
    // name. Before, they passed and were printed ("environment variable gsk_... is not set").
    for (const [secret, field] of [
      "sk-alpha-SECRET-1111",
      "gsk_Alpha0Secret1Shaped2Like3A4Groq5Key",
      "Q2xpY2tlZEFscGhhU2VjcmV0MTExMTExMQ",
    ].flatMap((secret) =>
      [
        `api_key_env_var: \${ALPHA_KEY}`,
        `api_key_env_var: ["\${ALPHA_KEY}"]`,
        `api_key_env_var: [OTHER_KEY, "\${ALPHA_KEY}"]`,
        `api_key_env_var_aliases: ["\${ALPHA_KEY}"]`,
        `required_env_vars: ["\${ALPHA_KEY}"]`,
      ].map((field) => [secret, field] as const),
    )) {
      const text = `providers:\n  - name: alpha\n    base_url: http://127.0.0.1:1/v1\n    api_key: sk-x\n    ${field}\n    models: { m: {} }\n`;
      const thrown = (() => {
        try {
          parseConfigText(text.replace("api_key: sk-x\n    api_key_env_var", "api_key_env_var"), "test.yaml", {
            env: { ALPHA_KEY: secret },
          });
        } catch (error) {
          return error;
        }
        return undefined;
      })();
      assert.ok(thrown instanceof ConfigError, field);
      const message = thrown.message;
      assert.match(message, /must be the name of an environment variable/, field);
      assert.ok(!message.includes(secret), `${field}: ${message}`);
    }
  });
});

describe("the schema resolves the config", () => {
  test("defaults come from the schema; the result is camelCase and frozen all the way down", () => {
    const { config } = parseConfigText(
      `providers:
  - name: alpha
    base_url: http://127.0.0.1:1/v1/
    api_key: sk-alpha
    limits: { rpm: 10, tokens_per_month: 5000 }
    known_models: { Some/Model-ID: { context: 8192 } }
    models:
      m: ~
      n: { id: upstream-n, priority: 3, context: 4096, params_b: 7 }
meta_models:
  big: { min_context: 32000, min_params_b: 30 }
  pair: [m, n]
scoring:
  MODEL_PARAM_SCORE_SCALAR: 4
  leaderboards: { lmarena: 2, bigcodebench: 1 }
`,
      "test.yaml",
      { env: {} },
    );
    assert.deepEqual(config.routing, {
      maxAttempts: 6,
      totalTimeoutMs: 120_000,
      maxStreamDurationMs: 600_000,
      maxWaitForBetterMs: 2_000,
      waitScoreRatio: 0.8,
      paid: "last_resort",
      strategy: "best",
      queueTimeoutMs: 0,
      maxQueued: 100,
      stickyTtlMs: 0,
    });
    assert.equal(config.server.port, 12345);
    assert.equal(config.cooldowns.circuitOpenMs, 30_000);
    assert.equal(config.discovery.maxAgeMs, 86_400_000);
    assert.equal(config.state.flushIntervalMs, 1_000);
    const [alpha] = config.providers;
    assert.equal(alpha?.baseUrl, "http://127.0.0.1:1/v1");
    assert.equal(alpha?.modelUrl, "http://127.0.0.1:1/v1");
    assert.equal(alpha?.timeoutMs, 30_000);
    assert.equal(alpha?.retries, 1);
    assert.deepEqual(alpha?.dayReset, { minuteOfDay: 0, timeZone: "UTC" });
    assert.deepEqual(alpha?.limits, { rpm: 10, tokensPerMonth: 5000 });
    assert.deepEqual(alpha?.knownModels, { "some/model-id": { contextTokens: 8192 } });
    assert.deepEqual(alpha?.models, [
      { publicName: "m", id: "m", priority: 0, contextTokens: undefined },
      { publicName: "n", id: "upstream-n", priority: 3, contextTokens: 4096, paramsB: 7 },
    ]);
    assert.deepEqual(config.metaModels.big, { kind: "filter", filter: { minContext: 32000, minParamsB: 30 } });
    assert.deepEqual(config.metaModels.pair, { kind: "list", names: ["m", "n"] });
    assert.equal(config.scoring.weights.MODEL_PARAM_SCORE_SCALAR, 4);
    assert.equal(config.scoring.weights.MODEL_LEADERBOARD_SCORE_SCALAR, 10);
    assert.deepEqual(config.scoring.boardWeights, { lmarena_text: 2, bigcodebench_full: 1, bigcodebench_hard: 1 });
    assert.ok(Object.isFrozen(config.routing) && Object.isFrozen(alpha?.models?.[1]) && Object.isFrozen(alpha?.limits));
  });

  test("every unknown key is reported at its own line with the close known key, `scoring:` ones with the known keys", () => {
    assert.throws(
      () =>
        parseConfigText(
          "routing:\n  max_atempts: 3\n  strateg: best\nscoring:\n  leaderboards: [lmarena, arena]\n  TYPO: 1\n",
          "test.yaml",
          { env: {} },
        ),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        const lines = error.message.split("\n");
        assert.equal(
          lines[0],
          'test.yaml:2 routing.max_atempts: unknown key "max_atempts"; did you mean "max_attempts"?',
        );
        assert.equal(lines[1], 'test.yaml:3 routing.strateg: unknown key "strateg"; did you mean "strategy"?');
        assert.match(error.message, /^test\.yaml:5 scoring\.leaderboards\.1: unknown leaderboard "arena"/m);
        assert.match(error.message, /^test\.yaml:6 scoring\.TYPO: unknown key "TYPO"; known: .*leaderboards/m);
        assert.equal(lines.length, 4, error.message);
        return true;
      },
    );
  });

  test("body rules: the fields the gateway or the request itself sets are refused, a field both dropped and overridden too", () => {
    const text = [
      "providers:",
      "  - base_url: https://api.example.com/v1",
      "    api_key: k",
      "    body:",
      "      drop: [messages, logprobs]",
      "      override: { logprobs: false, stream_options: {} }",
      "    models:",
      "      m: { body: { defaults: { temperature: 0.6 } } }",
      "      whisper-large-v3: { body: { override: { file: silence.wav } } }",
      "",
    ].join("\n");
    assert.throws(
      () => parseConfigText(text, "test.yaml", { env: {} }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, /`messages` cannot be changed by a body rule/);
        // The audio of an upload: replaced by a rule's text, every provider was sent no file at all.
        assert.match(error.message, /whisper-large-v3\.body\.override\.file: `file` cannot be changed by a body rule/);
        assert.match(error.message, /`stream_options` cannot be changed by a body rule.*inject_stream_usage: false/);
        assert.match(error.message, /`logprobs` is both dropped and overridden/);
        return true;
      },
    );
    const ok = parseConfigText(
      text
        .replace("messages, ", "")
        .replace(", stream_options: {}", "")
        .replace("logprobs: false", "seed: 1")
        .replace("file: silence.wav", "language: en"),
      "test.yaml",
      { env: {} },
    );
    const provider = ok.config.providers[0];
    assert.deepEqual(provider?.body, { drop: ["logprobs"], override: { seed: 1 } });
    assert.deepEqual(provider?.models?.[0]?.body, { defaults: { temperature: 0.6 } });
  });

  test("body rules: a value JSON cannot carry is refused where it is written, every one of them", () => {
    // Before, each was taken and sent otherwise than written: `.inf` and `.nan` as null, a `!!set` as {}, a
    // `!!binary` as an object of byte indexes, and a `__proto__` key vanished.
    const text = [
      "providers:",
      "  - base_url: https://api.example.com/v1",
      "    api_key: k",
      "    body:",
      "      defaults:",
      "        temperature: .inf",
      "        metadata: { tags: !!set { a, b }, ok: [1, { top_p: .nan }] }",
      "      override:",
      "        seed: !!binary aGk=",
      "        __proto__: { temperature: 2 }",
      "    models:",
      "      m: { body: { defaults: { when: !!timestamp 2001-12-14 } } }",
      "",
    ].join("\n");
    assert.throws(
      () => parseConfigText(text, "test.yaml", { env: {} }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.deepEqual(
          error.issues.map((issue) => `${issue.location} ${issue.path}`),
          [
            "test.yaml:6 providers.0.body.defaults.temperature",
            "test.yaml:7 providers.0.body.defaults.metadata.tags",
            "test.yaml:7 providers.0.body.defaults.metadata.ok.1.top_p",
            "test.yaml:9 providers.0.body.override.seed",
            "test.yaml:10 providers.0.body.override.__proto__",
            "test.yaml:12 providers.0.models.m.body.defaults.when",
          ],
        );
        assert.match(error.message, /temperature: is Infinity \(YAML \.inf or \.nan\), which JSON cannot carry/);
        assert.match(error.message, /tags: is a YAML Set/);
        assert.match(error.message, /seed: is a YAML Buffer/);
        assert.match(error.message, /__proto__: is a `__proto__` key/);
        return true;
      },
    );
    const ok = parseConfigText(
      text
        .replace(".inf", "0.6")
        .replace("!!set { a, b }", "[a, b]")
        .replace(".nan", "0.9")
        .replace("!!binary aGk=", "7")
        .replace("__proto__", "top_p")
        .replace("!!timestamp 2001-12-14", '"2001-12-14"'),
      "test.yaml",
      { env: {} },
    );
    assert.deepEqual(ok.config.providers[0]?.body?.defaults, {
      temperature: 0.6,
      metadata: { tags: ["a", "b"], ok: [1, { top_p: 0.9 }] },
    });
  });

  test("a timer longer than Node can run is refused: it would fire at once and end every stream", () => {
    // Before, `max_stream_duration_ms: 3000000000` (meant as "no limit") was taken, and Node's timer, clamped to
    // 1 ms, ended every stream right after its first chunk with `upstream_timeout`.
    assert.throws(
      () =>
        parseConfigText(
          "routing:\n  max_stream_duration_ms: 3000000000\nproviders:\n  - name: alpha\n    base_url: http://127.0.0.1:1/v1\n    api_key: k\n    stream_idle_timeout_ms: 2147483648\n    models: { m: {} }\n",
          "test.yaml",
          { env: {} },
        ),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, /^test\.yaml:2 routing\.max_stream_duration_ms: at most 2147483647 ms/m);
        assert.match(error.message, /^test\.yaml:7 providers\.0\.stream_idle_timeout_ms: at most 2147483647 ms/m);
        return true;
      },
    );
    const config = parseConfigText("routing:\n  max_stream_duration_ms: 2147483647\n", "test.yaml", { env: {} }).config;
    assert.equal(config.routing.maxStreamDurationMs, 2_147_483_647);
  });

  test("responses.store.write_timeout_ms longer than Node can run is refused: every answer would count as not kept", () => {
    // Taken before (a plain positive integer): the keep's bound, clamped by Node to 1 ms, gave up on every write at
    // once, so each Responses answer was marked not kept and a GET of it told "could not be stored".
    assert.throws(
      () => parseConfigText("responses:\n  store:\n    write_timeout_ms: 3000000000\n", "test.yaml", { env: {} }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, /^test\.yaml:3 responses\.store\.write_timeout_ms: at most 2147483647 ms/m);
        return true;
      },
    );
    const config = parseConfigText("responses:\n  store:\n    write_timeout_ms: 2147483647\n", "test.yaml", {
      env: {},
    }).config;
    assert.equal(config.responses.store.writeTimeoutMs, 2_147_483_647);
  });

  test("an unknown rate_limit_dialect is refused with the known ones: a typo would read no rate-limit header at all", () => {
    assert.throws(
      () =>
        parseConfigText(
          "providers:\n  - name: alpha\n    base_url: http://127.0.0.1:1/v1\n    api_key: k\n    rate_limit_dialect: grok\n",
          "test.yaml",
          { env: {} },
        ),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, /^test\.yaml:5 providers\.0\.rate_limit_dialect: .*"groq".*"generic"/m);
        return true;
      },
    );
  });

  test("`moderation_api` beside another `kind` is refused where it is written (a model's or a known model's)", () => {
    const text = `providers:
  - name: alpha
    base_url: http://127.0.0.1:1/v1
    api_key: k
    known_models:
      acme-embed: { kind: embedding, moderation_api: native }
    models:
      guard: { id: acme-safety, kind: chat, moderation_api: llama_guard }
      fine: { id: acme-safety-2, kind: moderation, moderation_api: llama_guard }
      lg: { id: acme-safety-3, moderation_api: guard }
`;
    assert.throws(
      () => parseConfigText(text, "test.yaml", { env: {} }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(
          error.message,
          /^test\.yaml:6 providers\.0\.known_models\.acme-embed\.moderation_api: .*`kind: embedding`/m,
        );
        assert.match(error.message, /^test\.yaml:8 providers\.0\.models\.guard\.moderation_api: .*`kind: chat`/m);
        assert.match(
          error.message,
          /^test\.yaml:10 providers\.0\.models\.lg\.moderation_api: .*"native".*"llama_guard"/m,
        );
        assert.doesNotMatch(error.message, /models\.fine/);
        return true;
      },
    );
  });
});

test("a redis_key_prefix with a brace is refused at its line: it would put every key in one Redis Cluster slot", () => {
  for (const prefix of ["gw{1}:", "gw}:", "{gw"]) {
    assert.throws(
      () =>
        parseConfigText(`state:\n  redis_url: redis://127.0.0.1:6379\n  redis_key_prefix: "${prefix}"\n`, "test.yaml", {
          env: {},
        }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError, String(error));
        assert.match(error.message, /^test\.yaml:3 state\.redis_key_prefix: .*hash tag/m);
        return true;
      },
      prefix,
    );
  }
  const { config } = parseConfigText('state:\n  redis_key_prefix: "gw:prod:"\n', "test.yaml", { env: {} });
  assert.equal(config.state.redisKeyPrefix, "gw:prod:");
});

describe("problems found after the schema", () => {
  const resolvePreset = (entry: RawProvider): RawProvider => {
    if (entry.preset === undefined) return entry;
    throw new Error(`unknown preset "${entry.preset}"`);
  };

  test("an unknown preset is listed with the schema's problems, in file order; an entry with its own problem adds no echo", () => {
    assert.throws(
      () =>
        parseConfigText(
          "providers:\n  - preset: grok\n  - name: a\n    base_ulr: http://127.0.0.1:1/v1\n    api_key: k\nrouting:\n  max_atempts: 3\n",
          "test.yaml",
          { env: {}, resolvePreset },
        ),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.deepEqual(error.message.split("\n"), [
          'test.yaml:2 providers.0.preset: unknown preset "grok"',
          'test.yaml:4 providers.1.base_ulr: unknown key "base_ulr"; did you mean "base_url"?',
          'test.yaml:7 routing.max_atempts: unknown key "max_atempts"; did you mean "max_attempts"?',
        ]);
        return true;
      },
    );
  });

  test("a value left empty by unset variables names them", () => {
    assert.throws(
      () => parseConfigText(`server:\n  port: \${GW_PORT}\n`, "test.yaml", { env: { GW_PORT: "" } }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(
          error.message,
          /^test\.yaml:2 server\.port: .*: it is empty because environment variable GW_PORT is not set$/,
        );
        return true;
      },
    );
  });
});

describe("client and admin keys left empty", () => {
  const yaml = `server:\n  api_keys: ["\${KEY_A}", "\${KEY_B}"]\n  admin_keys: ["\${ADMIN_KEY}"]\n`;

  test("every client key empty is refused, naming the variables: authentication would be off", () => {
    assert.throws(
      () => parseConfigText(yaml, "test.yaml", { env: { ADMIN_KEY: "admin" } }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.equal(error.issues.length, 1, error.message);
        assert.match(
          error.message,
          /^test\.yaml:2 server\.api_keys: every entry is empty \(environment variables KEY_A, KEY_B are not set\), so client authentication would be off/,
        );
        return true;
      },
    );
  });

  test("one empty client key is dropped with a warning; every admin key empty only warns (the admin routes are off)", () => {
    const { config, warnings } = parseConfigText(yaml, "test.yaml", { env: { KEY_B: "sk-b" } });
    assert.deepEqual(config.server.apiKeys, ["sk-b"]);
    assert.deepEqual(config.server.adminKeys, []);
    assert.deepEqual(warnings, [
      "test.yaml:2 server.api_keys.0: empty (environment variable KEY_A is not set); dropped, the other keys apply",
      "test.yaml:3 server.admin_keys: every entry is empty (environment variable ADMIN_KEY is not set), so the admin routes are off: set the variable, or remove server.admin_keys",
    ]);
  });

  test("a key from ALLOWED_BEARER_TOKENS keeps authentication on: the empty entries only warn", () => {
    const { config, warnings } = parseConfigText(yaml, "test.yaml", {
      env: { ALLOWED_BEARER_TOKENS: "tok", ADMIN_KEY: "admin" },
    });
    assert.deepEqual(config.server.apiKeys, ["tok"]);
    assert.equal(warnings.length, 2, warnings.join("\n"));
  });
});

describe("named client keys", () => {
  test("an entry `{ key, name }` names its client; names line up with the keys, ALLOWED_BEARER_TOKENS' unnamed", () => {
    const { config, warnings } = parseConfigText(
      `server:\n  api_keys:\n    - { key: "\${KEY_A}", name: team-a }\n    - { key: "\${KEY_GONE}", name: gone }\n    - plain\n`,
      "test.yaml",
      { env: { KEY_A: "sk-a", ALLOWED_BEARER_TOKENS: "tok" } },
    );
    assert.deepEqual(config.server.apiKeys, ["sk-a", "plain", "tok"]);
    assert.deepEqual(config.server.apiKeyNames, ["team-a", null, null]);
    // A named entry whose key is unset is dropped like a plain one, with the variable named.
    assert.deepEqual(warnings, [
      "test.yaml:4 server.api_keys.1: empty (environment variable KEY_GONE is not set); dropped, the other keys apply",
    ]);
  });

  test("a client's limits are its name's, stated once; a second `limits` for the same name is refused", () => {
    const { config } = parseConfigText(
      `server:\n  api_keys:\n    - { key: a1, name: a, limits: { rpm: 5, concurrency: 2 } }\n    - { key: a2, name: a }\n`,
      "test.yaml",
      { env: {} },
    );
    assert.deepEqual(config.server.clientLimits, { a: { rpm: 5, concurrency: 2 } });
    assert.deepEqual(config.server.clientPaid, {});
    assert.throws(
      () =>
        parseConfigText(
          `server:\n  api_keys:\n    - { key: a1, name: a, paid: never }\n    - { key: a2, name: a, paid: allowed }\n`,
          "test.yaml",
          { env: {} },
        ),
      /test\.yaml:4 server\.api_keys\.1\.paid: client `a` has `paid` on another key already/,
    );
    assert.throws(
      () =>
        parseConfigText(
          `server:\n  api_keys:\n    - { key: a1, name: a, limits: { rpm: 5 } }\n    - { key: a2, name: a, limits: { rpm: 6 } }\n`,
          "test.yaml",
          { env: {} },
        ),
      /test\.yaml:4 server\.api_keys\.1\.limits: client `a` has `limits` on another key already/,
    );
  });

  test("a key listed again under another name (or unnamed) is refused: its first entry would win, silently", () => {
    // Before: the plain entry came first, so team-a's requests went unnamed and its rpm of 1 was never applied.
    for (const [entries, line, message] of [
      [
        `- "\${KEY_A}"\n    - { key: "\${KEY_A}", name: team-a, limits: { rpm: 1 } }`,
        4,
        "1.key: the same key as entry 0 (unnamed), here named `team-a`",
      ],
      [
        `- { key: "\${KEY_A}", name: team-a }\n    - { key: "\${KEY_A}", name: team-b }`,
        4,
        "1.key: the same key as entry 0 (named `team-a`), here named `team-b`",
      ],
      [
        `- { key: "\${KEY_A}", name: team-a }\n    - "\${KEY_A}"`,
        4,
        "1: the same key as entry 0 (named `team-a`), here unnamed",
      ],
    ] as const) {
      assert.throws(
        () => parseConfigText(`server:\n  api_keys:\n    ${entries}\n`, "test.yaml", { env: { KEY_A: "sk-a-1234" } }),
        (error: unknown) =>
          error instanceof ConfigError &&
          error.message.includes(`test.yaml:${line} server.api_keys.${message}: a key belongs to one client`) &&
          !error.message.includes("sk-a-1234"),
      );
    }
    // The same key twice under one name is harmless; ALLOWED_BEARER_TOKENS repeating a named key leaves it named.
    const { config } = parseConfigText(
      `server:\n  api_keys:\n    - { key: k1, name: a, limits: { rpm: 1 } }\n    - { key: k1, name: a }\n`,
      "test.yaml",
      { env: { ALLOWED_BEARER_TOKENS: "k1" } },
    );
    assert.deepEqual(config.server.apiKeyNames, ["a", "a", null]);
  });

  test("a name shaped like an API key, or equal to a client key, is refused (names are shown unredacted)", () => {
    // Before: accepted; the request log redacted the name, so `?client=` found none of its requests, while the
    // metrics showed it as it is.
    for (const [entries, message] of [
      ["- { key: k1, name: sk-batch-jobs-nightly-run }", "looks like an API key"],
      ["- { key: k1, name: a }\n    - { key: k2, name: k1 }", "is one of the client keys"],
    ] as const) {
      assert.throws(
        () => parseConfigText(`server:\n  api_keys:\n    ${entries}\n`, "test.yaml", { env: {} }),
        (error: unknown) =>
          error instanceof ConfigError && new RegExp(`server\\.api_keys\\.\\d\\.name: ${message}`).test(error.message),
        entries,
      );
    }
  });

  test("every named key empty is refused as every plain one is; a bad or reserved name is refused", () => {
    assert.throws(
      () => parseConfigText(`server:\n  api_keys: [{ key: "\${KEY_A}", name: a }]\n`, "test.yaml", { env: {} }),
      /server\.api_keys: every entry is empty \(environment variable KEY_A is not set\)/,
    );
    for (const name of ["none", "has space", "", "x".repeat(65)]) {
      assert.throws(
        () => parseConfigText(`server:\n  api_keys: [{ key: k, name: "${name}" }]\n`, "test.yaml", { env: {} }),
        (error: unknown) => error instanceof ConfigError && /server\.api_keys\.0/.test(error.message),
        name,
      );
    }
  });
});

describe("a provider without a name", () => {
  test("is named after its host's registrable label, also under a country's second level", () => {
    const names = (urls: string[]) =>
      parseConfigText(
        `providers:\n${urls.map((url) => `  - base_url: ${url}\n    api_key: sk-x\n    models: { m: {} }\n`).join("")}`,
        "test.yaml",
        { env: {} },
      ).config.providers.map((provider) => provider.name);
    assert.deepEqual(
      names([
        "https://api.groq.com/openai/v1",
        "https://api.example.co.uk/v1",
        "https://llm.other.com.au/v1",
        "https://api.mistral.ai/v1",
        "http://127.0.0.1:19001/v1",
      ]),
      ["groq", "example", "other", "mistral", "127.0.0.1-19001"],
    );
  });
});

describe("an open gateway on the network", () => {
  const PROVIDER = "providers:\n  - { name: a, base_url: https://a.example/v1, api_key: sk-a, models: { m: {} } }\n";
  const openWarning = (warnings: readonly string[]) => warnings.filter((text) => text.includes("not loopback"));

  test("no client key on a non-loopback address (the file's host or $HOST) is a warning naming the fix", () => {
    for (const [yaml, env] of [
      [`server:\n  host: 0.0.0.0\n  port: 8080\n${PROVIDER}`, {}],
      [PROVIDER, { HOST: "::", PORT: "8080" }],
    ] as const) {
      const { warnings } = parseConfigText(yaml, "test.yaml", { env });
      const [warning, ...more] = openWarning(warnings);
      assert.equal(more.length, 0);
      assert.match(
        warning ?? "",
        /server\.api_keys is empty: anyone who can reach port 8080 may spend every provider key/,
      );
      assert.match(warning ?? "", /Set server\.api_keys \(or ALLOWED_BEARER_TOKENS\), or listen on 127\.0\.0\.1/);
    }
  });

  test('cors_origins "*" without client keys is a warning: any web page may read the gateway through the browser', () => {
    const { warnings } = parseConfigText(`server:\n  cors_origins: ["*"]\n${PROVIDER}`, "test.yaml", { env: {} });
    const cors = warnings.filter((text) => text.includes("cors_origins"));
    assert.equal(cors.length, 1, warnings.join("\n"));
    assert.match(cors[0] ?? "", /any web page open in a browser that can reach the gateway may call it/);
    for (const yaml of [
      `server:\n  cors_origins: ["*"]\n  api_keys: [k1]\n${PROVIDER}`,
      `server:\n  cors_origins: ["https://app.example.com"]\n${PROVIDER}`,
    ]) {
      const quiet = parseConfigText(yaml, "test.yaml", { env: {} }).warnings;
      assert.deepEqual(
        quiet.filter((text) => text.includes("cors_origins")),
        [],
        yaml,
      );
    }
  });

  test("an admin key also listed as a client key is a warning that names its position, never the key", () => {
    const { warnings } = parseConfigText(
      `server:\n  api_keys: [client-k1, shared-k2]\n  admin_keys: [shared-k2]\n${PROVIDER}`,
      "test.yaml",
      { env: {} },
    );
    const shared = warnings.filter((text) => text.includes("admin_keys"));
    assert.equal(shared.length, 1, warnings.join("\n"));
    assert.match(shared[0] ?? "", /server\.api_keys #1 is also in server\.admin_keys/);
    assert.doesNotMatch(warnings.join("\n"), /shared-k2/);
    const apart = parseConfigText(
      `server:\n  api_keys: [client-k1]\n  admin_keys: [admin-k2]\n${PROVIDER}`,
      "test.yaml",
      { env: {} },
    );
    assert.deepEqual(
      apart.warnings.filter((text) => text.includes("admin_keys")),
      [],
    );
  });

  test("loopback without keys, or any address with a client key, is no warning", () => {
    for (const [yaml, env] of [
      [PROVIDER, {}],
      [`server:\n  host: localhost\n${PROVIDER}`, {}],
      [`server:\n  host: "::1"\n${PROVIDER}`, {}],
      [`server:\n  host: 0.0.0.0\n  api_keys: [k1]\n${PROVIDER}`, {}],
      [`server:\n  host: 0.0.0.0\n${PROVIDER}`, { ALLOWED_BEARER_TOKENS: "tok" }],
    ] as const) {
      assert.deepEqual(openWarning(parseConfigText(yaml, "test.yaml", { env }).warnings), [], yaml);
    }
  });
});

describe("message_order", () => {
  const text = (order: string) =>
    [
      "providers:",
      "  - name: alpha",
      "    base_url: https://alpha.example/v1",
      "    api_key: sk-x",
      "    message_order: alternate",
      "    models:",
      `      m: { message_order: ${order} }`,
      "      n: {}",
      "",
    ].join("\n");

  test("set on a provider and a model (the mistral preset: e2e/message-order.test.ts); a typo is reported at its line", () => {
    const { config } = parseConfigText(text("strict"), "test.yaml", { env: {} });
    const [alpha] = config.providers;
    assert.equal(alpha?.messageOrder, "alternate");
    assert.equal(alpha?.models?.find((model) => model.publicName === "m")?.messageOrder, "strict");
    assert.equal(alpha?.models?.find((model) => model.publicName === "n")?.messageOrder, undefined);
    assert.throws(
      () => parseConfigText(text("strcit"), "test.yaml", { env: {} }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, /test\.yaml:7 providers\.0\.models\.m\.message_order/);
        assert.match(error.message, /any.*strict.*alternate/);
        return true;
      },
    );
  });
});

describe("audio-second budgets (ash, asd)", () => {
  test("on a provider and a model they load; on a client's limits they are refused, naming the key", () => {
    const { config } = parseConfigText(
      "providers:\n  - name: p\n    base_url: http://127.0.0.1:9/v1\n    api_key: k\n    min_billed_audio_seconds: 10\n    limits: { asd: 28800 }\n    models:\n      whisper-large-v3: { limits: { ash: 7200 } }\n",
      "test.yaml",
      { env: {} },
    );
    const provider = config.providers[0];
    assert.equal(provider?.minBilledAudioSeconds, 10);
    assert.equal(provider?.limits?.asd, 28800);
    assert.equal(provider?.models?.[0]?.limits?.ash, 7200);
    assert.throws(
      () =>
        parseConfigText("server:\n  api_keys:\n    - { key: k1, name: team, limits: { ash: 60 } }\n", "test.yaml", {
          env: {},
        }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(
          error.message,
          /test\.yaml:3 server\.api_keys\.0\.limits: `ash` and `asd` are provider and model budgets/,
        );
        return true;
      },
    );
  });
});
