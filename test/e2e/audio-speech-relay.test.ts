// `/v1/audio/speech` relays the audio as the provider sends it: the client gets the first bytes while the provider is
// still speaking, a slow client slows the provider down, a client that leaves hangs up on it, failover happens only
// before the first byte, and a provider that breaks off after it ends the response as a cut (recorded `stream_cut`).
import assert from "node:assert/strict";
import type { ServerResponse } from "node:http";
import { describe, test } from "node:test";
import { request } from "undici";
import { recordsOf } from "../helpers/e2e.ts";
import { drainedOrClosed, gate, within } from "../helpers/gates.ts";
import type { MockUpstream } from "../helpers/mock-upstream.ts";
import { speechFailoverScene } from "../helpers/speech-scene.ts";

const SPEECH = "POST /v1/audio/speech";
const FIRST = Buffer.from([0xff, 0xfb, 0x90, 0x64, ...Array.from({ length: 2000 }, (_, index) => index % 251)]);
const REST = Buffer.from(Array.from({ length: 5000 }, (_, index) => (index * 7) % 256));

function speechCount(mock: MockUpstream): number {
  return mock.requests.filter((recorded) => recorded.path === "/v1/audio/speech").length;
}

function postSpeech(gatewayUrl: string) {
  return request(`${gatewayUrl}/v1/audio/speech`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "tts-1", input: "Hello there.", voice: "alloy" }),
  });
}

/** Reads a body until at least `bytes` have come; returns them and the iterator, to read on. */
async function readAtLeast(iterator: AsyncIterator<Buffer>, bytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  while (total < bytes) {
    const next = await iterator.next();
    if (next.done === true) break;
    chunks.push(next.value);
    total += next.value.byteLength;
  }
  return Buffer.concat(chunks);
}

async function readRest(iterator: AsyncIterator<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for (;;) {
    const next = await iterator.next();
    if (next.done === true) return Buffer.concat(chunks);
    chunks.push(next.value);
  }
}

