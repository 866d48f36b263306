import assert from "node:assert/strict";
import { test } from "node:test";
import { BACKGROUND_STALE_MS, backgroundEvents, backgroundView, RunningEvents, runningEvents } from "./background.ts";
import type { ResponseObject } from "./response-object.ts";
import type { StoredResponse } from "./response-store.ts";

function running(heartbeatAtMs: number | undefined): StoredResponse {
  const response = { id: "resp_1", status: "in_progress", background: true, error: null } as unknown as ResponseObject;
  return { response, conversation: [], ...(heartbeatAtMs === undefined ? {} : { heartbeatAtMs }) };
}

test("a kept in_progress background response whose run is gone reads as failed after the stale bound, not before", () => {
  const now = 1_000_000;
  assert.equal(backgroundView(running(now - BACKGROUND_STALE_MS), false, now).status, "in_progress");
  const stale = backgroundView(running(now - BACKGROUND_STALE_MS - 1), false, now);
  assert.equal(stale.status, "failed");
  assert.equal(stale.error?.code, "server_error");
  assert.match(stale.error?.message ?? "", /stopped before it finished/);
  // Run here: never stale, whatever its heartbeat says.
  assert.equal(backgroundView(running(0), true, now).status, "in_progress");
  // Without a heartbeat at all (written by a process that died before its first one): stale.
  assert.equal(backgroundView(running(undefined), false, now).status, "failed");
});

test("a finished or synchronous response reads as it is kept", () => {
  const done = { id: "r", status: "completed", background: true } as unknown as ResponseObject;
  assert.equal(backgroundView({ response: done, conversation: [] }, false, 1e12).status, "completed");
  const sync = { id: "r", status: "in_progress", background: false } as unknown as ResponseObject;
  assert.equal(backgroundView({ response: sync, conversation: [] }, false, 1e12).status, "in_progress");
});

test("SSE text splits into single events, each response snapshot marked background, other events unchanged", () => {
  const text =
    'event: response.created\ndata: {"type":"response.created","sequence_number":0,"response":{"id":"r","background":false}}\n\n' +
    'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":1,"delta":"Hi"}\n\n';
  const events = backgroundEvents(text);
  assert.equal(events.length, 2);
  assert.equal(
    events[0],
    'event: response.created\ndata: {"type":"response.created","sequence_number":0,"response":{"id":"r","background":true}}\n\n',
  );
  assert.equal(
    events[1],
    'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":1,"delta":"Hi"}\n\n',
  );
  assert.deepEqual(backgroundEvents(""), []);
});

test("RunningEvents gathers a run's events before its ending as they come: one list, extended, as runningEvents keeps them", () => {
  const delta = (index: number): string => `event: response.output_text.delta\ndata: {"sequence_number":${index}}\n\n`;
  const all = [delta(0), delta(1), delta(2), delta(3)];
  const ending = 'event: response.completed\ndata: {"sequence_number":4}\n\n';
  const gathered = new RunningEvents();
  const first = gathered.add(all.slice(0, 2));
  assert.deepEqual(first, runningEvents(all.slice(0, 2)));
  assert.equal(gathered.seen, 2);
  const second = gathered.add(all.slice(gathered.seen));
  assert.equal(second, first, "the same list, extended");
  assert.deepEqual(second, runningEvents(all));
  // The ending and what may follow it (a failure's events after it) are never kept by a heartbeat.
  const withEnding = [...all, ending, delta(5)];
  assert.deepEqual(gathered.add(withEnding.slice(gathered.seen)), runningEvents(withEnding));
  assert.equal(gathered.seen, withEnding.length);
  assert.deepEqual(gathered.add([delta(6)]), all);
  assert.deepEqual(new RunningEvents().add([]), []);
});
