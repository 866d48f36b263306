// `/v1/audio/transcriptions` and `/v1/audio/translations`: a multipart upload, served by transcription models with
// failover, the file's bytes sent to each candidate unchanged, the answer passed on as JSON or plain text. The real
// `openai` SDK is the client.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { describe, type TestContext, test } from "node:test";
import { toFile } from "openai";
import { request } from "undici";
import { assertServedAs, errorOf, openAiClient, send, twoProviderScene, useGateway, useMock } from "../helpers/e2e.ts";
import type { MockUpstream, RecordedRequest } from "../helpers/mock-upstream.ts";
import { longestCpuHold } from "../helpers/thread-cpu.ts";

const TRANSCRIBE = "POST /v1/audio/transcriptions";
/** Every byte value, twice: a gateway that treats the upload as text (UTF-8) would change it. */
const AUDIO = Buffer.from([...Array.from({ length: 256 }, (_, index) => index), ...Array(256).keys()]);

/** The parts of a multipart body as the mock received it, parsed by Node's own FormData parser. */
async function partsOf(recorded: RecordedRequest | undefined): Promise<FormData> {
  assert.ok(recorded, "the upstream got no request");
  const type = String(recorded.headers["content-type"]);
  assert.match(type, /^multipart\/form-data; boundary=/);
  return new Response(recorded.bodyBytes, { headers: { "content-type": type } }).formData();
}

/**
 * A form as the bytes and content type a browser or SDK sends (encoded by Node's own `Request`): undici's
 * `request()` with a FormData body of another undici copy never ends its body.
 */
async function encoded(form: FormData): Promise<{ body: Buffer; headers: Record<string, string> }> {
  const encoder = new Request("http://localhost/", { method: "POST", body: form });
  return {
    body: Buffer.from(await encoder.arrayBuffer()),
    headers: { "content-type": encoder.headers.get("content-type") ?? "" },
  };
}

async function fileBytes(form: FormData): Promise<Buffer> {
  const file = form.get("file");
  assert.ok(file instanceof Blob, "no file part");
  return Buffer.from(await file.arrayBuffer());
}

function audioRequests(mock: MockUpstream, path = "/v1/audio/transcriptions"): RecordedRequest[] {
  return mock.requests.filter((recorded) => recorded.path === path);
}

function twoProviders(t: TestContext) {
  return twoProviderScene(t, {
    model: "whisper-large-v3",
    firstModel: "{ id: whisper-large-v3-first }",
    secondModel: "{ id: whisper-large-v3-second }",
  });
}

