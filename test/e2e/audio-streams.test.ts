// Audio as events: text to speech with `stream_format: "sse"` (`speech.audio.delta` with base64 audio, then
// `speech.audio.done` with usage) and a transcription with `stream: true` (`transcript.text.delta`, then
// `transcript.text.done` with usage), relayed from providers that stream them. A candidate that answers a streaming
// request with its whole answer (or a 400 about the parameter) does not stream: the next candidate is tried, the
// refusal learned, and the client that asked for events never gets anything else. The real `openai` SDK is the client.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { toFile } from "openai";
import { Stream } from "openai/streaming";
import { logCollector, openAiClient, recordsOf, useGateway, useMock } from "../helpers/e2e.ts";
import type { MockStep, MockUpstream } from "../helpers/mock-upstream.ts";

const SPEECH = "POST /v1/audio/speech";
const TRANSCRIBE = "POST /v1/audio/transcriptions";
const PIECES = [Buffer.from([0xff, 0xfb, 0x90, 0x00, 0x01]), Buffer.from([0x80, 0xfe, 0x7b, 0x22, 0x0a])];
const AUDIO_FILE = Buffer.from([...Array(256).keys()]);

async function scene(t: Parameters<typeof useMock>[0]) {
  const first = await useMock(t);
  const second = await useMock(t);
  const gateway = await useGateway(
    t,
    `providers:
  - name: first
    base_url: ${first.baseUrl}
    api_key: sk-first-key
    retries: 0
    models:
      gpt-4o-mini-tts: { id: tts-first }
      gpt-4o-transcribe: { id: transcribe-first }
  - name: second
    base_url: ${second.baseUrl}
    api_key: sk-second-key
    models:
      gpt-4o-mini-tts: { id: tts-second }
      gpt-4o-transcribe: { id: transcribe-second }
request_log:
  enabled: true
`,
  );
  return { first, second, gateway, client: openAiClient(gateway) };
}

const SPEECH_EVENTS: MockStep = {
  kind: "sse",
  events: [
    { data: { type: "speech.audio.delta", audio: PIECES[0]?.toString("base64") } },
    { delayMs: 10 },
    { data: { type: "speech.audio.delta", audio: PIECES[1]?.toString("base64") } },
    { data: { type: "speech.audio.done", usage: { input_tokens: 7, output_tokens: 42, total_tokens: 49 } } },
  ],
  end: "close-without-done",
};

const TRANSCRIPT_EVENTS: MockStep = {
  kind: "sse",
  events: [
    { data: { type: "transcript.text.delta", delta: "Hello" } },
    { delayMs: 10 },
    { data: { type: "transcript.text.delta", delta: " there." } },
    {
      data: {
        type: "transcript.text.done",
        text: "Hello there.",
        usage: { type: "tokens", input_tokens: 12, output_tokens: 3, total_tokens: 15 },
      },
    },
  ],
  end: "close-without-done",
};

interface SpeechEvent {
  type: string;
  audio?: string;
  usage?: { input_tokens: number; output_tokens: number };
}

async function speechEvents(
  client: ReturnType<typeof openAiClient>,
): Promise<{ events: SpeechEvent[]; provider: string | null }> {
  const { data, response } = await client.audio.speech
    .create({ model: "gpt-4o-mini-tts", input: "Stream it.", voice: "alloy", stream_format: "sse" })
    .withResponse();
  assert.match(response.headers.get("content-type") ?? "", /^text\/event-stream/);
  const events: SpeechEvent[] = [];
  for await (const event of Stream.fromSSEResponse<SpeechEvent>(data, new AbortController())) events.push(event);
  return { events, provider: response.headers.get("x-gateway-provider") };
}

function requestsTo(mock: MockUpstream, path: string) {
  return mock.requests.filter((recorded) => recorded.path === path);
}

