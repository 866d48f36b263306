// HTTP/1.1 pipelining: a client writes its next request on the same socket before the answer to the last one is in.
// Node answers them in order, holding a later response's bytes until the earlier one ends (its writes are buffered,
// never refused, so the writer's drain wait and its max_stream_duration_ms bound are not involved). A client that
// half-closes its side after writing (`socket.end(requests)`) is taken as gone by Node, both requests aborted: that,
// not pipelining, is what a session once saw as "closed with no [DONE]" (docs/streaming.md, "Client disconnects").
import assert from "node:assert/strict";
import { connect } from "node:net";
import { describe, test } from "node:test";
import { CHAT_ROUTE, useGateway, useMock } from "../helpers/e2e.ts";
import type { TestGateway } from "../helpers/gateway.ts";
import { chatCompletion, chatStream, type MockUpstream } from "../helpers/mock-upstream.ts";

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
