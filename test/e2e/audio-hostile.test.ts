// The audio doors against a hostile upstream and odd clients: a provider that quotes its key in a speech event
// stream (`stream_format: "sse"`) never gets it to the client, the record or the log; a `HEAD` on an audio route gets
// a clear 404 in OpenAI's error shape (nothing upstream, no hang), and the gateway serves on.
import assert from "node:assert/strict";
import { connect } from "node:net";
import { describe, type TestContext, test } from "node:test";
import { request } from "undici";
import { logCollector, recordsOf, send, useGateway, useMock } from "../helpers/e2e.ts";
import { within } from "../helpers/gates.ts";
import type { MockStep, MockUpstream } from "../helpers/mock-upstream.ts";

const SPEECH = "POST /v1/audio/speech";
/** No key shape: only the config says it is a secret. */
const FIRST_KEY = "ProvZx4Cv6Bn8Mq2Wl9Ep5Rt3Yu";
const SECOND_KEY = "Sec0ndQw8Er7Ty6Ui5Op4As3Df";
const AUDIO = Buffer.from([0xff, 0xfb, 0x90, 0x00, 0x01, 0x02]).toString("base64");

async function speechScene(t: TestContext) {
  const first = await useMock(t);
  const second = await useMock(t);
  const log = logCollector();
  const gateway = await useGateway(
    t,
    `providers:
  - name: first
    base_url: ${first.baseUrl}
    api_key: ${FIRST_KEY}
    retries: 0
    models:
      gpt-4o-mini-tts: { id: tts-first }
  - name: second
    base_url: ${second.baseUrl}
    api_key: ${SECOND_KEY}
    retries: 0
    models:
      gpt-4o-mini-tts: { id: tts-second }
request_log:
  enabled: true
`,
    { logLevel: "debug", logStream: log.stream },
  );
  return { first, second, gateway, logLines: log.lines };
}

/** A speech event stream; `data` objects as events. */
function speechEvents(events: unknown[]): MockStep {
  return { kind: "sse", events: events.map((data) => ({ data })), end: "close-without-done" };
}

/** The key each provider was sent, quoted back in an error, as a provider echoing its request does. */
function echoOf(key: string): { type: string; error: Record<string, unknown> } {
  return {
    type: "error",
    error: { message: `Incorrect API key provided: ${key}`, type: "invalid_request_error", code: key, param: null },
  };
}

async function postSpeechSse(gatewayUrl: string): Promise<{ status: number; provider: unknown; text: string }> {
  const response = await request(`${gatewayUrl}/v1/audio/speech`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "gpt-4o-mini-tts", input: "Stream it.", voice: "alloy", stream_format: "sse" }),
  });
  const text = await within(response.body.text(), 5000, "the stream did not end");
  return { status: response.statusCode, provider: response.headers["x-gateway-provider"], text };
}

function assertNoKey(what: string, text: string): void {
  for (const key of [FIRST_KEY, SECOND_KEY]) assert.ok(!text.includes(key), `${what} leaks ${key}: ${text}`);
}

function sentKeys(mock: MockUpstream): unknown[] {
  return mock.requests.map((recorded) => recorded.headers.authorization);
}

