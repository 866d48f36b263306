// Bad input never hurts (bounded property-based fuzzing with fast-check, part of `npm test`, well under a
// minute): random and malformed requests at every route, and malformed upstream answers behind a valid request.
// Whatever comes in, the gateway answers in time with an OpenAI-shaped error (or a valid answer), never
// crashes, never leaves an unhandled rejection, never leaks a key.
//
// On failure fast-check prints the seed and path; re-run exactly that case with
//   FUZZ_SEED=<seed> node --test test/e2e/fuzz.test.ts
// FUZZ_RUNS=<n> runs more cases (the defaults keep the file near 20 s).
import assert from "node:assert/strict";
import type { ServerResponse } from "node:http";
import { after, before, describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import fc from "fast-check";
import { Agent, request } from "undici";
import { stringify } from "yaml";
import type { TestGateway } from "../helpers/gateway.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import {
  chatCompletion,
  type MockUpstream,
  type RecordedRequest,
  startMockUpstream,
} from "../helpers/mock-upstream.ts";

const SEED =
  process.env.FUZZ_SEED === undefined ? Date.now() ^ (Math.random() * 0x7fffffff) : Number(process.env.FUZZ_SEED);
const RUNS = Number(process.env.FUZZ_RUNS ?? 0);
const CLIENT_KEY = "fuzz-client-key-7f3a";
const ADMIN_KEY = "fuzz-admin-key-91bc";
const UPSTREAM_KEYS = ["sk-fuzz-alpha-5e1d0c9b8a7f6e5d", "sk-fuzz-beta-0a1b2c3d4e5f6a7b"];
const SECRETS = [...UPSTREAM_KEYS, ADMIN_KEY];
/** Longest a single answer may take: above the gateway's own bounds (total_timeout_ms 4 s). */
const ANSWER_TIMEOUT_MS = 8_000;
const CHAT_ROUTE = "POST /v1/chat/completions";

const ROUTES = [
  "/v1/chat/completions",
  "/chat/completions",
  "/v1/completions",
  "/v1/embeddings",
  "/v1/images/generations",
  "/v1/audio/speech",
  "/v1/rerank",
  "/v1/moderations",
  "/v1/models",
  "/models",
  "/health",
  "/ok",
  "/stats",
  "/v1/gateway/route",
  "/admin/reload",
  "/admin/cooldowns/reset",
  "/admin/models/refresh",
  "/v1/messages",
  "/v1/responses",
];

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly text: string;
}

let gateway: TestGateway;
let alpha: MockUpstream;
let beta: MockUpstream;
const agent = new Agent({ connections: 8, headersTimeout: ANSWER_TIMEOUT_MS, bodyTimeout: ANSWER_TIMEOUT_MS });
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};

before(async () => {
  process.on("unhandledRejection", onUnhandled);
  process.on("uncaughtException", onUnhandled);
  alpha = await startMockUpstream();
  beta = await startMockUpstream();
  const provider = (name: string, mock: MockUpstream, key: string) => ({
    name,
    base_url: mock.baseUrl,
    api_key: key,
    retries: 0,
    timeout_ms: 2_000,
    first_token_timeout_ms: 1_500,
    stream_idle_timeout_ms: 1_500,
    models: {
      m: { id: `${name}-m` },
      e: { id: `${name}-e`, kind: "embedding" },
      i: { id: `${name}-i`, kind: "image" },
      s: { id: `${name}-s`, kind: "speech" },
      r: { id: `${name}-r`, kind: "rerank" },
      g: { id: `${name}-llama-guard-4`, kind: "moderation" },
    },
  });
  gateway = await startTestGateway(
    stringify({
      server: {
        port: 0,
        host: "127.0.0.1",
        api_keys: [CLIENT_KEY],
        admin_keys: [ADMIN_KEY],
        body_limit_bytes: 200_000,
      },
      providers: [provider("alpha", alpha, UPSTREAM_KEYS[0] ?? ""), provider("beta", beta, UPSTREAM_KEYS[1] ?? "")],
      routing: { total_timeout_ms: 4_000, max_attempts: 3 },
      cooldowns: { failure_threshold: 1_000 },
    }),
  );
});