describe("speech audio relayed as it arrives", () => {
  test("the client gets the first bytes while the provider has not finished; the record has the bytes and the first byte's time", async (t) => {
    const { first, second, gateway } = await speechFailoverScene(t);
    const clientGotFirst = gate();
    let upstreamEndedAtMs: number | undefined;
    first.enqueue(SPEECH, {
      kind: "handler",
      handle: async (_request, response: ServerResponse) => {
        response.writeHead(200, { "content-type": "audio/mpeg" });
        response.write(FIRST);
        // Only once the client has the first bytes does the provider go on: a buffering gateway never gets here.
        await clientGotFirst.promise;
        response.end(REST);
        upstreamEndedAtMs = Date.now();
      },
    });
    const response = await within(postSpeech(gateway.url), 5000, "the response head did not come");
    assert.equal(response.statusCode, 200);
    assert.equal(response.headers["content-type"], "audio/mpeg");
    assert.equal(response.headers["x-gateway-provider"], "first");
    const iterator = (response.body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    const start = await within(readAtLeast(iterator, FIRST.byteLength), 5000, "the first bytes did not come");
    assert.equal(upstreamEndedAtMs, undefined, "the provider had already finished");
    assert.ok(start.equals(FIRST), "the first bytes changed on the way");
    clientGotFirst.open();
    const rest = await readRest(iterator);
    assert.ok(rest.equals(REST), "the rest changed on the way");
    assert.equal(speechCount(second), 0);

    const record = await waitForRecord(gateway);
    assert.equal(record.outcome, "success");
    assert.equal(record.status, 200);
    assert.equal(record.responseBytes, FIRST.byteLength + REST.byteLength);
    assert.equal(typeof record.timeToFirstTokenMs, "number", "the first byte's time is recorded");
    assert.ok((record.timeToFirstTokenMs as number) <= (record.durationMs as number));
  });

  test("a provider that breaks off after the first bytes: the response is cut (no failover), recorded stream_cut", async (t) => {
    const { first, second, gateway } = await speechFailoverScene(t);
    const clientGotFirst = gate();
    first.enqueue(SPEECH, {
      kind: "handler",
      handle: async (_request, response: ServerResponse) => {
        response.writeHead(200, { "content-type": "audio/mpeg" });
        response.write(FIRST);
        await clientGotFirst.promise;
        response.socket?.destroy();
      },
    });
    const response = await postSpeech(gateway.url);
    assert.equal(response.statusCode, 200);
    const iterator = (response.body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    const start = await within(readAtLeast(iterator, FIRST.byteLength), 5000, "the first bytes did not come");
    assert.ok(start.equals(FIRST));
    clientGotFirst.open();
    // The gateway ends the response without the end of its chunked encoding: the client sees a broken body, never a
    // complete (shorter) file.
    await assert.rejects(readRest(iterator));
    assert.equal(speechCount(second), 0, "no failover after the first byte");

    const record = await waitForRecord(gateway);
    assert.equal(record.outcome, "stream_cut");
    assert.equal(record.status, 502);
    assert.equal(record.responseBytes, FIRST.byteLength);
    assert.deepEqual(
      (record.attempts as { provider: string; outcome: string }[]).map((attempt) => [
        attempt.provider,
        attempt.outcome,
      ]),
      [["first", "stream_cut"]],
    );
  });

  test("a client that leaves mid-audio hangs up on the provider; recorded client_aborted", async (t) => {
    const { first, gateway } = await speechFailoverScene(t);
    const upstreamClosed = gate();
    first.enqueue(SPEECH, {
      kind: "handler",
      handle: async (_request, response: ServerResponse) => {
        response.on("close", upstreamClosed.open);
        response.writeHead(200, { "content-type": "audio/ogg" });
        response.write(FIRST);
        // Speaks on (a little every 20 ms) until the gateway hangs up.
        while (!response.destroyed && !response.writableEnded) {
          await new Promise((resolve) => setTimeout(resolve, 20));
          if (!response.destroyed) response.write(REST.subarray(0, 100));
        }
      },
    });
    const response = await within(postSpeech(gateway.url), 5000, "the response head did not come");
    const iterator = (response.body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    await within(readAtLeast(iterator, FIRST.byteLength), 5000, "the first bytes did not come");
    response.body.destroy();
    await within(upstreamClosed.promise, 5000, "the provider was not hung up on");
    const record = await waitForRecord(gateway);
    assert.equal(record.outcome, "client_aborted");
  });

  test("failover before the first byte: headers then a reset, or headers then silence past stream_idle_timeout_ms", async (t) => {
    const { first, second, gateway } = await speechFailoverScene(t);
    first.enqueue(SPEECH, {
      kind: "handler",
      handle: (_request, response: ServerResponse) => {
        response.writeHead(200, { "content-type": "audio/mpeg" });
        response.flushHeaders();
        setTimeout(() => response.socket?.destroy(), 20);
      },
    });
    first.enqueue(SPEECH, {
      kind: "handler",
      handle: (_request, response: ServerResponse) => {
        response.writeHead(200, { "content-type": "audio/mpeg" });
        response.flushHeaders();
        // Never a byte: the idle bound (400 ms) ends the attempt, and the next candidate answers.
      },
    });
    for (const [index, expected] of ["network_error", "timeout"].entries()) {
      second.enqueue(SPEECH, {
        kind: "handler",
        handle: (_request, response: ServerResponse) => {
          response.writeHead(200, { "content-type": "audio/mpeg" });
          response.end(REST);
        },
      });
      const response = await postSpeech(gateway.url);
      assert.equal(response.statusCode, 200);
      assert.equal(response.headers["x-gateway-provider"], "second");
      assert.ok(Buffer.from(await response.body.arrayBuffer()).equals(REST));
      const record = await waitForRecord(gateway, index + 1);
      assert.deepEqual(
        (record.attempts as { provider: string; outcome: string }[]).map((attempt) => [
          attempt.provider,
          attempt.outcome,
        ]),
        [
          ["first", expected],
          ["second", "success"],
        ],
      );
      assert.equal(record.responseBytes, REST.byteLength);
    }
  });

  test("a slow client slows the provider: the gateway reads no further ahead than the sockets' buffers", async (t) => {
    const { first, gateway } = await speechFailoverScene(t);
    const totalBytes = 64 * 1024 * 1024;
    let writtenBytes = 0;
    const upstreamBlocked = gate();
    first.enqueue(SPEECH, {
      kind: "handler",
      handle: async (_request, response: ServerResponse) => {
        response.writeHead(200, { "content-type": "audio/wav" });
        const chunk = Buffer.alloc(64 * 1024, 7);
        while (writtenBytes < totalBytes && !response.destroyed) {
          writtenBytes += chunk.byteLength;
          if (!response.write(chunk)) {
            upstreamBlocked.open();
            await drainedOrClosed(response);
          }
        }
        response.end();
      },
    });
    const response = await postSpeech(gateway.url);
    const iterator = (response.body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    await readAtLeast(iterator, 1);
    // The client reads nothing more: the provider's writes must stall long before the whole 64 MB is taken.
    await within(upstreamBlocked.promise, 5000, "the provider never had to wait");
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.ok(
      writtenBytes < totalBytes / 4,
      `the gateway took ${writtenBytes} bytes from the provider ahead of the client`,
    );
    response.body.destroy();
  });
});

interface ListedAudioRecord {
  readonly outcome: string;
  readonly status: number;
  readonly responseBytes?: number;
  readonly timeToFirstTokenMs?: number;
  readonly durationMs?: number;
  readonly attempts: readonly unknown[];
}

/** The newest speech record, once `count` are published (a relayed answer's record is published when its relay ends). */
async function waitForRecord(gateway: Parameters<typeof recordsOf>[0], count = 1): Promise<ListedAudioRecord> {
  for (let tries = 0; tries < 100; tries += 1) {
    const { records } = await recordsOf(gateway, "speech");
    const record = records[0] as unknown as ListedAudioRecord | undefined;
    if (record !== undefined && records.length >= count) return record;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error("no speech record");
}
