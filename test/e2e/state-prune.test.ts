// A provider removed from the config leaves its budget rows in the state file only while something in them still
// counts (its longest window, the month, has not ended): a start or a reload after that drops them, so the file
// does not keep every provider ever configured. A row that still counts is kept (the provider may come back).
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { test } from "node:test";
import { ManualClock } from "../../src/clock.ts";
import { send, useMock } from "../helpers/e2e.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import type { MockUpstream } from "../helpers/mock-upstream.ts";

const DAY_MS = 24 * 3_600_000;

function yaml(mock: MockUpstream, statePath: string, providers: readonly string[]): string {
  const entries = providers.map(
    (name) =>
      `  - name: ${name}\n    base_url: ${mock.baseUrl}\n    api_key: sk-${name}\n    models:\n      ${name}-model: { limits: { rpm: 5 } }\n`,
  );
  return `providers:\n${entries.join("")}state:\n  path: ${JSON.stringify(statePath)}\n`;
}

function scopeIds(statePath: string): string[] {
  const db = new DatabaseSync(statePath, { readOnly: true });
  try {
    return db
      .prepare("SELECT scope_id FROM budget_scopes ORDER BY scope_id")
      .all()
      .map((row) => String(row.scope_id));
  } finally {
    db.close();
  }
}

async function useBeta(mock: MockUpstream, statePath: string, clock: ManualClock): Promise<void> {
  const gateway = await startTestGateway(yaml(mock, statePath, ["alpha", "beta"]), { clock });
  try {
    for (const model of ["alpha-model", "beta-model"]) {
      const answer = await send(gateway, "POST", "/v1/chat/completions", {
        body: { model, messages: [{ role: "user", content: "hi" }] },
      });
      assert.equal(answer.status, 200, answer.text);
    }
  } finally {
    await gateway.close();
  }
  assert.deepEqual(scopeIds(statePath), ["deployment:alpha/alpha-model", "deployment:beta/beta-model"]);
}

test("a start without a provider drops its rows once its month is over, and keeps them while it counts", async (t) => {
  const mock = await useMock(t);
  const statePath = join(mkdtempSync(join(tmpdir(), "state-prune-")), "state.db");
  const clock = new ManualClock(Date.UTC(2026, 2, 10, 12));
  await useBeta(mock, statePath, clock);

  // The same month: beta's counters still count (a monthly limit, were it added back); its row stays.
  clock.advance(DAY_MS);
  const soon = await startTestGateway(yaml(mock, statePath, ["alpha"]), { clock });
  await soon.close();
  assert.deepEqual(scopeIds(statePath), ["deployment:alpha/alpha-model", "deployment:beta/beta-model"]);

  // Two months on: nothing in beta's row counts any more; alpha, still configured, keeps its own.
  clock.advance(62 * DAY_MS);
  const later = await startTestGateway(yaml(mock, statePath, ["alpha"]), { clock });
  await later.close();
  assert.deepEqual(scopeIds(statePath), ["deployment:alpha/alpha-model"]);
});

test("a reload that removes a provider drops its rows once nothing in them counts", async (t) => {
  const mock = await useMock(t);
  const statePath = join(mkdtempSync(join(tmpdir(), "state-prune-")), "state.db");
  const clock = new ManualClock(Date.UTC(2026, 2, 10, 12));
  await useBeta(mock, statePath, clock);
  const gateway = await startTestGateway(yaml(mock, statePath, ["alpha", "beta"]), { clock });
  t.after(() => gateway.close());
  clock.advance(62 * DAY_MS);
  writeFileSync(gateway.configPath, yaml(mock, statePath, ["alpha"]));
  const reloaded = await gateway.runtime.reloadFromSource("test");
  assert.equal(reloaded.isApplied, true);
  await gateway.close();
  assert.deepEqual(scopeIds(statePath), ["deployment:alpha/alpha-model"]);
});