after(async () => {
  await agent.close();
  await gateway?.close();
  await alpha?.close();
  await beta?.close();
  process.off("unhandledRejection", onUnhandled);
  process.off("uncaughtException", onUnhandled);
});

async function send(options: {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer | string;
}): Promise<Answer | undefined> {
  let response: Awaited<ReturnType<typeof request>>;
  try {
    response = await request(`${gateway.url}${options.path}`, {
      method: options.method as "GET",
      headers: options.headers,
      dispatcher: agent,
      ...(options.body === undefined ? {} : { body: options.body }),
    });
  } catch (error) {
    // undici refused to send it (an invalid header or method): nothing reached the gateway.
    const code = (error as { code?: string }).code;
    if (code === "UND_ERR_INVALID_ARG" || code === "UND_ERR_NOT_SUPPORTED") return undefined;
    throw error;
  }
  const text = await response.body.text();
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(response.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  return { status: response.statusCode, headers, text };
}

/** Fails unless the answer is sound: an OpenAI-shaped error for every error status, no key, no stack trace. */
function assertSound(answer: Answer, context: { method: string; path: string }): void {
  const where = `${context.method} ${context.path} -> ${answer.status}: ${answer.text.slice(0, 300)}`;
  for (const secret of SECRETS) {
    assert.ok(!answer.text.includes(secret), `a key leaked in the body: ${where}`);
    for (const value of Object.values(answer.headers))
      assert.ok(!value.includes(secret), `a key leaked in a header: ${where}`);
  }
  assert.doesNotMatch(answer.text, /\n\s+at |node:internal|\.ts:\d+:\d+/, `stack trace: ${where}`);
  if (answer.status < 400 || context.method === "HEAD") return;
  // /health answers 503 with its own report when every provider is down.
  if (context.path.split("?")[0] === "/health" && answer.status === 503) return;
  let json: unknown;
  try {
    json = JSON.parse(answer.text);
  } catch {
    assert.fail(`an error answer that is not JSON: ${where}`);
  }
  const error = (json as { error?: Record<string, unknown> }).error;
  assert.ok(error !== undefined && typeof error === "object", `no error object: ${where}`);
  assert.equal(typeof error.message, "string", where);
  assert.equal(typeof error.type, "string", where);
  if (/^\/(v1\/)?messages(\/|$|\?)/.test(context.path)) {
    // The Anthropic Messages routes answer in Anthropic's shape: {"type":"error","error":{"type","message"}}.
    assert.equal((json as { type?: unknown }).type, "error", `not Anthropic-shaped: ${where}`);
  } else {
    assert.ok("code" in error && "param" in error, `error.code and error.param must be present: ${where}`);
  }
  assert.match(answer.headers["content-type"] ?? "", /^application\/json/, where);
}

// ---- generators: requests ----

const jsonLeaf = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.integer(),
  fc.double({ noNaN: false }),
  fc.boolean(),
  fc.constant(null),
);
const randomJson = fc.jsonValue({ maxDepth: 4 });

