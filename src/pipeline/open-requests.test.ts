import assert from "node:assert/strict";
import { test } from "node:test";
import { ServiceUnavailableError } from "../errors/gateway-error.ts";
import { cutReason, OpenRequests } from "./open-requests.ts";

test("cutAll aborts every open request with its error and resolves once the last one is settled", async () => {
  const open = new OpenRequests();
  const first = open.open();
  const second = open.open();
  const settledEarly = open.open();
  open.close(settledEarly);
  const reason = new ServiceUnavailableError("The gateway is shutting down");
  let isDone = false;
  const done = open.cutAll(reason).then(() => {
    isDone = true;
  });
  assert.equal(cutReason(first.signal), reason);
  assert.equal(cutReason(second.signal), reason);
  assert.equal(settledEarly.signal.aborted, false, "a request settled before the cut is left alone");
  open.close(first);
  await Promise.resolve();
  assert.equal(isDone, false, "resolved while a request was still open");
  open.close(second);
  await done;
  assert.equal(open.size, 0);
  // A request that begins after the cut (already reading its body, say) is ended at once.
  const late = open.open();
  assert.equal(cutReason(late.signal), reason);
});

test("a client that left is not a cut: no reason of the gateway's", () => {
  const open = new OpenRequests();
  const gone = open.open();
  gone.abort();
  assert.equal(cutReason(gone.signal), undefined);
  assert.equal(cutReason(open.open().signal), undefined);
});

test("cutAll with nothing open resolves at once", async () => {
  await new OpenRequests().cutAll(new ServiceUnavailableError("shutting down"));
});
