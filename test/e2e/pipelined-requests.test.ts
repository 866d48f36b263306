// HTTP/1.1 pipelining: a client writes its next request on the same socket before the answer to the last one is in.
// Node answers them in order, holding a later response's bytes until the earlier one ends. Those writes are buffered,
// but past the response's highWaterMark (64 KiB on Node 24) a write returns false and the response emits `drain` once
// it has the socket and handed it what it held (_http_outgoing.js `_writeRaw`, `_flush`): the writer's drain wait
// (write-stream.ts) then stops reading the later upstream, as for a slow reader. A client that
// half-closes its side after writing (`socket.end(requests)`) is taken as gone by Node, both requests aborted: that,
// not pipelining, is what a session once saw as "closed with no [DONE]" (docs/streaming.md, "Client disconnects").
import assert from "node:assert/strict";
import type { ServerResponse } from "node:http";
import { connect, type Socket } from "node:net";
import { describe, type TestContext, test } from "node:test";
import { CHAT_ROUTE, useGateway, useMock } from "../helpers/e2e.ts";
import type { TestGateway } from "../helpers/gateway.ts";
import {
  chatChunk,
  chatCompletion,
  chatStream,
  type MockUpstream,
  type RecordedRequest,
} from "../helpers/mock-upstream.ts";
import { waitUntil } from "../helpers/sse-client.ts";

/** Sends `bodies` as pipelined requests in one write; resolves with all the server wrote once it closed or went quiet. */
function pipelined(gateway: TestGateway, bodies: readonly unknown[], quietMs: number): Promise<string> {
  const host = new URL(gateway.url).host;
  const requests = bodies.map((body) => {
    const text = JSON.stringify(body);
    return `POST /v1/chat/completions HTTP/1.1\r\nhost: ${host}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\n\r\n${text}`;
  });
  return new Promise((resolve) => {
    let received = "";
    let timer: NodeJS.Timeout | undefined;
    const finish = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(received);
    };
    const socket = connect(gateway.port, "127.0.0.1", () => socket.write(requests.join("")));
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString("utf8");
      // Both answers in: nothing more to wait for (a keep-alive connection stays open).
      if ((received.match(/\r\n0\r\n\r\n|"object":"chat\.completion"/g) ?? []).length >= bodies.length) {
        clearTimeout(timer);
        timer = setTimeout(finish, 200);
      }
    });
    socket.on("error", () => {});
    socket.on("close", finish);
    timer = setTimeout(finish, quietMs);
  });
}

function gatewayYaml(mock: MockUpstream, maxStreamDurationMs: number | undefined): string {
  const routing =
    maxStreamDurationMs === undefined ? "" : `routing:\n  max_stream_duration_ms: ${maxStreamDurationMs}\n`;
  return `${routing}providers:\n  - name: alpha\n    base_url: ${mock.baseUrl}\n    api_key: sk-alpha\n    retries: 0\n    models:\n      m: { id: vendor-m }\n`;
}

const ASK = { model: "m", messages: [{ role: "user", content: "Say hello" }] };
/** More than Node holds for a response still waiting for its turn on the socket (16 KB) before a write says wait. */
const LONG_WORDS = Array.from({ length: 60 }, (_, index) => `${index}${"w".repeat(400)}`);

describe("pipelined HTTP/1.1 requests on one connection", () => {
  for (const maxStreamDurationMs of [1_500, undefined]) {
    test(`two streams (max_stream_duration_ms ${maxStreamDurationMs ?? "default"}): both complete, in order`, async (t) => {
      const mock = await useMock(t);
      // The first answer streams for a while; the second, long (more than Node holds before a write would say wait),
      // is ready at once and waits for its turn on the socket.
      mock.enqueue(
        CHAT_ROUTE,
        { kind: "sse", events: chatStream(["first", "answer"], "vendor-m", { delayMs: 200 }) },
        { kind: "sse", events: chatStream(LONG_WORDS, "vendor-m") },
      );
      const gateway = await useGateway(t, gatewayYaml(mock, maxStreamDurationMs));
      const received = await pipelined(
        gateway,
        [
          { ...ASK, stream: true },
          { ...ASK, stream: true },
        ],
        30_000,
      );
      const answers = received.split(/(?=HTTP\/1\.1 )/);
      assert.equal(answers.length, 2, received.slice(0, 2_000));
      assert.match(answers[0] ?? "", /^HTTP\/1\.1 200/);
      assert.match(answers[0] ?? "", /"content":"first"[\s\S]*"content":"answer"[\s\S]*data: \[DONE\]/);
      assert.match(answers[1] ?? "", /^HTTP\/1\.1 200/);
      assert.ok(answers[1]?.includes(`"content":"${LONG_WORDS.at(-1)}"`), "the second answer is whole");
      assert.match(answers[1] ?? "", /data: \[DONE\]\n\n\r\n0\r\n\r\n$/);
    });
  }

  test("two JSON answers: both, in order", async (t) => {
    const mock = await useMock(t);
    mock.enqueue(
      CHAT_ROUTE,
      { kind: "json", delayMs: 500, body: chatCompletion("first answer", "vendor-m") },
      { kind: "json", body: chatCompletion("second answer", "vendor-m") },
    );
    const gateway = await useGateway(t, gatewayYaml(mock, 1_500));
    const received = await pipelined(gateway, [ASK, ASK], 30_000);
    const answers = received.split(/(?=HTTP\/1\.1 )/);
    assert.equal(answers.length, 2, received);
    assert.match(answers[0] ?? "", /^HTTP\/1\.1 200[\s\S]*"content":"first answer"/);
    assert.match(answers[1] ?? "", /^HTTP\/1\.1 200[\s\S]*"content":"second answer"/);
  });
});

