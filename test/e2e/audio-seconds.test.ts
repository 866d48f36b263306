// Audio-second budgets (`ash`, `asd`: Groq's ASH and ASD) on `/v1/audio/transcriptions`: each upload's duration is
// read from its container header (WAV, MP3, FLAC built in the test) and reserved before it is sent; a file that would
// go over the budget goes to the other provider, or gets a 429 naming the window; a `verbose_json` answer's
// `duration` replaces the estimate; `min_billed_audio_seconds` counts a short clip as the provider bills it. The real
// `openai` SDK is the client; the Redis variant shares the count between two gateway processes.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import OpenAI, { toFile } from "openai";
import { stringify } from "yaml";
import { adtsFile, flacFile, mp3File, wavFile, webmFile } from "../helpers/audio-files.ts";
import { errorOf, send } from "../helpers/e2e.ts";
import { startTestGateway, type TestGateway } from "../helpers/gateway.ts";
import { type MockUpstream, startMockUpstream } from "../helpers/mock-upstream.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../helpers/redis-server.ts";

const TRANSCRIBE = "POST /v1/audio/transcriptions";
const MODEL = "whisper-large-v3";

interface Scene {
  readonly alpha: MockUpstream;
  readonly beta: MockUpstream;
  readonly gateway: TestGateway;
  readonly client: OpenAI;
}

interface SceneOptions {
  /** alpha's model limits (`ash`, `asd`, ...). */
  readonly alphaLimits: Readonly<Record<string, number>>;
  /** alpha's provider keys besides the usual ones (`min_billed_audio_seconds`). */
  readonly alpha?: Readonly<Record<string, unknown>>;
  /** Without beta: alpha is the only candidate. */
  readonly isAlone?: boolean;
  /** A `state:` block (Redis), else the test's own state file. */
  readonly state?: Readonly<Record<string, unknown>>;
  /** Upstreams to reuse (a second gateway process in front of the same two). */
  readonly upstreams?: { readonly alpha: MockUpstream; readonly beta: MockUpstream };
  /** A `routing:` block (`queue_timeout_ms`). */
  readonly routing?: Readonly<Record<string, unknown>>;
}

const PROVIDER_DEFAULTS = { retries: 0, timeout_ms: 5000 } as const;

async function audioScene(t: TestContext, options: SceneOptions): Promise<Scene> {
  const alpha = options.upstreams?.alpha ?? (await startMockUpstream());
  const beta = options.upstreams?.beta ?? (await startMockUpstream());
  const providers = [
    {
      name: "alpha",
      base_url: alpha.baseUrl,
      api_key: "sk-alpha-secret",
      ...PROVIDER_DEFAULTS,
      ...options.alpha,
      models: { [MODEL]: { priority: 10, limits: options.alphaLimits } },
    },
    ...(options.isAlone === true
      ? []
      : [
          {
            name: "beta",
            base_url: beta.baseUrl,
            api_key: "sk-beta-secret",
            ...PROVIDER_DEFAULTS,
            models: { [MODEL]: { priority: 1 } },
          },
        ]),
  ];
  const config = {
    providers,
    ...(options.state === undefined ? {} : { state: options.state }),
    ...(options.routing === undefined ? {} : { routing: options.routing }),
  };
  const gateway = await startTestGateway(stringify(config));
  const client = new OpenAI({ baseURL: gateway.baseUrl, apiKey: "x", maxRetries: 0 });
  t.after(async () => {
    await gateway.close();
    if (options.upstreams === undefined) await Promise.all([alpha.close(), beta.close()]);
  });
  return { alpha, beta, gateway, client };
}

function transcriptions(mock: MockUpstream): number {
  return mock.requests.filter((recorded) => recorded.path === "/v1/audio/transcriptions").length;
}

async function transcribe(
  client: OpenAI,
  file: Buffer,
  name: string,
  responseFormat: "json" | "verbose_json" = "json",
): Promise<string | null> {
  const { response } = await client.audio.transcriptions
    .create({ file: await toFile(file, name), model: MODEL, response_format: responseFormat })
    .withResponse();
  return response.headers.get("x-gateway-provider");
}

