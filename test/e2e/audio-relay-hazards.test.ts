// Hazards of relaying speech audio as it arrives (review of upstream/audio-attempt.ts, streaming/relay-audio.ts,
// server/forwarding-route.ts writeAudio): a client that takes the head and then reads nothing must not hold the
// response, its record and its budget reservation forever.
import assert from "node:assert/strict";
import type { ServerResponse } from "node:http";
import { describe, test } from "node:test";
import { gunzipSync, gzipSync } from "node:zlib";
import { request } from "undici";
import { recordsOf, useGateway, useMock } from "../helpers/e2e.ts";
import { drainedOrClosed, gate, within } from "../helpers/gates.ts";

const SPEECH = "POST /v1/audio/speech";

/** An upstream that speaks until it is hung up on, as fast as the gateway takes it. */
function endlessSpeech(upstreamClosed: { open: () => void }) {
  return {
    kind: "handler" as const,
    handle: async (_request: unknown, response: ServerResponse) => {
      response.on("close", upstreamClosed.open);
      response.writeHead(200, { "content-type": "audio/wav" });
      const chunk = Buffer.alloc(64 * 1024, 7);
      while (!response.destroyed) {
        if (!response.write(chunk)) {
          await drainedOrClosed(response);
        }
      }
    },
  };
}

interface ListedAudioRecord {
  readonly outcome: string;
  readonly status: number;
  readonly responseBytes?: number;
}

async function waitForRecord(gateway: Parameters<typeof recordsOf>[0], ms: number): Promise<ListedAudioRecord> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const { records } = await recordsOf(gateway, "speech");
    const record = records[0] as unknown as ListedAudioRecord | undefined;
    if (record !== undefined) return record;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`no speech record within ${ms} ms`);
}

describe("relayed speech against a hostile client", () => {
  test("a client that reads nothing after the head: max_stream_duration_ms still ends the response, recorded stream_too_long", async (t) => {
    const upstream = await useMock(t);
    const gateway = await useGateway(
      t,
      `routing:
  max_stream_duration_ms: 600
providers:
  - name: only
    base_url: ${upstream.baseUrl}
    api_key: sk-only-key
    retries: 0
    models:
      tts-1: { id: tts-only }
request_log:
  enabled: true
`,
    );
    const upstreamClosed = gate();
    upstream.enqueue(SPEECH, endlessSpeech(upstreamClosed));
    const response = await request(`${gateway.url}/v1/audio/speech`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "tts-1", input: "Hello there.", voice: "alloy" }),
    });
    assert.equal(response.statusCode, 200);
    const clientCut = gate();
    response.body.on("error", clientCut.open);
    response.body.on("close", clientCut.open);
    // The client reads nothing: the sockets' buffers fill and the gateway waits for a drain that never comes.
    response.body.pause();
    await within(upstreamClosed.promise, 5000, "the provider was not hung up on");
    const record = await waitForRecord(gateway, 5000);
    assert.equal(record.outcome, "stream_too_long");
    assert.equal(record.status, 502);
    // The response is cut, not left open for a client that may never read again.
    response.body.resume();
    await within(clientCut.promise, 5000, "the response was not ended");
  });

  test("gzip-encoded audio from the provider keeps its content-encoding: the client can decode what it is given", async (t) => {
    const upstream = await useMock(t);
    const gateway = await useGateway(
      t,
      `providers:
  - name: only
    base_url: ${upstream.baseUrl}
    api_key: sk-only-key
    models:
      tts-1: { id: tts-only }
`,
    );
    const audio = Buffer.from(Array.from({ length: 20_000 }, (_, index) => (index * 13) % 256));
    upstream.enqueue(SPEECH, {
      kind: "handler",
      handle: (_request, response: ServerResponse) => {
        response.writeHead(200, { "content-type": "audio/mpeg", "content-encoding": "gzip" });
        response.end(gzipSync(audio));
      },
    });
    const response = await request(`${gateway.url}/v1/audio/speech`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "tts-1", input: "Hello there.", voice: "alloy" }),
    });
    assert.equal(response.statusCode, 200);
    assert.equal(response.headers["content-encoding"], "gzip");
    const body = Buffer.from(await response.body.arrayBuffer());
    assert.ok(gunzipSync(body).equals(audio), "the client's bytes are not the provider's gzip of the audio");
  });
});
