// A scripted OpenAI-compatible upstream on loopback for e2e tests: it answers what each test scripts (JSON, raw
// text, SSE with real delays, socket resets, hangs) and records every request it receives.
// It deliberately shares no code with the gateway (not even the SSE writer), so a gateway bug cannot hide in it.

import { once } from "node:events";
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from "node:http";
import type { Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

export type MockStep =
  /** Any status, including 200 with an error body. `delayMs` waits before the status line. */
  | { kind: "json"; body: unknown; status?: number; headers?: Record<string, string>; delayMs?: number }
  /** A raw body, e.g. a proxy's HTML 502 page. Content type defaults to text/plain. */
  | { kind: "text"; body: string; status: number; headers?: Record<string, string> }
  | {
      kind: "sse";
      events: SseScript[];
      status?: number;
      headers?: Record<string, string>;
      /** Wait before the status line and headers are sent. */
      headersDelayMs?: number;
      /**
       * How the stream ends after the scripted events. "done" (default): `data: [DONE]`, then a clean end.
       * "close-without-done": a clean end of the HTTP body without [DONE]. "destroy": the TCP connection is cut
       * mid-body (the client sees a truncated chunked body). "hang": the response stays open, never ended.
       */
      end?: "done" | "close-without-done" | "destroy" | "hang";
    }
  /** Reset the TCP connection (RST) before any response byte. */
  | { kind: "reset" }
  /** Accept the request and never answer, until the client aborts or the mock is closed. */
  | { kind: "hang" }
  /** Full control. A thrown error or rejected promise becomes a 500 (or a cut connection if headers were sent). */
  | { kind: "handler"; handle: (request: RecordedRequest, response: ServerResponse) => void | Promise<void> };

/**
 * One step of a scripted stream: `data` objects are JSON-encoded and strings written as they are, both as
 * `data: ...\n\n`; `raw` is written byte for byte (comments, CRLF, partial events); `delayMs` waits.
 */
export type SseScript = { data: unknown } | { raw: string } | { delayMs: number };

export interface RecordedRequest {
  method: string;
  /** The path without the query string, as used for routing. */
  path: string;
  /** The request target as sent, including any query string. */
  url: string;
  headers: IncomingHttpHeaders;
  bodyText: string;
  /** The body's bytes as received (a multipart upload's file is binary: `bodyText` would not keep it). */
  bodyBytes: Buffer;
  /** The body parsed as JSON, or undefined when it is empty or not JSON. */
  body: unknown;
  /** When the request's headers arrived (Date.now()). */
  receivedAtMs: number;
}

export interface MockModel {
  id: string;
  [key: string]: unknown;
}

export interface MockUpstream {
  /** "http://127.0.0.1:PORT/v1" */
  baseUrl: string;
  port: number;
  /** Every request received, in the order their steps were chosen (including GET /v1/models). */
  requests: RecordedRequest[];
  /** Queues steps for a route like "POST /v1/chat/completions"; each request consumes one, first in first out. */
  enqueue(route: string, ...steps: MockStep[]): void;
  /** The answer for a route when its queue is empty; replaces the built-in default. */
  setDefault(route: string, step: MockStep | ((request: RecordedRequest) => MockStep)): void;
  /** Served by GET /v1/models as {object:"list", data:[...]} unless a step is queued; may be reassigned. */
  models: MockModel[];
  /** Steps still queued, for one route or all of them: a test can assert that its whole script was used. */
  pendingSteps(route?: string): number;
  /** Sockets currently open, idle keep-alive ones included (for leak tests). */
  openConnections(): number;
  /** Requests whose response has neither finished nor been cut (for "was the upstream call aborted" tests). */
  activeRequests(): number;
  /** Resolves once `count` requests in total have been received; rejects after `timeoutMs`. */
  waitForRequests(count: number, timeoutMs?: number): Promise<RecordedRequest[]>;
  /** Clears queues, defaults and recorded requests (the `requests` array is emptied in place). */
  reset(): void;
  /** Closes the server and destroys every open socket, hanging ones included. Idempotent. */
  close(): Promise<void>;
}

export interface MockUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export type MockUsageInput = Omit<MockUsage, "total_tokens"> & { total_tokens?: number };

export interface ChatCompletionBody {
  id: string;
  object: "chat.completion";
  created: number;
  model: string;
  choices: Array<{
    index: number;
    message: { role: "assistant"; content: string; refusal: null };
    logprobs: null;
    finish_reason: string;
  }>;
  usage: MockUsage;
}

export interface ChatChunkBody {
  id: string;
  object: "chat.completion.chunk";
  created: number;
  model: string;
  choices: Array<{
    index: number;
    delta: { role?: "assistant"; content?: string };
    logprobs: null;
    finish_reason: string | null;
  }>;
  usage?: MockUsage;
}

/** Fixed, so that recorded outputs are deterministic (2026-01-01T00:00:00Z). */
const CREATED_SECONDS = 1767225600;
const CHAT_COMPLETION_ID = "chatcmpl-mock";
const DEFAULT_MODELS: MockModel[] = [{ id: "mock-model" }];
const DEFAULT_EMBEDDING_DIMENSIONS = 8;
const DEFAULT_WAIT_TIMEOUT_MS = 5000;
const ROUTE_PATTERN = /^[A-Z]+ \/\S*$/;

// ---------------------------------------------------------------------------------------------------------------
// Builders

export function chatCompletion(content: string, model: string, usage?: MockUsageInput): ChatCompletionBody {
  return {
    id: CHAT_COMPLETION_ID,
    object: "chat.completion",
    created: CREATED_SECONDS,
    model,
    choices: [
      { index: 0, message: { role: "assistant", content, refusal: null }, logprobs: null, finish_reason: "stop" },
    ],
    usage: completeUsage(usage ?? { prompt_tokens: 10, completion_tokens: countWords(content) }),
  };
}

/**
 * One chat.completion.chunk. The delta carries `content` when it is non-empty or the chunk is the role chunk,
 * so `chatChunk("", model, { finishReason: "stop" })` is OpenAI's final `"delta":{}` chunk.
 */
export function chatChunk(
  delta: string,
  model: string,
  options: { id?: string; role?: boolean; finishReason?: string | null } = {},
): ChatChunkBody {
  const deltaObject: { role?: "assistant"; content?: string } = {};
  if (options.role === true) deltaObject.role = "assistant";
  if (delta !== "" || options.role === true) deltaObject.content = delta;
  return {
    id: options.id ?? CHAT_COMPLETION_ID,
    object: "chat.completion.chunk",
    created: CREATED_SECONDS,
    model,
    choices: [{ index: 0, delta: deltaObject, logprobs: null, finish_reason: options.finishReason ?? null }],
  };
}

/** The trailing chunk OpenAI sends with `stream_options.include_usage`: no choices, only usage. */
export function chatUsageChunk(model: string, usage: MockUsageInput, options: { id?: string } = {}): ChatChunkBody {
  return {
    id: options.id ?? CHAT_COMPLETION_ID,
    object: "chat.completion.chunk",
    created: CREATED_SECONDS,
    model,
    choices: [],
    usage: completeUsage(usage),
  };
}

/** An in-stream error as OpenRouter fails a started stream: no choices, an `error` object (its `code` an HTTP status). */
export function chatErrorChunk(model: string, error: { code: number; message: string }): Record<string, unknown> {
  return { id: "chatcmpl-x", object: "chat.completion.chunk", model, choices: [], error };
}

/**
 * A whole chat stream as OpenAI sends it: a role chunk, one chunk per word, a finish chunk and, with `usage`, a
 * usage chunk (`true` counts one completion token per word). `delayMs` waits between consecutive events. The
 * closing `data: [DONE]` is not included: the "sse" step's `end` writes it.
 */
export function chatStream(
  words: string[],
  model: string,
  options: { delayMs?: number; usage?: boolean | MockUsageInput; finishReason?: string; id?: string } = {},
): SseScript[] {
  const id = options.id ?? CHAT_COMPLETION_ID;
  const chunks: ChatChunkBody[] = [chatChunk("", model, { id, role: true })];
  for (const word of words) chunks.push(chatChunk(word, model, { id }));
  chunks.push(chatChunk("", model, { id, finishReason: options.finishReason ?? "stop" }));
  if (options.usage !== undefined && options.usage !== false) {
    const usage = options.usage === true ? { prompt_tokens: 10, completion_tokens: words.length } : options.usage;
    chunks.push(chatUsageChunk(model, usage, { id }));
  }
  return withDelays(
    chunks.map((chunk) => ({ data: chunk })),
    options.delayMs,
  );
}

/**
 * `choices[].logprobs` as OpenAI's chat sends it for `logprobs: true, top_logprobs: 1`: one entry per token, the
 * token its own best alternative, a second alternative `" x"`, log probabilities -0.1, -0.2, ... in order.
 */
export function chatLogprobs(tokens: readonly string[], firstLogprob = -0.1): { content: unknown[] } {
  return {
    content: tokens.map((token, index) => {
      const logprob = Math.round((firstLogprob - index * 0.1) * 10) / 10;
      const bytes = [...Buffer.from(token, "utf8")];
      return {
        token,
        logprob,
        bytes,
        top_logprobs: [
          { token, logprob, bytes },
          { token: " x", logprob: -5, bytes: [32, 120] },
        ],
      };
    }),
  };
}

/** A 429 in OpenAI's shape; `retryAfter` becomes the `retry-after` header, `headers` are added as given. */
export function rateLimited(
  options: { retryAfter?: string; headers?: Record<string, string>; body?: unknown } = {},
): MockStep {
  const headers: Record<string, string> = {};
  if (options.retryAfter !== undefined) headers["retry-after"] = options.retryAfter;
  Object.assign(headers, options.headers);
  const body = options.body ?? {
    error: { message: "Rate limit reached for requests", type: "requests", param: null, code: "rate_limit_exceeded" },
  };
  return { kind: "json", status: 429, headers, body };
}

function completeUsage(usage: MockUsageInput): MockUsage {
  return {
    prompt_tokens: usage.prompt_tokens,
    completion_tokens: usage.completion_tokens,
    total_tokens: usage.total_tokens ?? usage.prompt_tokens + usage.completion_tokens,
  };
}

function withDelays(events: SseScript[], delayMs: number | undefined): SseScript[] {
  if (delayMs === undefined || delayMs <= 0) return events;
  const result: SseScript[] = [];
  for (const [index, event] of events.entries()) {
    if (index > 0) result.push({ delayMs });
    result.push(event);
  }
  return result;
}

/** The mock's stand-in for a tokenizer: one token per whitespace-separated word. */
function countWords(text: string): number {
  const trimmed = text.trim();
  return trimmed === "" ? 0 : trimmed.split(/\s+/).length;
}

// ---------------------------------------------------------------------------------------------------------------
// Built-in answers when nothing is scripted

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

function invalidRequest(message: string, param: string | null): MockStep {
  return { kind: "json", status: 400, body: { error: { message, type: "invalid_request_error", param, code: null } } };
}

function textOf(value: unknown): string {
  if (typeof value === "string") return value;
  if (Array.isArray(value)) return value.map(textOf).join(" ");
  const record = asRecord(value);
  if (record === undefined) return "";
  // Message objects ({role, content}) and content parts ({type: "text", text}).
  return textOf(record.content ?? record.text);
}

function includesUsage(body: Record<string, unknown>): boolean {
  return asRecord(body.stream_options)?.include_usage === true;
}

function defaultChatCompletions(request: RecordedRequest): MockStep {
  const body = asRecord(request.body);
  if (body === undefined) return invalidRequest("The body must be a JSON object.", null);
  if (typeof body.model !== "string") return invalidRequest("you must provide a model parameter", "model");
  const model = body.model;
  const usage = { prompt_tokens: countWords(textOf(body.messages)), completion_tokens: 3 };
  if (body.stream === true) {
    const words = ["echo", " from", ` ${model}`];
    return { kind: "sse", events: chatStream(words, model, { usage: includesUsage(body) ? usage : false }) };
  }
  return { kind: "json", body: chatCompletion(`echo from ${model}`, model, usage) };
}

function defaultCompletions(request: RecordedRequest): MockStep {
  const body = asRecord(request.body);
  if (body === undefined) return invalidRequest("The body must be a JSON object.", null);
  if (typeof body.model !== "string") return invalidRequest("you must provide a model parameter", "model");
  const model = body.model;
  const usage = completeUsage({ prompt_tokens: countWords(textOf(body.prompt)), completion_tokens: 3 });
  const completion = (text: string, finishReason: string | null) => ({
    id: "cmpl-mock",
    object: "text_completion",
    created: CREATED_SECONDS,
    model,
    choices: [{ text, index: 0, logprobs: null, finish_reason: finishReason }],
  });
  if (body.stream === true) {
    const events: SseScript[] = ["echo", " from", ` ${model}`].map((text) => ({ data: completion(text, null) }));
    events.push({ data: completion("", "stop") });
    if (includesUsage(body)) events.push({ data: { ...completion("", null), choices: [], usage } });
    return { kind: "sse", events };
  }
  return { kind: "json", body: { ...completion(`echo from ${model}`, "stop"), usage } };
}

/** A deterministic vector per input text, so that tests can compare embeddings across providers. */
function embeddingOf(text: string, dimensions: number): number[] {
  const vector: number[] = [];
  let hash = 2166136261;
  for (let index = 0; index < text.length; index++) hash = Math.imul(hash ^ text.charCodeAt(index), 16777619);
  for (let index = 0; index < dimensions; index++) {
    hash = Math.imul(hash ^ (index + 1), 16777619);
    vector.push(((hash >>> 0) % 2001) / 1000 - 1);
  }
  return vector;
}

function defaultEmbeddings(request: RecordedRequest): MockStep {
  const body = asRecord(request.body);
  if (body === undefined) return invalidRequest("The body must be a JSON object.", null);
  if (typeof body.model !== "string") return invalidRequest("you must provide a model parameter", "model");
  const input = body.input;
  // A string, an array of strings, or token arrays: each element of an array is one input.
  const inputs: unknown[] = Array.isArray(input) && typeof input[0] !== "number" ? input : [input];
  if (input === undefined || inputs.length === 0) return invalidRequest("'input' is a required property", "input");
  const dimensions =
    typeof body.dimensions === "number" && body.dimensions > 0 ? body.dimensions : DEFAULT_EMBEDDING_DIMENSIONS;
  // The official OpenAI SDKs ask for base64 (little-endian float32) by default and decode it themselves.
  const isBase64 = body.encoding_format === "base64";
  const data = inputs.map((item, index) => {
    const vector = embeddingOf(typeof item === "string" ? item : JSON.stringify(item), dimensions);
    const embedding = isBase64 ? Buffer.from(new Float32Array(vector).buffer).toString("base64") : vector;
    return { object: "embedding", index, embedding };
  });
  const promptTokens = inputs.reduce<number>((sum, item) => sum + Math.max(1, countWords(textOf(item))), 0);
  return {
    kind: "json",
    body: {
      object: "list",
      data,
      model: body.model,
      usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The server

function assertRoute(route: string): void {
  if (!ROUTE_PATTERN.test(route)) {
    throw new TypeError(`Mock route must look like "POST /v1/chat/completions", got ${JSON.stringify(route)}`);
  }
}

function parseJson(text: string): unknown {
  if (text === "") return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function mergeHeaders(
  defaults: OutgoingHttpHeaders,
  overrides: Record<string, string> | undefined,
): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = { ...defaults };
  for (const [name, value] of Object.entries(overrides ?? {})) headers[name.toLowerCase()] = value;
  return headers;
}

function isOpen(response: ServerResponse): boolean {
  return !response.destroyed && !response.writableEnded && response.socket !== null && !response.socket.destroyed;
}

/** Resolves true after `ms`, or false as soon as `signal` aborts (the client left, or the mock closed). */
function wait(ms: number, signal: AbortSignal): Promise<boolean> {
  return sleep(ms, undefined, { signal }).then(
    () => true,
    () => false,
  );
}

/**
 * Writes and resolves once Node has handed the bytes to the socket, so each event leaves in its own write (a
 * test can observe timing) and "destroy" cannot discard events still buffered. False if the response is gone.
 */
function writeFlushed(response: ServerResponse, text: string, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted || !isOpen(response)) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => resolve(false);
    signal.addEventListener("abort", onAbort, { once: true });
    response.write(text, (error) => {
      signal.removeEventListener("abort", onAbort);
      resolve(error === undefined || error === null);
    });
  });
}

function sseEvent(data: unknown): string {
  return `data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`;
}

async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function runStep(
  step: MockStep,
  request: RecordedRequest,
  response: ServerResponse,
  signal: AbortSignal,
): Promise<void> {
  switch (step.kind) {
    case "json": {
      if (step.delayMs !== undefined && !(await wait(step.delayMs, signal))) return;
      if (!isOpen(response)) return;
      const text = JSON.stringify(step.body) ?? "";
      const headers = mergeHeaders(
        { "content-type": "application/json", "content-length": Buffer.byteLength(text) },
        step.headers,
      );
      response.writeHead(step.status ?? 200, headers).end(text);
      return;
    }
    case "text": {
      const headers = mergeHeaders(
        { "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(step.body) },
        step.headers,
      );
      response.writeHead(step.status, headers).end(step.body);
      return;
    }
    case "sse":
      await runSse(step, response, signal);
      return;
    case "reset":
      response.socket?.resetAndDestroy();
      return;
    case "hang":
      return;
    case "handler":
      try {
        await step.handle(request, response);
      } catch (error) {
        if (!isOpen(response)) return;
        if (response.headersSent) {
          response.destroy();
          return;
        }
        const message = error instanceof Error ? error.message : String(error);
        const text = JSON.stringify({ error: { message: `mock handler threw: ${message}`, type: "server_error" } });
        response.writeHead(500, { "content-type": "application/json" }).end(text);
      }
      return;
  }
}

async function runSse(
  step: Extract<MockStep, { kind: "sse" }>,
  response: ServerResponse,
  signal: AbortSignal,
): Promise<void> {
  if (step.headersDelayMs !== undefined && !(await wait(step.headersDelayMs, signal))) return;
  if (!isOpen(response)) return;
  const headers = mergeHeaders(
    { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" },
    step.headers,
  );
  response.writeHead(step.status ?? 200, headers);
  response.flushHeaders();
  for (const item of step.events) {
    if ("delayMs" in item) {
      if (!(await wait(item.delayMs, signal))) return;
      continue;
    }
    const text = "raw" in item ? item.raw : sseEvent(item.data);
    if (!(await writeFlushed(response, text, signal))) return;
  }
  switch (step.end ?? "done") {
    case "done":
      if (await writeFlushed(response, "data: [DONE]\n\n", signal)) response.end();
      return;
    case "close-without-done":
      response.end();
      return;
    case "destroy":
      // A FIN in the middle of a chunked body: the client gets every event written so far, then a body error.
      response.socket?.destroy();
      return;
    case "hang":
      return;
  }
}

export async function startMockUpstream(options: { models?: MockModel[] } = {}): Promise<MockUpstream> {
  const queues = new Map<string, MockStep[]>();
  const defaults = new Map<string, MockStep | ((request: RecordedRequest) => MockStep)>();
  const sockets = new Set<Socket>();
  const activeResponses = new Set<ServerResponse>();
  const requests: RecordedRequest[] = [];
  const waiters = new Set<() => void>();
  // Aborted by close(): cancels every pending delay so no timer outlives the mock.
  const closeController = new AbortController();
  let closing: Promise<void> | undefined;

  const builtInDefaults: Record<string, (request: RecordedRequest) => MockStep> = {
    "POST /v1/chat/completions": defaultChatCompletions,
    "POST /v1/completions": defaultCompletions,
    "POST /v1/embeddings": defaultEmbeddings,
    "GET /v1/models": () => ({
      kind: "json",
      body: {
        object: "list",
        data: mock.models.map((model) => ({ object: "model", created: CREATED_SECONDS, owned_by: "mock", ...model })),
      },
    }),
  };

  function chooseStep(route: string, request: RecordedRequest): MockStep {
    const queued = queues.get(route)?.shift();
    if (queued !== undefined) return queued;
    const fallback = defaults.get(route) ?? builtInDefaults[route];
    if (fallback !== undefined) return typeof fallback === "function" ? fallback(request) : fallback;
    return {
      kind: "json",
      status: 404,
      body: {
        error: { message: `mock upstream: no route ${route}`, type: "invalid_request_error", code: "not_found" },
      },
    };
  }

  async function handleRequest(incoming: IncomingMessage, response: ServerResponse): Promise<void> {
    const receivedAtMs = Date.now();
    // Writing to a response whose client left is expected here; never let it crash the test process.
    response.on("error", () => {});
    activeResponses.add(response);
    const responseController = new AbortController();
    response.on("close", () => {
      activeResponses.delete(response);
      responseController.abort();
    });
    const signal = AbortSignal.any([responseController.signal, closeController.signal]);

    let bodyBytes: Buffer;
    try {
      bodyBytes = await readBody(incoming);
    } catch {
      return; // The client went away before sending its whole body.
    }
    const url = incoming.url ?? "/";
    const queryStart = url.indexOf("?");
    const record: RecordedRequest = {
      method: incoming.method ?? "GET",
      path: queryStart === -1 ? url : url.slice(0, queryStart),
      url,
      headers: incoming.headers,
      bodyText: bodyBytes.toString("utf8"),
      bodyBytes,
      body: parseJson(bodyBytes.toString("utf8")),
      receivedAtMs,
    };
    requests.push(record);
    for (const waiter of waiters) waiter();
    const step = chooseStep(`${record.method} ${record.path}`, record);
    await runStep(step, record, response, signal);
  }

  const server = createServer((incoming, response) => {
    handleRequest(incoming, response).catch((error: unknown) => {
      // A bug in the mock itself: make it visible to the client rather than hanging the test.
      if (!response.headersSent && isOpen(response)) {
        response.writeHead(500, { "content-type": "text/plain" }).end(`mock upstream crashed: ${String(error)}`);
      } else {
        response.destroy();
      }
    });
  });
  server.on("connection", (socket: Socket) => {
    // Each write leaves at once instead of waiting for an ACK (Nagle), so delays between events are observable.
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("mock upstream: unexpected listen address");
  const port = address.port;

  const mock: MockUpstream = {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    port,
    requests,
    models: [...(options.models ?? DEFAULT_MODELS)],
    enqueue(route, ...steps) {
      assertRoute(route);
      const queue = queues.get(route);
      if (queue === undefined) queues.set(route, [...steps]);
      else queue.push(...steps);
    },
    setDefault(route, step) {
      assertRoute(route);
      defaults.set(route, step);
    },
    pendingSteps(route) {
      if (route !== undefined) return queues.get(route)?.length ?? 0;
      let count = 0;
      for (const queue of queues.values()) count += queue.length;
      return count;
    },
    openConnections: () => sockets.size,
    activeRequests: () => activeResponses.size,
    waitForRequests(count, timeoutMs = DEFAULT_WAIT_TIMEOUT_MS) {
      if (requests.length >= count) return Promise.resolve(requests);
      return new Promise((resolve, reject) => {
        const check = () => {
          if (requests.length < count) return;
          cleanUp();
          resolve(requests);
        };
        const timer = setTimeout(() => {
          cleanUp();
          reject(new Error(`mock upstream: waited ${timeoutMs} ms for ${count} requests, got ${requests.length}`));
        }, timeoutMs);
        const cleanUp = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
      });
    },
    reset() {
      queues.clear();
      defaults.clear();
      requests.length = 0;
    },
    close() {
      closing ??= (async () => {
        closeController.abort();
        const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
        // Wait for each socket's own close event, so that openConnections() is 0 once close() resolves.
        const socketsClosed = [...sockets].map((socket) => {
          const closed = once(socket, "close");
          socket.destroy();
          return closed;
        });
        await Promise.all([serverClosed, ...socketsClosed]);
      })();
      return closing;
    },
  };
  return mock;
}
