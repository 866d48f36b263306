import assert from "node:assert/strict";
import { test } from "node:test";
import { abortableSleep } from "./abortable-sleep.ts";

test("waits its duration when nothing aborts", async () => {
  const startedAt = performance.now();
  await abortableSleep(30, new AbortController().signal);
  // A timer may fire up to a millisecond early (its cached loop time).
  assert.ok(performance.now() - startedAt >= 29, `woke after ${performance.now() - startedAt} ms of 30`);
});

test("an abort during the sleep ends it at once, resolved", async () => {
  const controller = new AbortController();
  const startedAt = performance.now();
  setTimeout(() => controller.abort(), 10);
  await abortableSleep(60_000, controller.signal);
  assert.ok(performance.now() - startedAt < 5_000);
});

test("a signal aborted before the sleep: resolves at once, not after its duration (its abort event never fires again)", async () => {
  const controller = new AbortController();
  controller.abort();
  const startedAt = performance.now();
  await abortableSleep(60_000, controller.signal);
  assert.ok(performance.now() - startedAt < 5_000);
});

test("no time to wait: resolves at once", async () => {
  const startedAt = performance.now();
  await abortableSleep(0, new AbortController().signal);
  await abortableSleep(-5, new AbortController().signal);
  assert.ok(performance.now() - startedAt < 1_000);
});
