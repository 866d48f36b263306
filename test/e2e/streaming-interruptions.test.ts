// After the first content chunk the stream is committed to one upstream: a failure then can no longer be hidden
// by failover and is never passed off as a normal end. The client gets one final `data: {"error":{...}}` event
// and no `data: [DONE]`. Also: a client that leaves aborts the upstream call, and a slow reader slows the upstream.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import OpenAI from "openai";
import type { RequestRecord } from "../../src/observability/request-record.ts";
import { type ChatChunkBody, chatChunk, chatStream, type MockStep, type SseScript } from "../helpers/mock-upstream.ts";
import { readTimed, sseFrames, strictSseData, waitUntil } from "../helpers/sse-client.ts";
import { CHAT_ROUTE, MODEL, sentBody, startTwoProviders, type TwoProvidersOptions } from "../helpers/two-providers.ts";

interface StreamErrorEvent {
  error: { message: string; type: string; code: string; param: string | null };
}

const role = chatChunk("", MODEL, { role: true });
const hello = chatChunk("Hello", MODEL);
const comma = chatChunk(",", MODEL);
const finish = chatChunk("", MODEL, { finishReason: "stop" });
const delivered: ChatChunkBody[] = [role, hello, comma];
const deliveredScript: SseScript[] = delivered.map((data) => ({ data }));

interface InterruptionCase {
  readonly name: string;
  readonly step: MockStep;
  readonly options?: TwoProvidersOptions;
  readonly code: "stream_interrupted" | "upstream_timeout";
  readonly message: RegExp;
  /**
   * The client must get the error well before this (ms from the request), e.g. long before a stalled upstream resumes:
   * the scripts' pauses and lengths (30 s) are far above it, and it is far above the timeouts, for a loaded machine.
   */
  readonly maxElapsedMs?: number;
  /** A cut (the connection broke): the broken candidate itself is asked last to continue (continuation-source.ts). */
  readonly isAskedAgain?: true;
}

const INTERRUPTIONS: readonly InterruptionCase[] = [
  {
    name: "the upstream connection is cut mid-stream",
    step: { kind: "sse", events: deliveredScript, end: "destroy" },
    code: "stream_interrupted",
    message: /failed after it had started/,
    isAskedAgain: true,
  },
  {
    name: "the upstream closes cleanly without a finish_reason or [DONE]",
    step: { kind: "sse", events: deliveredScript, end: "close-without-done" },
    code: "stream_interrupted",
    message: /closed the stream before it finished/,
    isAskedAgain: true,
  },
  {
    name: "the upstream closes cleanly after a finish_reason but inside a half-written event",
    step: {
      kind: "sse",
      events: [...deliveredScript, { data: finish }, { raw: 'data: {"choices":[{"delta":{"cont' }],
      end: "close-without-done",
    },
    code: "stream_interrupted",
    message: /closed the stream before it finished/,
  },
  {
    name: "the upstream sends an in-band error event",
    step: {
      kind: "sse",
      events: [
        ...deliveredScript,
        { data: { error: { message: "Upstream provider crashed", type: "server_error", code: 500 } } },
      ],
      end: "hang",
    },
    code: "stream_interrupted",
    message: /error event: Upstream provider crashed/,
  },
  {
    name: "too many malformed events",
    step: {
      kind: "sse",
      events: [...deliveredScript, { raw: "data: {oops\n\n".repeat(4) }],
      end: "hang",
    },
    code: "stream_interrupted",
    message: /4 malformed events/,
  },
  {
    name: "the upstream pauses longer than stream_idle_timeout_ms",
    step: { kind: "sse", events: [...deliveredScript, { delayMs: 30_000 }, { data: finish }] },
    options: { primary: { stream_idle_timeout_ms: 300 } },
    code: "upstream_timeout",
    message: /stream_idle_timeout_ms \(300 ms\)/,
    maxElapsedMs: 10_000,
  },
  {
    name: "the upstream hangs mid-stream",
    step: { kind: "sse", events: deliveredScript, end: "hang" },
    options: { primary: { stream_idle_timeout_ms: 300 } },
    code: "upstream_timeout",
    message: /stream_idle_timeout_ms/,
    maxElapsedMs: 10_000,
  },
  {
    name: "the stream outlasts routing.max_stream_duration_ms while still sending",
    step: {
      kind: "sse",
      events: chatStream(["Hello", ",", ...Array.from({ length: 300 }, (_, index) => ` w${index}`)], MODEL, {
        delayMs: 100,
      }),
    },
    options: { routing: { max_stream_duration_ms: 700 } },
    code: "upstream_timeout",
    message: /max_stream_duration_ms \(700 ms\)/,
    maxElapsedMs: 10_000,
  },
];

