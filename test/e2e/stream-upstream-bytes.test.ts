// The chat door writes an upstream read's own bytes when they are its events as the door would write them
// (streaming/sse-parser.ts bytesOf), and writes `data: <data>\n\n` for every other read: whatever form each read of the
// upstream came in (no space after `data:`, CRLF, comments, non-ASCII text, an event split across reads), the client
// gets every event in the one form, in order, and nothing else. Read by read (each read its own batch, 30 ms apart).
import assert from "node:assert/strict";
import { test } from "node:test";
import { CHAT_ROUTE, postChat, useGateway, useMock } from "../helpers/e2e.ts";
import { chatChunk } from "../helpers/mock-upstream.ts";

test("chat stream: reads in any SSE form reach the client as `data: <data>` events, in order, byte for byte", async (t) => {
  const mock = await useMock(t);
  const gateway = await useGateway(
    t,
    `server:
  port: 0
  host: 127.0.0.1
  stream_keepalive_ms: 0
providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha
    retries: 0
    models:
      m: { id: up }
`,
  );
  const words = ["Hel", "lo", " there", ",", " the", " world", " and", " more", " text", " at last, wörld"];
  const data = [
    chatChunk(words[0] ?? "", "up", { role: true }),
    ...words.slice(1).map((word) => chatChunk(word, "up")),
    chatChunk("", "up", { finishReason: "stop" }),
  ].map((chunk) => JSON.stringify(chunk));
  const d = (index: number): string => data[index] ?? "";
  // One read each, 30 ms apart; each with one way out of the form but the first and the last.
  const reads = [
    `data: ${d(0)}\n\ndata: ${d(1)}\n\n`,
    `data:${d(2)}\n\n`,
    `data: ${d(3)}\r\n\r\n`,
    `: keep-alive\ndata: ${d(4)}\n\n`,
    `data: ${d(5)}\n\n\n`,
    `data: ${d(6).slice(0, 20)}`,
    `${d(6).slice(20)}\n\ndata: ${d(7)}\n\n`,
    `event: chunk\ndata: ${d(8)}\n\n`,
    `data: ${d(9)}\n\n`,
    `data: ${d(10)}\n\n`,
  ];
  mock.enqueue(CHAT_ROUTE, { kind: "sse", events: reads.flatMap((raw) => [{ raw }, { delayMs: 30 }]) });
  const response = await postChat(gateway, { model: "m", stream: true });
  assert.equal(response.status, 200, response.text.slice(0, 300));
  assert.equal(response.text, `${data.map((text) => `data: ${text}\n\n`).join("")}data: [DONE]\n\n`);
});
