import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { InFlightGates } from "./in-flight-gate.ts";

const never = new AbortController().signal;

describe("InFlightGates", () => {
  test("up to the limit at once; the next waits and gets the first freed slot", async () => {
    const gates = new InFlightGates();
    const first = gates.acquire("p", 2, 1000, never);
    assert.equal(typeof first, "function", "a free slot is granted at once, not as a promise");
    const second = await gates.acquire("p", 2, 1000, never);
    assert.ok(typeof first === "function" && second !== undefined);
    const granted: (() => void)[] = [];
    const waiting = Promise.resolve(gates.acquire("p", 2, 1000, never)).then((release) => {
      if (release !== undefined) granted.push(release);
    });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(granted.length, 0);
    assert.equal(gates.waiting("p"), 1);
    first();
    first(); // idempotent: does not free a second slot
    await waiting;
    assert.equal(granted.length, 1);
    assert.equal(gates.inFlight("p"), 2);
    second();
    for (const release of granted) release();
    assert.equal(gates.inFlight("p"), 0);
  });

  test("waiters are served in arrival order, and a newcomer cannot jump the queue", async () => {
    const gates = new InFlightGates();
    const held = await gates.acquire("p", 1, 1000, never);
    assert.ok(held !== undefined);
    const order: string[] = [];
    const a = Promise.resolve(gates.acquire("p", 1, 1000, never)).then((release) => {
      order.push("a");
      release?.();
    });
    const b = Promise.resolve(gates.acquire("p", 1, 1000, never)).then((release) => {
      order.push("b");
      release?.();
    });
    held();
    await Promise.all([a, b]);
    assert.deepEqual(order, ["a", "b"]);
  });

  test("the wait ends after maxWaitMs or on abort, without a slot", async () => {
    const gates = new InFlightGates();
    const held = await gates.acquire("p", 1, 1000, never);
    assert.equal(await gates.acquire("p", 1, 20, never), undefined);
    const controller = new AbortController();
    const aborted = gates.acquire("p", 1, 10_000, controller.signal);
    controller.abort();
    assert.equal(await aborted, undefined);
    assert.equal(await gates.acquire("p", 1, 0, never), undefined, "no wait at all when maxWaitMs is 0");
    assert.equal(gates.waiting("p"), 0);
    held?.();
    assert.equal(gates.inFlight("p"), 0);
  });

  test("providers are independent", async () => {
    const gates = new InFlightGates();
    const p = await gates.acquire("p", 1, 0, never);
    const q = await gates.acquire("q", 1, 0, never);
    assert.ok(p !== undefined && q !== undefined);
  });

  test("a raised limit (a reload) lets waiters in at once, not only as slots are given back", async () => {
    const gates = new InFlightGates();
    const held = gates.acquire("p", 1, 1000, never);
    assert.equal(typeof held, "function");
    const granted: (() => void)[] = [];
    const waiters = [0, 1].map(() =>
      Promise.resolve(gates.acquire("p", 1, 1000, never)).then((release) => {
        if (release !== undefined) granted.push(release);
      }),
    );
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(gates.waiting("p"), 2);
    gates.resize("p", 3);
    await Promise.all(waiters);
    assert.equal(granted.length, 2);
    assert.equal(gates.inFlight("p"), 3);
  });

  test("a lowered limit is reached as requests end: a freed slot is not passed on while too many are in flight", async () => {
    const gates = new InFlightGates();
    const releases = [0, 1, 2].map(() => gates.acquire("p", 3, 1000, never));
    const granted: (() => void)[] = [];
    const waiter = Promise.resolve(gates.acquire("p", 3, 1000, never)).then((release) => {
      if (release !== undefined) granted.push(release);
    });
    gates.resize("p", 1);
    for (const release of releases.slice(0, 2)) if (typeof release === "function") release();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(granted.length, 0, "two ended, one still in flight: at the new limit of 1");
    assert.equal(gates.inFlight("p"), 1);
    const last = releases[2];
    if (typeof last === "function") last();
    await waiter;
    assert.equal(granted.length, 1);
    assert.equal(gates.inFlight("p"), 1);
    for (const release of granted) release();
    assert.equal(gates.inFlight("p"), 0);
  });
});
