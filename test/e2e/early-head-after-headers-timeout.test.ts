// A stream request whose headers timeout (timeout_ms) comes before its early head (server.stream_keepalive_ms) fails
// with its HTTP error, and no early head, also when the event loop was busy past both: the two timers then run in one
// pass of the shared request timer (src/request-timers.ts), and the failure the first set going (promise callbacks)
// must reach the early head's wait before the second runs, as it did between two Node timers.
import assert from "node:assert/strict";
import { test } from "node:test";
import { errorOf, send, useGateway, useMock } from "../helpers/e2e.ts";

/** Keeps the event loop busy for `ms`: the gateway's timers armed before are all overdue when it next looks. */
function blockEventLoop(ms: number): void {
  const endMs = performance.now() + ms;
  while (performance.now() < endMs) {
    // busy: what a GC pause or a long synchronous task does to the gateway's timers
  }
}

test("a headers timeout due before the early head is a 504, with no early head, after the event loop was busy past both", async (t) => {
  const mock = await useMock(t);
  const gateway = await useGateway(
    t,
    `server:
  port: 0
  host: 127.0.0.1
  stream_keepalive_ms: 150
providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha
    retries: 0
    timeout_ms: 50
    models:
      m: { id: up }
`,
  );
  // The upstream got the request (the headers timer is armed, 50 ms; the early head since the request came, 150 ms)
  // and never answers; the loop is busy past both before either runs.
  mock.enqueue("POST /v1/chat/completions", { kind: "handler", handle: () => blockEventLoop(400) });
  const answer = await send(gateway, "POST", "/v1/chat/completions", {
    body: { model: "m", stream: true, messages: [{ role: "user", content: "hi" }] },
  });
  assert.equal(answer.status, 504, answer.text);
  assert.doesNotMatch(answer.headers["content-type"] ?? "", /event-stream/);
  assert.match(errorOf(answer).message, /no response headers within timeout_ms \(50 ms\)/);
});