/** Splits a failed stream into what came before the error event and the error event itself, checking framing. */
function splitErrorEnding(text: string): { before: string; error: StreamErrorEvent["error"] } {
  const data = strictSseData(text);
  assert.ok(!data.includes("[DONE]"), "a failed stream must not end with [DONE]");
  const last = JSON.parse(data.at(-1) ?? "null") as StreamErrorEvent;
  assert.deepEqual(Object.keys(last), ["error"]);
  assert.deepEqual(Object.keys(last.error), ["message", "type", "code", "param"]);
  const errorFrame = `data: ${JSON.stringify(last)}\n\n`;
  assert.ok(text.endsWith(errorFrame));
  const before = text.slice(0, -errorFrame.length);
  // Exactly one error event: nothing before the last one is an error object.
  for (const payload of strictSseData(before)) {
    assert.equal((JSON.parse(payload) as { error?: unknown }).error, undefined);
  }
  return { before, error: last.error };
}

describe("a stream that fails after its first content chunk", () => {
  for (const interruption of INTERRUPTIONS) {
    test(`${interruption.name}: one final error event (${interruption.code}), no [DONE], when nothing can continue`, async (t) => {
      const scene = await startTwoProviders(t, interruption.options);
      // The backup cannot continue the answer either (see streaming-continuation.test.ts for rescues): the
      // client must hear about the original failure, not about the failed rescue.
      const down: MockStep = { kind: "json", status: 500, body: { error: { message: "backup down" } } };
      scene.backup.setDefault(CHAT_ROUTE, down);
      const decisions: RequestRecord[] = [];
      scene.gateway.runtime.onRecord((decision) => decisions.push(decision));
      // After a cut, alpha itself is asked last to continue: here it fails too.
      if (interruption.isAskedAgain === true) {
        scene.primary.enqueue(CHAT_ROUTE, interruption.step, down, interruption.step, down);
      } else scene.primary.enqueue(CHAT_ROUTE, interruption.step, interruption.step);

      const startedAtMs = performance.now();
      const answer = await scene.postChat({ stream: true });
      assert.equal(answer.statusCode, 200);
      assert.equal(answer.headers["x-gateway-provider"], "alpha");
      assert.equal(answer.headers["x-gateway-attempts"], "1");
      const { text } = await readTimed(answer.body);
      const elapsedMs = performance.now() - startedAtMs;
      const { before, error } = splitErrorEnding(text);
      assert.ok(before.startsWith(sseFrames(delivered)), "the content sent before the failure reached the client");
      assert.equal(error.type, "upstream_error");
      assert.equal(error.code, interruption.code);
      assert.equal(error.param, null);
      assert.match(error.message, interruption.message);
      assert.ok(!error.message.includes("sk-alpha-secret"));
      if (interruption.maxElapsedMs !== undefined) {
        assert.ok(elapsedMs < interruption.maxElapsedMs, `the error came after ${Math.round(elapsedMs)} ms`);
      }
      // Committed: the backup was only asked to continue (and failed); the broken upstream call is not left open.
      assert.ok(!error.message.includes("backup down"), "the error names the original failure");
      await waitUntil(() => scene.primary.activeRequests() === 0, "the broken upstream call to be closed");
      await waitUntil(() => decisions.length === 1, "the routing decision");
      assert.equal(decisions[0]?.status, 502);
      if (interruption.isAskedAgain === true) {
        const asked = sentBody(scene.primary, 1).messages as { role: string }[];
        assert.equal(asked.at(-1)?.role, "assistant", "alpha was asked to continue (prefill)");
      } else assert.equal(scene.primary.requests.length, 1, "a stalled or failing alpha is not asked again");

      // The official SDK raises the error instead of ending the stream normally.
      const stream = await scene.client.chat.completions.create({
        model: MODEL,
        messages: [{ role: "user", content: "hi" }],
        stream: true,
      });
      let content = "";
      await assert.rejects(
        (async () => {
          for await (const chunk of stream) content += chunk.choices[0]?.delta.content ?? "";
        })(),
        (thrown: unknown) => {
          assert.ok(thrown instanceof OpenAI.APIError, `expected an APIError, got ${String(thrown)}`);
          assert.equal(thrown.code, interruption.code);
          assert.equal(thrown.type, "upstream_error");
          return true;
        },
      );
      assert.ok(content.startsWith("Hello"));
    });
  }
});