describe("audio streamed as events", () => {
  test("speech with stream_format sse: the SDK gets the provider's speech.audio events, usage recorded", async (t) => {
    const { first, gateway, client } = await scene(t);
    first.enqueue(SPEECH, SPEECH_EVENTS);
    const { events, provider } = await speechEvents(client);
    assert.equal(provider, "first");
    assert.deepEqual(
      events.map((event) => event.type),
      ["speech.audio.delta", "speech.audio.delta", "speech.audio.done"],
    );
    const audio = Buffer.concat(
      events.filter((event) => event.audio !== undefined).map((event) => Buffer.from(event.audio ?? "", "base64")),
    );
    assert.ok(audio.equals(Buffer.concat(PIECES)), "the audio changed on the way");
    assert.deepEqual(events.at(-1)?.usage, { input_tokens: 7, output_tokens: 42, total_tokens: 49 });
    const sent = requestsTo(first, "/v1/audio/speech")[0]?.body as Record<string, unknown> | undefined;
    assert.equal(sent?.stream_format, "sse");
    assert.equal(sent?.stream_options, undefined, "no chat stream_options added to a speech request");

    const { records } = await recordsOf(gateway, "speech");
    assert.equal(records[0]?.outcome, "success");
    assert.equal(records[0]?.isStream, true);
    assert.equal(records[0]?.tokensIn, 7);
    assert.equal(records[0]?.tokensOut, 42);
  });

  test("a provider that answers plain audio to stream_format sse does not stream: failover, learned, never passed on", async (t) => {
    const { first, second, gateway, client } = await scene(t);
    first.enqueue(SPEECH, {
      kind: "handler",
      handle: (_request, response) => {
        response.writeHead(200, { "content-type": "audio/mpeg" });
        response.end(Buffer.concat(PIECES));
      },
    });
    second.enqueue(SPEECH, SPEECH_EVENTS);
    const { events, provider } = await speechEvents(client);
    assert.equal(provider, "second");
    assert.equal(events.at(-1)?.type, "speech.audio.done");
    const { records } = await recordsOf(gateway, "speech");
    assert.deepEqual(
      records[0]?.attempts.map((attempt) => [attempt.provider, attempt.outcome]),
      [
        ["first", "unsupported"],
        ["second", "success"],
      ],
    );
    // Learned: the next streamed speech request tries the second provider first.
    second.enqueue(SPEECH, SPEECH_EVENTS);
    const again = await speechEvents(client);
    assert.equal(again.provider, "second");
    assert.equal(requestsTo(first, "/v1/audio/speech").length, 1, "the first provider was asked again first");
  });

  test("a streamed transcription: the SDK's stream: true gets transcript.text events; the provider gets stream=true", async (t) => {
    const { first, gateway, client } = await scene(t);
    first.enqueue(TRANSCRIBE, TRANSCRIPT_EVENTS);
    const stream = await client.audio.transcriptions.create({
      file: await toFile(AUDIO_FILE, "a.wav"),
      model: "gpt-4o-transcribe",
      stream: true,
    });
    const types: string[] = [];
    let text = "";
    let doneText: string | undefined;
    let usage: unknown;
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === "transcript.text.delta") text += event.delta;
      if (event.type === "transcript.text.done") {
        doneText = event.text;
        usage = event.usage;
      }
    }
    assert.deepEqual(types, ["transcript.text.delta", "transcript.text.delta", "transcript.text.done"]);
    assert.equal(text, "Hello there.");
    assert.equal(doneText, "Hello there.");
    assert.deepEqual(usage, { type: "tokens", input_tokens: 12, output_tokens: 3, total_tokens: 15 });
    const sent = requestsTo(first, "/v1/audio/transcriptions")[0];
    assert.ok(sent, "the provider got no request");
    const parts = await new Response(sent.bodyBytes, {
      headers: { "content-type": String(sent.headers["content-type"]) },
    }).formData();
    assert.equal(parts.get("stream"), "true");
    assert.equal(parts.get("model"), "transcribe-first");
    const { records } = await recordsOf(gateway, "transcriptions");
    assert.equal(records[0]?.outcome, "success");
    assert.equal(records[0]?.tokensOut, 3);
  });

  test("a transcription model that refuses stream (a 400 naming it, or a whole JSON answer): failover and learned", async (t) => {
    const { first, second, gateway, client } = await scene(t);
    first.enqueue(TRANSCRIBE, {
      kind: "json",
      status: 400,
      body: {
        error: {
          message: "Streaming is not supported for this model.",
          type: "invalid_request_error",
          param: "stream",
          code: "unsupported_parameter",
        },
      },
    });
    second.enqueue(TRANSCRIBE, TRANSCRIPT_EVENTS);
    const transcribe = async () => {
      const stream = await client.audio.transcriptions.create({
        file: await toFile(AUDIO_FILE, "a.wav"),
        model: "gpt-4o-transcribe",
        stream: true,
      });
      const types: string[] = [];
      for await (const event of stream) types.push(event.type);
      return types;
    };
    assert.equal((await transcribe()).at(-1), "transcript.text.done");
    let { records } = await recordsOf(gateway, "transcriptions");
    assert.deepEqual(
      records[0]?.attempts.map((attempt) => [attempt.provider, attempt.outcome]),
      [
        ["first", "unsupported"],
        ["second", "success"],
      ],
    );
    // Learned: the next streamed transcription goes to the second provider first.
    second.enqueue(TRANSCRIBE, TRANSCRIPT_EVENTS);
    assert.equal((await transcribe()).at(-1), "transcript.text.done");
    assert.equal(requestsTo(first, "/v1/audio/transcriptions").length, 1);

    // Another gateway's first provider answers the whole transcription as JSON: not passed on as events.
    const other = await scene(t);
    other.first.enqueue(TRANSCRIBE, { kind: "json", body: { text: "Hello there." } });
    other.second.enqueue(TRANSCRIBE, TRANSCRIPT_EVENTS);
    const stream = await other.client.audio.transcriptions.create({
      file: await toFile(AUDIO_FILE, "a.wav"),
      model: "gpt-4o-transcribe",
      stream: true,
    });
    const types: string[] = [];
    for await (const event of stream) types.push(event.type);
    assert.deepEqual(types, ["transcript.text.delta", "transcript.text.delta", "transcript.text.done"]);
    ({ records } = await recordsOf(other.gateway, "transcriptions"));
    assert.deepEqual(
      records[0]?.attempts.map((attempt) => [attempt.provider, attempt.outcome]),
      [
        ["first", "unsupported"],
        ["second", "success"],
      ],
    );
  });
});

