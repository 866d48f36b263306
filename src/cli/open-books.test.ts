// A start's stores open together (with Redis); one that fails ends the wait at once, and those that open later are
// closed, so a failed start neither waits for the slowest store nor leaves a connection behind.
import assert from "node:assert/strict";
import { test } from "node:test";
import { openTogether } from "./open-books.ts";

/** A store that opens when `open` is called, and counts its closes. */
function slowStore() {
  const opened = Promise.withResolvers<{ close(): Promise<void> }>();
  let closes = 0;
  const store = {
    close: async () => {
      closes += 1;
    },
  };
  return { promise: opened.promise, open: () => opened.resolve(store), closes: () => closes };
}

test("one store failing rejects at once with its error, while another still opens; that one is closed once open", async () => {
  const failure = new Error("the runtime could not be built");
  const slow = slowStore();
  const quick = slowStore();
  quick.open();
  const outcome = openTogether([Promise.reject(failure), quick.promise, slow.promise]).then(
    () => "opened",
    (error: unknown) => error,
  );
  // The slow store stands for a Redis connection waiting up to 5 s to be ready: it has not opened at all. The
  // old start waited for it (Promise.allSettled): this race was won by the timeout.
  const timeout = new Promise((resolve) => setTimeout(() => resolve("still waiting"), 1_000).unref());
  assert.equal(await Promise.race([outcome, timeout]), failure);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(quick.closes(), 1, "the store that had opened is closed");
  assert.equal(slow.closes(), 0);
  slow.open();
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(slow.closes(), 1, "the store that opened after the failure is closed then");
});

test("every store opening resolves with all three, in order, closing none", async () => {
  const stores = [slowStore(), slowStore(), slowStore()] as const;
  for (const each of stores) each.open();
  const opened = await openTogether([stores[0].promise, stores[1].promise, stores[2].promise]);
  assert.equal(opened.length, 3);
  assert.deepEqual(
    stores.map((each) => each.closes()),
    [0, 0, 0],
  );
});
