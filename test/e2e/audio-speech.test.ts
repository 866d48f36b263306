// `/v1/audio/speech`: text to speech, served by speech models with failover, answered with the audio's bytes exactly
// as the provider sent them, with its content type. The real `openai` SDK is the client.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import type { ServerResponse } from "node:http";
import { join } from "node:path";
import { Writable } from "node:stream";
import { describe, type TestContext, test } from "node:test";
import { request } from "undici";
import { runCli, tempDir } from "../helpers/cli-process.ts";
import {
  assertServedAs,
  errorOf,
  failedOverRecord,
  recordsOf,
  send,
  twoProviderScene,
  useGateway,
  useMock,
} from "../helpers/e2e.ts";
import type { MockStep, MockUpstream, RecordedRequest } from "../helpers/mock-upstream.ts";
import { parsePrometheusText, sumOf } from "../helpers/prometheus-text.ts";
import { threadCpuMsWhile } from "../helpers/thread-cpu.ts";

const SPEECH = "POST /v1/audio/speech";
/** Every byte value, twice: a gateway that reads the answer as text (UTF-8) would change it. */
const AUDIO = Buffer.from([...Array(256).keys(), ...Array.from({ length: 256 }, (_, index) => 255 - index)]);

/** The audio written raw in two chunks (split inside what UTF-8 would read as a multi-byte sequence). */
function audioStep(bytes: Buffer = AUDIO, contentType = "audio/mpeg"): MockStep {
  return {
    kind: "handler",
    handle: async (_request, response: ServerResponse) => {
      response.writeHead(200, { "content-type": contentType });
      response.write(bytes.subarray(0, 195));
      await new Promise((resolve) => setTimeout(resolve, 5));
      response.end(bytes.subarray(195));
    },
  };
}

function speechRequests(mock: MockUpstream): RecordedRequest[] {
  return mock.requests.filter((recorded) => recorded.path === "/v1/audio/speech");
}

function twoProviders(t: TestContext, extra = "") {
  return twoProviderScene(t, {
    model: "gpt-4o-mini-tts",
    firstModel: "{ id: tts-first }",
    secondModel: "{ id: tts-second }",
    firstKeys: "retries: 0\nbody:\n  defaults: { temperature: 0.2, voice: tara }",
    extra,
  });
}