/** A chat body that is almost right: real fields with random values, and random extra fields. */
const chatishBody = fc
  .record(
    {
      model: fc.oneof(
        fc.constantFrom("m", "e", "i", "s", "r", "g", "alpha/m", "m,e", "priority-auto", "", "nope"),
        fc.string(),
        jsonLeaf,
      ),
      messages: fc.oneof(
        fc.constant([{ role: "user", content: "hi" }]),
        fc.array(
          fc.record({
            role: fc.oneof(fc.constantFrom("user", "system", "assistant", "tool"), fc.string()),
            content: fc.oneof(fc.string({ maxLength: 200 }), fc.array(randomJson, { maxLength: 3 }), jsonLeaf),
          }),
          { maxLength: 4 },
        ),
        jsonLeaf,
      ),
      stream: fc.oneof(fc.boolean(), jsonLeaf),
      max_tokens: fc.oneof(fc.integer({ min: -5, max: 1e9 }), jsonLeaf),
      temperature: jsonLeaf,
      tools: fc.oneof(fc.array(randomJson, { maxLength: 2 }), jsonLeaf),
      models: fc.oneof(fc.array(fc.string(), { maxLength: 3 }), jsonLeaf),
      input: fc.oneof(fc.string(), fc.array(fc.string(), { maxLength: 3 }), jsonLeaf),
      prompt: fc.oneof(fc.string(), jsonLeaf),
      n: fc.oneof(fc.integer({ min: -2, max: 20 }), jsonLeaf),
      voice: fc.oneof(fc.constantFrom("alloy", "Fritz-PlayAI"), jsonLeaf),
      query: fc.oneof(fc.string(), jsonLeaf),
      documents: fc.oneof(
        fc.array(
          fc.oneof(fc.string({ maxLength: 50 }), fc.record({ text: fc.oneof(fc.string(), jsonLeaf) }), jsonLeaf),
          {
            maxLength: 4,
          },
        ),
        jsonLeaf,
      ),
      top_n: fc.oneof(fc.integer({ min: -2, max: 1e9 }), jsonLeaf),
    },
    { requiredKeys: [] },
  )
  .chain((body) =>
    fc.dictionary(fc.string({ maxLength: 12 }), randomJson, { maxKeys: 3 }).map((extra) => ({ ...extra, ...body })),
  );

/** Deeply nested JSON text, built as text (no recursion in the test itself). */
const deepJson = fc
  .record({ depth: fc.integer({ min: 100, max: 20_000 }), kind: fc.constantFrom("array", "object") })
  .map(({ depth, kind }) =>
    kind === "array"
      ? `{"model":"m","messages":${"[".repeat(depth)}${"]".repeat(depth)}}`
      : `{"model":"m","messages":[{"role":"user","content":${'{"a":'.repeat(depth)}1${"}".repeat(depth)}}]}`,
  );

const hugeJson = fc
  .integer({ min: 50_000, max: 400_000 })
  .map((size) => `{"model":"m","messages":[{"role":"user","content":"${"x".repeat(size)}"}]}`);

const bodyBytes = fc.oneof(
  { weight: 4, arbitrary: chatishBody.map((body) => JSON.stringify(body)) },
  { weight: 2, arbitrary: randomJson.map((value) => JSON.stringify(value)) },
  { weight: 1, arbitrary: fc.string({ maxLength: 300 }) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)) },
  { weight: 1, arbitrary: deepJson },
  { weight: 1, arbitrary: hugeJson },
  // Truncated, BOM-prefixed, invalid UTF-8 inside a string.
  { weight: 1, arbitrary: chatishBody.map((body) => JSON.stringify(body).slice(0, -3)) },
  { weight: 1, arbitrary: fc.constant(`\uFEFF{"model":"m","messages":[{"role":"user","content":"hi"}]}`) },
  {
    weight: 1,
    arbitrary: fc.constant(
      Buffer.concat([
        Buffer.from('{"model":"m","messages":[{"role":"user","content":"'),
        Buffer.from([0xc3, 0x28, 0xff]),
        Buffer.from('"}]}'),
      ]),
    ),
  },
);

const headerName = fc
  .stringMatching(/^[a-z][a-z0-9-]{0,20}$/)
  .filter(
    (name) =>
      !["host", "content-length", "transfer-encoding", "connection", "upgrade", "expect", "keep-alive"].includes(name),
  );
const headerValue = fc.stringMatching(/^[\x20-\x7e]{0,200}$/);