describe("audio-second budgets (ash, asd)", () => {
  test("a second WAV that would go over alpha's `ash` goes to beta; a 15 s one still fits alpha", async (t) => {
    const { alpha, beta, client } = await audioScene(t, { alphaLimits: { ash: 60 } });
    alpha.setDefault(TRANSCRIBE, { kind: "json", body: { text: "from alpha" } });
    beta.setDefault(TRANSCRIBE, { kind: "json", body: { text: "from beta" } });
    assert.equal(await transcribe(client, wavFile(40), "first.wav"), "alpha");
    // 40 + 40 > 60: alpha is skipped before anything is sent to it.
    assert.equal(await transcribe(client, wavFile(40), "second.wav"), "beta");
    assert.equal(transcriptions(alpha), 1, "alpha got no second upload");
    // 40 + 15 fits: the budget counts seconds, not requests.
    assert.equal(await transcribe(client, wavFile(15), "third.wav"), "alpha");
    assert.equal(transcriptions(beta), 1);
  });

  test("an MP3's seconds come from its frames: a padded 20 s VBR file fits `ash: 45`, a 50 s CBR one does not", async (t) => {
    const { alpha, beta, client } = await audioScene(t, { alphaLimits: { ash: 45 } });
    alpha.setDefault(TRANSCRIBE, { kind: "json", body: { text: "from alpha" } });
    beta.setDefault(TRANSCRIBE, { kind: "json", body: { text: "from beta" } });
    // The Xing header's frame count says 20 s; the file's size (80 KB of frames and 200 KB of zeros after them)
    // would be estimated at 70 s and sent to beta.
    const padded = Buffer.concat([mp3File(20, { xing: true }), Buffer.alloc(200_000)]);
    assert.equal(await transcribe(client, padded, "padded.mp3"), "alpha");
    // No Xing header: constant bit rate, 50 s of frames. 20 + 50 > 45.
    assert.equal(await transcribe(client, mp3File(50), "long.mp3"), "beta");
    assert.equal(transcriptions(alpha), 1);
    assert.equal(transcriptions(beta), 1);
  });

  test("a browser's MediaRecorder WebM (no Duration) counts its clusters' time: two 30 s takes fit `ash: 60`", async (t) => {
    const { alpha, beta, client } = await audioScene(t, { alphaLimits: { ash: 60 } });
    alpha.setDefault(TRANSCRIBE, { kind: "json", body: { text: "from alpha" } });
    beta.setDefault(TRANSCRIBE, { kind: "json", body: { text: "from beta" } });
    // 30 s of 128 kbit/s Opus: 480 KB, which estimated from its size (32 kbit/s) would be 120 s and go to beta.
    const take = webmFile(30, { bytesPerSecond: 16_000 });
    assert.equal(await transcribe(client, take, "take-1.webm"), "alpha");
    assert.equal(await transcribe(client, take, "take-2.webm"), "alpha");
    // 30 + 30 is the whole hour: a third take, however short, goes to beta.
    assert.equal(await transcribe(client, webmFile(5, { bytesPerSecond: 16_000 }), "take-3.webm"), "beta");
    assert.equal(transcriptions(alpha), 2);
  });

  test("an `.aac` (ADTS) file counts its frames: 25 s at 128 kbit/s fits `ash: 45`, a second one does not", async (t) => {
    const { alpha, beta, client } = await audioScene(t, { alphaLimits: { ash: 45 } });
    alpha.setDefault(TRANSCRIBE, { kind: "json", body: { text: "from alpha" } });
    beta.setDefault(TRANSCRIBE, { kind: "json", body: { text: "from beta" } });
    // 400 KB: 100 s by its size.
    assert.equal(await transcribe(client, adtsFile(25, { bytesPerSecond: 16_000 }), "first.aac"), "alpha");
    assert.equal(await transcribe(client, adtsFile(25, { bytesPerSecond: 16_000 }), "second.aac"), "beta");
    // 25 + 15 fits.
    assert.equal(await transcribe(client, adtsFile(15, { bytesPerSecond: 16_000 }), "third.aac"), "alpha");
  });

  test("a failed attempt gives its seconds back: alpha's 500 leaves its budget whole for the next file", async (t) => {
    const { alpha, beta, client } = await audioScene(t, { alphaLimits: { ash: 60 } });
    alpha.enqueue(TRANSCRIBE, { kind: "json", status: 500, body: { error: { message: "boom" } } });
    alpha.setDefault(TRANSCRIBE, { kind: "json", body: { text: "from alpha" } });
    beta.setDefault(TRANSCRIBE, { kind: "json", body: { text: "from beta" } });
    assert.equal(await transcribe(client, wavFile(40), "first.wav"), "beta", "alpha's 500 failed over");
    // Had the failed attempt kept its 40 s, 40 + 40 > 60 would skip alpha.
    assert.equal(await transcribe(client, wavFile(40), "second.wav"), "alpha");
    assert.equal(transcriptions(alpha), 2);
  });

  test("a timed-out attempt and a client that left give their seconds back: the next file still fits alpha", async (t) => {
    const { alpha, beta, client } = await audioScene(t, { alphaLimits: { ash: 60 }, alpha: { timeout_ms: 300 } });
    alpha.enqueue(TRANSCRIBE, { kind: "hang" });
    alpha.enqueue(TRANSCRIBE, { kind: "hang" });
    alpha.setDefault(TRANSCRIBE, { kind: "json", body: { text: "from alpha" } });
    beta.setDefault(TRANSCRIBE, { kind: "json", body: { text: "from beta" } });
    // alpha times out: the file fails over to beta, and alpha's 40 s are given back.
    assert.equal(await transcribe(client, wavFile(40), "timed-out.wav"), "beta");
    // The client leaves while alpha holds the next one.
    const controller = new AbortController();
    const left = client.audio.transcriptions
      .create({ file: await toFile(wavFile(40), "left.wav"), model: MODEL }, { signal: controller.signal })
      .then(
        () => "answered",
        () => "aborted",
      );
    // Polled, generously: a loaded machine may take seconds to upload 40 s of audio; a broken gateway never gets there.
    const deadlineMs = Date.now() + 20_000;
    while (transcriptions(alpha) < 2 && Date.now() < deadlineMs)
      await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(
      transcriptions(alpha),
      2,
      "the timed-out attempt's seconds were given back: the next file went to alpha",
    );
    controller.abort();
    assert.equal(await left, "aborted");
    await new Promise((resolve) => setTimeout(resolve, 100));
    // Neither kept its 40 s on alpha's 60: another 40 s file fits.
    assert.equal(await transcribe(client, wavFile(40), "next.wav"), "alpha");
  });

  test("a queued file gets the seconds a failed upload gave back within a second, not when the hour slides", async (t) => {
    const { alpha, client } = await audioScene(t, {
      alphaLimits: { ash: 60 },
      alpha: { timeout_ms: 400 },
      isAlone: true,
      // A queue long enough that a head slept to its deadline (which looks once more there, and would then be served)
      // waits a minute, far beyond the 20 s bound below.
      routing: { queue_timeout_ms: 60_000 },
    });
    alpha.enqueue(TRANSCRIBE, { kind: "hang" });
    alpha.setDefault(TRANSCRIBE, { kind: "json", body: { text: "from alpha" } });
    // 40 s in flight on alpha until it times out (400 ms), and gives them back.
    const failing = transcribe(client, wavFile(40), "first.wav").then(
      () => "answered",
      (error: unknown) => (error instanceof OpenAI.APIError ? error.status : String(error)),
    );
    // Polled, generously: a loaded machine may take seconds to upload 40 s of audio; a broken gateway never gets there.
    const deadlineMs = Date.now() + 20_000;
    while (transcriptions(alpha) < 1 && Date.now() < deadlineMs) await new Promise((resolve) => setTimeout(resolve, 5));
    // 40 + 30 > 60: this one queues; the plan names 13:00 (the 40 s leaving the sliding hour) as when to look again.
    const queuedAtMs = Date.now();
    const queued = transcribe(client, wavFile(30), "second.wav");
    assert.equal(await failing, 504, "alpha timed out");
    assert.equal(await queued, "alpha", "served from the queue, not a 429 when the queue's time ran out");
    // Woken within a second of alpha's seconds coming back (the 400 ms timeout), not at the queue's 60 s deadline:
    // slept to the plan's time (an hour on), the head looks once more at that deadline and is served then. The
    // bound is far below the minute, and far above a loaded machine's second or two.
    const waitedMs = Date.now() - queuedAtMs;
    assert.ok(waitedMs < 20_000, `served ${waitedMs} ms after queueing`);
  });

  test("a verbose_json answer's `duration` replaces the estimate: what is given back lets the next file through", async (t) => {
    const { alpha, client } = await audioScene(t, { alphaLimits: { ash: 60 } });
    // The header says 50 s; the provider heard 5 s (say, trailing silence it does not count).
    alpha.enqueue(TRANSCRIBE, { kind: "json", body: { text: "a", duration: 5 } });
    alpha.enqueue(TRANSCRIBE, { kind: "json", body: { text: "b", duration: 50 } });
    assert.equal(await transcribe(client, flacFile(50), "first.flac", "verbose_json"), "alpha");
    // Counted as the estimate (50), this one would not fit: 50 + 50 > 60. Reconciled to 5: 5 + 50 fits.
    assert.equal(await transcribe(client, flacFile(50), "second.flac", "verbose_json"), "alpha");
    assert.equal(transcriptions(alpha), 2);
  });

  test("`min_billed_audio_seconds`: one-second clips count as 10 s each, as Groq bills them", async (t) => {
    const { alpha, beta, client } = await audioScene(t, {
      alphaLimits: { ash: 25 },
      alpha: { min_billed_audio_seconds: 10 },
    });
    alpha.setDefault(TRANSCRIBE, { kind: "json", body: { text: "from alpha" } });
    beta.setDefault(TRANSCRIBE, { kind: "json", body: { text: "from beta" } });
    assert.equal(await transcribe(client, wavFile(1), "1.wav"), "alpha");
    assert.equal(await transcribe(client, wavFile(1), "2.wav"), "alpha");
    // 10 + 10 + 10 > 25 (three seconds of audio would fit many times over).
    assert.equal(await transcribe(client, wavFile(1), "3.wav"), "beta");
  });

  test("with no other candidate, a file over `asd` gets a 429 in OpenAI's error shape, told when the day resets", async (t) => {
    const { alpha, client } = await audioScene(t, { alphaLimits: { asd: 100 }, isAlone: true });
    alpha.setDefault(TRANSCRIBE, { kind: "json", body: { text: "from alpha" } });
    assert.equal(await transcribe(client, wavFile(70), "first.wav"), "alpha");
    const error = await transcribe(client, wavFile(70), "second.wav").then(
      () => assert.fail("the second file was served"),
      (caught: unknown) => caught,
    );
    assert.ok(error instanceof OpenAI.RateLimitError, `not a 429: ${String(error)}`);
    // The day window ends at the provider's day_reset (00:00 UTC): that is when alpha takes files again.
    assert.match(
      error.message,
      /rate-limited or cooling down; .*alpha\/whisper-large-v3 at \d{4}-\d\d-\d\dT00:00:00\.000Z/,
    );
    // And which window refused it: the day's audio seconds, not requests or tokens (the route explanation's words).
    assert.match(
      error.message,
      /Skipped: alpha\/whisper-large-v3: over its asd budget \(70\/100 audio seconds, needs 70\) until \d{4}-\d\d-\d\dT00:00:00\.000Z\.$/,
    );
    assert.doesNotMatch(error.message, /sk-alpha-secret/);
    assert.ok(Number(error.headers?.get("retry-after")) > 0, "no Retry-After");
    assert.equal(transcriptions(alpha), 1, "the refused file never reached the provider");
    // What is over budget is the seconds: a 20 s file still fits (70 + 20 <= 100).
    assert.equal(await transcribe(client, wavFile(20), "third.wav"), "alpha");
  });

  test("a file longer than a whole `ash` is never sent: a 413 in OpenAI's shape, not a 429 to come back for", async (t) => {
    const { alpha, client } = await audioScene(t, { alphaLimits: { ash: 30 }, isAlone: true });
    alpha.setDefault(TRANSCRIBE, { kind: "json", body: { text: "from alpha" } });
    const error = await transcribe(client, wavFile(40), "long.wav").then(
      () => assert.fail("the file was served"),
      (caught: unknown) => caught,
    );
    assert.ok(error instanceof OpenAI.APIError, String(error));
    assert.equal(error.status, 413, error.message);
    assert.equal(transcriptions(alpha), 0);
  });

  test("a 2 KB FLAC whose header claims 3500 s does not spend alpha's hour: the next file still fits", async (t) => {
    const { alpha, beta, client } = await audioScene(t, { alphaLimits: { ash: 3_600 } });
    alpha.setDefault(TRANSCRIBE, { kind: "json", body: { text: "from alpha" } });
    beta.setDefault(TRANSCRIBE, { kind: "json", body: { text: "from beta" } });
    // STREAMINFO says 3500 s at 16 kHz; 2 KB could hold 8 s at the lowest rate a speech codec has.
    const hostile = flacFile(2).subarray(0, 2_048);
    hostile.writeUInt32BE(3_500 * 16_000, 8 + 14);
    assert.equal(await transcribe(client, hostile, "claims-an-hour.flac"), "alpha");
    // Counted as the header says, 3500 + 200 > 3600 would send this one to beta.
    assert.equal(await transcribe(client, mp3File(200), "next.mp3"), "alpha");
    assert.equal(transcriptions(beta), 0);
  });

  test("a verbose_json `duration` of 10^9 s for a 1 s upload is not believed past what its bytes hold", async (t) => {
    const { alpha, beta, client } = await audioScene(t, { alphaLimits: { ash: 3_600 } });
    alpha.enqueue(TRANSCRIBE, { kind: "json", body: { text: "a", duration: 1e9 } });
    alpha.setDefault(TRANSCRIBE, { kind: "json", body: { text: "from alpha" } });
    beta.setDefault(TRANSCRIBE, { kind: "json", body: { text: "from beta" } });
    assert.equal(await transcribe(client, wavFile(1), "short.wav", "verbose_json"), "alpha");
    // Reconciled to 10^9 s, alpha's hour (and every hour after it) would be spent: every file would go to beta.
    assert.equal(await transcribe(client, mp3File(200), "next.mp3"), "alpha");
    assert.equal(transcriptions(beta), 0);
  });

  test("the route explanation (`audio_seconds=`) and /stats name the audio-seconds window", async (t) => {
    const { alpha, gateway, client } = await audioScene(t, { alphaLimits: { ash: 30 }, isAlone: true });
    alpha.setDefault(TRANSCRIBE, { kind: "json", body: { text: "from alpha" } });
    assert.equal(await transcribe(client, wavFile(25), "first.wav"), "alpha");
    const explain = (seconds: number) =>
      send(gateway, "GET", `/v1/gateway/route?model=${MODEL}&endpoint=transcriptions&audio_seconds=${seconds}`);
    const over = await explain(10);
    assert.equal(over.status, 200, over.text);
    assert.match(over.text, /over its ash budget \(25\/30 audio seconds, needs 10\)/);
    const fits = await explain(5);
    assert.doesNotMatch(fits.text, /ash budget/);
    const bad = await explain(-1);
    assert.equal(bad.status, 400);
    assert.equal(errorOf(bad).param, "audio_seconds");
    const stats = await send(gateway, "GET", "/stats");
    const rows = (stats.json as { deployments: { provider: string; budgets: StatsBudget[] }[] }).deployments;
    const audio = rows
      .find((row) => row.provider === "alpha")
      ?.budgets.find((budget) => budget.scope.endsWith("#audio"));
    assert.ok(audio, `no audio-seconds scope in /stats: ${stats.text}`);
    assert.deepEqual(
      audio.windows.map(({ unit, window, limit, used }) => ({ unit, window, limit, used })),
      [{ unit: "audio_seconds", window: "hour", limit: 30, used: 25 }],
    );
  });
});

