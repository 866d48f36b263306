// A request's timeouts are entries of the shared request timer (src/request-timers.ts), not Node timers of their own:
// a streamed request armed seven of the gateway's own (six before its first byte), each a `Timeout` and, for four of
// them, a Node timer list made and freed per request (bench/README.md section 45). Counted with an async_hooks hook
// over real requests through the gateway; the timers still run (the idle timeout below cuts a stalled stream).
import assert from "node:assert/strict";
import { createHook } from "node:async_hooks";
import { test } from "node:test";
import { send, useGateway, useMock } from "../helpers/e2e.ts";
import { chatChunk, chatCompletion, chatStream } from "../helpers/mock-upstream.ts";

/**
 * The frame that called setTimeout or setInterval: the one after Node's timer modules. Node's own timers made on the
 * way through the gateway's calls are not the gateway's: its Date header cache's (a `writeHead` once a second).
 */
function callerOfTimer(stack: string): string | undefined {
  const frames = stack.split("\n");
  let last = -1;
  for (let index = 0; index < frames.length; index++) {
    if (/\(node:(internal\/)?timers:/.test(frames[index] ?? "")) last = index;
  }
  return last === -1 ? undefined : frames[last + 1];
}

/** Every `Timeout` made while `isCounting`, by the gateway source file that made it; and the shared timer's runs. */
function watchNodeTimers(): { isCounting: boolean; makers: string[]; sharedRuns: number; stop(): void } {
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 30;
  // The shared timer's Timeouts from the start (the one armed before the count may run during it).
  const sharedIds = new Set<number>();
  const watch = {
    isCounting: false,
    makers: [] as string[],
    sharedRuns: 0,
    stop: () => {
      hook.disable();
      Error.stackTraceLimit = stackTraceLimit;
    },
  };
  const hook = createHook({
    init(id, type) {
      if (type !== "Timeout") return;
      const frame = callerOfTimer(new Error().stack ?? "");
      if (frame === undefined || !/\/src\/.*\.ts:/.test(frame)) return;
      const maker = frame.replace(/^.*\/src\//, "src/").replace(/:\d+\)?$/, "");
      if (maker.startsWith("src/request-timers.ts")) sharedIds.add(id);
      if (watch.isCounting) watch.makers.push(maker);
    },
    before(id) {
      if (watch.isCounting && sharedIds.has(id)) watch.sharedRuns++;
    },
  });
  hook.enable();
  return watch;
}

test("streamed and JSON requests arm no Node timer of the gateway's own but the shared request timer's", async (t) => {
  const mock = await useMock(t);
  // `slow` for the count: its timers are all 1 s or longer (the drain after [DONE]), so the shared timer runs seldom
  // while they are counted; `quick` for the stalled stream, cut by its 200 ms idle timeout.
  const gateway = await useGateway(
    t,
    `providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha
    retries: 0
    stream_idle_timeout_ms: 60000
    models:
      slow: { id: up }
  - name: beta
    base_url: ${mock.baseUrl}
    api_key: sk-beta
    retries: 0
    stream_idle_timeout_ms: 200
    models:
      quick: { id: up }
`,
  );
  const body = (stream: boolean, model = "slow") => ({
    model,
    stream,
    messages: [{ role: "user", content: "hi" }],
  });
  const watch = watchNodeTimers();
  t.after(() => watch.stop());
  // One of each first: what a first request loads and starts (lazy modules, the dispatcher) is not per request.
  mock.enqueue("POST /v1/chat/completions", { kind: "sse", events: chatStream(["Hel", "lo"], "up") });
  mock.enqueue("POST /v1/chat/completions", { kind: "json", body: chatCompletion("Hello", "up") });
  assert.equal((await send(gateway, "POST", "/v1/chat/completions", { body: body(true) })).status, 200);
  assert.equal((await send(gateway, "POST", "/v1/chat/completions", { body: body(false) })).status, 200);
  const requests = 20;
  watch.isCounting = true;
  for (let index = 0; index < requests; index++) {
    mock.enqueue("POST /v1/chat/completions", { kind: "sse", events: chatStream(["Hel", "lo"], "up") });
    const streamed = await send(gateway, "POST", "/v1/chat/completions", { body: body(true) });
    assert.equal(streamed.status, 200);
    assert.match(streamed.text, /data: \[DONE\]/);
    mock.enqueue("POST /v1/chat/completions", { kind: "json", body: chatCompletion("Hello", "up") });
    assert.equal((await send(gateway, "POST", "/v1/chat/completions", { body: body(false) })).status, 200);
  }
  watch.isCounting = false;
  const own = watch.makers.filter((maker) => !maker.startsWith("src/request-timers.ts"));
  assert.deepEqual(own, [], "Node timers made by the gateway's code during the requests");
  // The shared one is armed again only when a timer due earlier than it comes, or after it ran: not per request.
  // After a run, the next request's timers may arm it once for each of its delays that comes due earlier than the
  // last (a descending chain, at most the 7 kinds of timer a request arms, and once more into the request after).
  // Not a fixed count: it runs every second or so while requests keep coming (the drain timer), and a loaded machine
  // makes the 40 requests take seconds (with a 200 ms idle timer it was armed 8 to 14 times at load 11 on 2 cores).
  const armed = watch.makers.length;
  assert.ok(
    armed <= 8 * (watch.sharedRuns + 1),
    `the shared request timer armed ${armed} times for ${2 * requests} requests, running ${watch.sharedRuns} times`,
  );

  // And the timers run: a stream whose upstream goes silent is cut by stream_idle_timeout_ms.
  mock.enqueue("POST /v1/chat/completions", {
    kind: "sse",
    events: [{ data: chatChunk("Hel", "up", { role: true }) }],
    end: "hang",
  });
  const stalled = await send(gateway, "POST", "/v1/chat/completions", { body: body(true, "quick") });
  assert.equal(stalled.status, 200);
  assert.match(stalled.text, /stream_idle_timeout_ms \(200 ms\)/);
});