describe("text to speech", () => {
  test("the SDK gets the provider's audio byte for byte, with its content type; the provider gets the body with its own model id", async (t) => {
    const { first, second, client, gateway } = await twoProviders(t);
    first.enqueue(SPEECH, audioStep());
    const speech = await client.audio.speech
      .create({
        model: "gpt-4o-mini-tts",
        input: "Hello from the gateway.",
        voice: "alloy",
        response_format: "mp3",
        speed: 1.25,
        instructions: "Cheerful.",
      })
      .withResponse();
    const audio = Buffer.from(await speech.data.arrayBuffer());
    assert.ok(audio.equals(AUDIO), "the audio's bytes changed on the way");
    assert.equal(speech.response.headers.get("content-type"), "audio/mpeg");
    assert.equal(speech.response.headers.get("x-gateway-provider"), "first");
    assert.equal(speech.response.headers.get("x-gateway-model"), "tts-first");
    const sent = speechRequests(first)[0];
    assert.ok(sent, "the provider got no request");
    assert.deepEqual(sent.body, {
      model: "tts-first",
      input: "Hello from the gateway.",
      voice: "alloy",
      response_format: "mp3",
      speed: 1.25,
      instructions: "Cheerful.",
    });
    // Not narrowed to JSON: the answer is audio.
    assert.equal(sent.headers.accept, "*/*");
    assert.equal(sent.headers.authorization, "Bearer sk-first-key");
    assert.equal(speechRequests(second).length, 0);

    // Without the /v1 prefix, a wav with its own type; the provider's speech default (`voice`) fills in, its chat
    // default (`temperature`) stays out.
    first.enqueue(SPEECH, audioStep(AUDIO.subarray(0, 300), "audio/wav"));
    const raw = await request(`${gateway.url}/audio/speech`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-4o-mini-tts", input: "Hi.", response_format: "wav" }),
    });
    assert.equal(raw.statusCode, 200);
    assert.equal(raw.headers["content-type"], "audio/wav");
    assert.ok(Buffer.from(await raw.body.arrayBuffer()).equals(AUDIO.subarray(0, 300)));
    assert.deepEqual(speechRequests(first)[1]?.body, {
      model: "tts-first",
      input: "Hi.",
      response_format: "wav",
      voice: "tara",
    });
  });

  test("a 429 fails over to the next provider; the record names both attempts and keeps the text, never the audio", async (t) => {
    const { first, second, gateway, client } = await twoProviders(t, "log:\n  content: true\n");
    first.enqueue(SPEECH, {
      kind: "json",
      status: 429,
      body: { error: { message: "Rate limit reached", type: "rate_limit_error" } },
      headers: { "retry-after": "30" },
    });
    second.enqueue(SPEECH, audioStep());
    const speech = await client.audio.speech
      .create({ model: "gpt-4o-mini-tts", input: "Failover, please.", voice: "alloy" })
      .withResponse();
    assert.ok(Buffer.from(await speech.data.arrayBuffer()).equals(AUDIO));
    assert.equal(speech.response.headers.get("x-gateway-attempts"), "2");
    assert.equal((speechRequests(second)[0]?.body as { model?: string } | undefined)?.model, "tts-second");

    const { record, text } = await failedOverRecord(gateway, "speech", "openai-audio");
    assert.equal(record.status, 200);
    // `log.content` keeps what was spoken; the audio is in no record, in any encoding.
    assert.equal(record.content?.request, "Failover, please.");
    assert.equal(record.content?.responseText, undefined);
    for (const form of [AUDIO.subarray(60, 120).toString("latin1"), AUDIO.toString("base64").slice(0, 40)]) {
      assert.ok(!text.includes(form), "the request log carries the audio");
    }
    assert.ok(!text.includes(JSON.stringify(AUDIO.subarray(60, 120).toString("utf8")).slice(1, -1)));

    // Metrics name the endpoint and the protocol.
    const metrics = parsePrometheusText((await send(gateway, "GET", "/metrics")).text);
    assert.equal(
      sumOf(metrics, "llm_gateway_requests_total", {
        endpoint: "speech",
        protocol: "openai-audio",
        status_class: "2xx",
      }),
      1,
    );

    // The cooled-down provider is skipped for the next request.
    second.enqueue(SPEECH, audioStep());
    const again = await client.audio.speech.create({ model: "gpt-4o-mini-tts", input: "Again.", voice: "alloy" });
    assert.ok(Buffer.from(await again.arrayBuffer()).equals(AUDIO));
    assert.equal(speechRequests(first).length, 1);
  });

  test("a 200 that is not audio (an error in JSON, a JSON object, an HTML page, an SVG or XHTML document, nothing) fails over", async (t) => {
    const notAudio: [MockStep, RegExp][] = [
      [{ kind: "json", body: { error: { message: "model overloaded", type: "server_error" } } }, /overloaded/],
      [{ kind: "json", body: { audio: "UklGRg==" } }, /JSON body instead of audio/],
      [
        { kind: "text", status: 200, body: "<html>proxy</html>", headers: { "content-type": "text/html" } },
        /text\/html body instead of audio/,
      ],
      [{ kind: "text", status: 200, body: "", headers: { "content-type": "audio/mpeg" } }, /empty body/],
      // A document a browser renders (and runs the scripts of) is no audio: never served under its own type.
      [
        {
          kind: "text",
          status: 200,
          body: '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
          headers: { "content-type": "image/svg+xml" },
        },
        /image\/svg\+xml body instead of audio/,
      ],
      [
        {
          kind: "text",
          status: 200,
          body: '<html xmlns="http://www.w3.org/1999/xhtml"><script>alert(1)</script></html>',
          headers: { "content-type": "application/xhtml+xml" },
        },
        /application\/xhtml\+xml body instead of audio/,
      ],
      // An error labelled as audio is still an error.
      [
        {
          kind: "text",
          status: 200,
          body: JSON.stringify({ error: { message: "quota exceeded for the minute", type: "rate_limit_error" } }),
          headers: { "content-type": "audio/mpeg" },
        },
        /quota exceeded for the minute/,
      ],
      // An error in a 200 that names no content type is still read as one.
      [
        {
          kind: "handler",
          handle: (_request, response) => {
            response.writeHead(200);
            response.end(
              JSON.stringify({ error: { message: "quota exceeded for today", type: "insufficient_quota" } }),
            );
          },
        },
        /quota/,
      ],
    ];
    for (const [step, reason] of notAudio) {
      // A new scene each time: the failed first candidate would otherwise be ranked lower (health) or cooling.
      const { first, second, gateway, client } = await twoProviders(t);
      first.enqueue(SPEECH, step);
      second.enqueue(SPEECH, audioStep());
      const speech = await client.audio.speech
        .create({ model: "gpt-4o-mini-tts", input: "Say it.", voice: "alloy" })
        .withResponse();
      assert.ok(Buffer.from(await speech.data.arrayBuffer()).equals(AUDIO));
      assert.equal(speech.response.headers.get("x-gateway-provider"), "second");
      const { records } = await recordsOf(gateway, "speech");
      const failedAttempt = records[0]?.attempts[0];
      assert.equal(failedAttempt?.provider, "first");
      assert.match(failedAttempt?.reason ?? "", reason);
    }
  });

  test("the text to speak counts against a token budget: a long input skips the provider whose tpm it exceeds", async (t) => {
    const { first, second, client } = await twoProviderScene(t, {
      model: "playai-tts",
      firstModel: "{ limits: { tpm: 40 } }",
      secondModel: "{}",
      hasChatModel: false,
      keepsRequestLog: false,
    });
    second.enqueue(SPEECH, audioStep());
    const long = await client.audio.speech
      .create({ model: "playai-tts", input: "A sentence to read aloud. ".repeat(20), voice: "Fritz-PlayAI" })
      .withResponse();
    assert.ok(Buffer.from(await long.data.arrayBuffer()).equals(AUDIO));
    assert.equal(long.response.headers.get("x-gateway-provider"), "second");
    assert.equal(speechRequests(first).length, 0);
    first.enqueue(SPEECH, audioStep());
    const short = await client.audio.speech
      .create({ model: "playai-tts", input: "Hi.", voice: "Fritz-PlayAI" })
      .withResponse();
    assert.equal(short.response.headers.get("x-gateway-provider"), "first");
  });

  test("a speech model's `stream_format: sse` rule is left out with a warning (at start and in `check`), an `override` of `audio` applied as a default: the models still answer", async (t) => {
    const mock = await useMock(t);
    const logLines: string[] = [];
    const yamlText = `providers:
  - name: solo
    base_url: ${mock.baseUrl}
    api_key: sk-solo-key
    known_models:
      tts-1: { body: { defaults: { stream_format: sse } } }
    models:
      tts-1: { body: { override: { voice: nova } } }
      my-voice: { id: custom-voice, kind: speech, body: { override: { stream_format: sse, speed: 1.5 } } }
      kept: { id: kept-voice, kind: speech, body: { override: { stream_format: audio } } }
`;
    const gateway = await useGateway(t, yamlText, {
      logLevel: "warn",
      logStream: new Writable({
        write(chunk: Buffer, _encoding, done) {
          logLines.push(chunk.toString("utf8"));
          done();
        },
      }),
    });
    for (const model of ["tts-1", "my-voice", "kept"]) {
      mock.enqueue(SPEECH, audioStep());
      const answer = await send(gateway, "POST", "/v1/audio/speech", { body: { model, input: "Hi.", voice: "alloy" } });
      assert.equal(answer.status, 200, `${model}: ${answer.text}`);
    }
    const [plain, custom, kept] = speechRequests(mock).map((recorded) => recorded.body as Record<string, unknown>);
    assert.equal(plain?.stream_format, undefined);
    assert.equal(plain?.voice, "nova");
    assert.equal(custom?.stream_format, undefined);
    assert.equal(custom?.speed, 1.5, "the rest of the model's rules still apply");
    assert.equal(kept?.stream_format, "audio", "`audio` is the default format: sent when the client names none");
    const warnings = logLines.filter((line) => line.includes("stream_format"));
    assert.equal(warnings.length, 3, warnings.join("\n"));
    assert.ok(
      warnings.some((line) =>
        line.includes('solo/kept: the body rule `override.stream_format: \\"audio\\"` is applied as a default'),
      ),
    );
    assert.ok(
      warnings.some((line) =>
        line.includes('solo/tts-1: the body rule `defaults.stream_format: \\"sse\\"` is left out'),
      ),
    );
    assert.ok(
      warnings.some((line) => line.includes('solo/my-voice: the body rule `override.stream_format: \\"sse\\"`')),
    );

    const dir = tempDir(t);
    writeFileSync(join(dir, "gateway.yaml"), yamlText);
    const checked = await runCli(["check", "--config", join(dir, "gateway.yaml")], { cwd: dir });
    assert.equal(checked.code, 0, checked.stderr);
    assert.match(checked.stdout, /solo\/my-voice: the body rule `override\.stream_format: "sse"` is left out/);
    assert.match(checked.stdout, /solo\/tts-1: the body rule `defaults\.stream_format: "sse"` is left out/);
  });

  test("the `stream_format` warning is logged once per rule, not again at each reload that keeps the rule", async (t) => {
    const mock = await useMock(t);
    const logLines: string[] = [];
    const yamlText = (extraModels: string) => `server:
  admin_keys: [speech-admin-key]
providers:
  - name: solo
    base_url: ${mock.baseUrl}
    api_key: sk-solo-key
    models:
      my-voice: { id: custom-voice, kind: speech, body: { override: { stream_format: sse } } }
${extraModels}`;
    const gateway = await useGateway(t, yamlText(""), {
      logLevel: "warn",
      logStream: new Writable({
        write(chunk: Buffer, _encoding, done) {
          logLines.push(chunk.toString("utf8"));
          done();
        },
      }),
    });
    const reload = async (extraModels: string) => {
      writeFileSync(gateway.configPath, yamlText(extraModels));
      const reloaded = await send(gateway, "POST", "/admin/reload", {
        headers: { authorization: "Bearer speech-admin-key" },
      });
      assert.equal(reloaded.status, 200, reloaded.text);
    };
    const warningsOf = (key: string) => logLines.filter((line) => line.includes(`${key}: the body rule`));
    assert.equal(warningsOf("solo/my-voice").length, 1, "told at start");
    // Two reloads with unrelated changes (another model added, then its priority changed): nothing new to tell.
    await reload("      other: { id: other-voice, kind: speech }\n");
    await reload("      other: { id: other-voice, kind: speech, priority: 3 }\n");
    assert.equal(warningsOf("solo/my-voice").length, 1, logLines.join(""));
    // A reload that brings a new such rule tells that one, and that one only.
    await reload("      other: { id: other-voice, kind: speech, body: { defaults: { stream_format: sse } } }\n");
    assert.equal(warningsOf("solo/other").length, 1, logLines.join(""));
    assert.equal(warningsOf("solo/my-voice").length, 1, logLines.join(""));
  });

  test("`input` has no length bound of the gateway's own: 5,000 characters (past OpenAI's 4,096) reach the provider whole", async (t) => {
    const { first, client } = await twoProviders(t);
    first.enqueue(SPEECH, audioStep());
    const input = "Read this aloud. ".repeat(300).slice(0, 5_000);
    const speech = await client.audio.speech.create({ model: "gpt-4o-mini-tts", input, voice: "alloy" }).withResponse();
    assert.ok(Buffer.from(await speech.data.arrayBuffer()).equals(AUDIO));
    const sent = speechRequests(first)[0]?.body as { input?: unknown } | undefined;
    assert.equal(sent?.input, input, "the provider got the whole text");
  });

  test("a 4 MB `input` is read in bounded time; the provider's own length refusal reaches the client in OpenAI's shape", async (t) => {
    const { first, second, gateway } = await twoProviders(t);
    // OpenAI's answer to an input over 4,096 characters (its validation error, the input cut here).
    const refusal =
      "[{'type': 'string_too_long', 'loc': ('body', 'input'), 'msg': 'String should have at most 4096 characters', " +
      "'ctx': {'max_length': 4096}}]";
    first.enqueue(SPEECH, {
      kind: "json",
      status: 400,
      body: { error: { message: refusal, type: "invalid_request_error", param: null, code: null } },
    });
    const input = "word ".repeat(800_000);
    // This thread's CPU (the gateway, its client and the mock run in it), not a wall clock a loaded machine stretches.
    const { value: answer, ms: tookMs } = await threadCpuMsWhile(() =>
      send(gateway, "POST", "/v1/audio/speech", { body: { model: "gpt-4o-mini-tts", input, voice: "alloy" } }),
    );
    assert.equal(answer.status, 400, answer.text.slice(0, 300));
    assert.match(errorOf(answer).message, /String should have at most 4096 characters/);
    assert.ok(tookMs < 5_000, `${tookMs.toFixed(0)} ms of CPU`);
    assert.equal(speechRequests(first).length, 1);
    assert.equal(speechRequests(second).length, 0, "the client's own 400 is not tried elsewhere");
  });

  test("bad bodies and chat models get a clear 400 in OpenAI's shape and reach no provider", async (t) => {
    const { first, second, gateway } = await twoProviders(t);
    const post = (body: unknown) => send(gateway, "POST", "/v1/audio/speech", { body });

    const noInput = await post({ model: "gpt-4o-mini-tts", voice: "alloy" });
    assert.equal(noInput.status, 400);
    assert.equal(errorOf(noInput).param, "input");
    assert.match(errorOf(noInput).message, /`input` is required/);

    const emptyInput = await post({ model: "gpt-4o-mini-tts", input: "", voice: "alloy" });
    assert.equal(emptyInput.status, 400);
    assert.equal(errorOf(emptyInput).param, "input");

    const notText = await post({ model: "gpt-4o-mini-tts", input: ["a", "b"], voice: "alloy" });
    assert.equal(notText.status, 400);
    assert.equal(errorOf(notText).param, "input");

    // `sse` is relayed as events (audio-streams.test.ts); any other format is refused.
    const wav = await post({ model: "gpt-4o-mini-tts", input: "Hi.", voice: "alloy", stream_format: "wav" });
    assert.equal(wav.status, 400);
    assert.equal(errorOf(wav).param, "stream_format");
    assert.match(errorOf(wav).message, /`stream_format` must be `audio`/);

    const streamed = await post({ model: "gpt-4o-mini-tts", input: "Hi.", voice: "alloy", stream: true });
    assert.equal(streamed.status, 400);
    assert.equal(errorOf(streamed).param, "stream");

    const chat = await post({ model: "chatty", input: "Hi.", voice: "alloy" });
    assert.equal(chat.status, 400);
    assert.equal(errorOf(chat).code, "model_not_supported");

    const notJson = await send(gateway, "POST", "/v1/audio/speech", {
      body: "{not json",
      headers: { "content-type": "application/json" },
    });
    assert.equal(notJson.status, 400);
    errorOf(notJson);

    // A speech model is not a chat model either.
    const asChat = await send(gateway, "POST", "/v1/chat/completions", {
      body: { model: "gpt-4o-mini-tts", messages: [{ role: "user", content: "hi" }] },
    });
    assert.equal(asChat.status, 400);
    assert.equal(errorOf(asChat).code, "model_not_supported");

    assert.equal(first.requests.filter((recorded) => recorded.method === "POST").length, 0);
    assert.equal(second.requests.filter((recorded) => recorded.method === "POST").length, 0);
  });

  test("/v1/models lists the speech model with /v1/audio/speech; its answer is never cached", async (t) => {
    const { first, gateway, client } = await twoProviders(t, "cache:\n  enabled: true\n");
    await assertServedAs(gateway, "gpt-4o-mini-tts", {
      kind: "speech",
      endpoints: ["/v1/audio/speech"],
      providers: ["first", "second"],
    });

    first.enqueue(SPEECH, audioStep(), audioStep(AUDIO.subarray(0, 100)));
    const body = { model: "gpt-4o-mini-tts", input: "Same words.", voice: "alloy" } as const;
    const once = Buffer.from(await (await client.audio.speech.create(body)).arrayBuffer());
    const twice = Buffer.from(await (await client.audio.speech.create(body)).arrayBuffer());
    assert.ok(once.equals(AUDIO));
    assert.ok(twice.equals(AUDIO.subarray(0, 100)), "the second answer came from a cache");
    assert.equal(speechRequests(first).length, 2);
  });
});
