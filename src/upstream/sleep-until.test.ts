import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "../clock.ts";
import { sleepUntil } from "./sleep-until.ts";

test("a clock behind the timers (an event loop's cached time under load): sleeps until the clock reads the end", async () => {
  // A clock at 0.9× the timers' pace: one 40 ms sleep ends when it reads 36 ms, where a candidate waited for
  // (an rps window) would still be full.
  const startMs = Date.now();
  const clock = { now: () => startMs + (Date.now() - startMs) * 0.9 };
  const untilMs = startMs + 40;
  await sleepUntil(untilMs, clock, new AbortController().signal);
  assert.ok(clock.now() >= untilMs, `woke at ${clock.now() - startMs} ms of 40`);
});

test("a clock that does not move (a test's manual clock): a few sleeps, then it returns", async () => {
  const clock = new ManualClock();
  const startedAt = performance.now();
  await sleepUntil(clock.now() + 5, clock, new AbortController().signal);
  assert.ok(performance.now() - startedAt < 1_000);
});

test("an abort ends the sleep at once", async () => {
  const controller = new AbortController();
  const startedAt = performance.now();
  setTimeout(() => controller.abort(), 10);
  await sleepUntil(Date.now() + 60_000, { now: () => Date.now() }, controller.signal);
  assert.ok(performance.now() - startedAt < 5_000);
});
