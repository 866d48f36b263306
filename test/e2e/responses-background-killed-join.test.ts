// A background response on a conversation whose gateway process is killed (SIGKILL) after its answer's items were
// added to the conversation and before its final write (the window held open by a preload: hold-final-write.ts). The
// run's heartbeat named those items first (StoredResponse.joining), so the gateway that reads it once its lease ran
// out (BACKGROUND_STALE_MS) keeps it `failed` and takes them out (background-stopped.ts): before, the conversation
// kept the question and the answer of a response that reads failed, and the next turn continued from them. Once on
// a state file (a new gateway on it, as after a restart), once on a Redis two gateways share (the other replica:
// it must not fail the run while its owner lives, and takes over once it died).
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";
import {
  CHAT_ROUTE,
  chatRequests,
  logCollector,
  oneProviderYaml,
  openAiClient,
  stateFileYaml,
  useGateway,
  useMock,
} from "../helpers/e2e.ts";
import { type GatewayProcess, startGatewayProcess } from "../helpers/gateway-process.ts";
import { chatCompletion, type MockUpstream } from "../helpers/mock-upstream.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../helpers/redis-server.ts";

const HOLD_FINAL_WRITE = fileURLToPath(new URL("../helpers/hold-final-write.ts", import.meta.url));
/** The lease (15 s) and the polling on a loaded machine: a bound only so that a broken gateway ends the test. */
const STOPPED_WITHIN_MS = 60_000;

function clientOf(gateway: GatewayProcess): OpenAI {
  return new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: "x", maxRetries: 0 });
}

async function itemTexts(client: OpenAI, conversationId: string): Promise<string[]> {
  const page = await client.conversations.items.list(conversationId, { order: "asc", limit: 100 });
  return page.data.map((item) => JSON.stringify(item.type === "message" ? item.content : item.type));
}

/**
 * On `doomed` (whose final writes never land): a conversation with one item, then a background response on it whose
 * answer joined it. Returns the ids, once the conversation lists the answer's items.
 */
async function joinedThenHeld(mock: MockUpstream, doomed: OpenAI): Promise<{ conversationId: string; id: string }> {
  const conversation = await doomed.conversations.create({
    items: [{ type: "message", role: "user", content: "Before the crash." }],
  });
  mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("An answer that never completed.", "m-upstream") });
  const created = await doomed.responses.create({
    model: "m",
    input: "The question.",
    conversation: conversation.id,
    background: true,
  });
  for (let tries = 0; ; tries++) {
    if ((await itemTexts(doomed, conversation.id)).length === 3) break;
    assert.ok(tries < 200, "the answer's items never joined the conversation");
    await sleep(50);
  }
  const held = await doomed.responses.retrieve(created.id);
  assert.equal(held.status, "in_progress", "its final write is held");
  return { conversationId: conversation.id, id: created.id };
}

async function killed(t: TestContext, gateway: GatewayProcess): Promise<void> {
  assert.ok(gateway.pid !== undefined);
  process.kill(gateway.pid, "SIGKILL");
  assert.equal(await gateway.exited, null);
  t.diagnostic(`killed ${gateway.pid}`);
}

/** Polls `id` on `client` until it is no longer running; returns it. */
async function settled(client: OpenAI, id: string): Promise<OpenAI.Responses.Response> {
  const startedAtMs = Date.now();
  for (;;) {
    const response = await client.responses.retrieve(id);
    if (response.status !== "in_progress" && response.status !== "queued") return response;
    assert.ok(Date.now() - startedAtMs < STOPPED_WITHIN_MS, "the killed run still reads in_progress");
    await sleep(250);
  }
}

function assertStopped(response: OpenAI.Responses.Response): void {
  assert.equal(response.status, "failed");
  assert.equal(response.error?.code, "server_error");
  assert.match(response.error?.message ?? "", /stopped before it finished/);
  assert.deepEqual(response.output, []);
}

test("state file: killed after its answer joined the conversation; the gateway started on it fails it and takes the items out", async (t) => {
  const mock = await useMock(t);
  const statePath = join(mkdtempSync(join(tmpdir(), "bg-killed-join-")), "state.db");
  const yaml = stateFileYaml(mock, statePath);
  const doomed = await startGatewayProcess(t, yaml, { preload: HOLD_FINAL_WRITE });
  const { conversationId, id } = await joinedThenHeld(mock, clientOf(doomed));
  await killed(t, doomed);

  const log = logCollector();
  const after = openAiClient(await useGateway(t, yaml, { logStream: log.stream, logLevel: "warn" }));
  assertStopped(await settled(after, id));
  assert.deepEqual(await itemTexts(after, conversationId), [
    JSON.stringify([{ type: "input_text", text: "Before the crash." }]),
  ]);
  assert.equal(log.lines.filter((line) => line.includes("its run stopped without an end")).length, 1);
  // Kept so: read again, it is failed as written (not a view), and the conversation's next turn has no half turn.
  assertStopped(await after.responses.retrieve(id));
  mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Next.", "m-upstream") });
  await after.responses.create({ model: "m", input: "Again.", conversation: conversationId });
  const sent = JSON.stringify(mock.requests.at(-1)?.body);
  assert.ok(sent.includes("Before the crash.") && !sent.includes("never completed"), sent);
});