describe("speech events (stream_format sse) quoting the provider's key", () => {
  test("an error event after the first delta: the client's final error event, the record and the log are redacted", async (t) => {
    const { first, gateway, logLines } = await speechScene(t);
    first.enqueue(SPEECH, speechEvents([{ type: "speech.audio.delta", audio: AUDIO }, echoOf(FIRST_KEY)]));
    const answer = await postSpeechSse(gateway.url);
    assert.equal(answer.status, 200);
    assert.equal(answer.provider, "first");
    assert.deepEqual(sentKeys(first), [`Bearer ${FIRST_KEY}`], "the key was sent (else the check is vacuous)");
    // The delta reached the client, then the one final error event of a broken stream, quoting the upstream's text.
    assert.ok(answer.text.includes(`"audio":"${AUDIO}"`), answer.text);
    assert.match(answer.text, /data: \{"error":\{[^\n]*\[redacted\]/);
    assertNoKey("the client's stream", answer.text);
    const { records, text } = await recordsOf(gateway, "speech");
    assert.equal(records[0]?.outcome, "stream_error_event");
    assert.ok(text.includes("[redacted]"), text);
    assertNoKey("the request log", text);
    assertNoKey("the log", logLines.join(""));
  });

  test("an error object riding on a delta is passed on redacted; the audio is untouched", async (t) => {
    const { first, gateway } = await speechScene(t);
    first.enqueue(
      SPEECH,
      speechEvents([
        { type: "speech.audio.delta", audio: AUDIO, error: { message: `quota note for ${FIRST_KEY}` } },
        { type: "speech.audio.done", usage: { input_tokens: 3, output_tokens: 9, total_tokens: 12 } },
      ]),
    );
    const answer = await postSpeechSse(gateway.url);
    assert.equal(answer.status, 200);
    assertNoKey("the client's stream", answer.text);
    assert.ok(answer.text.includes(`"audio":"${AUDIO}"`), answer.text);
    assert.ok(answer.text.includes("quota note for [redacted]"), answer.text);
    assert.ok(answer.text.includes("speech.audio.done"), answer.text);
    const { records } = await recordsOf(gateway, "speech");
    assert.equal(records[0]?.outcome, "success");
  });

  test("an error event before any delta fails over; neither key reaches the client, the attempts or the log", async (t) => {
    const { first, second, gateway, logLines } = await speechScene(t);
    first.enqueue(SPEECH, speechEvents([echoOf(FIRST_KEY)]));
    second.enqueue(SPEECH, speechEvents([echoOf(SECOND_KEY)]));
    const answer = await postSpeechSse(gateway.url);
    // Both failed before their first delta: the client gets one error in OpenAI's shape, listing the attempts.
    assert.ok(answer.status >= 400, answer.text);
    assert.ok(answer.text.includes("[redacted]"), answer.text);
    assertNoKey("the client's error", answer.text);
    assert.deepEqual(sentKeys(first), [`Bearer ${FIRST_KEY}`]);
    assert.deepEqual(sentKeys(second), [`Bearer ${SECOND_KEY}`]);
    const { records, text } = await recordsOf(gateway, "speech");
    assert.deepEqual(
      records[0]?.attempts.map((attempt) => attempt.provider),
      ["first", "second"],
    );
    assertNoKey("the request log", text);
    assertNoKey("the log", logLines.join(""));
  });
});

/** One provider serving `gpt-4o-mini-tts`, and `moreModels` (YAML lines of its `models:`). */
async function onlyScene(t: TestContext, moreModels = "") {
  const mock = await useMock(t);
  const gateway = await useGateway(
    t,
    `providers:
  - name: only
    base_url: ${mock.baseUrl}
    api_key: sk-only-key
    models:
      gpt-4o-mini-tts: { id: tts-only }
${moreModels}`,
  );
  return { mock, gateway };
}

describe("HEAD on the audio routes", () => {
  const ROUTES = [
    "/v1/audio/speech",
    "/v1/audio/transcriptions",
    "/v1/audio/translations",
    "/audio/speech",
    "/audio/transcriptions",
    "/audio/translations",
  ];

  test("each answers a 404 at once (HEAD has no body: the GET's error shape is checked beside it), reaching no provider", async (t) => {
    const { mock, gateway } = await onlyScene(t, "      whisper-large-v3: { id: whisper-only }\n");
    for (const path of ROUTES) {
      const head = await within(request(`${gateway.url}${path}`, { method: "HEAD" }), 3000, `HEAD ${path} hung`);
      assert.equal(head.statusCode, 404, `HEAD ${path}`);
      assert.match(String(head.headers["content-type"]), /^application\/json/, `HEAD ${path}`);
      assert.equal(await head.body.text(), "", `HEAD ${path} has a body`);
      // The same route by GET: the body HEAD leaves out is a clear error in OpenAI's shape naming the method.
      const get = await send(gateway, "GET", path);
      assert.equal(get.status, 404);
      const error = (get.json as { error: { message: string; type: string; code: string } }).error;
      assert.equal(error.type, "invalid_request_error");
      assert.match(error.message, new RegExp(`GET ${path.replaceAll("/", "\\/")}`));
    }
    assert.equal(mock.requests.length, 0, "a HEAD or GET reached the provider");
    // Served on: a real request still works.
    mock.enqueue(SPEECH, {
      kind: "handler",
      handle: (_request, response) => {
        response.writeHead(200, { "content-type": "audio/mpeg" });
        response.end(Buffer.from([0xff, 0xfb]));
      },
    });
    const speech = await send(gateway, "POST", "/v1/audio/speech", {
      body: { model: "gpt-4o-mini-tts", input: "Hi.", voice: "alloy" },
    });
    assert.equal(speech.status, 200, speech.text);
  });

  test("a HEAD that sends a body anyway (Content-Length, or chunked) gets its 404 head and a closed connection, never a hang", async (t) => {
    const { mock, gateway } = await onlyScene(t);
    const { hostname, port, host } = new URL(gateway.url);
    const body = JSON.stringify({ model: "gpt-4o-mini-tts", input: "Hi.", voice: "alloy" });
    const heads = [
      `HEAD /v1/audio/speech HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      `HEAD /v1/audio/transcriptions HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`,
    ];
    for (const head of heads) {
      const socket = connect(Number(port), hostname);
      t.after(() => socket.destroy());
      let received = "";
      socket.on("data", (chunk: Buffer) => {
        received += chunk.toString("latin1");
      });
      const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
      socket.write(head);
      // The gateway answers and closes the connection (a body it did not read); a hang fails here.
      await within(closed, 3000, `the connection of ${head.split("\r\n")[0]} was neither answered nor closed`);
      assert.match(received, /^HTTP\/1\.1 404 /, received);
      assert.match(received, /\r\ncontent-type: application\/json/i, received);
      assert.ok(received.endsWith("\r\n\r\n"), `a HEAD answer has no body: ${JSON.stringify(received)}`);
    }
    assert.equal(mock.requests.length, 0);
    // Served on.
    const health = await send(gateway, "GET", "/health");
    assert.equal(health.status, 200);
  });
});
