import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { closestNames, didYouMean, editDistance } from "./did-you-mean.ts";
import { configSchema } from "./schema.ts";
import { knownKeysAt } from "./schema-keys.ts";

describe("did you mean", () => {
  test("edit distance counts a swap of neighbours as one edit", () => {
    assert.equal(editDistance("modles", "models"), 1);
    assert.equal(editDistance("base_ulr", "base_url"), 1);
    assert.equal(editDistance("timeout", "timeout_ms"), 3);
    assert.equal(editDistance("", "abc"), 3);
    assert.equal(editDistance("abc", "abc"), 0);
  });

  test("suggests the close known names, ignoring case, `_` and `-`; nothing when none is close", () => {
    const known = ["base_url", "api_key_env_var", "models", "model_url", "timeout_ms", "name"];
    assert.deepEqual(closestNames("base_ulr", known), ["base_url"]);
    assert.deepEqual(closestNames("baseUrl", known), ["base_url"]);
    assert.deepEqual(closestNames("apiKeyEnvVar", known), ["api_key_env_var"]);
    assert.deepEqual(closestNames("timeout", known), ["timeout_ms"]);
    assert.deepEqual(closestNames("nmae", known), ["name"]);
    assert.deepEqual(closestNames("zzzzzz", known), []);
    assert.deepEqual(closestNames("x", known), []);
    assert.deepEqual(closestNames("modelurl", known), ["model_url"]);
    assert.equal(didYouMean("modles", known), '; did you mean "models"?');
    assert.equal(didYouMean("modl", ["mode", "model"]), '; did you mean "mode" or "model"?');
    assert.equal(didYouMean("qqqq", known), "");
  });

  test("the config schema's keys are found at any path: entries, records of models, union branches", () => {
    assert.ok(knownKeysAt(configSchema, []).includes("providers"));
    assert.ok(knownKeysAt(configSchema, ["providers", 0]).includes("base_url"));
    assert.ok(knownKeysAt(configSchema, ["providers", 2, "models", "any-name"]).includes("context"));
    assert.ok(knownKeysAt(configSchema, ["providers", 0, "known_models", "x", "limits"]).includes("rpm"));
    assert.ok(knownKeysAt(configSchema, ["server", "api_keys", 0]).includes("name"));
    assert.ok(knownKeysAt(configSchema, ["scoring"]).includes("leaderboards"));
    assert.deepEqual(knownKeysAt(configSchema, ["nowhere", 3]), []);
  });
});