const requestCase = fc.record({
  method: fc.constantFrom("GET", "POST", "POST", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"),
  path: fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...ROUTES) },
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.constantFrom(...ROUTES), fc.stringMatching(/^[\x21-\x7e]{0,40}$/))
        .map(
          ([route, suffix]) =>
            `${route}${suffix.startsWith("?") || suffix.startsWith("/") ? suffix : `?${encodeURIComponent(suffix)}`}`,
        ),
    },
    {
      weight: 1,
      arbitrary: fc
        .stringMatching(/^\/[\x21-\x7e]{0,60}$/)
        .map((path) => path.replaceAll("#", "%23").replaceAll("%", "%25")),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        "/..%2f..%2fetc/passwd",
        `/${"a".repeat(5000)}`,
        "/v1/gateway/route?model=%FF&tokens=-1",
      ),
    },
  ),
  auth: fc.constantFrom("client", "client", "client", "admin", "none", "wrong"),
  contentType: fc.constantFrom(
    "application/json",
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=latin1",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "",
  ),
  gzipLie: fc.constantFrom("none", "none", "none", "gzip-lie", "gzip-real", "br-lie"),
  extraHeaders: fc.dictionary(headerName, headerValue, { maxKeys: 4 }),
  body: fc.option(bodyBytes, { freq: 5, nil: undefined }),
});

// ---- generators: upstream answers ----

const CHUNK = (content: string) =>
  `data: ${JSON.stringify({ id: "c1", object: "chat.completion.chunk", created: 1, model: "x", choices: [{ index: 0, delta: { content }, finish_reason: null }] })}`;

type UpstreamAnswer = (recorded: RecordedRequest, response: ServerResponse) => void;

/** What a malformed upstream can do; each may echo the key it was sent. */
const upstreamAnswer: fc.Arbitrary<{ label: string; answer: UpstreamAnswer }> = fc.oneof(
  fc
    .record({
      status: fc.constantFrom(200, 201, 400, 404, 422, 500, 502, 503, 418),
      text: fc.string({ maxLength: 200 }),
    })
    .map(({ status, text }) => ({
      label: `bad JSON ${status}`,
      answer: (_recorded: RecordedRequest, response: ServerResponse) => {
        response.writeHead(status, { "content-type": "application/json" });
        response.end(`{"choices": [${text}`);
      },
    })),
  fc.constantFrom("text/html", "text/plain", "application/octet-stream", "").map((type) => ({
    label: `wrong content type ${type}`,
    answer: (_recorded: RecordedRequest, response: ServerResponse) => {
      response.writeHead(200, type === "" ? {} : { "content-type": type });
      response.end("<html><body>502 Bad Gateway</body></html>");
    },
  })),
  fc.constantFrom(200, 400, 401, 500).map((status) => ({
    label: `an error body in ${status}, echoing the key`,
    answer: (recorded: RecordedRequest, response: ServerResponse) => {
      response.writeHead(status, { "content-type": "application/json" });
      response.end(
        JSON.stringify({
          error: { message: `Incorrect API key provided: ${recorded.headers.authorization}`, code: status },
        }),
      );
    },
  })),
  fc
    .record({ crlf: fc.boolean(), split: fc.integer({ min: 1, max: 7 }), done: fc.boolean() })
    .map(({ crlf, split, done }) => ({
      label: `SSE crlf=${crlf} split=${split} done=${done}`,
      answer: (recorded: RecordedRequest, response: ServerResponse) => {
        const eol = crlf ? "\r\n" : "\n";
        const events = [CHUNK("Hel"), CHUNK("lo"), done ? "data: [DONE]" : ""].join(`${eol}${eol}`) + eol + eol;
        response.writeHead(200, { "content-type": "text/event-stream" });
        if ((recorded.body as { stream?: unknown } | undefined)?.stream !== true) {
          response.end(events);
          return;
        }
        // Write in pieces that split lines and multi-byte characters anywhere.
        const bytes = Buffer.from(events);
        for (let offset = 0; offset < bytes.length; offset += split)
          response.write(bytes.subarray(offset, offset + split));
        response.end();
      },
    })),
  fc.integer({ min: 70_000, max: 2_000_000 }).map((size) => ({
    label: `an enormous SSE line (${size})`,
    answer: (_recorded: RecordedRequest, response: ServerResponse) => {
      response.writeHead(200, { "content-type": "text/event-stream" });
      response.end(`${CHUNK("x".repeat(size))}\n\ndata: [DONE]\n\n`);
    },
  })),
  fc.integer({ min: 20_000, max: 120_000 }).map((size) => ({
    label: `enormous headers (${size})`,
    answer: (_recorded: RecordedRequest, response: ServerResponse) => {
      response.writeHead(200, { "content-type": "application/json", "x-huge": "h".repeat(size) });
      response.end(JSON.stringify(chatCompletion("hi", "x")));
    },
  })),
  fc.constantFrom("gzip", "deflate", "br").map((encoding) => ({
    label: `content-encoding ${encoding} that lies`,
    answer: (_recorded: RecordedRequest, response: ServerResponse) => {
      response.writeHead(200, { "content-type": "application/json", "content-encoding": encoding });
      response.end(JSON.stringify(chatCompletion("not compressed at all", "x")));
    },
  })),
  fc.constant({
    label: "gzip cut short",
    answer: ((_recorded: RecordedRequest, response: ServerResponse) => {
      const zipped = gzipSync(JSON.stringify(chatCompletion("hello", "x")));
      response.writeHead(200, { "content-type": "application/json", "content-encoding": "gzip" });
      response.end(zipped.subarray(0, Math.floor(zipped.length / 2)));
    }) satisfies UpstreamAnswer,
  }),
  fc.constant({
    label: "destroyed mid-body",
    answer: ((_recorded: RecordedRequest, response: ServerResponse) => {
      response.writeHead(200, { "content-type": "text/event-stream" });
      response.write(`${CHUNK("partial")}\n\n`);
      setTimeout(() => response.destroy(), 20);
    }) satisfies UpstreamAnswer,
  }),
  fc
    .record({
      status: fc.integer({ min: 100, max: 599 }).filter((status) => status >= 200 && status !== 204 && status !== 304),
    })
    .map(({ status }) => ({
      label: `status ${status} with an empty body`,
      answer: (_recorded: RecordedRequest, response: ServerResponse) => {
        response.writeHead(status);
        response.end();
      },
    })),
  fc.constant({
    label: "a sound answer",
    answer: ((recorded: RecordedRequest, response: ServerResponse) => {
      if ((recorded.body as { stream?: unknown } | undefined)?.stream === true) {
        response.writeHead(200, { "content-type": "text/event-stream" });
        response.end(`${CHUNK("ok")}\n\ndata: [DONE]\n\n`);
        return;
      }
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify(chatCompletion("ok", "x")));
    }) satisfies UpstreamAnswer,
  }),
);

