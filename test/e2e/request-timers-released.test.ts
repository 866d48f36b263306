// Every request's timers leave the shared request timer's heap when it ends (src/request-timers.ts): cancelled, not
// left until they are due (a 120 s deadline per request would keep ~1.2 M entries at 10k requests a second). Over
// real requests of each shape that ends an attempt or a stream differently, and 100 at once.
import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { request } from "undici";
import { requestTimers } from "../../src/request-timers.ts";
import { send, useGateway, useMock } from "../helpers/e2e.ts";
import { chatChunk, chatCompletion, chatStream, type MockStep } from "../helpers/mock-upstream.ts";

/** The heap's size once the request's last steps (a drain, a record) are done: 0, or what is still held. */
async function heldTimers(): Promise<number> {
  for (let wait = 0; wait < 50 && requestTimers.size > 0; wait++) await sleep(10);
  return requestTimers.size;
}

const ROUTE = "POST /v1/chat/completions";
const body = (stream: boolean): Record<string, unknown> => ({
  model: "m",
  stream,
  messages: [{ role: "user", content: "hi" }],
});

test("coverage: a request's timers are all gone from the shared heap when it ends, whatever ended it", async (t) => {
  const mock = await useMock(t);
  const gateway = await useGateway(
    t,
    `server:
  port: 0
  host: 127.0.0.1
  stream_keepalive_ms: 100
providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha
    retries: 0
    stream_idle_timeout_ms: 300
    timeout_ms: 400
    first_token_timeout_ms: 400
    models:
      m: { id: up }
`,
  );
  const first = { data: chatChunk("Hel", "up", { role: true }) };
  const shapes: [string, boolean, MockStep][] = [
    ["a JSON answer", false, { kind: "json", body: chatCompletion("Hello", "up") }],
    ["a stream", true, { kind: "sse", events: chatStream(["Hel", "lo"], "up") }],
    ["a stream after its early head", true, { kind: "sse", headersDelayMs: 250, events: chatStream(["Hi"], "up") }],
    [
      "a stream with keep-alives mid-way",
      true,
      { kind: "sse", events: [first, { delayMs: 250 }, ...chatStream(["lo"], "up")] },
    ],
    ["a stream cut by its idle timeout", true, { kind: "sse", events: [first], end: "hang" }],
    ["a stream cut by its upstream", true, { kind: "sse", events: [first], end: "destroy" }],
    ["a JSON call without headers", false, { kind: "hang" }],
    ["a stream without headers", true, { kind: "hang" }],
  ];
  for (const [shape, isStream, step] of shapes) {
    mock.enqueue(ROUTE, step);
    await send(gateway, "POST", "/v1/chat/completions", { body: body(isStream) });
    assert.equal(await heldTimers(), 0, `timers left after ${shape}`);
    // The failures open no circuit here that would refuse the next shape.
    mock.reset();
  }

  // A client that leaves mid-stream.
  mock.enqueue(ROUTE, { kind: "sse", events: [first], end: "hang" });
  const controller = new AbortController();
  const leaving = await request(`${gateway.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body(true)),
    signal: controller.signal,
  });
  for await (const _chunk of leaving.body) break;
  controller.abort();
  assert.equal(await heldTimers(), 0, "timers left after a client left mid-stream");

  // 100 at once: held while they run, none after.
  mock.setDefault(ROUTE, { kind: "sse", events: [first, { delayMs: 50 }, ...chatStream(["lo"], "up")] });
  const answers = await Promise.all(
    Array.from({ length: 100 }, () => send(gateway, "POST", "/v1/chat/completions", { body: body(true) })),
  );
  assert.deepEqual([...new Set(answers.map((answer) => answer.status))], [200]);
  assert.equal(await heldTimers(), 0, "timers left after 100 streams at once");
});
