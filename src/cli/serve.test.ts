import assert from "node:assert/strict";
import { test } from "node:test";
import { buildConfig } from "../config/load.ts";
import { changedUntilRestart } from "./serve.ts";

const PROVIDER = { name: "alpha", base_url: "http://127.0.0.1:9/v1", api_key: "sk-alpha", models: { m: {} } };

function configWith(raw: Record<string, unknown>) {
  return buildConfig({ providers: [PROVIDER], ...raw }, undefined, { env: {} }).config;
}

test("a reload that changes the leaderboard refresh says it waits for a restart (the loop starts once)", () => {
  const started = configWith({});
  const next = configWith({
    scoring: { leaderboard_refresh_url: "https://example.org/boards/", leaderboard_refresh_interval_ms: 60_000 },
  });
  assert.deepEqual(changedUntilRestart(started, next), [
    "scoring.leaderboard_refresh_url",
    "scoring.leaderboard_refresh_interval_ms",
  ]);
  assert.deepEqual(changedUntilRestart(next, next), []);
  // The rest of `scoring` applies at the reload: not named.
  assert.deepEqual(changedUntilRestart(started, configWith({ scoring: { health_half_life_ms: 1_000 } })), []);
});