describe("audio transcriptions and translations", () => {
  test("the SDK's upload reaches the provider byte for byte, with its upstream model id, and the JSON answer comes back", async (t) => {
    const { first, second, client } = await twoProviders(t);
    first.enqueue(TRANSCRIBE, {
      kind: "json",
      body: { text: "hello from the first", usage: { type: "duration", seconds: 2 } },
    });
    const transcription = await client.audio.transcriptions
      .create({
        file: await toFile(AUDIO, 'clip "one".wav', { type: "audio/wav" }),
        model: "whisper-large-v3",
        language: "en",
        timestamp_granularities: ["word", "segment"],
        response_format: "verbose_json",
      })
      .withResponse();
    assert.equal(transcription.data.text, "hello from the first");
    assert.equal(transcription.response.headers.get("x-gateway-provider"), "first");
    assert.equal(transcription.response.headers.get("x-gateway-model"), "whisper-large-v3-first");
    const form = await partsOf(audioRequests(first)[0]);
    assert.equal(form.get("model"), "whisper-large-v3-first");
    assert.equal(form.get("language"), "en");
    assert.equal(form.get("response_format"), "verbose_json");
    assert.deepEqual(form.getAll("timestamp_granularities[]"), ["word", "segment"]);
    assert.ok((await fileBytes(form)).equals(AUDIO), "the file's bytes changed on the way");
    const file = form.get("file") as File;
    assert.equal(file.name, 'clip "one".wav');
    assert.equal(file.type, "audio/wav");
    assert.equal(audioRequests(first)[0]?.headers.authorization, "Bearer sk-first-key");
    assert.equal(audioRequests(second).length, 0);
  });

  test("a 429 fails over to the next provider, which gets the same file; the record names both attempts", async (t) => {
    const { first, second, gateway, client } = await twoProviders(t);
    first.enqueue(TRANSCRIBE, {
      kind: "json",
      status: 429,
      body: { error: { message: "Rate limit reached", type: "rate_limit_error" } },
      headers: { "retry-after": "30" },
    });
    second.enqueue(TRANSCRIBE, { kind: "json", body: { text: "from the second" } });
    const transcription = await client.audio.transcriptions
      .create({ file: await toFile(AUDIO, "a.mp3", { type: "audio/mpeg" }), model: "whisper-large-v3" })
      .withResponse();
    assert.equal(transcription.data.text, "from the second");
    assert.equal(transcription.response.headers.get("x-gateway-attempts"), "2");
    const form = await partsOf(audioRequests(second)[0]);
    assert.equal(form.get("model"), "whisper-large-v3-second");
    assert.ok((await fileBytes(form)).equals(AUDIO));
    const listed = await send(gateway, "GET", "/v1/gateway/requests?limit=10");
    const records = (
      listed.json as {
        data: { endpoint: string; clientProtocol?: string; attempts: { provider: string; outcome: string }[] }[];
      }
    ).data;
    const record = records.find((candidate) => candidate.endpoint === "transcriptions");
    assert.ok(record, "no record of the transcription");
    assert.deepEqual(
      record.attempts.map((attempt) => [attempt.provider, attempt.outcome]),
      [
        ["first", "rate_limited"],
        ["second", "success"],
      ],
    );
    // The record never carries the audio.
    assert.ok(!listed.text.includes(AUDIO.subarray(0, 64).toString("latin1")));
    // The cooled-down provider is skipped for the next request.
    second.enqueue(TRANSCRIBE, { kind: "json", body: { text: "again the second" } });
    const again = await client.audio.transcriptions.create({
      file: await toFile(AUDIO, "a.mp3"),
      model: "whisper-large-v3",
    });
    assert.equal(again.text, "again the second");
    assert.equal(audioRequests(first).length, 1);
  });

  test("a large upload failing over across three providers reaches each byte for byte, with a content-length", async (t) => {
    const mocks = [await useMock(t), await useMock(t), await useMock(t)];
    const gateway = await useGateway(
      t,
      `providers:
${mocks
  .map(
    (mock, index) => `  - name: p${index}
    base_url: ${mock.baseUrl}
    api_key: sk-${index}
    retries: 0
    models:
      whisper-large-v3: { id: whisper-${index} }
`,
  )
  .join("")}`,
    );
    const audio = randomBytes(3 * 1024 * 1024);
    const sha = (bytes: Buffer): string => createHash("sha256").update(bytes).digest("hex");
    const [first, second, third] = mocks as [MockUpstream, MockUpstream, MockUpstream];
    first.enqueue(TRANSCRIBE, { kind: "json", status: 500, body: { error: { message: "boom" } } });
    second.enqueue(TRANSCRIBE, { kind: "json", status: 503, body: { error: { message: "busy" } } });
    third.enqueue(TRANSCRIBE, { kind: "json", body: { text: "from the third" } });
    const transcription = await openAiClient(gateway)
      .audio.transcriptions.create({
        file: await toFile(audio, "long.wav", { type: "audio/wav" }),
        model: "whisper-large-v3",
      })
      .withResponse();
    assert.equal(transcription.data.text, "from the third");
    assert.equal(transcription.response.headers.get("x-gateway-attempts"), "3");
    for (const [index, mock] of mocks.entries()) {
      const recorded = audioRequests(mock)[0];
      const form = await partsOf(recorded);
      assert.equal(form.get("model"), `whisper-${index}`);
      assert.equal(sha(await fileBytes(form)), sha(audio), `provider ${index} got other bytes`);
      // Sent in parts, announced whole: no chunked upload (some providers refuse one).
      assert.equal(recorded?.headers["content-length"], String(recorded?.bodyBytes.length));
      assert.equal(recorded?.headers["transfer-encoding"], undefined);
    }
  });

  test("a plain-text answer (response_format text, srt) is passed on with its content type", async (t) => {
    const { first, gateway, client } = await twoProviders(t);
    first.enqueue(TRANSCRIBE, { kind: "text", status: 200, body: "just the words\n" });
    const text = await client.audio.transcriptions.create({
      file: await toFile(AUDIO, "a.wav"),
      model: "whisper-large-v3",
      response_format: "text",
    });
    assert.equal(text, "just the words\n");
    // A provider naming another charset for UTF-8 text: the client is told what it gets (UTF-8), so "café" stays.
    first.enqueue(TRANSCRIBE, {
      kind: "text",
      status: 200,
      body: "café au lait\n",
      headers: { "content-type": "text/plain; charset=iso-8859-1" },
    });
    const accented = new FormData();
    accented.append("model", "whisper-large-v3");
    accented.append("response_format", "text");
    accented.append("file", new Blob([AUDIO]), "a.wav");
    const latin = await request(`${gateway.url}/v1/audio/transcriptions`, {
      method: "POST",
      ...(await encoded(accented)),
    });
    assert.equal(latin.headers["content-type"], "text/plain; charset=utf-8");
    assert.equal(new TextDecoder("utf-8").decode(await latin.body.arrayBuffer()), "café au lait\n");
    first.enqueue(TRANSCRIBE, {
      kind: "text",
      status: 200,
      body: "1\n00:00:00,000 --> 00:00:01,000\nwords\n",
      headers: { "content-type": "application/x-subrip" },
    });
    const form = new FormData();
    form.append("model", "whisper-large-v3");
    form.append("response_format", "srt");
    form.append("file", new Blob([AUDIO]), "a.wav");
    const response = await request(`${gateway.url}/v1/audio/transcriptions`, {
      method: "POST",
      ...(await encoded(form)),
    });
    assert.equal(response.statusCode, 200);
    // Read and written as UTF-8: said so, whatever charset the provider named (none here).
    assert.equal(response.headers["content-type"], "application/x-subrip; charset=utf-8");
    assert.equal(await response.body.text(), "1\n00:00:00,000 --> 00:00:01,000\nwords\n");
  });

  test("a 200 that is no transcript (a proxy's HTML page, binary, text to a JSON request) fails over", async (t) => {
    const transcribe = async (gateway: { url: string }, responseFormat: string | undefined) => {
      const form = new FormData();
      form.append("model", "whisper-large-v3");
      if (responseFormat !== undefined) form.append("response_format", responseFormat);
      form.append("file", new Blob([AUDIO]), "a.wav");
      const response = await request(`${gateway.url}/v1/audio/transcriptions`, {
        method: "POST",
        ...(await encoded(form)),
      });
      return {
        provider: response.headers["x-gateway-provider"],
        type: String(response.headers["content-type"]),
        text: await response.body.text(),
      };
    };
    const noAnswers: [string | undefined, string, string][] = [
      // A captive portal or a proxy's login page, answered with 200: as a chat answer it is refused the same way.
      [undefined, "text/html; charset=utf-8", "<html><body>Sign in to continue</body></html>"],
      ["text", "text/html", "<html><body>Sign in to continue</body></html>"],
      ["srt", "application/octet-stream", "\u0000\u0001binary"],
      // The client asked for JSON (the SDKs parse it): plain text is no answer it can read.
      ["verbose_json", "text/plain; charset=utf-8", "some words"],
    ];
    for (const [responseFormat, type, body] of noAnswers) {
      // A fresh pair each time: the first provider is left out for a while after a bad answer.
      const { first, second, gateway } = await twoProviders(t);
      first.enqueue(TRANSCRIBE, { kind: "text", status: 200, body, headers: { "content-type": type } });
      second.enqueue(TRANSCRIBE, { kind: "json", body: { text: "from the second" } });
      const answer = await transcribe(gateway, responseFormat);
      assert.ok(audioRequests(first).length >= 1, "the first provider was not tried");
      assert.equal(answer.provider, "second", `${type} to ${responseFormat} was taken for a transcript`);
      assert.equal(answer.text, '{"text":"from the second"}');
      assert.match(answer.type, /^application\/json/);
    }
    // A text format still takes a text answer, WebVTT's own type included.
    const { first, gateway } = await twoProviders(t);
    first.enqueue(TRANSCRIBE, { kind: "text", status: 200, body: "WEBVTT\n", headers: { "content-type": "text/vtt" } });
    const vtt = await transcribe(gateway, "vtt");
    assert.equal(vtt.provider, "first");
    assert.equal(vtt.text, "WEBVTT\n");
    assert.equal(vtt.type, "text/vtt; charset=utf-8");
  });

  test("body rules: the provider's chat-only fields stay out of the upload, its transcription fields and the model's own go in", async (t) => {
    const mock = await useMock(t);
    const gateway = await useGateway(
      t,
      `providers:
  - name: solo
    base_url: ${mock.baseUrl}
    api_key: sk-solo-key
    body:
      defaults: { reasoning_effort: high, language: fr, temperature: 0.2 }
    models:
      whisper-large-v3:
        body: { override: { response_format: verbose_json, "timestamp_granularities[]": [word, segment] } }
`,
    );
    mock.enqueue(TRANSCRIBE, { kind: "json", body: { text: "bonjour" } });
    const answer = await openAiClient(gateway).audio.transcriptions.create({
      file: await toFile(AUDIO, "a.wav"),
      model: "whisper-large-v3",
      language: "de",
    });
    assert.equal(answer.text, "bonjour");
    const form = await partsOf(audioRequests(mock)[0]);
    assert.equal(form.get("reasoning_effort"), null);
    assert.equal(form.get("language"), "de", "a default must not replace the client's own field");
    assert.equal(form.get("temperature"), "0.2");
    assert.equal(form.get("response_format"), "verbose_json");
    assert.deepEqual(form.getAll("timestamp_granularities[]"), ["word", "segment"]);
    assert.ok((await fileBytes(form)).equals(AUDIO));
  });

  test("the fallback list `models`: one field, repeated fields or the SDKs' `models[]`; gateway fields never sent upstream", async (t) => {
    const first = await useMock(t);
    const gateway = await useGateway(
      t,
      `providers:
  - name: first
    base_url: ${first.baseUrl}
    api_key: sk-first-key
    models:
      whisper-large-v3-turbo: { id: whisper-turbo-first }
      distil-whisper: { id: distil-whisper-first }
`,
    );
    const client = openAiClient(gateway);
    const cases: [label: string, add: (form: FormData) => void, expected: string][] = [
      ["one `models` field", (form) => form.append("models", "whisper-large-v3-turbo"), "whisper-turbo-first"],
      [
        "repeated `models` fields",
        (form) => {
          form.append("models", "other-unknown-model");
          form.append("models", "distil-whisper");
        },
        "distil-whisper-first",
      ],
    ];
    for (const [label, add, expected] of cases) {
      // No deployment serves `model`: only the fallbacks named in `models` can.
      first.enqueue(TRANSCRIBE, { kind: "json", body: { text: `fallback for ${label}` } });
      const form = new FormData();
      form.append("model", "no-such-model");
      form.append("x_gateway_reasoning_effort", "high");
      add(form);
      form.append("file", new Blob([AUDIO]), "a.wav");
      const response = await request(`${gateway.url}/v1/audio/transcriptions`, {
        method: "POST",
        ...(await encoded(form)),
      });
      const text = await response.body.text();
      assert.equal(response.statusCode, 200, `${label}: ${text}`);
      assert.equal(response.headers["x-gateway-model"], expected, label);
      const sent = await partsOf(audioRequests(first).at(-1));
      assert.equal(sent.get("model"), expected);
      assert.equal(sent.get("models"), null, `${label}: the gateway's own field went upstream`);
      assert.equal(sent.get("x_gateway_reasoning_effort"), null, "the gateway's own field went upstream");
    }
    // The SDK sends an array as `models[]` fields: a fallback list too, not a field for the provider.
    first.enqueue(TRANSCRIBE, { kind: "json", body: { text: "from the SDK's list" } });
    // The gateway's extension, so not in the SDK's types: passed as a variable, the object is not checked for it.
    const withFallbacks = {
      file: await toFile(AUDIO, "a.wav"),
      model: "no-such-model",
      models: ["whisper-large-v3-turbo"],
    };
    const viaSdk = await client.audio.transcriptions.create(withFallbacks).withResponse();
    assert.equal(viaSdk.response.headers.get("x-gateway-model"), "whisper-turbo-first");
    const sent = await partsOf(audioRequests(first).at(-1));
    assert.equal(sent.get("models[]"), null, "the gateway's own field went upstream");
  });

  test("translations go to /audio/translations", async (t) => {
    const { first, client } = await twoProviders(t);
    first.enqueue("POST /v1/audio/translations", { kind: "json", body: { text: "in English" } });
    const translation = await client.audio.translations.create({
      file: await toFile(AUDIO, "a.ogg"),
      model: "whisper-large-v3",
    });
    assert.equal(translation.text, "in English");
    const form = await partsOf(audioRequests(first, "/v1/audio/translations")[0]);
    assert.equal(form.get("model"), "whisper-large-v3-first");
    assert.ok((await fileBytes(form)).equals(AUDIO));
  });

  test("/v1/models lists the transcription model; chat routing never uses it", async (t) => {
    const { first, gateway, client } = await twoProviders(t);
    const models = await client.models.list();
    assert.ok(models.data.some((model) => model.id === "whisper-large-v3"));
    const chat = await send(gateway, "POST", "/v1/chat/completions", {
      body: { model: "whisper-large-v3", messages: [{ role: "user", content: "hi" }] },
    });
    assert.equal(chat.status, 400);
    assert.equal(errorOf(chat).code, "model_not_supported");
    assert.equal(first.requests.filter((recorded) => recorded.method === "POST").length, 0);
    // Listed with the audio routes; the route explanation plans a transcription when asked for that kind.
    await assertServedAs(gateway, "whisper-large-v3", {
      kind: "transcription",
      endpoints: ["/v1/audio/transcriptions", "/v1/audio/translations"],
      providers: ["first", "second"],
    });
  });

  test("an upload of very many parts or huge part headers is refused without holding the event loop", async (t) => {
    const { first, second, gateway } = await twoProviders(t);
    /** The 400 and the longest the event loop (the gateway's: it runs in this process) was held meanwhile. */
    const post = async (body: string) => {
      // The longest step's CPU on this thread, not the clock a loaded machine's other processes stretch.
      const hold = longestCpuHold();
      try {
        const response = await request(`${gateway.url}/v1/audio/transcriptions`, {
          method: "POST",
          body,
          headers: { "content-type": "multipart/form-data; boundary=zz" },
        });
        const json = JSON.parse(await response.body.text()) as { error: { code: string; message: string } };
        return { status: response.statusCode, error: json.error, heldMs: hold.stop() };
      } finally {
        hold.stop();
      }
    };
    const part = (headers: string, value: string) =>
      `--zz\r\nContent-Disposition: form-data; ${headers}\r\n\r\n${value}\r\n`;
    // 350,000 empty fields in 18 MB (within the 20 MB body limit): Node's parser took 3 to 5 s for them, all at once.
    const manyFields = `${part('name="model"', "whisper-large-v3")}${part('name="f"', "").repeat(350_000)}--zz--\r\n`;
    const many = await post(manyFields);
    assert.equal(many.status, 400);
    assert.equal(many.error.code, "invalid_body");
    assert.match(many.error.message, /more than 64 fields/);
    assert.ok(many.heldMs < 1_500, `the event loop was held ${Math.round(many.heldMs)} ms of CPU`);

    // A file part's headers of 18 MB (a file type that long): 2.4 s in the parser; now refused as too long.
    const hugeType = `${part('name="model"', "whisper-large-v3")}--zz\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\nContent-Type: audio/${"x".repeat(18_000_000)}\r\n\r\nabc\r\n--zz--\r\n`;
    const huge = await post(hugeType);
    assert.equal(huge.status, 400);
    assert.equal(huge.error.code, "invalid_body");
    assert.match(huge.error.message, /headers longer than 16384 bytes/);
    assert.ok(huge.heldMs < 1_500, `the event loop was held ${Math.round(huge.heldMs)} ms of CPU`);
    assert.equal(audioRequests(first).length + audioRequests(second).length, 0);

    // A long file name well within the bound still goes through.
    first.enqueue(TRANSCRIBE, { kind: "json", body: { text: "long name" } });
    const form = new FormData();
    form.append("model", "whisper-large-v3");
    form.append("file", new Blob([AUDIO]), `${"n".repeat(2_000)}.wav`);
    const response = await request(`${gateway.url}/v1/audio/transcriptions`, {
      method: "POST",
      ...(await encoded(form)),
    });
    assert.equal(response.statusCode, 200, await response.body.text());
    assert.equal(((await partsOf(audioRequests(first)[0])).get("file") as File).name, `${"n".repeat(2_000)}.wav`);
  });

  test("bad uploads get a clear error in OpenAI's shape and reach no provider", async (t) => {
    const { first, second, gateway } = await twoProviders(t);
    const post = async (body: FormData | string, headers: Record<string, string> = {}) => {
      const sent = typeof body === "string" ? { body, headers } : await encoded(body);
      const response = await request(`${gateway.url}/v1/audio/transcriptions`, { method: "POST", ...sent });
      const text = await response.body.text();
      return {
        status: response.statusCode,
        text,
        json: JSON.parse(text) as { error: { code: string; message: string; param?: string | null } },
      };
    };
    const noFile = new FormData();
    noFile.append("model", "whisper-large-v3");
    const missing = await post(noFile);
    assert.equal(missing.status, 400);
    assert.equal(missing.json.error.param, "file");
    assert.match(missing.json.error.message, /`file` is required/);

    const chatModel = new FormData();
    chatModel.append("model", "chatty");
    chatModel.append("file", new Blob([AUDIO]), "a.wav");
    const wrongKind = await post(chatModel);
    assert.equal(wrongKind.status, 400);
    assert.equal(wrongKind.json.error.code, "model_not_supported");

    // A streamed transcription is relayed (audio-streams.test.ts); a translation has no streamed form.
    const streamed = new FormData();
    streamed.append("model", "whisper-large-v3");
    streamed.append("stream", "true");
    streamed.append("file", new Blob([AUDIO]), "a.wav");
    const streamedTranslation = await request(`${gateway.url}/v1/audio/translations`, {
      method: "POST",
      ...(await encoded(streamed)),
    });
    assert.equal(streamedTranslation.statusCode, 400);
    assert.match(await streamedTranslation.body.text(), /`stream` is not supported for translations/);
    const notBoolean = new FormData();
    notBoolean.append("model", "whisper-large-v3");
    notBoolean.append("stream", "yes");
    notBoolean.append("file", new Blob([AUDIO]), "a.wav");
    const stream = await post(notBoolean);
    assert.equal(stream.status, 400);
    assert.equal(stream.json.error.param, "stream");

    const twoFiles = new FormData();
    twoFiles.append("model", "whisper-large-v3");
    twoFiles.append("file", new Blob([AUDIO]), "a.wav");
    twoFiles.append("other", new Blob([AUDIO]), "b.wav");
    const extra = await post(twoFiles);
    assert.equal(extra.status, 400);
    assert.equal(extra.json.error.param, "other");

    // It said "`model` is required and must be a string" (the two values became a list).
    const twoModels = new FormData();
    twoModels.append("model", "whisper-large-v3");
    twoModels.append("model", "whisper-large-v3");
    twoModels.append("file", new Blob([AUDIO]), "a.wav");
    const twice = await post(twoModels);
    assert.equal(twice.status, 400);
    assert.equal(twice.json.error.param, "model");
    assert.match(twice.json.error.message, /`model` is given more than once/);

    const json = await send(gateway, "POST", "/v1/audio/transcriptions", {
      body: { model: "whisper-large-v3", file: "x" },
    });
    assert.equal(json.status, 400);
    assert.equal(errorOf(json).code, "invalid_content_type");
    assert.match(errorOf(json).message, /multipart\/form-data/);

    const cut = await post('--zzz\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper', {
      "content-type": "multipart/form-data; boundary=zzz",
    });
    assert.equal(cut.status, 400);
    assert.equal(cut.json.error.code, "invalid_body");

    // The chat route still refuses a multipart body as before.
    const chat = new FormData();
    chat.append("model", "chatty");
    const chatResponse = await request(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      ...(await encoded(chat)),
    });
    const chatError = JSON.parse(await chatResponse.body.text()) as { error: { code: string } };
    assert.equal(chatResponse.statusCode, 400);
    assert.equal(chatError.error.code, "invalid_content_type");

    // Another body type on an audio route is told to upload, not to send JSON.
    for (const type of ["application/x-www-form-urlencoded", "audio/wav", "text/plain"]) {
      const other = await request(`${gateway.url}/v1/audio/translations`, {
        method: "POST",
        body: "model=whisper-large-v3",
        headers: { "content-type": type },
      });
      const otherError = JSON.parse(await other.body.text()) as { error: { code: string; message: string } };
      assert.equal(other.statusCode, 400, type);
      assert.equal(otherError.error.code, "invalid_content_type");
      assert.match(otherError.error.message, /multipart\/form-data/, type);
    }

    // An unknown route is a 404 whatever its body, an upload included (it was a 400 "send JSON").
    const unknown = await request(`${gateway.url}/v1/audio/speeches`, { method: "POST", ...(await encoded(chat)) });
    const unknownError = JSON.parse(await unknown.body.text()) as { error: { code: string } };
    assert.equal(unknown.statusCode, 404);
    assert.equal(unknownError.error.code, "unknown_url");

    assert.equal(audioRequests(first).length + audioRequests(second).length, 0);
  });

  test("an empty file is a 400 naming its field, and spends no provider's request on it", async (t) => {
    const { first, second, gateway } = await twoProviders(t);
    for (const path of ["/v1/audio/transcriptions", "/v1/audio/translations"]) {
      const form = new FormData();
      form.append("model", "whisper-large-v3");
      form.append("file", new Blob([]), "silence.wav");
      const response = await request(`${gateway.url}${path}`, { method: "POST", ...(await encoded(form)) });
      const answer = JSON.parse(await response.body.text()) as {
        error: { code: string; message: string; param: string };
      };
      assert.equal(response.statusCode, 400, path);
      assert.equal(answer.error.param, "file");
      assert.equal(answer.error.code, "invalid_value");
      assert.match(answer.error.message, /`file` is an empty file/);
      assert.equal(audioRequests(first, path).length + audioRequests(second, path).length, 0, path);
    }
  });
});
