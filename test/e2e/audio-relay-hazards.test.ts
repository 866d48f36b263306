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
import { speechFailoverScene } from "../helpers/speech-scene.ts";

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

/** The client's speech request for `tts-1` (with `extra` body fields), by raw undici to see its bytes and headers. */
function postSpeech(gatewayUrl: string, extra: Record<string, unknown> = {}) {
  return request(`${gatewayUrl}/v1/audio/speech`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "tts-1", input: "Hello there.", voice: "alloy", ...extra }),
  });
}

/** A provider answering `audio` whole, as mp3. */
function answersAudio(audio: Buffer) {
  return {
    kind: "handler" as const,
    handle: (_request: unknown, response: ServerResponse) => {
      response.writeHead(200, { "content-type": "audio/mpeg" });
      response.end(audio);
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
  test("a client that reads nothing after the head: max_stream_duration_ms still ends the response, recorded client_aborted", async (t) => {
    const upstream = await useMock(t);
    // Long enough for the sockets' buffers to be full by then even on a loaded machine: before that the relay is
    // still reading the provider, and the cap would rightly be the stream's (stream_too_long).
    const gateway = await useGateway(
      t,
      `routing:
  max_stream_duration_ms: 2000
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
    const response = await postSpeech(gateway.url);
    assert.equal(response.statusCode, 200);
    const clientCut = gate();
    response.body.on("error", clientCut.open);
    response.body.on("close", clientCut.open);
    // The client reads nothing: the sockets' buffers fill and the gateway waits for a drain that never comes.
    response.body.pause();
    await within(upstreamClosed.promise, 10_000, "the provider was not hung up on");
    const record = (await waitForRecord(gateway, 10_000)) as ListedAudioRecord & {
      attempts: { outcome: string; reason?: string }[];
    };
    // The provider answered as fast as it was read: the client holding the relay is not the provider's fault (until
    // 2026-12-07 it was recorded stream_too_long, 502, and blamed on the deployment).
    assert.equal(record.outcome, "client_aborted");
    assert.equal(record.status, 499);
    assert.equal(record.attempts[0]?.outcome, "client_aborted");
    assert.match(record.attempts[0]?.reason ?? "", /the client read nothing while max_stream_duration_ms/);
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
    const response = await postSpeech(gateway.url);
    assert.equal(response.statusCode, 200);
    assert.equal(response.headers["content-encoding"], "gzip");
    const body = Buffer.from(await response.body.arrayBuffer());
    assert.ok(gunzipSync(body).equals(audio), "the client's bytes are not the provider's gzip of the audio");
  });
});

describe("a speech answer that starts with `{` (held to tell a JSON error from raw pcm)", () => {
  const SECOND_AUDIO = Buffer.from([0xff, 0xfb, 0x90, 0x64, 1, 2, 3, 4]);

  test("`{` then a byte every 100 ms (never silent for stream_idle_timeout_ms): the hold is capped by it, the attempt fails over as a timeout", async (t) => {
    const { first, second, gateway } = await speechFailoverScene(t);
    const upstreamClosed = gate();
    first.enqueue(SPEECH, {
      kind: "handler",
      handle: async (_request, response: ServerResponse) => {
        response.on("close", upstreamClosed.open);
        response.writeHead(200, { "content-type": "audio/mpeg" });
        response.write('{"error": ');
        // Never silent for 400 ms, never ending, never past max_error_body_bytes: before the cap it was held until the
        // request's total time (120 s) ran out, and the client waited all that time for nothing.
        while (!response.destroyed) {
          await new Promise((resolve) => setTimeout(resolve, 100));
          if (!response.destroyed) response.write(" ");
        }
      },
    });
    second.enqueue(SPEECH, answersAudio(SECOND_AUDIO));
    // Without the cap the hold lasts the request's total time (routing.total_timeout_ms, 120 s): a bound far below it,
    // far above the cap's 400 ms, tells the two apart on a loaded machine.
    const startedAtMs = Date.now();
    const response = await within(postSpeech(gateway.url), 30_000, "the answer did not come");
    assert.equal(response.statusCode, 200);
    assert.equal(response.headers["x-gateway-provider"], "second");
    assert.ok(Buffer.from(await response.body.arrayBuffer()).equals(SECOND_AUDIO));
    assert.ok(Date.now() - startedAtMs < 30_000, "the hold lasted far longer than stream_idle_timeout_ms");
    await within(upstreamClosed.promise, 5000, "the first provider was not hung up on");
    const record = (await waitForRecord(gateway, 5000)) as ListedAudioRecord & {
      attempts: { provider: string; outcome: string; reason?: string }[];
    };
    assert.deepEqual(
      record.attempts.map((attempt) => [attempt.provider, attempt.outcome]),
      [
        ["first", "timeout"],
        ["second", "success"],
      ],
    );
    assert.match(record.attempts[0]?.reason ?? "", /stream_idle_timeout_ms \(400 ms\)/);
  });

  test("a whole JSON error, then the connection held open: judged at the cap as the error it is (not a timeout), failover", async (t) => {
    const { first, second, gateway } = await speechFailoverScene(t);
    first.enqueue(SPEECH, {
      kind: "handler",
      handle: (_request, response: ServerResponse) => {
        response.writeHead(200, { "content-type": "audio/mpeg" });
        // The body never ends: only the hold's cap (400 ms) ends the wait.
        response.write(
          JSON.stringify({ error: { message: "quota exceeded for the minute", type: "rate_limit_error" } }),
        );
      },
    });
    second.enqueue(SPEECH, answersAudio(SECOND_AUDIO));
    const response = await within(postSpeech(gateway.url), 5000, "the answer did not come");
    assert.equal(response.headers["x-gateway-provider"], "second");
    assert.ok(Buffer.from(await response.body.arrayBuffer()).equals(SECOND_AUDIO));
    const record = (await waitForRecord(gateway, 5000)) as ListedAudioRecord & {
      attempts: { provider: string; outcome: string; reason?: string }[];
    };
    assert.equal(record.attempts[0]?.provider, "first");
    // Read as the rate limit it says it is (the deployment cools down as after a 429), not blamed as a stall.
    assert.notEqual(record.attempts[0]?.outcome, "timeout");
    assert.match(record.attempts[0]?.reason ?? "", /quota exceeded for the minute/);
  });

  test("raw pcm that happens to start with `{` is relayed at once: a byte JSON text never has proves it audio", async (t) => {
    const { first, second, gateway } = await speechFailoverScene(t);
    const clientGotFirst = gate();
    // Little-endian 16-bit samples whose first byte is 0x7b: control bytes follow, which JSON text cannot hold.
    const head = Buffer.from([0x7b, 0x00, 0x10, 0x01, 0x7b, 0x02, 0x05, 0x00]);
    const tail = Buffer.from([0x11, 0x00, 0x12, 0x00]);
    first.enqueue(SPEECH, {
      kind: "handler",
      handle: async (_request, response: ServerResponse) => {
        response.writeHead(200, { "content-type": "audio/pcm" });
        response.write(head);
        // Speaks on only once the client has the head: a gateway still holding it would wait here until its cap.
        await clientGotFirst.promise;
        response.end(tail);
      },
    });
    const response = await postSpeech(gateway.url, { response_format: "pcm" });
    // Held, the head waited out stream_idle_timeout_ms (the provider waits for the client) and failed over.
    assert.equal(response.headers["x-gateway-provider"], "first");
    assert.equal(response.statusCode, 200);
    const iterator = (response.body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    // A gateway holding the head never gets more (the provider waits for the client): the wait is the tell, not its
    // length, so the bound is generous.
    const start = await within(iterator.next(), 10_000, "the pcm's head was held instead of relayed");
    assert.ok(start.done !== true && head.equals(start.value));
    clientGotFirst.open();
    const rest: Buffer[] = [];
    for (;;) {
      const next = await iterator.next();
      if (next.done === true) break;
      rest.push(next.value);
    }
    assert.ok(Buffer.concat(rest).equals(tail));
    assert.equal(second.requests.length, 0);
    const record = await waitForRecord(gateway, 5000);
    assert.equal(record.outcome, "success");
    assert.equal(record.responseBytes, head.byteLength + tail.byteLength);
  });
});