describe("a speech model's `override: { stream_format: audio }` rule", () => {
  test("is applied as a default: a client asking sse gets events from that model, one naming no form gets the bytes", async (t) => {
    const only = await useMock(t);
    const log = logCollector();
    const gateway = await useGateway(
      t,
      `providers:
  - name: only
    base_url: ${only.baseUrl}
    api_key: sk-only-key
    retries: 0
    models:
      gpt-4o-mini-tts: { id: tts-only, body: { override: { stream_format: audio, speed: 1.25 } } }
request_log:
  enabled: true
`,
      { logLevel: "warn", logStream: log.stream },
    );
    const client = openAiClient(gateway);
    // As a provider does: events when asked for `sse`, the bytes otherwise. As an override the rule turned every `sse`
    // request into one for the bytes: the only candidate answered audio, which is no stream, and the client got an
    // error instead of events.
    const asProviderAnswers: MockStep = {
      kind: "handler",
      handle: (request, response) => {
        if ((request.body as Record<string, unknown>).stream_format === "sse") {
          response.writeHead(200, { "content-type": "text/event-stream" });
          const delta = { type: "speech.audio.delta", audio: Buffer.concat(PIECES).toString("base64") };
          const done = { type: "speech.audio.done", usage: { input_tokens: 2, output_tokens: 5, total_tokens: 7 } };
          response.end(`data: ${JSON.stringify(delta)}\n\ndata: ${JSON.stringify(done)}\n\n`);
          return;
        }
        response.writeHead(200, { "content-type": "audio/mpeg" });
        response.end(Buffer.concat(PIECES));
      },
    };
    only.enqueue(SPEECH, asProviderAnswers);
    const { events, provider } = await speechEvents(client);
    assert.equal(provider, "only");
    assert.deepEqual(
      events.map((event) => event.type),
      ["speech.audio.delta", "speech.audio.done"],
    );
    only.enqueue(SPEECH, asProviderAnswers);
    const bytes = await client.audio.speech.create({ model: "gpt-4o-mini-tts", input: "Bytes.", voice: "alloy" });
    assert.ok(Buffer.from(await bytes.arrayBuffer()).equals(Buffer.concat(PIECES)));
    const sent = requestsTo(only, "/v1/audio/speech").map((recorded) => recorded.body as Record<string, unknown>);
    assert.deepEqual(
      sent.map((body) => [body.stream_format, body.speed]),
      [
        ["sse", 1.25],
        ["audio", 1.25],
      ],
      "the client's sse wins; with no form named the rule's audio is sent; the rest of the override applies",
    );
    const warnings = log.lines.filter((line) => line.includes("only/gpt-4o-mini-tts: the body rule"));
    assert.equal(warnings.length, 1, log.lines.join(""));
    assert.match(warnings[0] ?? "", /`override\.stream_format: \\"audio\\"` is applied as a default/);
  });
});