test("state file: cancelled from another gateway while its answer was joining, then killed: the next read takes the items out", async (t) => {
  const mock = await useMock(t);
  const statePath = join(mkdtempSync(join(tmpdir(), "bg-killed-join-")), "state.db");
  const yaml = stateFileYaml(mock, statePath);
  const doomed = await startGatewayProcess(t, yaml, { preload: HOLD_FINAL_WRITE });
  const other = openAiClient(await useGateway(t, yaml));
  const { conversationId, id } = await joinedThenHeld(mock, clientOf(doomed));
  // Its lease still fresh: marked cancelled in the store, for its run to see at its final write (which never comes).
  assert.equal((await other.responses.cancel(id)).status, "cancelled");
  await killed(t, doomed);
  assert.equal((await other.responses.retrieve(id)).status, "cancelled");
  // Before, the cancel kept the row's fields but nobody acted on them: the question and the answer of a cancelled
  // response stayed in the conversation for good.
  assert.deepEqual(await itemTexts(other, conversationId), [
    JSON.stringify([{ type: "input_text", text: "Before the crash." }]),
  ]);
});

test("state file: killed while its answer was joining, then deleted from another gateway before its lease ran out: its items leave too", async (t) => {
  const mock = await useMock(t);
  const statePath = join(mkdtempSync(join(tmpdir(), "bg-killed-join-")), "state.db");
  const yaml = stateFileYaml(mock, statePath);
  const doomed = await startGatewayProcess(t, yaml, { preload: HOLD_FINAL_WRITE });
  const other = openAiClient(await useGateway(t, yaml));
  const { conversationId, id } = await joinedThenHeld(mock, clientOf(doomed));
  await killed(t, doomed);
  // Deleted at once (a client giving up on it): nobody can read it stopped any more, so the DELETE takes the items
  // out, as the run's own final write does when it finds its response deleted.
  await other.responses.delete(id);
  assert.deepEqual(await itemTexts(other, conversationId), [
    JSON.stringify([{ type: "input_text", text: "Before the crash." }]),
  ]);
});

test("Redis: the other replica leaves the run alone while its owner lives, then fails it once and takes the items out", {
  skip: isRedisInstalled() ? false : REDIS_MISSING,
}, async (t) => {
  const mock = await useMock(t);
  const redis = await useRedisServer(t);
  const yaml = `${oneProviderYaml(mock)}state:\n  path: ":memory:"\n  redis_url: ${redis.url}\n  redis_key_prefix: "killed-join:"\n`;
  const doomed = await startGatewayProcess(t, yaml, { preload: HOLD_FINAL_WRITE });
  const logs = [logCollector(), logCollector()];
  const [other, third] = await Promise.all(
    logs.map(async (log) => openAiClient(await useGateway(t, yaml, { logStream: log.stream, logLevel: "warn" }))),
  );
  assert.ok(other !== undefined && third !== undefined);
  // A run the doomed replica is still serving (its upstream answer held): its heartbeats renew its lease.
  mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Too late.", "m-upstream"), delayMs: 120_000 });
  const going = await clientOf(doomed).responses.create({ model: "m", input: "Slow.", background: true });
  for (let tries = 0; chatRequests(mock).length === 0; tries++) {
    assert.ok(tries < 200, "the slow run never reached the upstream");
    await sleep(50);
  }
  const { conversationId, id } = await joinedThenHeld(mock, clientOf(doomed));
  // Its owner alive: read on another replica well past the lease's length, it is still running (not failed there).
  await sleep(16_000);
  assert.equal((await other.responses.retrieve(going.id)).status, "in_progress");
  assert.equal((await third.responses.retrieve(going.id)).status, "in_progress");
  await killed(t, doomed);
  assertStopped(await settled(other, going.id));

  // Both replicas poll it: each reads it failed, and one of them wrote it so and took the items out (the log: one line
  // for each of the two runs, not two for either).
  const [seen, seenToo] = await Promise.all([settled(other, id), settled(third, id)]);
  assertStopped(seen);
  assertStopped(seenToo);
  assert.deepEqual(await itemTexts(third, conversationId), [
    JSON.stringify([{ type: "input_text", text: "Before the crash." }]),
  ]);
  const acted = logs.map((log) => log.lines.filter((line) => line.includes("its run stopped without an end")).length);
  assert.equal(
    acted.reduce((sum, count) => sum + count, 0),
    2,
    `each replica's writes of it: ${acted.join(", ")}`,
  );
});
