// A file of its own: zod compiles a schema's parser once per process, so this check needs schemas no other test
// has parsed yet (node --test runs each file in a process of its own).
import assert from "node:assert/strict";
import { test } from "node:test";
import { createPresetResolver, loadPresets } from "../providers/presets.ts";
import { parseConfigText } from "./load.ts";
import { configSchema } from "./schema.ts";

/** Runs `work` with the global `Function` constructor counted: zod's "JIT" builds each parser with `new Function`. */
function functionsBuiltDuring(work: () => void): number {
  const original = globalThis.Function;
  let built = 0;
  globalThis.Function = new Proxy(original, {
    construct(target, args: unknown[]) {
      built += 1;
      return Reflect.construct(target, args);
    },
  });
  try {
    work();
  } finally {
    globalThis.Function = original;
  }
  return built;
}

const CONFIG = `server:
  api_keys: [client-key]
providers:
  - name: alpha
    base_url: http://127.0.0.1:1/v1
    api_key: sk-alpha
    limits: { rpm: 10 }
    models:
      m: { priority: 2 }
  - preset: groq
    api_key: gsk-test
scoring:
  MODEL_PARAM_SCORE_SCALAR: 4
`;

test("a config load (the config, a preset, each provider's settings) builds no parser functions: each is parsed once", () => {
  const env = {};
  const resolvePreset = createPresetResolver(loadPresets(env));
  let providers: readonly string[] = [];
  const built = functionsBuiltDuring(() => {
    providers = parseConfigText(CONFIG, "test.yaml", { env, resolvePreset }).config.providers.map(
      (provider) => provider.name,
    );
  });
  assert.deepEqual(providers, ["alpha", "groq"]);
  assert.equal(built, 0);
  // The counter sees zod's compile: the same schema parsed without the option (as a request body schema is) builds
  // its parsers. If zod stopped compiling, this would say so instead of the check above passing for nothing.
  assert.ok(functionsBuiltDuring(() => configSchema.safeParse({ providers: [] })) > 0);
});