/** Writes `text`; past the response's highWaterMark, resolves once it drained (true) or closed (false). */
function writeOrWait(response: ServerResponse, text: string): Promise<boolean> {
  if (response.write(text)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const settle = (value: boolean) => (): void => {
      response.off("drain", onDrain);
      response.off("close", onClose);
      resolve(value);
    };
    const onDrain = settle(true);
    const onClose = settle(false);
    response.on("drain", onDrain);
    response.on("close", onClose);
  });
}

const EVENT_COUNT = 512;
const FILLER = "x".repeat(64 * 1024);
/** The second stream's whole size upstream: 32 MB. */
const TOTAL_BYTES = EVENT_COUNT * Buffer.byteLength(`data: ${JSON.stringify(chatChunk(FILLER, "vendor-m"))}\n\n`);

interface LongFirstScene {
  /** What the second stream's upstream wrote; `isCut`: its connection closed before it was done. */
  readonly second: { writtenBytes: number; isFinished: boolean; isCut: boolean };
  /** Ends the first stream (its [DONE]). */
  readonly endFirst: () => void;
  /** Everything the client got, as latin1 text. */
  receivedText(): string;
  /** Whether the third request's upstream (a JSON answer, `words` holding "third") was asked. */
  isThirdAsked(): boolean;
  isClosed(): boolean;
}

/**
 * Two streams pipelined on one raw connection that the client reads as fast as it can: the first slow and open (its
 * first event after `firstDelayMs`, then one every 100 ms) until the test ends it, the second 32 MB at once; with
 * `words` ["first", "second", "third"], a third request after them asks for a JSON answer, given at once.
 */
async function longFirstScene(
  t: TestContext,
  firstDelayMs: number,
  maxStreamDurationMs?: number,
  words: readonly string[] = ["first", "second"],
): Promise<LongFirstScene> {
  let endFirst = (): void => {};
  const firstEnds = new Promise<void>((resolve) => {
    endFirst = resolve;
  });
  let socket: Socket | undefined;
  // Before the mock's and the gateway's closes (after hooks run in order): a failed assertion must not leave the
  // first stream's timer running, nor a connection the gateway's close would wait for.
  t.after(() => {
    endFirst();
    socket?.destroy();
  });
  const mock = await useMock(t);
  const second = { writtenBytes: 0, isFinished: false, isCut: false };
  let isThirdAsked = false;
  // Which stream a request is for is in its body: the two reach the mock on two connections, in either order.
  const handle = async (request: RecordedRequest, response: ServerResponse): Promise<void> => {
    if (request.bodyText.includes("third")) {
      isThirdAsked = true;
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify(chatCompletion("third answer", "vendor-m")));
      return;
    }
    response.writeHead(200, { "content-type": "text/event-stream" });
    if (request.bodyText.includes("first")) {
      await new Promise((resolve) => setTimeout(resolve, firstDelayMs));
      await writeOrWait(response, `data: ${JSON.stringify(chatChunk("a", "vendor-m", { role: true }))}\n\n`);
      const timer = setInterval(() => response.write(`data: ${JSON.stringify(chatChunk("b", "vendor-m"))}\n\n`), 100);
      await firstEnds;
      clearInterval(timer);
      response.end("data: [DONE]\n\n");
      return;
    }
    for (let index = 0; index < EVENT_COUNT; index++) {
      const frame = `data: ${JSON.stringify(chatChunk(FILLER, "vendor-m", { role: index === 0 }))}\n\n`;
      second.writtenBytes += frame.length;
      if (!(await writeOrWait(response, frame))) {
        second.isCut = true;
        return;
      }
    }
    response.end("data: [DONE]\n\n");
    second.isFinished = true;
  };
  mock.setDefault(CHAT_ROUTE, { kind: "handler", handle });
  const gateway = await useGateway(t, gatewayYaml(mock, maxStreamDurationMs));
  const host = new URL(gateway.url).host;
  const requests = words.map((word) => {
    const stream = word !== "third";
    const text = JSON.stringify({ ...ASK, stream, messages: [{ role: "user", content: word }] });
    return `POST /v1/chat/completions HTTP/1.1\r\nhost: ${host}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\n\r\n${text}`;
  });
  const received: Buffer[] = [];
  let isClosed = false;
  const client = connect(gateway.port, "127.0.0.1", () => client.write(requests.join("")));
  socket = client;
  client.on("data", (chunk: Buffer) => received.push(chunk));
  client.on("error", () => {});
  client.on("close", () => {
    isClosed = true;
  });
  return {
    second,
    endFirst,
    receivedText: () => Buffer.concat(received).toString("latin1"),
    isClosed: () => isClosed,
    isThirdAsked: () => isThirdAsked,
  };
}

