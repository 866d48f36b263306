import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { WaitQueue } from "./wait-queue.ts";

/** A pool of slots that tests hand out one at a time, and the order in which waiters took them. */
function slotPool() {
  let free = 0;
  const takenBy: string[] = [];
  return {
    takenBy,
    add(count = 1): void {
      free += count;
    },
    tryTake(name: string): { value: string } | { retryInMs: number } {
      if (free === 0) return { retryInMs: 5 };
      free--;
      takenBy.push(name);
      return { value: name };
    },
  };
}

describe("WaitQueue", () => {
  it("serves waiters in arrival order, even when a later one polls first", async () => {
    const queue = new WaitQueue();
    const pool = slotPool();
    const signal = new AbortController().signal;
    const waiters = ["first", "second", "third"].map((name) => queue.wait(10, 5_000, signal, () => pool.tryTake(name)));
    assert.equal(queue.size, 3);
    for (let index = 0; index < 3; index++) {
      await sleep(20);
      pool.add();
    }
    assert.deepEqual(await Promise.all(waiters), ["first", "second", "third"]);
    assert.deepEqual(pool.takenBy, ["first", "second", "third"]);
    assert.equal(queue.size, 0);
  });

  it("a waiter whose turn has not come does not take a free slot before the one ahead of it", async () => {
    const queue = new WaitQueue();
    const pool = slotPool();
    const signal = new AbortController().signal;
    let secondTries = 0;
    const first = queue.wait(10, 5_000, signal, () => pool.tryTake("first"));
    const second = queue.wait(10, 5_000, signal, () => {
      secondTries++;
      return pool.tryTake("second");
    });
    await sleep(30);
    assert.equal(secondTries, 0, "the second waiter polled while the first was still waiting");
    pool.add(2);
    assert.deepEqual(await Promise.all([first, second]), ["first", "second"]);
  });

  it("is bounded: beyond max_queued a request is refused at once", async () => {
    const queue = new WaitQueue();
    const pool = slotPool();
    const signal = new AbortController().signal;
    const waiting = [
      queue.wait(2, 5_000, signal, () => pool.tryTake("a")),
      queue.wait(2, 5_000, signal, () => pool.tryTake("b")),
    ];
    const startedAtMs = performance.now();
    assert.equal(await queue.wait(2, 5_000, signal, () => pool.tryTake("c")), undefined);
    assert.ok(performance.now() - startedAtMs < 50, "the refused request waited");
    assert.equal(queue.size, 2);
    pool.add(2);
    assert.deepEqual(await Promise.all(waiting), ["a", "b"]);
    assert.equal(pool.takenBy.includes("c"), false);
  });

  it("max_queued 0 queues nobody", async () => {
    const queue = new WaitQueue();
    assert.equal(await queue.wait(0, 5_000, new AbortController().signal, () => ({ value: 1 })), undefined);
  });

  it("gives up at the timeout, and the next waiter still gets its turn", async () => {
    const queue = new WaitQueue();
    const pool = slotPool();
    const signal = new AbortController().signal;
    const startedAtMs = performance.now();
    const impatient = queue.wait(10, 60, signal, () => pool.tryTake("impatient"));
    const patient = queue.wait(10, 5_000, signal, () => pool.tryTake("patient"));
    assert.equal(await impatient, undefined);
    const waitedMs = performance.now() - startedAtMs;
    // Not timed out, it would wait with the patient one (5 s): half of that leaves a loaded machine room.
    assert.ok(waitedMs >= 55 && waitedMs < 2_500, `timed out after ${waitedMs} ms`);
    pool.add();
    assert.equal(await patient, "patient");
  });

  it("a waiter whose predecessor is stuck times out on its own deadline without jumping the queue", async () => {
    const queue = new WaitQueue();
    const signal = new AbortController().signal;
    // Generous margins: the predecessor is stuck for 1.5 s, the waiter gives up after 60 ms; on a loaded 2-core
    // machine timers can run late, but not by a second.
    const stuck = queue.wait(10, 1_500, signal, () => ({ retryInMs: 5 }));
    const startedAtMs = performance.now();
    assert.equal(await queue.wait(10, 60, signal, () => ({ value: "never asked" })), undefined);
    assert.ok(performance.now() - startedAtMs < 1_000, "waited for the predecessor beyond its own deadline");
    assert.equal(await stuck, undefined);
  });

  it("an aborted signal (client gone) ends the wait at once", async () => {
    const queue = new WaitQueue();
    const controller = new AbortController();
    const waiting = queue.wait(10, 5_000, controller.signal, () => ({ retryInMs: 1_000 }));
    await sleep(20);
    const abortedAtMs = performance.now();
    controller.abort();
    assert.equal(await waiting, undefined);
    assert.ok(performance.now() - abortedAtMs < 100);
    assert.equal(queue.size, 0);
  });

  it("tryNow's retry hint paces the polling", async () => {
    const queue = new WaitQueue();
    let calls = 0;
    const result = await queue.wait(10, 5_000, new AbortController().signal, () => {
      calls++;
      return calls < 3 ? { retryInMs: 40 } : { value: "ready" };
    });
    assert.equal(result, "ready");
    assert.equal(calls, 3);
  });
});