describe("a client that disconnects", () => {
  const slowStream = (): MockStep => ({
    kind: "sse",
    events: chatStream(
      Array.from({ length: 30 }, (_, index) => ` w${index}`),
      MODEL,
      { delayMs: 100 },
    ),
  });

  test("mid-stream: the upstream request is aborted at once", async (t) => {
    const scene = await startTwoProviders(t);
    const decisions: RequestRecord[] = [];
    scene.gateway.runtime.onRecord((decision) => decisions.push(decision));
    scene.primary.enqueue(CHAT_ROUTE, slowStream());
    const controller = new AbortController();
    const answer = await scene.postChat({ stream: true }, controller.signal);
    const decoder = new TextDecoder();
    let text = "";
    await assert.rejects(async () => {
      for await (const bytes of answer.body) {
        text += decoder.decode(bytes, { stream: true });
        if (text.includes('" w1"')) controller.abort();
      }
    });
    assert.equal(scene.primary.activeRequests(), 1, "the upstream was still streaming when the client left");
    // The upstream would stream for 3 s more; the gateway must hang up on it now.
    await waitUntil(() => scene.primary.activeRequests() === 0, "the upstream response to be closed", 5000);
    await waitUntil(() => scene.primary.openConnections() === 0, "the upstream socket to be closed", 5000);
    await waitUntil(() => decisions.length === 1, "the routing decision");
    assert.equal(decisions[0]?.status, 499);
    assert.equal(scene.backup.requests.length, 0);
  });

  test("mid-stream with the official SDK (leaving the loop): the upstream request is aborted at once", async (t) => {
    const scene = await startTwoProviders(t);
    scene.primary.enqueue(CHAT_ROUTE, slowStream());
    const stream = await scene.client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "hi" }],
      stream: true,
    });
    let content = "";
    for await (const chunk of stream) {
      content += chunk.choices[0]?.delta.content ?? "";
      if (content.includes("w2")) break;
    }
    assert.equal(content, " w0 w1 w2");
    await waitUntil(() => scene.primary.activeRequests() === 0, "the upstream response to be closed", 5000);
    await waitUntil(() => scene.primary.openConnections() === 0, "the upstream socket to be closed", 5000);
    assert.equal(scene.backup.requests.length, 0);
  });

  const beforeFirstByte: readonly { name: string; step: MockStep }[] = [
    { name: "while the upstream has not answered yet", step: { kind: "hang" } },
    {
      name: "while the gateway waits for the first content event",
      step: { kind: "sse", events: [{ data: role }, { raw: ": keep-alive\n\n" }], end: "hang" },
    },
  ];
  for (const { name, step } of beforeFirstByte) {
    test(`${name}: the upstream request is aborted and no other candidate is tried`, async (t) => {
      const scene = await startTwoProviders(t);
      const decisions: RequestRecord[] = [];
      scene.gateway.runtime.onRecord((decision) => decisions.push(decision));
      scene.primary.enqueue(CHAT_ROUTE, step);
      const controller = new AbortController();
      const answered = scene.postChat({ stream: true }, controller.signal);
      await scene.primary.waitForRequests(1);
      await new Promise((resolve) => setTimeout(resolve, 100));
      controller.abort();
      await assert.rejects(answered);
      await waitUntil(() => scene.primary.activeRequests() === 0, "the upstream request to be aborted", 5000);
      await waitUntil(() => decisions.length === 1, "the routing decision");
      assert.equal(decisions[0]?.status, 499);
      assert.equal(scene.backup.requests.length, 0);
    });
  }
});

