import assert from "node:assert/strict";
import { test } from "node:test";
import { type AudioRelayEnd, type OpenedAudio, relayAudio } from "./relay-audio.ts";

/** An upstream body as an iterator fed by the test; `fail` breaks it as a reset connection would. */
function upstream() {
  const queue: Uint8Array[] = [];
  let waiting: { resolve: (next: IteratorResult<Uint8Array>) => void; reject: (error: Error) => void } | undefined;
  let isEnded = false;
  let failure: Error | undefined;
  const iterator: AsyncIterator<Uint8Array> = {
    next: () => {
      const chunk = queue.shift();
      if (chunk !== undefined) return Promise.resolve({ done: false, value: chunk });
      if (failure !== undefined) return Promise.reject(failure);
      if (isEnded) return Promise.resolve({ done: true, value: undefined });
      return new Promise((resolve, reject) => {
        waiting = { resolve, reject };
      });
    },
  };
  const controller = new AbortController();
  controller.signal.addEventListener("abort", () => waiting?.reject(new Error("aborted")));
  return {
    iterator,
    controller,
    push(chunk: Uint8Array) {
      if (waiting !== undefined) {
        const current = waiting;
        waiting = undefined;
        current.resolve({ done: false, value: chunk });
      } else queue.push(chunk);
    },
    end() {
      isEnded = true;
      waiting?.resolve({ done: true, value: undefined });
    },
    fail(error: Error) {
      failure = error;
      waiting?.reject(error);
    },
  };
}

function opened(body: ReturnType<typeof upstream>, idleMs = 1_000): OpenedAudio {
  return {
    iterator: body.iterator,
    heldChunks: [Uint8Array.of(1, 2)],
    contentType: "audio/mpeg",
    controller: body.controller,
    streamIdleTimeoutMs: idleMs,
    startedAtMs: 0,
  };
}

async function drain(relay: AsyncGenerator<Uint8Array, AudioRelayEnd, void>): Promise<[number[], AudioRelayEnd]> {
  const bytes: number[] = [];
  for (;;) {
    const next = await relay.next();
    if (next.done === true) return [bytes, next.value];
    bytes.push(...next.value);
  }
}

test("the held bytes first, then the upstream's as they come; its end is a success with every byte counted", async () => {
  const body = upstream();
  const relay = relayAudio(opened(body), { signal: new AbortController().signal, maxDurationMs: 10_000 });
  assert.deepEqual((await relay.next()).value, Uint8Array.of(1, 2));
  const pending = relay.next();
  body.push(Uint8Array.of(3));
  assert.deepEqual((await pending).value, Uint8Array.of(3));
  body.end();
  const [, end] = await drain(relay);
  assert.deepEqual(end, { outcome: "success", reason: "ok", deliveredBytes: 3 });
  assert.equal(body.controller.signal.aborted, false);
});

test("a broken body after the first bytes is a cut; silence is a stall; both hang up on the upstream", async () => {
  const cutBody = upstream();
  const cut = relayAudio(opened(cutBody), { signal: new AbortController().signal, maxDurationMs: 10_000 });
  await cut.next();
  const pending = drain(cut);
  cutBody.fail(new Error("other side closed"));
  const [, cutEnd] = await pending;
  assert.equal(cutEnd.outcome, "stream_cut");
  assert.match(cutEnd.reason, /after 2 bytes: other side closed/);

  const silentBody = upstream();
  const [bytes, stalled] = await drain(
    relayAudio(opened(silentBody, 30), { signal: new AbortController().signal, maxDurationMs: 10_000 }),
  );
  assert.deepEqual(bytes, [1, 2]);
  assert.equal(stalled.outcome, "stream_stalled");
  assert.equal(silentBody.controller.signal.aborted, true);
});

test("the client leaving ends the relay as client_aborted and aborts the upstream; so does closing it early", async () => {
  const body = upstream();
  const client = new AbortController();
  const relay = relayAudio(opened(body), { signal: client.signal, maxDurationMs: 10_000 });
  await relay.next();
  const pending = drain(relay);
  client.abort();
  const [, end] = await pending;
  assert.deepEqual([end.outcome, end.deliveredBytes], ["client_aborted", 2]);
  assert.equal(body.controller.signal.aborted, true);

  const closedBody = upstream();
  const closed = relayAudio(opened(closedBody), { signal: new AbortController().signal, maxDurationMs: 10_000 });
  await closed.next();
  await closed.return(undefined as never);
  assert.equal(closedBody.controller.signal.aborted, true);
});

test("max_stream_duration_ms: stream_too_long while the upstream is awaited, client_aborted while the client holds a chunk", async () => {
  // Waiting on the upstream: the provider is too slow for the cap.
  const slowBody = upstream();
  const slow = relayAudio(opened(slowBody), { signal: new AbortController().signal, maxDurationMs: 30 });
  const [, tooLong] = await drain(slow);
  assert.equal(tooLong.outcome, "stream_too_long");
  assert.equal(slowBody.controller.signal.aborted, true);

  // A chunk handed out and not taken back (the consumer waits for a client that reads nothing): the provider, which
  // answered, is not blamed.
  const heldBody = upstream();
  const held = relayAudio(opened(heldBody), { signal: new AbortController().signal, maxDurationMs: 30 });
  await held.next();
  await new Promise((resolve) => setTimeout(resolve, 60));
  assert.equal(heldBody.controller.signal.aborted, true, "the upstream is hung up on at the cap");
  const [, unread] = await drain(held);
  assert.equal(unread.outcome, "client_aborted");
  assert.match(unread.reason, /the client read nothing while max_stream_duration_ms \(30 ms\) ran out/);
});
