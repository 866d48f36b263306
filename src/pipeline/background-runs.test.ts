import assert from "node:assert/strict";
import { test } from "node:test";
import { BackgroundCancel, BackgroundRuns, RunStateWrites } from "./background-runs.ts";

async function collect(events: AsyncGenerator<string> | undefined): Promise<string[]> {
  const seen: string[] = [];
  if (events === undefined) return seen;
  for await (const event of events) seen.push(event);
  return seen;
}

test("a follower gets the events from its index, then the live ones, and ends with the run", async () => {
  const runs = new BackgroundRuns();
  runs.start("r", new AbortController());
  runs.append("r", "a");
  runs.append("r", "b");
  const followed = collect(runs.follow("r", 1, new AbortController().signal));
  runs.append("r", "c");
  await new Promise((resolve) => setImmediate(resolve));
  runs.append("r", "d");
  runs.finish("r");
  assert.deepEqual(await followed, ["b", "c", "d"]);
  assert.equal(runs.follow("r", 0, new AbortController().signal), undefined, "a finished run is not here any more");
});

test("a follower that leaves ends without the run ending", async () => {
  const runs = new BackgroundRuns();
  runs.start("r", new AbortController());
  runs.append("r", "a");
  const leave = new AbortController();
  const followed = collect(runs.follow("r", 0, leave.signal));
  await new Promise((resolve) => setImmediate(resolve));
  leave.abort();
  assert.deepEqual(await followed, ["a"]);
  assert.equal(runs.has("r"), true);
});

test("cancel aborts the run's signal with a BackgroundCancel and waits until it is finished", async () => {
  const runs = new BackgroundRuns();
  const controller = new AbortController();
  runs.start("r", controller);
  controller.signal.addEventListener("abort", () => setTimeout(() => runs.finish("r"), 10));
  let isSettled = false;
  const settled = runs.settled().then(() => {
    isSettled = true;
  });
  assert.equal(await runs.cancel("r"), true);
  assert.ok(controller.signal.reason instanceof BackgroundCancel);
  await settled;
  assert.equal(isSettled, true);
  assert.equal(await runs.cancel("r"), false);
});

/** A write that lasts until the test ends it (a slow store). */
function heldWrite(): { write: () => Promise<void>; release: () => void } {
  let release = (): void => {};
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  return { write: () => held, release };
}

test("run state writes: one heartbeat waits at most while a slow write holds the chain; the final state comes right after it", async () => {
  const writes = new RunStateWrites((error) => assert.fail(String(error)));
  const order: string[] = [];
  const slow = heldWrite();
  let beats = 0;
  const beat = async (): Promise<void> => {
    beats += 1;
    order.push(`beat ${beats}`);
  };
  void writes.enqueue(async () => {
    order.push("slow");
    await slow.write();
  });
  // Five heartbeats due while the store is slow (one a second): the first waits, the rest find it waiting.
  for (let index = 0; index < 5; index++) writes.enqueueBeat(beat);
  const next = writes.enqueue(async () => {
    order.push("next");
  });
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(order, ["slow"], "nothing runs while the slow write holds the chain");
  slow.release();
  await next;
  assert.deepEqual(order, ["slow", "beat 1", "next"], "the heartbeats piled up ahead of the next write");
  // Once the waiting one has started, the next heartbeat is queued again.
  writes.enqueueBeat(beat);
  await writes.enqueue(async () => {});
  assert.equal(beats, 2);
});

test("run state writes: the final state goes right after the write in flight; a heartbeat still waiting is dropped, none is queued after", async () => {
  const writes = new RunStateWrites((error) => assert.fail(String(error)));
  const order: string[] = [];
  const slow = heldWrite();
  const beat = async (): Promise<void> => {
    order.push("beat");
  };
  void writes.enqueue(async () => {
    order.push("slow");
    await slow.write();
  });
  writes.enqueueBeat(beat);
  const final = writes.enqueueFinal(async () => {
    order.push("final");
  });
  writes.enqueueBeat(beat); // the interval firing once more before it is cleared
  slow.release();
  await final;
  await writes.enqueue(async () => {});
  assert.deepEqual(order, ["slow", "final"], "a heartbeat held the final state back by one more write");
});

test("run state writes: a write that throws is reported and the chain goes on", async () => {
  const errors: unknown[] = [];
  const writes = new RunStateWrites((error) => errors.push(error));
  const failed = writes.enqueue(async () => {
    throw new Error("store unreachable");
  });
  await failed;
  let isWritten = false;
  await writes.enqueue(async () => {
    isWritten = true;
  });
  assert.equal(isWritten, true);
  assert.deepEqual(
    errors.map((error) => (error instanceof Error ? error.message : String(error))),
    ["store unreachable"],
  );
});