describe("a pipelined stream behind a long one", () => {
  test("its upstream is not read beyond what Node holds until the first ends, then it arrives whole", async (t) => {
    const { second, endFirst, receivedText, isClosed } = await longFirstScene(t, 0);
    // The client reads all it gets; the first stream stays open. Wait until the second upstream's writes stall.
    let lastWrittenBytes = -1;
    let stableSinceMs = performance.now();
    await waitUntil(
      () => {
        if (second.writtenBytes !== lastWrittenBytes || second.isFinished) {
          lastWrittenBytes = second.writtenBytes;
          stableSinceMs = performance.now();
        }
        return second.isFinished || (second.writtenBytes > 0 && performance.now() - stableSinceMs >= 500);
      },
      "the second upstream's writes to stall",
      20_000,
    );
    assert.equal(second.isFinished, false, "the gateway read the whole second stream while the first was open");
    // Socket buffers on both hops hold some megabytes; buffering the second answer would take all 32 MB.
    assert.ok(
      second.writtenBytes < TOTAL_BYTES / 2,
      `the second upstream wrote ${(second.writtenBytes / 2 ** 20).toFixed(1)} MB of ${(TOTAL_BYTES / 2 ** 20).toFixed(1)} MB while the first stream was open`,
    );
    assert.equal(isClosed(), false);

    endFirst();
    await waitUntil(() => second.isFinished, "the second upstream to finish", 60_000);
    await waitUntil(() => receivedText().split("data: [DONE]").length === 3, "both answers' [DONE]", 30_000);
    const answers = receivedText().split(/(?=HTTP\/1\.1 )/);
    assert.equal(answers.length, 2);
    assert.match(answers[0] ?? "", /^HTTP\/1\.1 200[\s\S]*"content":"a"[\s\S]*data: \[DONE\]\n\n\r\n0\r\n\r\n$/);
    assert.match(answers[1] ?? "", /^HTTP\/1\.1 200/);
    assert.equal((answers[1] ?? "").split(FILLER).length - 1, EVENT_COUNT, "every event of the second answer arrived");
    assert.match(answers[1] ?? "", /data: \[DONE\]\n\n\r\n0\r\n\r\n$/);
  });

  test("past its max_stream_duration_ms while it waits: cut, the connection closed once the first ends", async (t) => {
    // The first starts 2 s late, so the second (started at once) reaches its 1.5 s bound while the first still runs.
    const { second, endFirst, receivedText, isClosed } = await longFirstScene(t, 2_000, 1_500);
    await waitUntil(() => second.isCut, "the second upstream to be hung up on", 20_000);
    assert.equal(isClosed(), false, "the first stream is still open");
    endFirst();
    // Until 2026-12-07 the connection stayed open, the cut answer never ended (pipelined-responses.ts).
    await waitUntil(isClosed, "the connection to close", 10_000);
    const answers = receivedText().split(/(?=HTTP\/1\.1 )/);
    assert.match(answers[0] ?? "", /^HTTP\/1\.1 200[\s\S]*"content":"a"[\s\S]*data: \[DONE\]\n\n\r\n0\r\n\r\n$/);
    assert.equal(answers.length, 1, "nothing of the cut answer went out");
  });
  test("a JSON answer pipelined after the cut one is never sent in its place: the connection closes", async (t) => {
    // Coverage (03c90089 holds): the third answer is ready and held behind the cut second; when the first ends, the
    // connection closes at the second's turn, before anything of the third could go out as if it were the second's.
    const scene = await longFirstScene(t, 2_000, 1_500, ["first", "second", "third"]);
    await waitUntil(() => scene.second.isCut && scene.isThirdAsked(), "the second cut, the third answered", 20_000);
    assert.equal(scene.isClosed(), false, "the first stream is still open");
    scene.endFirst();
    await waitUntil(scene.isClosed, "the connection to close", 10_000);
    const answers = scene.receivedText().split(/(?=HTTP\/1\.1 )/);
    assert.match(answers[0] ?? "", /^HTTP\/1\.1 200[\s\S]*"content":"a"[\s\S]*data: \[DONE\]\n\n\r\n0\r\n\r\n$/);
    assert.equal(answers.length, 1, "nothing of the cut answer, nor of the one after it, went out");
    assert.doesNotMatch(scene.receivedText(), /third answer/);
  });
});
