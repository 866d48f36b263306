// Responses background mode on the embedded state file (`state.path`): a streamed run's events appended (each
// written once, not the whole list every heartbeat), a row kept by the previous version (events inside its JSON)
// still read, replayed and cancelled, a run whose process was paused (SIGSTOP) past the stale mark kept failed, and a
// cancel from another process landing between a run's last heartbeat and its final save winning, events included.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import {
  assertCancelWinsOverFinalSave,
  followedText,
  followedToFailure,
  heldStreamStep,
  replayedSequenceNumbers,
  slowRunInProcess,
  startStreamedRun,
  streamedRun,
  UPSTREAM_ID,
  waitFor,
} from "../helpers/background-steps.ts";
import { CHAT_ROUTE, openAiClient, stateFileYaml, useGateway, useMock } from "../helpers/e2e.ts";
import { chatStream } from "../helpers/mock-upstream.ts";

function newStatePath(): string {
  return join(mkdtempSync(join(tmpdir(), "bg-state-file-")), "state.db");
}

/**
 * The kept-answer tables as the previous version made them (no events table: a streamed run's events were in its
 * row's JSON), with one row in that form.
 */
function writeOldFormatFile(path: string, id: string, stored: Record<string, unknown>): void {
  const db = new DatabaseSync(path);
  try {
    db.exec(`
      CREATE TABLE kept_responses (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        stored_at_ms INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        json TEXT NOT NULL,
        owner TEXT NOT NULL DEFAULT ''
      );
      CREATE INDEX kept_responses_stored ON kept_responses (stored_at_ms);
      CREATE TABLE kept_response_items (item_id TEXT PRIMARY KEY, response_id TEXT NOT NULL);
      CREATE INDEX kept_response_items_response ON kept_response_items (response_id);
      CREATE INDEX kept_responses_owner ON kept_responses (owner, seq);
    `);
    const json = JSON.stringify(stored);
    db.prepare("INSERT INTO kept_responses (id, stored_at_ms, bytes, json, owner) VALUES (?, ?, ?, ?, '')").run(
      id,
      Date.now(),
      Buffer.byteLength(json),
      json,
    );
  } finally {
    db.close();
  }
}

