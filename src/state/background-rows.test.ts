// A background response's writes as the Responses adapter makes them (`inRows`, kept-responses.ts) over the
// persistent stores (the state file, Redis): a streamed run's events appended rather than rewritten with the row.
import assert from "node:assert/strict";
import { mkdtempSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ManualClock } from "../clock.ts";
import { inRows, type KeptResponses } from "../protocols/responses/kept-responses.ts";
import { buildResponse, type ResponseObject, type ResponseStatus } from "../protocols/responses/response-object.ts";
import type { StoredResponse } from "../protocols/responses/response-store.ts";
import type { KeptResponseLimits } from "./embedded-kept-responses.ts";
import { KeptResponsesFile } from "./kept-responses-file.ts";

const LIMITS: KeptResponseLimits = { maxEntries: 100, maxBytes: 50_000_000, maxAgeMs: 3_600_000 };

function response(id: string, status: ResponseStatus): ResponseObject {
  const echo = {
    instructions: null,
    max_output_tokens: null,
    metadata: {},
    parallel_tool_calls: true,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    store: true,
    temperature: null,
    text: { format: { type: "text" } },
    tool_choice: "auto",
    tools: [],
    top_p: null,
    truncation: "disabled" as const,
    user: null,
  };
  const built = buildResponse(echo, { id, createdAtSeconds: 1, status, model: "m", output: [], usage: undefined });
  return { ...built, background: true };
}

/** A background run's state as the adapter keeps it: its events so far, and its heartbeat while it runs. */
function runState(
  id: string,
  status: ResponseStatus,
  events: readonly string[],
  heartbeatAtMs?: number,
): StoredResponse {
  return {
    response: response(id, status),
    conversation: [{ role: "user", content: "x" }],
    events,
    ...(heartbeatAtMs === undefined ? {} : { heartbeatAtMs }),
  };
}

/** An event as big as a text delta's. */
function event(index: number): string {
  return `event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":${index},"delta":"${"w".repeat(200)}"}\n\n`;
}

function keptInFile(path: string, clock: ManualClock): { kept: KeptResponses; file: KeptResponsesFile } {
  const file = new KeptResponsesFile(path, LIMITS, clock);
  return {
    file,
    kept: inRows(file, (error) => {
      throw error;
    }),
  };
}

test("state file: a heartbeat writes only the events since the last one (the bytes it writes do not grow with the run)", async (t) => {
  const path = join(mkdtempSync(join(tmpdir(), "bg-rows-")), "state.db");
  const clock = new ManualClock();
  const { kept, file } = keptInFile(path, clock);
  t.after(() => file.close());
  const walBytes = (): number => statSync(`${path}-wal`).size;
  const id = "resp_bg";
  const events: string[] = [];
  let token = await kept.putIfUnchanged(runState(id, "queued", events, clock.now()), undefined);
  const writtenPerBeat: number[] = [];
  // 20 heartbeats of 100 events each: 2,000 events (~0.5 MB) by the last one.
  for (let beat = 0; beat < 20; beat++) {
    for (let index = 0; index < 100; index++) events.push(event(events.length));
    clock.advance(1_000);
    const before = walBytes();
    token = await kept.putIfUnchanged(runState(id, "in_progress", [...events], clock.now()), token);
    assert.ok(token !== undefined, `heartbeat ${beat} was written`);
    writtenPerBeat.push(walBytes() - before);
  }
  t.diagnostic(`WAL bytes per heartbeat: ${writtenPerBeat.join(", ")}`);
  const first = writtenPerBeat[0] ?? 0;
  const last = writtenPerBeat.at(-1) ?? 0;
  // Rewriting the row with every event in it made the last heartbeat write ~20 times what the first did.
  assert.ok(last <= first * 2, `the last heartbeat wrote ${last} bytes, the first ${first}`);
  const stored = await kept.get(id);
  assert.deepEqual(stored?.events, events);
  assert.equal(stored?.response.status, "in_progress");
});
