import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import { test } from "node:test";
import type { ResponseObject } from "../protocols/responses/response-object.ts";
import type { StoredResponse } from "../protocols/responses/response-store.ts";
import { followKept } from "./background-readers.ts";

test("following another replica's run removes each heartbeat round's abort listener from the reader's signal (none pile up)", async () => {
  const response = { id: "resp_1", status: "in_progress", background: true } as unknown as ResponseObject;
  let reads = 0;
  const followed = new AbortController();
  let seen = -1;
  const read = async (): Promise<StoredResponse | undefined> => {
    reads += 1;
    // Each read is a heartbeat round: the rounds before it have left their listeners (or not).
    seen = Math.max(seen, getEventListeners(followed.signal, "abort").length);
    const status = reads >= 4 ? "completed" : "in_progress";
    return {
      response: { ...response, status } as ResponseObject,
      conversation: [],
      events: [],
      heartbeatAtMs: Date.now(),
    };
  };
  for await (const _ of followKept("resp_1", read, 0, () => Date.now(), followed.signal)) {
    // no events
  }
  assert.equal(reads, 4);
  assert.equal(seen, 0, "a finished round's abort listener is removed");
  assert.equal(getEventListeners(followed.signal, "abort").length, 0);
});
