// A request's timeouts are entries of the shared request timer (src/request-timers.ts), not Node timers of their own:
// a streamed request armed seven of the gateway's own (six before its first byte), each a `Timeout` and, for four of
// them, a Node timer list made and freed per request (bench/README.md section 45). Counted with an async_hooks init
// hook over real requests through the gateway; the timers still run (the idle timeout below cuts a stalled stream).
import assert from "node:assert/strict";
import { createHook } from "node:async_hooks";
import { test } from "node:test";
import { send, useGateway, useMock } from "../helpers/e2e.ts";
import { chatChunk, chatCompletion, chatStream } from "../helpers/mock-upstream.ts";

/** The gateway's source file that made a Node timer (its first frame in src/), for every `Timeout` made meanwhile. */
async function nodeTimersMadeBy(run: () => Promise<void>): Promise<string[]> {
  const makers: string[] = [];
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 30;
  const hook = createHook({
    init(_id, type) {
      if (type !== "Timeout") return;
      const frame = (new Error().stack ?? "").split("\n").find((line) => /\/src\/.*\.ts:/.test(line));
      if (frame !== undefined) makers.push(frame.replace(/^.*\/src\//, "src/").replace(/:\d+\)?$/, ""));
    },
  });
  hook.enable();
  try {
    await run();
  } finally {
    hook.disable();
    Error.stackTraceLimit = stackTraceLimit;
  }
  return makers;
}

test("streamed and JSON requests arm no Node timer of the gateway's own but the shared request timer's", async (t) => {
  const mock = await useMock(t);
  const gateway = await useGateway(
    t,
    `providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha
    retries: 0
    stream_idle_timeout_ms: 200
    models:
      m: { id: up }
`,
  );
  const body = (stream: boolean) => ({ model: "m", stream, messages: [{ role: "user", content: "hi" }] });
  // One of each first: what a first request loads and starts (lazy modules, the dispatcher) is not per request.
  mock.enqueue("POST /v1/chat/completions", { kind: "sse", events: chatStream(["Hel", "lo"], "up") });
  mock.enqueue("POST /v1/chat/completions", { kind: "json", body: chatCompletion("Hello", "up") });
  assert.equal((await send(gateway, "POST", "/v1/chat/completions", { body: body(true) })).status, 200);
  assert.equal((await send(gateway, "POST", "/v1/chat/completions", { body: body(false) })).status, 200);
  const requests = 20;
  const makers = await nodeTimersMadeBy(async () => {
    for (let index = 0; index < requests; index++) {
      mock.enqueue("POST /v1/chat/completions", { kind: "sse", events: chatStream(["Hel", "lo"], "up") });
      const streamed = await send(gateway, "POST", "/v1/chat/completions", { body: body(true) });
      assert.equal(streamed.status, 200);
      assert.match(streamed.text, /data: \[DONE\]/);
      mock.enqueue("POST /v1/chat/completions", { kind: "json", body: chatCompletion("Hello", "up") });
      assert.equal((await send(gateway, "POST", "/v1/chat/completions", { body: body(false) })).status, 200);
    }
  });
  const own = makers.filter((maker) => !maker.startsWith("src/request-timers.ts"));
  assert.deepEqual(own, [], "Node timers made by the gateway's code during the requests");
  // The shared one is armed again only when a timer due earlier than it comes, or after it ran: not per request.
  assert.ok(makers.length <= 6, `the shared request timer armed ${makers.length} times for ${2 * requests} requests`);

  // And the timers run: a stream whose upstream goes silent is cut by stream_idle_timeout_ms.
  mock.enqueue("POST /v1/chat/completions", {
    kind: "sse",
    events: [{ data: chatChunk("Hel", "up", { role: true }) }],
    end: "hang",
  });
  const stalled = await send(gateway, "POST", "/v1/chat/completions", { body: body(true) });
  assert.equal(stalled.status, 200);
  assert.match(stalled.text, /stream_idle_timeout_ms \(200 ms\)/);
});