describe("Responses background mode on the state file", () => {
  test("a streamed run's events are rows of their own, each once; replayed from any sequence number", async (t) => {
    const mock = await useMock(t);
    const statePath = newStatePath();
    const sdk = openAiClient(await useGateway(t, stateFileYaml(mock, statePath)));
    const words = Array.from({ length: 300 }, (_, index) => `w${index} `);
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(words, UPSTREAM_ID, { delayMs: 5, usage: true }) });
    const { id, events } = await streamedRun(sdk);
    const count = events.length;
    assert.ok(count >= 300, `${count} events`);
    const db = new DatabaseSync(statePath);
    const kept = db.prepare("SELECT COUNT(*) AS count FROM kept_response_events WHERE response_id = ?").get(id);
    const row = db.prepare("SELECT json FROM kept_responses WHERE id = ?").get(id);
    db.close();
    assert.equal(Number(kept?.count), count, "each event once");
    assert.equal((JSON.parse(String(row?.json)) as { events?: unknown }).events, undefined, "not inside the row");
    const replayed = await replayedSequenceNumbers(sdk, id, 99);
    assert.equal(replayed[0], 100);
    assert.equal(replayed.length, count - 100);
    assert.equal((await sdk.responses.retrieve(id)).status, "completed");
  });

  test("rolling upgrade: a file the previous version wrote (a running stream's events inside its row) is read, replayed and cancelled", async (t) => {
    const mock = await useMock(t);
    // Events as a run makes them, taken from a run on another file.
    const source = openAiClient(await useGateway(t, stateFileYaml(mock, newStatePath())));
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(["Hel", "lo"], UPSTREAM_ID) });
    const run = await streamedRun(source);
    const events = run.events.map((event) => `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
    const sourceResponse = await source.responses.retrieve(run.id);
    // The row as a gateway of the previous version keeps a run it is streaming: in_progress, a fresh heartbeat, its
    // events so far (all but the last) inside the row; that gateway runs it, the upgraded one does not.
    const id = "resp_oldformat0123456789abcdef";
    const statePath = newStatePath();
    writeOldFormatFile(statePath, id, {
      response: { ...sourceResponse, id, status: "in_progress", background: true },
      conversation: [{ role: "user", content: "x" }],
      events: events.slice(0, -1),
      heartbeatAtMs: Date.now(),
    });
    const sdk = openAiClient(await useGateway(t, stateFileYaml(mock, statePath)));
    assert.equal((await sdk.responses.retrieve(id)).status, "in_progress");
    // Cancelled here (its run is elsewhere): the compare-and-set must match the row the old version wrote.
    assert.equal((await sdk.responses.cancel(id)).status, "cancelled");
    assert.equal((await sdk.responses.retrieve(id)).status, "cancelled");
    // Its events are still there to replay, from the start and from the middle.
    const { text } = await followedText(await sdk.responses.retrieve(id, { stream: true, starting_after: -1 }));
    assert.equal(text, "Hello");
    const replayed: string[] = [];
    for await (const event of await sdk.responses.retrieve(id, { stream: true, starting_after: 1 })) {
      replayed.push(event.type);
    }
    // Then the end a cancelled run's stream has: its run, elsewhere, never wrote one (the replay just stopped before
    // 2026-12-07).
    assert.equal(replayed.length, events.length - 1 - 2 + 1);
    assert.equal(replayed.at(-1), "response.incomplete");
  });

  test("a run whose process was paused past the stale mark stays failed when it resumes (never in_progress or completed again), and stops", async (t) => {
    const mock = await useMock(t);
    const yaml = stateFileYaml(mock, newStatePath());
    // Its delta is in the state file.
    const { running: paused, sdk: sdkPaused, id, isUpstreamClosed } = await slowRunInProcess(t, mock, yaml);
    const pid = paused.pid ?? 0;
    // Another gateway on the same file reads it; the running process is paused, not killed.
    const reader = openAiClient(await useGateway(t, yaml));
    process.kill(pid, "SIGSTOP");
    try {
      const deadline = Date.now() + 25_000;
      for (;;) {
        const seen = await reader.responses.retrieve(id);
        if (seen.status === "failed") break;
        assert.equal(seen.status, "in_progress");
        if (Date.now() > deadline) assert.fail("never shown failed while its process was paused");
        await sleep(250);
      }
    } finally {
      process.kill(pid, "SIGCONT");
    }
    // Resumed: its next heartbeat is refused as too late; the run stops (its upstream call is hung up on) and keeps
    // the failure that was shown.
    await waitFor(isUpstreamClosed, "the resumed run to stop and hang up on its upstream call", 5_000);
    for (let check = 0; check < 3; check++) {
      const seen = await reader.responses.retrieve(id);
      assert.equal(seen.status, "failed", `read ${check} after the resume`);
      assert.equal(seen.error?.code, "server_error");
      assert.match(seen.error?.message ?? "", /stopped before it finished/);
      await sleep(600);
    }
    // Read by the paused process itself too (its run is over: no view of its own).
    assert.equal((await sdkPaused.responses.retrieve(id)).status, "failed");
    // Its stream replays what was kept, then ends as a failed run's does: the reader that found it stopped kept it
    // failed with that end (background-stopped.ts; before 2026-12-08 the replay stopped after the kept delta).
    const { text, failure } = await followedToFailure(
      await reader.responses.retrieve(id, { stream: true, starting_after: -1 }),
    );
    assert.equal(text, "Half ");
    assert.match(String(failure), /stopped before it finished/);
  });

  test("a cancel from another process landing between the last heartbeat and the final save wins: the kept events end cancelled", async (t) => {
    const mock = await useMock(t);
    const statePath = newStatePath();
    const yaml = stateFileYaml(mock, statePath);
    const runner = await useGateway(t, yaml);
    const one = openAiClient(runner);
    const other = openAiClient(await useGateway(t, yaml));
    const held = heldStreamStep(["The ", "whole ", "answer."]);
    mock.enqueue(CHAT_ROUTE, held.step);
    const id = await startStreamedRun(one);
    // Right after a heartbeat (its time changes in the file), the next one a second away: the cancel lands, then the
    // answer completes and the run's final save comes, before any heartbeat could see the cancel.
    const db = new DatabaseSync(statePath);
    t.after(() => db.close());
    const heartbeat = (): unknown => {
      const row = db.prepare("SELECT json FROM kept_responses WHERE id = ?").get(id);
      return (JSON.parse(String(row?.json ?? "{}")) as { heartbeatAtMs?: number }).heartbeatAtMs;
    };
    const before = heartbeat();
    await waitFor(() => heartbeat() !== before, "a heartbeat", 3_000);
    await assertCancelWinsOverFinalSave(runner, other, id, held);
  });
});
