// openStream over real undici when the first chunk came in the head's socket read (Node's http server sends the head
// with the first write): the stream opens from what undici buffered, without the body's async iterator, which is made
// at the relay's first wait (open-stream.ts LazyBodyIterator). What happens to the body meanwhile is not lost: an end,
// a reset or the client leaving before that wait, and silence after a chunk without content.
import assert from "node:assert/strict";
import type { ServerResponse } from "node:http";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Agent, request } from "undici";
import { relayStream } from "../../src/streaming/relay-stream.ts";
import { inspectEvent } from "../../src/streaming/stream-event.ts";
import { openStream } from "../../src/upstream/open-stream.ts";
import { CHAT_ROUTE, useMock } from "../helpers/e2e.ts";
import { chatChunk } from "../helpers/mock-upstream.ts";
import { waitUntil } from "../helpers/sse-client.ts";

const event = (data: unknown): string => `data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`;
const ROLE_ONLY = event({
  id: "c",
  object: "chat.completion.chunk",
  choices: [{ index: 0, delta: { role: "assistant" } }],
});
const FIRST = event(chatChunk("Hel", "m", { role: true }));
const FINISH = event(chatChunk("", "m", { finishReason: "stop" }));

/** Fails instead of hanging: a lost end or error leaves the relay waiting for ever. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([
    promise,
    sleep(ms, undefined, { ref: false }).then(() => assert.fail(`${what}: nothing after ${ms} ms`)),
  ]);
}

/** The mock answers the stream's head with `first` in one write, then `then(response)`; the call opened. */
async function openWith(
  t: Parameters<typeof useMock>[0],
  first: string,
  then: (response: ServerResponse) => void | Promise<void>,
  firstTokenTimeoutMs = 10_000,
) {
  const mock = await useMock(t);
  mock.enqueue(CHAT_ROUTE, {
    kind: "handler",
    handle: async (_request, response) => {
      response.writeHead(200, { "content-type": "text/event-stream" });
      response.write(first);
      await then(response);
    },
  });
  const agent = new Agent();
  t.after(() => agent.destroy());
  const controller = new AbortController();
  const response = await request(`${mock.baseUrl}/chat/completions`, {
    method: "POST",
    body: "{}",
    dispatcher: agent,
    signal: controller.signal,
    bodyTimeout: 0,
  });
  const opened = await openStream({
    body: response.body,
    headers: response.headers as Record<string, string>,
    controller,
    signal: controller.signal,
    deadline: new AbortController().signal,
    clientSignal: new AbortController().signal,
    firstTokenTimeoutMs,
    streamIdleTimeoutMs: 10_000,
    maxEventChars: 100_000,
    maxErrorBodyBytes: 100_000,
    inspect: inspectEvent,
    nowMs: () => Date.now(),
  });
  return { mock, opened, body: response.body };
}

/** The relay of the opened stream to its end: the text relayed and how it ended. */
async function relayAll(opened: Awaited<ReturnType<typeof openWith>>["opened"], signal = new AbortController().signal) {
  assert.equal(opened.ok, true, opened.ok ? "" : opened.reason);
  if (!opened.ok) throw new Error("not opened");
  const relay = relayStream(
    { stream: opened.stream, isUsageInjected: false, finish: () => {} },
    {
      maxDurationMs: 10_000,
      maxMalformedEvents: 3,
      maxRetainedChars: 100_000,
      shouldStripUsage: false,
      signal,
      redact: (text) => text,
    },
  );
  let text = "";
  for (;;) {
    const next = await within(relay.next(), 3000, "the relay");
    if (next.done === true) return { text, end: next.value };
    for (const item of next.value) text += item.data;
  }
}

test("a role-only chunk in the head's read, then silence: first_token_timeout_ms still ends the wait", async (t) => {
  const started = performance.now();
  const { opened } = await within(
    openWith(t, ROLE_ONLY, () => undefined, 300),
    3000,
    "openStream after a role chunk",
  );
  assert.equal(opened.ok, false);
  if (opened.ok) return;
  assert.equal(opened.failure, "first_token_timeout", opened.reason);
  assert.ok(performance.now() - started >= 290, "the whole first_token_timeout_ms was waited");
});

test("content in the head's read, the connection reset before the relay's first wait: a cut, not a hang", async (t) => {
  const { opened, body } = await openWith(t, FIRST, async (response) => {
    await sleep(20);
    response.socket?.resetAndDestroy();
  });
  // The buffered path: no iterator listening when the reset comes.
  assert.equal(body.listenerCount("readable"), 0);
  await waitUntil(() => body.destroyed, "the body destroyed by the reset");
  await sleep(20);
  const { text, end } = await relayAll(opened);
  assert.match(text, /Hel/);
  assert.equal(end.outcome, "stream_cut");
  assert.match(end.reason, /connection broke/);
});

test("the answer in the head's read, the body ending (no [DONE]) before the relay's first wait: a success", async (t) => {
  let hasEnded = false;
  // Its end is all the relay waits for: the answer finished, and a clean close without `[DONE]` is a success.
  const { opened, body } = await openWith(t, FIRST + FINISH, async (response) => {
    await sleep(20);
    response.end(() => {
      hasEnded = true;
    });
  });
  assert.equal(body.listenerCount("end"), 0);
  await waitUntil(() => hasEnded, "the upstream ended its answer");
  await sleep(50);
  const { text, end } = await relayAll(opened);
  assert.equal(end.outcome, "success", end.reason);
  assert.match(text, /Hel.*stop/s);
});

test("content in the head's read, the client gone before the relay's first wait: the upstream is hung up on", async (t) => {
  const { mock, opened, body } = await openWith(t, FIRST, () => undefined);
  assert.equal(body.listenerCount("readable"), 0);
  const client = new AbortController();
  client.abort(new Error("client left"));
  const { end } = await relayAll(opened, client.signal);
  assert.equal(end.outcome, "client_aborted");
  await waitUntil(() => body.destroyed, "the body destroyed");
  await waitUntil(() => mock.activeRequests() === 0, "the upstream call hung up on");
});
