// The doors wire RequestContext.flushWrites into the relay (forwarding-route.ts, protocol-adapters.ts, stream-answer.ts):
// each batch a stream writes while its upstream is slow reaches the client's socket when the relay starts waiting for
// the upstream (write-stream.ts flushWrites), not at the next tick after the relay's promise jobs. The unit tests
// (write-stream.test.ts, relay-stream.test.ts) pass with the wiring taken out; this one does not.
import assert from "node:assert/strict";
import type { Socket } from "node:net";
import { test } from "node:test";
import { send, useGateway, useMock } from "../helpers/e2e.ts";
import { chatStream } from "../helpers/mock-upstream.ts";

const DOORS = [
  { path: "/v1/chat/completions", body: { model: "m", stream: true, messages: [{ role: "user", content: "hi" }] } },
  { path: "/v1/responses", body: { model: "m", stream: true, input: "hi" } },
  {
    path: "/v1/messages",
    body: { model: "m", stream: true, max_tokens: 100, messages: [{ role: "user", content: "hi" }] },
  },
];

/** Who sent what the client socket held: `flush` (flushWrites), `tick` (Node's uncork at the next tick), `end`. */
function senderOf(stack: string): string {
  if (stack.includes("flushWrites")) return "flush";
  if (stack.includes("connectionCorkNT")) return "tick";
  return stack.includes("end") ? "end" : "other";
}

test("the chat, Responses and Messages doors send each batch when the relay waits for a slow upstream, not at the next tick", async (t) => {
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
  let senders: string[] = [];
  gateway.app.server.on("connection", (socket: Socket) => {
    const uncork = socket.uncork.bind(socket);
    socket.uncork = () => {
      // Only an uncork that sends what the socket holds (Node's own uncork at the next tick finds it empty after a flush).
      if (socket.writableCorked > 0 && socket.writableLength > 0) senders.push(senderOf(new Error().stack ?? ""));
      uncork();
    };
  });
  for (const door of DOORS) {
    senders = [];
    mock.enqueue("POST /v1/chat/completions", {
      kind: "sse",
      events: chatStream(["Hel", "lo", "!"], "up", { delayMs: 40 }),
    });
    const response = await send(gateway, "POST", door.path, { body: door.body });
    assert.equal(response.status, 200, `${door.path}: ${response.text.slice(0, 200)}`);
    assert.match(response.text, /lo/, door.path);
    // The head with the first event, then each word's batch (40 ms apart: one upstream read each unless the gateway
    // stalls that long): sent by the flush, none left for the next tick; the last batch leaves with the end.
    assert.ok(senders.includes("flush"), `${door.path}: ${senders.join(", ")}`);
    assert.deepEqual(
      senders.filter((sender) => sender === "tick"),
      [],
      `${door.path}: ${senders.join(", ")}`,
    );
  }
});
