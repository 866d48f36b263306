// The embedded state file (`state.path`) under hazards outside the gateway: a file locked by another process or
// on a full or read-only disk (docs/configuration.md `state`). The gateway keeps serving from memory and says so
// (log, /health), and writes what it kept once the file can be written again; it never ends the process. A file
// found damaged at start is set aside and a new one started; a file that is no SQLite database is left alone.
import assert from "node:assert/strict";
import { closeSync, openSync, readdirSync, readFileSync, readSync, writeFileSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import OpenAI from "openai";
import { systemClock } from "../../src/clock.ts";
import { EmbeddedKeptResponses } from "../../src/state/embedded-kept-responses.ts";
import { TOOL_CALL_EXTRAS_TABLE } from "../../src/state/tool-call-extras-rows.ts";
import { runCli, tempDir } from "../helpers/cli-process.ts";
import { useMock } from "../helpers/e2e.ts";
import { startGatewayProcess } from "../helpers/gateway-process.ts";
import { chatCompletion } from "../helpers/mock-upstream.ts";
import { writeTruncatedStateFile } from "../helpers/truncated-state-file.ts";

const FLUSH_INTERVAL_MS = 100;

function stateYaml(baseUrl: string, statePath = "state.db"): string {
  return [
    "providers:",
    "  - name: alpha",
    `    base_url: ${baseUrl}`,
    "    api_key: sk-alpha-secret",
    "    models: { mock-model: { limits: { rpd: 100 } } }",
    "state:",
    `  path: ${JSON.stringify(statePath)}`,
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
  kept_responses: { kind: string; isDegraded: boolean; detail: string } | null;
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

/** The state store's tables (as it creates them), so that opening the file writes nothing there. */
const STATE_TABLES = `
  CREATE TABLE IF NOT EXISTS budget_scopes (scope_id TEXT PRIMARY KEY, state TEXT NOT NULL, updated_at_ms INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS cooldowns (id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL, updated_at_ms INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS prompt_calibration (id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL, updated_at_ms INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS shared_windows (id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL, updated_at_ms INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS refused_features (id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL, updated_at_ms INTEGER NOT NULL);
  ${TOOL_CALL_EXTRAS_TABLE}
`;

/** Overwrites one page of a checkpointed SQLite file with garbage. */
function damagePage(path: string, page: number, fill: (page: Buffer) => void): void {
  const db = new DatabaseSync(path);
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  const pageSize = Number(db.prepare("PRAGMA page_size").get()?.page_size);
  db.close();
  const bytes = Buffer.alloc(pageSize);
  fill(bytes);
  const fd = openSync(path, "r+");
  try {
    writeSync(fd, bytes, 0, pageSize, (page - 1) * pageSize);
  } finally {
    closeSync(fd);
  }
}

/**
 * Sound state tables, no kept-answer tables yet, and a damaged list of free pages: the state store reads its tables
 * without touching it; creating the kept answers' tables takes pages from it.
 */
function writeDamagedFreeList(path: string): void {
  const db = new DatabaseSync(path);
  db.exec(STATE_TABLES);
  db.exec("CREATE TABLE filler (x TEXT)");
  const insert = db.prepare("INSERT INTO filler VALUES (?)");
  for (let index = 0; index < 20; index++) insert.run("y".repeat(20_000));
  db.exec("DROP TABLE filler; PRAGMA wal_checkpoint(TRUNCATE)");
  const header = Buffer.alloc(100);
  const fd = openSync(path, "r");
  readSync(fd, header, 0, 100, 0);
  closeSync(fd);
  db.close();
  // The first trunk page of the free list (file header offset 32) now points to a page past the end of the file.
  damagePage(path, header.readUInt32BE(32), (page) => page.writeUInt32BE(999_999, 4));
}

/** Sound state tables and kept answers whose table's root page is garbage. */
function writeDamagedKeptTable(path: string): void {
  const kept = new EmbeddedKeptResponses(path, { maxEntries: 100, maxBytes: 1e6, maxAgeMs: 1e9 }, systemClock);
  for (let index = 0; index < 20; index++) {
    void kept.put({ id: `resp_${index}`, json: JSON.stringify({ pad: "x".repeat(2_000) }), itemIds: [] });
  }
  void kept.close(); // written and closed before it returns: nothing else holds the file's lock
  const db = new DatabaseSync(path);
  db.exec(STATE_TABLES);
  const root = Number(db.prepare("SELECT rootpage FROM sqlite_master WHERE name = 'kept_responses'").get()?.rootpage);
  db.close();
  damagePage(path, root, (page) => page.fill(0x5a));
}

describe("a state file found damaged at start", () => {
  for (const [damage, write] of [
    ["its free-page list (read when the kept answers' tables are created)", writeDamagedFreeList],
    ["the kept answers' table", writeDamagedKeptTable],
  ] as const) {
    test(`damage in ${damage}: the gateway starts, keeps answers in memory and says so`, async (t) => {
      const mock = await useMock(t);
      mock.setDefault("POST /v1/chat/completions", {
        kind: "json",
        body: chatCompletion("Nice to meet you, Ada.", "mock-model"),
      });
      const gateway = await startGatewayProcess(t, stateYaml(mock.baseUrl), {
        beforeStart: (dir) => {
          write(join(dir, "state.db"));
          return undefined;
        },
      });
      const sdk = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: "x", maxRetries: 0 });
      const first = await sdk.responses.create({ model: "mock-model", input: "My name is Ada." });
      // Kept (in memory): found again, and a continuation works.
      assert.equal((await sdk.responses.retrieve(first.id)).output_text, "Nice to meet you, Ada.");
      await sdk.responses.create({ model: "mock-model", previous_response_id: first.id, input: "My name?" });
      const warning = gateway.logs.find((line) => /^kept responses: the kept answers' tables/.test(line.msg));
      assert.ok(warning !== undefined, "no warning about the damaged tables");
      assert.match(
        warning.msg,
        /damaged \(database disk image is malformed\); answers are kept in this process's memory/,
      );
      assert.equal(await chat(gateway.url), 200);
      // /health says so too: the kept answers are lost at the next restart (an operator sees it without the log).
      const said = await health(gateway.url);
      assert.equal(said.status, "degraded");
      assert.equal(said.kept_responses?.isDegraded, true);
      assert.match(said.kept_responses?.detail ?? "", /damaged: answers are kept in this process's memory/);
      assert.equal(said.state.isDegraded, false, "budgets and cooldowns are still written to the file");
    });
  }

  test("a truncated SQLite file is set aside and the gateway starts with a new one, saying so", async (t) => {
    const mock = await useMock(t);
    const gateway = await startGatewayProcess(t, stateYaml(mock.baseUrl), {
      beforeStart: (dir) => {
        writeTruncatedStateFile(join(dir, "state.db"));
        return undefined;
      },
    });
    const dir = dirname(gateway.configPath);
    const warning = gateway.logs.find((line) => /^state file damaged/.test(line.msg));
    assert.ok(warning !== undefined, "the start says the file was damaged");
    assert.match(warning.msg, /malformed.*moved to .*state\.db\.damaged-.*starting with a new one/);
    const asideName = readdirSync(dir).find((name) => name.startsWith("state.db.damaged-"));
    assert.ok(asideName !== undefined, "the damaged file is kept aside, not deleted");
    assert.equal(readFileSync(join(dir, asideName)).length, 300_000);
    assert.equal(await chat(gateway.url), 200);
    const said = await health(gateway.url);
    assert.equal(said.state.isDegraded, false);
    // The new file's kept answers are sound: in the file, not degraded.
    assert.deepEqual(said.kept_responses, { kind: "embedded", isDegraded: false, detail: "state.db" });
    await sleep(FLUSH_INTERVAL_MS * 3);
    const fresh = new DatabaseSync(join(dir, "state.db"), { readOnly: true });
    t.after(() => fresh.close());
    assert.ok(fresh.prepare("SELECT 1 FROM budget_scopes WHERE scope_id = ?").get("deployment:alpha/mock-model"));
  });

  test("a file that is no SQLite database (state.path naming the wrong file): refused, left as it was", async (t) => {
    const dir = tempDir(t);
    const statePath = join(dir, "notes.txt");
    writeFileSync(statePath, "not a database, and not the gateway's to move\n".repeat(200));
    const configPath = join(dir, "gateway.yaml");
    writeFileSync(
      configPath,
      `server:\n  port: 0\n  host: 127.0.0.1\nproviders:\n  - name: alpha\n    base_url: http://127.0.0.1:9/v1\n    api_key: sk-alpha\n    models: { m: {} }\nstate:\n  path: ${JSON.stringify(statePath)}\n`,
    );
    const result = await runCli(["serve", "--config", configPath], { cwd: dir });
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /state\.path: cannot open ".*notes\.txt": file is not a database/);
    assert.equal(readFileSync(statePath, "utf8"), "not a database, and not the gateway's to move\n".repeat(200));
    assert.deepEqual(readdirSync(dir).sort(), ["gateway.yaml", "notes.txt"]);
  });
});

describe("a state file damaged while the gateway runs", () => {
  test("damage in the state tables: /health degraded with a state detail, one warning, and a start that finds it sets it aside", async (t) => {
    const mock = await useMock(t);
    const statePath = join(tempDir(t), "state.db");
    const gateway = await startGatewayProcess(t, stateYaml(mock.baseUrl, statePath));
    assert.equal(await chat(gateway.url), 200);
    await sleep(FLUSH_INTERVAL_MS * 3); // the budget_scopes row is written
    // Garbage over the budget table's root page, checkpointed first: the gateway's next write into it finds it.
    const db = new DatabaseSync(statePath);
    const root = Number(db.prepare("SELECT rootpage FROM sqlite_master WHERE name = 'budget_scopes'").get()?.rootpage);
    db.close();
    damagePage(statePath, root, (page) => page.fill(0x5a));
    // Each answer dirties the rpd counter: every flush from here on fails on the damaged table.
    for (let index = 0; index < 4; index++) {
      assert.equal(await chat(gateway.url), 200, "the gateway serves on from memory");
      await sleep(FLUSH_INTERVAL_MS * 2);
    }
    const said = await health(gateway.url);
    assert.equal(said.status, "degraded");
    assert.equal(said.state.isDegraded, true);
    assert.match(said.state.detail, /state\.db is damaged \(database disk image is malformed\)/);
    assert.match(said.state.detail, /counted in memory only until it is repaired/);
    const warnings = gateway.logs.filter((line) => line.level >= 40 && /^state file/.test(line.msg));
    assert.equal(warnings.length, 1, `one warning for the damage, not one per flush: ${JSON.stringify(warnings)}`);
    assert.match(warnings[0]?.msg ?? "", /^state file damaged \(database disk image is malformed\).*To repair, stop/);
    await gateway.stop();

    // What the warning says a start that finds the damage does (here it does: the start reads the damaged table).
    const next = await startGatewayProcess(t, stateYaml(mock.baseUrl, statePath));
    assert.ok(
      next.logs.some((line) => /^state file damaged .*moved to .*state\.db\.damaged-/.test(line.msg)),
      "the next start did not set the damaged file aside",
    );
    assert.equal(await chat(next.url), 200);
    assert.equal((await health(next.url)).state.isDegraded, false);
  });
});

describe("two gateways on one state file", () => {
  test("the second is told (log, /health) that nothing is shared through the file; it clears when the first ends", async (t) => {
    const mock = await useMock(t);
    const statePath = join(tempDir(t), "shared", "state.db");
    const first = await startGatewayProcess(t, stateYaml(mock.baseUrl, statePath));
    const second = await startGatewayProcess(t, stateYaml(mock.baseUrl, statePath));
    const warning = second.logs.find((line) => /^another gateway process has/.test(line.msg));
    assert.ok(warning !== undefined, "the second gateway says another has the file open");
    assert.match(warning.msg, /not shared through the file.*state\.redis_url/);
    assert.ok(!first.logs.some((line) => /^another gateway process has/.test(line.msg)), "the first was alone");
    assert.match((await health(second.url)).state.detail, /also open in another gateway process/);
    assert.equal(await chat(second.url), 200, "it serves all the same");

    await first.stop(); // SIGKILL: the OS drops its lock, as after a crash
    const deadline = Date.now() + 5_000;
    while (/another gateway process/.test((await health(second.url)).state.detail)) {
      assert.ok(Date.now() < deadline, "the second still reports a gateway that is gone");
      await sleep(FLUSH_INTERVAL_MS);
    }
    assert.ok(second.logs.some((line) => /no other gateway process has it open/.test(line.msg)));
  });
});
