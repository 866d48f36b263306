// A chat stream (Chat Completions and the Messages door) whose client takes the head and then reads nothing: once the
// sockets' buffers are full the gateway's writer waits for a drain that never comes, and the relay cannot end the
// stream while nobody pulls from it. routing.max_stream_duration_ms must still end it: the provider hung up on, the
// record published (with it the budget reservation settled), the response cut. Before, all three waited for the
// client to read or to leave, forever.
import assert from "node:assert/strict";
import type { ServerResponse } from "node:http";
import { describe, test } from "node:test";
import { request } from "undici";
import { recordsOf, useGateway, useMock } from "../helpers/e2e.ts";
import { drainedOrClosed, gate, within } from "../helpers/gates.ts";

/** A chat stream that goes on until it is hung up on, as fast as the gateway takes it. */
function endlessChatStream(upstreamClosed: { open: () => void }) {
  return {
    kind: "handler" as const,
    handle: async (_request: unknown, response: ServerResponse) => {
      response.on("close", upstreamClosed.open);
      response.writeHead(200, { "content-type": "text/event-stream" });
      const words = "word ".repeat(2_000);
      let index = 0;
      while (!response.destroyed) {
        const chunk = {
          id: "chatcmpl-unread",
          object: "chat.completion.chunk",
          created: 1,
          model: "vendor-m",
          choices: [{ index: 0, delta: index === 0 ? { role: "assistant", content: words } : { content: words } }],
        };
        index += 1;
        if (!response.write(`data: ${JSON.stringify(chunk)}\n\n`)) {
          await drainedOrClosed(response);
        }
      }
    },
  };
}

async function waitForRecord(
  gateway: Parameters<typeof recordsOf>[0],
  endpoint: string,
  ms: number,
): Promise<{ outcome: string }> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const [record] = (await recordsOf(gateway, endpoint)).records;
    if (record !== undefined) return record as unknown as { outcome: string };
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no record within ${ms} ms`);
}

const DOORS = [
  {
    name: "Chat Completions",
    endpoint: "chat",
    path: "/v1/chat/completions",
    body: { model: "m", stream: true, messages: [{ role: "user", content: "Go on." }] },
  },
  {
    name: "Messages",
    endpoint: "messages",
    path: "/v1/messages",
    body: { model: "m", stream: true, max_tokens: 100_000, messages: [{ role: "user", content: "Go on." }] },
  },
];

describe("a stream whose client reads nothing after the head", () => {
  for (const door of DOORS) {
    test(`${door.name}: max_stream_duration_ms still ends it, recorded client_aborted, the response cut`, async (t) => {
      const upstream = await useMock(t);
      const gateway = await useGateway(
        t,
        `routing:
  max_stream_duration_ms: 4000
providers:
  - name: only
    base_url: ${upstream.baseUrl}
    api_key: sk-only-key
    retries: 0
    models:
      m: { id: vendor-m }
request_log:
  enabled: true
`,
      );
      const upstreamClosed = gate();
      upstream.enqueue("POST /v1/chat/completions", endlessChatStream(upstreamClosed));
      const response = await request(`${gateway.url}${door.path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(door.body),
      });
      assert.equal(response.statusCode, 200);
      const clientCut = gate();
      response.body.on("error", clientCut.open);
      response.body.on("close", clientCut.open);
      // The client reads nothing: the sockets' buffers fill and the gateway's writer waits for a drain. (4 s of
      // allowed duration: on a loaded machine 800 ms, then 2 s, were sometimes not enough to fill them, and the relay's
      // own deadline then rightly ended the stream as stream_too_long before the writer ever waited.)
      response.body.pause();
      await within(upstreamClosed.promise, 15_000, "the provider was not hung up on");
      const record = await waitForRecord(gateway, door.endpoint, 10_000);
      // Cut by the writer as a client gone (it took nothing for the stream's whole allowed time): the provider, which
      // answered well, is not blamed.
      assert.equal(record.outcome, "client_aborted");
      // The response is cut, not left open for a client that may never read again.
      response.body.resume();
      await within(clientCut.promise, 5_000, "the response was not ended");
    });
  }
});