describe("the groq preset's whisper budgets", () => {
  test("whisper-large-v3 gets Groq's free-plan ash 7200 and asd 28800, a 1 s clip counted as 10 s", async (t) => {
    const upstream = await startMockUpstream();
    t.after(() => upstream.close());
    upstream.setDefault(TRANSCRIBE, { kind: "json", body: { text: "from groq" } });
    const yaml = stringify({
      providers: [{ preset: "groq", base_url: upstream.baseUrl, api_key: "gsk-test", models: { [MODEL]: {} } }],
    });
    const gateway = await startTestGateway(yaml);
    t.after(() => gateway.close());
    const client = new OpenAI({ baseURL: gateway.baseUrl, apiKey: "x", maxRetries: 0 });
    assert.equal(await transcribe(client, wavFile(1), "short.wav"), "groq");
    const explained = await send(
      gateway,
      "GET",
      `/v1/gateway/route?model=${MODEL}&endpoint=transcriptions&audio_seconds=7191`,
    );
    // 10 s counted for the 1 s clip (min_billed_audio_seconds: 10): 10 + 7191 > 7200.
    assert.match(explained.text, /over its ash budget \(10\/7200 audio seconds, needs 7191\)/);
    const stats = await send(gateway, "GET", "/stats");
    const rows = (stats.json as { deployments: { provider: string; budgets: StatsBudget[] }[] }).deployments;
    const audio = rows
      .find((row) => row.provider === "groq")
      ?.budgets.find((budget) => budget.scope.endsWith("#audio"));
    assert.deepEqual(
      audio?.windows.map(({ window, limit, used }) => ({ window, limit, used })),
      [
        { window: "hour", limit: 7200, used: 10 },
        { window: "day", limit: 28800, used: 10 },
      ],
    );
  });
});