describe(`fuzz (seed ${SEED})`, () => {
  test("random and malformed requests at every route: OpenAI-shaped errors, no crash, no leak", async () => {
    alpha.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("ok", "alpha-m") });
    beta.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("ok", "beta-m") });
    await fc.assert(
      fc.asyncProperty(requestCase, async (input) => {
        const headers: Record<string, string> = { ...input.extraHeaders };
        if (input.auth === "client") headers.authorization = `Bearer ${CLIENT_KEY}`;
        if (input.auth === "admin") headers.authorization = `Bearer ${ADMIN_KEY}`;
        if (input.auth === "wrong") headers.authorization = "Bearer not-a-key";
        let body = input.body;
        if (body !== undefined && input.contentType !== "") headers["content-type"] = input.contentType;
        if (body !== undefined && input.gzipLie === "gzip-lie") headers["content-encoding"] = "gzip";
        if (body !== undefined && input.gzipLie === "br-lie") headers["content-encoding"] = "br";
        if (body !== undefined && input.gzipLie === "gzip-real") {
          headers["content-encoding"] = "gzip";
          body = gzipSync(body);
        }
        // GET/HEAD with a body: undici refuses; send those without one.
        if (input.method === "GET" || input.method === "HEAD") body = undefined;
        const context = { method: input.method, path: input.path };
        const answer = await send({ ...context, headers, ...(body === undefined ? {} : { body }) });
        if (answer === undefined) return;
        assertSound(answer, context);
        // Reset learned state now and then so upstream paths keep being exercised.
        if (answer.status === 429 || answer.status === 503) await gateway.runtime.resetLimits();
      }),
      { seed: SEED, numRuns: RUNS > 0 ? RUNS : 250, interruptAfterTimeLimit: 20_000, markInterruptAsFailure: false },
    );
    const ok = await send({ method: "GET", path: "/ok", headers: {} });
    assert.equal(ok?.status, 200, "the gateway still serves");
    assert.deepEqual(unhandled, [], "no unhandled rejection or uncaught exception");
  });

  // HTTP-layer errors (bad percent-encoding in the URL is answered by Fastify itself, before any route).
  test("malformed URL encodings get an OpenAI-shaped 400", async () => {
    const malformedPath = fc
      .tuple(fc.constantFrom(...ROUTES), fc.constantFrom("%ZZ", "%", "%0", "%E0%A4%A", "%FF%FE", "%00"))
      .map(([route, bad]) => `${route}/${bad}`);
    await fc.assert(
      fc.asyncProperty(malformedPath, fc.constantFrom("GET", "POST"), async (path, method) => {
        const answer = await send({
          method,
          path,
          headers: { authorization: `Bearer ${CLIENT_KEY}`, "content-type": "application/json" },
          ...(method === "POST" ? { body: "{}" } : {}),
        });
        if (answer !== undefined) assertSound(answer, { method, path });
      }),
      { seed: SEED, numRuns: 40 },
    );
  });

  test("malformed upstream answers: the client gets a sound answer or an OpenAI-shaped error", async () => {
    await fc.assert(
      fc.asyncProperty(upstreamAnswer, upstreamAnswer, fc.boolean(), async (first, second, isStream) => {
        alpha.reset();
        beta.reset();
        await gateway.runtime.resetLimits();
        alpha.setDefault(CHAT_ROUTE, { kind: "handler", handle: first.answer });
        beta.setDefault(CHAT_ROUTE, { kind: "handler", handle: second.answer });
        const startedAtMs = performance.now();
        const answer = await send({
          method: "POST",
          path: "/v1/chat/completions",
          headers: { authorization: `Bearer ${CLIENT_KEY}`, "content-type": "application/json" },
          body: JSON.stringify({ model: "m", stream: isStream, messages: [{ role: "user", content: "hi" }] }),
        });
        assert.ok(answer !== undefined);
        const context = { method: "POST", path: `/v1/chat/completions (${first.label}; then ${second.label})` };
        assert.ok(performance.now() - startedAtMs < ANSWER_TIMEOUT_MS, `too slow: ${context.path}`);
        assertSound(answer, context);
        if (answer.status !== 200) return;
        if (!isStream) {
          const json = JSON.parse(answer.text) as { choices?: unknown };
          assert.ok(
            Array.isArray(json.choices),
            `a 200 without choices: ${context.path}: ${answer.text.slice(0, 200)}`,
          );
          return;
        }
        // A stream ends with [DONE] or with one in-band error event.
        const events = answer.text.split("\n\n").filter((event) => event.trim() !== "");
        const last = events.at(-1) ?? "";
        const isDone = last.trim() === "data: [DONE]";
        const isError = /^data: \{"error":/.test(last.trim());
        assert.ok(
          isDone || isError,
          `the stream ended with neither [DONE] nor an error: ${context.path}: ${last.slice(0, 200)}`,
        );
        if (isError) {
          const error = (JSON.parse(last.trim().slice(6)) as { error: Record<string, unknown> }).error;
          assert.equal(typeof error.message, "string");
          assert.equal(typeof error.type, "string");
        }
      }),
      { seed: SEED, numRuns: RUNS > 0 ? RUNS : 120, interruptAfterTimeLimit: 15_000, markInterruptAsFailure: false },
    );
    assert.deepEqual(unhandled, [], "no unhandled rejection or uncaught exception");
  });
});
