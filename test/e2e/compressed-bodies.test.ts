// Compressed request bodies (src/server/compressed-body.ts): gzip, deflate, br and zstd are decoded; the body bound
// counts the decoded bytes (a bomb is a 413 at the bound, without the process growing by what it would inflate to);
// a corrupt stream is a 400 and an unknown coding a 415, each in the door's own error shape. Before, every compressed
// body was a 400 `invalid_json`.
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { type TestContext, test } from "node:test";
import { brotliCompressSync, constants, deflateSync, gzipSync, zstdCompressSync } from "node:zlib";
import OpenAI from "openai";
import { request } from "undici";
import { chatRequests, errorOf, HELLO, type RawResponse, useGateway, useMock } from "../helpers/e2e.ts";
import type { TestGateway } from "../helpers/gateway.ts";

const LIMIT_BYTES = 4 * 1024 * 1024;

async function scene(t: TestContext) {
  const mock = await useMock(t);
  const gateway = await useGateway(
    t,
    `server:
  body_limit_bytes: ${LIMIT_BYTES}
providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha
    models:
      m: { id: vendor-m }
      whisper-large-v3: { id: whisper-vendor }
`,
  );
  return { mock, gateway };
}

async function post(
  gateway: TestGateway,
  path: string,
  body: Buffer | Readable,
  encoding: string,
): Promise<RawResponse> {
  const response = await request(`${gateway.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", "content-encoding": encoding },
    body,
  });
  const text = await response.body.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(response.headers)) {
    if (typeof value === "string") headers[name] = value;
  }
  return { status: response.statusCode, headers, json, text };
}

const CHAT = Buffer.from(JSON.stringify({ model: "m", messages: HELLO }));

test("the OpenAI SDK's request, gzipped on its way (a fetch that compresses), is served", async (t) => {
  const { mock, gateway } = await scene(t);
  const compressed: string[] = [];
  const gzipping = new OpenAI({
    baseURL: gateway.baseUrl,
    apiKey: "x",
    maxRetries: 0,
    fetch: async (url: string | URL | Request, init?: RequestInit) => {
      const headers = new Headers(init?.headers);
      headers.set("content-encoding", "gzip");
      const body = gzipSync(Buffer.from(String(init?.body)));
      compressed.push(String(body.byteLength));
      return fetch(url, { ...init, headers, body });
    },
  });
  const answer = await gzipping.chat.completions.create({
    model: "m",
    messages: [{ role: "user", content: "Say hi" }],
  });
  assert.equal(typeof answer.choices[0]?.message.content, "string");
  assert.equal(compressed.length, 1, "the body went compressed");
  const [upstream] = chatRequests(mock);
  assert.deepEqual((upstream?.body as { messages?: unknown } | undefined)?.messages, [
    { role: "user", content: "Say hi" },
  ]);
});

test("deflate, br and zstd bodies are decoded too", async (t) => {
  const { mock, gateway } = await scene(t);
  const bodies: Record<string, Buffer> = {
    deflate: deflateSync(CHAT),
    br: brotliCompressSync(CHAT),
    zstd: zstdCompressSync(CHAT),
    "x-gzip": gzipSync(CHAT),
  };
  for (const [encoding, body] of Object.entries(bodies)) {
    const answer = await post(gateway, "/v1/chat/completions", body, encoding);
    assert.equal(answer.status, 200, `${encoding}: ${answer.text}`);
  }
  assert.equal(chatRequests(mock).length, 4);
});

test("a corrupt stream is a 400 invalid_body, an unknown coding a 415 unsupported_media_type, in each door's shape", async (t) => {
  const { mock, gateway } = await scene(t);
  const corrupt = gzipSync(CHAT);
  corrupt.fill(0x41, 12, 40);
  const broken = await post(gateway, "/v1/chat/completions", corrupt, "gzip");
  assert.equal(broken.status, 400, broken.text);
  const brokenError = errorOf(broken);
  assert.equal(brokenError.code, "invalid_body");
  assert.match(brokenError.message, /not valid gzip/);

  const unknown = await post(gateway, "/v1/chat/completions", CHAT, "compress");
  assert.equal(unknown.status, 415, unknown.text);
  const unknownError = errorOf(unknown);
  assert.equal(unknownError.code, "unsupported_media_type");
  assert.match(unknownError.message, /compress/);

  const messagesBody = Buffer.from(JSON.stringify({ model: "m", max_tokens: 16, messages: HELLO }));
  const anthropic = await post(gateway, "/v1/messages", messagesBody, "compress");
  assert.equal(anthropic.status, 415, anthropic.text);
  const shape = anthropic.json as { type?: unknown; error?: { type?: unknown; message?: unknown } };
  assert.equal(shape.type, "error");
  assert.equal(shape.error?.type, "invalid_request_error");
  assert.match(String(shape.error?.message), /Unsupported Content-Encoding/);
  const anthropicGzip = await post(gateway, "/v1/messages", gzipSync(messagesBody), "gzip");
  assert.equal(anthropicGzip.status, 200, anthropicGzip.text);
  assert.equal(chatRequests(mock).length, 1, "only the good gzip went upstream");
});

test("a Content-Encoding on a request without a body (a DELETE, an empty POST) is no 415 and no gzip error: there is nothing to decode", async (t) => {
  const { gateway } = await scene(t);
  for (const encoding of ["compress", "gzip"]) {
    const deleted = await request(`${gateway.url}/v1/responses/resp_unknown`, {
      method: "DELETE",
      headers: { "content-encoding": encoding },
    });
    const text = await deleted.body.text();
    // The route's own answer: no kept response of that id.
    assert.equal(deleted.statusCode, 404, text);
    assert.match(text, /response_not_found/);
  }
  const empty = await post(gateway, "/v1/chat/completions", Buffer.alloc(0), "gzip");
  const plain = await post(gateway, "/v1/chat/completions", Buffer.alloc(0), "identity");
  // The same answer as the same empty body sent plain: the encoding changes nothing when nothing was encoded.
  assert.equal(empty.status, plain.status, empty.text);
  assert.equal(errorOf(empty).code, errorOf(plain).code);
  assert.doesNotMatch(empty.text, /gzip/);
});

test("a gzipped multipart upload (a transcription) is decoded before the form is parsed: the file arrives intact", async (t) => {
  const { mock, gateway } = await scene(t);
  mock.enqueue("POST /v1/audio/transcriptions", { kind: "json", body: { text: "heard" } });
  const audio = Buffer.from(Array.from({ length: 512 }, (_, index) => index % 256));
  const form = new FormData();
  form.set("model", "whisper-large-v3");
  form.set("file", new Blob([audio], { type: "audio/mpeg" }), "clip.mp3");
  const encoder = new Request("http://localhost/", { method: "POST", body: form });
  const response = await request(`${gateway.url}/v1/audio/transcriptions`, {
    method: "POST",
    headers: { "content-type": encoder.headers.get("content-type") ?? "", "content-encoding": "gzip" },
    body: gzipSync(Buffer.from(await encoder.arrayBuffer())),
  });
  const text = await response.body.text();
  assert.equal(response.statusCode, 200, text);
  assert.deepEqual(JSON.parse(text), { text: "heard" });
  const upstream = mock.requests.find((recorded) => recorded.path === "/v1/audio/transcriptions");
  assert.ok(upstream !== undefined, "the upload went upstream");
  const parts = await new Response(upstream.bodyBytes, {
    headers: { "content-type": String(upstream.headers["content-type"]) },
  }).formData();
  const file = parts.get("file");
  assert.ok(file instanceof Blob);
  assert.ok(Buffer.from(await file.arrayBuffer()).equals(audio), "the file's bytes are unchanged");
});

/** 10 GiB of zeros as gzip members of 1 MiB each (about 1 KB apiece; gzip readers take concatenated members). */
async function* gzipBomb(): AsyncIterable<Buffer> {
  const member = gzipSync(Buffer.alloc(1024 * 1024), { level: 9 });
  for (let index = 0; index < 10 * 1024; index++) yield member;
}

test("bombs (gzip, zstd, br) are a 413 at the decoded bound, without the process growing by what they inflate to", async (t) => {
  const { mock, gateway } = await scene(t);
  // zstd frames concatenate too: 160 frames of 64 MiB of zeros, about 330 KB on the wire, 10 GiB decoded.
  const frame = zstdCompressSync(Buffer.alloc(64 * 1024 * 1024));
  const zstdBomb = Buffer.concat(Array.from({ length: 160 }, () => frame));
  assert.ok(zstdBomb.byteLength < LIMIT_BYTES, "the zstd bomb is under the bound on the wire");
  const brBomb = brotliCompressSync(Buffer.alloc(64 * 1024 * 1024), {
    params: { [constants.BROTLI_PARAM_QUALITY]: 5, [constants.BROTLI_PARAM_LGWIN]: 24 },
  });
  assert.ok(brBomb.byteLength < 1024, "the br bomb is under 1 KB");
  global.gc?.();
  const rssBefore = process.memoryUsage().rss;
  const startedAt = performance.now();
  const answers = [
    await post(gateway, "/v1/chat/completions", Readable.from(gzipBomb()), "gzip"),
    await post(gateway, "/v1/chat/completions", zstdBomb, "zstd"),
    await post(gateway, "/v1/messages", brBomb, "br"),
  ];
  const elapsedMs = performance.now() - startedAt;
  const grownBytes = process.memoryUsage().rss - rssBefore;
  t.diagnostic(`bombs: ${Math.round(elapsedMs)} ms, RSS +${Math.round(grownBytes / 1024 / 1024)} MiB`);
  for (const answer of answers) assert.equal(answer.status, 413, answer.text);
  const [gzipAnswer] = answers;
  assert.ok(gzipAnswer !== undefined);
  assert.equal(errorOf(gzipAnswer).code, "payload_too_large");
  assert.match(gzipAnswer.text, new RegExp(`limit of ${LIMIT_BYTES} bytes`));
  assert.equal((answers[2]?.json as { error?: { type?: unknown } } | undefined)?.error?.type, "request_too_large");
  assert.ok(grownBytes < 256 * 1024 * 1024, `RSS grew by ${Math.round(grownBytes / 1024 / 1024)} MiB`);
  assert.ok(elapsedMs < 60_000, `the bombs took ${Math.round(elapsedMs)} ms`);
  assert.equal(chatRequests(mock).length, 0, "nothing went upstream");
  // And the gateway still serves.
  const after = await post(gateway, "/v1/chat/completions", gzipSync(CHAT), "gzip");
  assert.equal(after.status, 200, after.text);
});
