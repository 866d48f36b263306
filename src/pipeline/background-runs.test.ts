import assert from "node:assert/strict";
import { test } from "node:test";
import { BackgroundCancel, BackgroundRuns } from "./background-runs.ts";

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
