// The embedded state file (`state.path`) under hazards outside the gateway: a file locked by another process or
// on a full or read-only disk (docs/configuration.md `state`). The gateway keeps serving from memory and says so
// (log, /health), and writes what it kept once the file can be written again; it never ends the process.
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { useMock } from "../helpers/e2e.ts";
import { startGatewayProcess } from "../helpers/gateway-process.ts";

const FLUSH_INTERVAL_MS = 100;

function stateYaml(baseUrl: string): string {
  return [
    "providers:",
    "  - name: alpha",
    `    base_url: ${baseUrl}`,
    "    api_key: sk-alpha-secret",
    "    models: { mock-model: { limits: { rpd: 100 } } }",
    "state:",
    "  path: state.db",
    `  flush_interval_ms: ${FLUSH_INTERVAL_MS}`,
    "",
  ].join("\n");
}

async function chat(url: string): Promise<number> {
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "mock-model", messages: [{ role: "user", content: "hi" }] }),
  });
  await response.arrayBuffer();
  return response.status;
}

interface HealthState {
  status: string;
  state: { kind: string; isDegraded: boolean; detail: string };
}

async function health(url: string): Promise<HealthState> {
  return (await (await fetch(`${url}/health`)).json()) as HealthState;
}

describe("a state file that cannot be written", () => {
  test("locked by another process: the gateway serves on, /health and the log say so, and it writes later", async (t) => {
    const mock = await useMock(t);
    const gateway = await startGatewayProcess(t, stateYaml(mock.baseUrl));
    const statePath = join(dirname(gateway.configPath), "state.db");
    const other = new DatabaseSync(statePath);
    t.after(() => other.close());
    other.exec("PRAGMA busy_timeout = 0; BEGIN EXCLUSIVE");
    try {
      // Each answer dirties the rpd counter; several flushes fail while the lock is held.
      for (let index = 0; index < 3; index++) {
        assert.equal(await chat(gateway.url), 200);
        await sleep(FLUSH_INTERVAL_MS * 3);
      }
      const degraded = await health(gateway.url);
      assert.equal(degraded.status, "degraded");
      assert.equal(degraded.state.isDegraded, true);
      assert.match(degraded.state.detail, /state\.db not written since .*\(database is locked\)/);
    } finally {
      other.exec("COMMIT");
    }
    const warnings = gateway.logs.filter((line) => /^state file not written/.test(line.msg));
    assert.equal(warnings.length, 1, "one warning while the failure lasts");
    await sleep(FLUSH_INTERVAL_MS * 4);
    assert.equal((await health(gateway.url)).state.isDegraded, false);
    assert.ok(gateway.logs.some((line) => line.msg === "state file written again"));
    const row = other.prepare("SELECT state FROM budget_scopes WHERE scope_id = ?").get("deployment:alpha/mock-model");
    assert.ok(row !== undefined, "the counts kept in memory reached the file once it could be written");
    const persisted = JSON.parse(String(row.state)) as { day: { requests: number } };
    assert.equal(persisted.day.requests, 3, "every request of the locked time is counted");
  });
});