interface StatsBudget {
  readonly scope: string;
  readonly windows: readonly { unit: string; window: string; limit: number; used: number }[];
}

const skip = isRedisInstalled() ? false : REDIS_MISSING;

describe("audio-second budgets shared through Redis", { skip }, () => {
  test("seconds one gateway process spent count in another's: its file goes to beta", async (t) => {
    const redis = await useRedisServer(t);
    const state = { redis_url: redis.url, redis_key_prefix: "e2e-audio-seconds:", redis_command_timeout_ms: 2000 };
    const first = await audioScene(t, { alphaLimits: { ash: 60 }, state });
    const { alpha, beta } = first;
    alpha.setDefault(TRANSCRIBE, { kind: "json", body: { text: "from alpha" } });
    beta.setDefault(TRANSCRIBE, { kind: "json", body: { text: "from beta" } });
    const second = await audioScene(t, { alphaLimits: { ash: 60 }, state, upstreams: { alpha, beta } });
    assert.equal(await transcribe(first.client, wavFile(40), "first.wav"), "alpha");
    assert.equal(await transcribe(second.client, wavFile(40), "second.wav"), "beta");
    assert.equal(transcriptions(alpha), 1, "the second process did not send alpha a file over its shared budget");
    assert.equal(await transcribe(second.client, wavFile(15), "third.wav"), "alpha");
  });
});
