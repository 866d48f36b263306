// The final write's part in a background answer's conversation: its items, added before, stay only when the answer
// itself is what was kept (a store scripted per case: which write lands, what a read finds).
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ResponseObject } from "../protocols/responses/response-object.ts";
import type { StoredResponse } from "../protocols/responses/response-store.ts";
import { type FinalWrite, writeFinal } from "./background-final-write.ts";

function responseOf(status: ResponseObject["status"]): ResponseObject {
  return { id: "resp_1", object: "response", status, output: [] } as unknown as ResponseObject;
}

/** A store whose writes land when `lands` says so, read as `kept`; records the statuses written and each `leave`. */
function scriptedTarget(lands: (status: string) => boolean, kept: StoredResponse | undefined) {
  const written: string[] = [];
  const left: string[] = [];
  return {
    written,
    left,
    target: {
      keep: async (response: ResponseObject) => {
        if (!lands(response.status)) return undefined;
        written.push(response.status);
        return `token-${written.length}`;
      },
      read: async () => kept,
      leave: async (response: ResponseObject) => {
        left.push(response.status);
      },
    },
  };
}

function finalWrite(isLate: boolean): FinalWrite {
  return {
    finished: responseOf("completed"),
    events: undefined,
    expected: "token-0",
    notAfterMs: 0,
    isLate: () => isLate,
    stopped: { response: responseOf("failed"), events: undefined, token: "token-0" },
  };
}

test("the answer kept: its items stay in its conversation", async () => {
  const store = scriptedTarget(() => true, undefined);
  await writeFinal(store.target, finalWrite(false), true);
  assert.deepEqual(store.written, ["completed"]);
  assert.deepEqual(store.left, []);
});

test("too late: the run is kept failed, and the answer's items are taken out of its conversation", async () => {
  const store = scriptedTarget((status) => status !== "completed", undefined);
  await writeFinal(store.target, finalWrite(true), true);
  assert.deepEqual(store.written, ["failed"]);
  assert.deepEqual(store.left, ["completed"]);
});

test("cancelled meanwhile: kept cancelled, the items taken out; deleted meanwhile: the same, nothing written", async () => {
  const cancelled = { response: responseOf("cancelled"), conversation: [] } as unknown as StoredResponse;
  const onCancel = scriptedTarget((status) => status === "cancelled", cancelled);
  await writeFinal(onCancel.target, finalWrite(false), true);
  assert.deepEqual(onCancel.written, ["cancelled"]);
  assert.deepEqual(onCancel.left, ["completed"]);
  const onDelete = scriptedTarget(() => false, undefined);
  await writeFinal(onDelete.target, finalWrite(false), true);
  assert.deepEqual(onDelete.left, ["completed"]);
});

test("nothing joined (not an answer, or no conversation): nothing is taken out", async () => {
  const store = scriptedTarget(() => false, undefined);
  await writeFinal(store.target, finalWrite(false), false);
  assert.deepEqual(store.left, []);
});

test("not known whether the final write landed: a read failing once more is read again before the items go", async () => {
  // The store failed every attempt of the final write (the last one's reply lost: it landed), then the first read
  // after it too; the next read finds the answer kept. Decided on that first read, its items were taken out (and
  // the removal is tried again until the store is back), leaving a completed answer outside its conversation.
  const landed = { response: responseOf("completed"), conversation: [] } as unknown as StoredResponse;
  let failedReads = 0;
  const left: string[] = [];
  const target = {
    keep: async (): Promise<string | undefined> => {
      throw new Error("connection lost");
    },
    read: async (): Promise<StoredResponse | undefined> => {
      if (failedReads++ < 1) throw new Error("connection lost");
      return landed;
    },
    leave: async (response: ResponseObject) => {
      left.push(response.status);
    },
  };
  await assert.rejects(writeFinal(target, finalWrite(false), true), /connection lost/);
  assert.deepEqual(left, [], "the answer that was kept keeps its items");
});
