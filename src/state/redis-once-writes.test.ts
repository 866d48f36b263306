// The resend policy of writes that apply at most once (the marker itself is tested against a real Redis in
// redis-ledger.test.ts): a failed write is sent again while Redis is up, a send that throws counts as a failure,
// and closing gives up the waiting resends at once.
import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { KeyedFailure, RedisLink } from "./redis-link.ts";
import { OnceWrites } from "./redis-once-writes.ts";

function upLink(): RedisLink {
  const link = new RedisLink(
    "redis://test",
    undefined,
    () => Date.now(),
    () => true,
  );
  link.markUp();
  return link;
}

test("a failed write is sent again (250 ms, then 500 ms) until it is answered; a throwing send counts as a failure", async () => {
  const writes = new OnceWrites(upLink(), "p:", "me");
  const sentAtMs: number[] = [];
  const startMs = Date.now();
  await writes.send(() => {
    sentAtMs.push(Date.now() - startMs);
    if (sentAtMs.length === 1) return Promise.reject(new Error("timed out"));
    if (sentAtMs.length === 2) throw new Error("thrown instead of rejected");
    return Promise.resolve(1);
  });
  assert.equal(sentAtMs.length, 3);
  assert.ok((sentAtMs[1] ?? 0) >= 240 && (sentAtMs[2] ?? 0) >= 740, `sent at ${sentAtMs.join(", ")} ms`);
});

test("while Redis is down a resend turn is skipped, not spent on a certain failure; stop() gives up the waiting ones", async () => {
  const link = upLink();
  const writes = new OnceWrites(link, "p:", "me");
  let sends = 0;
  const settled = writes.send(() => {
    sends++;
    return Promise.reject(new Error("connection closed"));
  });
  await sleep(20);
  link.markDown(new Error("gone"));
  await sleep(300);
  assert.equal(sends, 1, "no send while Redis is down");
  writes.stop();
  await settled;
  link.markUp();
  await sleep(600);
  assert.equal(sends, 1, "nothing sent after stop()");
});

test("marker keys: in the scope's hash tag, one per write; the applied set one per provider and process", () => {
  const writes = new OnceWrites(upLink(), "p:", "me");
  const first = writes.marker("deployment:groq/llama");
  assert.match(first.key, /^p:once:\{groq\}:deployment:groq\/llama:me:\d+$/);
  assert.equal(first.applied, "p:once:{groq}:applied:me");
  const second = writes.marker("provider:groq");
  assert.notEqual(second.key, first.key);
  assert.equal(second.applied, first.applied);
});

test("a write given up after failures on a key of its own (KeyedFailure) warns with what failed, not only the key", async () => {
  const warnings: unknown[] = [];
  const logger = { info: () => {}, warn: (fields: unknown) => warnings.push(fields), error: () => {} };
  const link = new RedisLink(
    "redis://test",
    logger as unknown as ConstructorParameters<typeof RedisLink>[1],
    () => Date.now(),
    () => true,
  );
  link.markUp();
  const writes = new OnceWrites(link, "p:", "me");
  // As a batch's resend whose read of the data epoch times out (redis-write-batches.ts).
  await writes.send(() => Promise.reject(new KeyedFailure("p:data-epoch", new Error("Command timed out"))));
  const givenUp = warnings.find((fields) => JSON.stringify(fields).includes('"writes"'));
  assert.ok(givenUp !== undefined, JSON.stringify(warnings));
  assert.match(JSON.stringify(givenUp), /Command timed out/);
});