describe("a client that reads slowly", () => {
  test("backpressure reaches the upstream: the gateway does not buffer the stream for it", async (t) => {
    const scene = await startTwoProviders(t);
    const eventCount = 1024;
    const filler = "x".repeat(64 * 1024);
    const frame = `data: ${JSON.stringify(chatChunk(filler, MODEL))}\n\n`;
    // The first names the role, as OpenAI's does (a stream without one gets it added: streaming.md): every byte
    // the upstream writes is then relayed as it is, so the client's count is exact.
    const firstFrame = `data: ${JSON.stringify(chatChunk(filler, MODEL, { role: true }))}\n\n`;
    const totalBytes = Buffer.byteLength(firstFrame) + (eventCount - 1) * Buffer.byteLength(frame);
    const progress = { writtenBytes: 0, isFinished: false };
    scene.primary.enqueue(CHAT_ROUTE, {
      kind: "handler",
      handle: async (_request, response) => {
        response.writeHead(200, { "content-type": "text/event-stream" });
        for (let index = 0; index < eventCount; index++) {
          const written = index === 0 ? firstFrame : frame;
          progress.writtenBytes += Buffer.byteLength(written);
          if (!response.write(written)) {
            const isOpen = await new Promise<boolean>((resolve) => {
              const settle = (value: boolean) => () => {
                response.off("drain", onDrain);
                response.off("close", onClose);
                resolve(value);
              };
              const onDrain = settle(true);
              const onClose = settle(false);
              response.on("drain", onDrain);
              response.on("close", onClose);
            });
            if (!isOpen) return;
          }
        }
        response.end(`data: ${JSON.stringify(finish)}\n\ndata: [DONE]\n\n`);
        progress.isFinished = true;
      },
    });

    const answer = await scene.postChat({ stream: true });
    // Not reading: wait until the upstream's writes have made no progress for 300 ms.
    let lastWrittenBytes = -1;
    let stableSinceMs = performance.now();
    await waitUntil(
      () => {
        if (progress.writtenBytes !== lastWrittenBytes || progress.isFinished) {
          lastWrittenBytes = progress.writtenBytes;
          stableSinceMs = performance.now();
        }
        return progress.isFinished || performance.now() - stableSinceMs >= 300;
      },
      "the upstream's writes to stall",
      10_000,
    );
    assert.equal(progress.isFinished, false, "the upstream wrote the whole stream although nobody read it");
    // Socket buffers on both hops hold some megabytes; an unbounded buffer would take all 64 MB.
    assert.ok(
      progress.writtenBytes < totalBytes / 2,
      `the upstream wrote ${(progress.writtenBytes / 2 ** 20).toFixed(1)} MB of ${(totalBytes / 2 ** 20).toFixed(1)} MB to a client that was not reading`,
    );

    // Reading again resumes the upstream, and every byte arrives.
    let receivedBytes = 0;
    let tail = "";
    const decoder = new TextDecoder();
    for await (const bytes of answer.body) {
      receivedBytes += bytes.byteLength;
      tail = (tail + decoder.decode(bytes, { stream: true })).slice(-200);
    }
    assert.equal(progress.isFinished, true);
    assert.ok(tail.endsWith("data: [DONE]\n\n"));
    assert.equal(receivedBytes, totalBytes + Buffer.byteLength(sseFrames([finish, "[DONE]"])));
  });
});
