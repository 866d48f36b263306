// Seeded structural fuzzing of every front door (bounded: ~6 s here, well under 20 s on a loaded runner). Where
// test/e2e/fuzz.test.ts throws random JSON at the routes, this one starts from a VALID request of each protocol
// (Chat Completions, Completions, Embeddings, Responses, Messages, count_tokens) and breaks it a field at a time:
// fields deleted, replaced by other JSON types (null, huge and unparseable numbers, NaN-like strings, arrays,
// objects, deep nesting, long strings, unicode, lone surrogates, empty strings), duplicated keys, prototype names;
// the body cut, framed as an array or a scalar, sent with the wrong content type. GET and DELETE routes get odd
// query strings (repeated, huge, negative, non-numeric) and path ids (encoded, very long, dots), every request
// odd headers (several Authorization headers, huge values, x-session-id and Accept variants). Then the UPSTREAM
// lies: valid chat/completions/embeddings answers (JSON and SSE) with fields of the wrong type, the faults named
// in NAMED_UPSTREAM_FAULTS at every translated door, and error answers of the wrong shape.
// Every answer must be sound: no 5xx but an upstream failure (502/503/504 with an upstream error code), the
// caller's protocol's error shape on every error, the right content type, a stream that ends with its protocol's
// last event, whole token counts in translated answers, /stats and /metrics, no key (client, admin or upstream)
// in any answer or log line nor a gateway key sent upstream, no unhandled rejection, and no hang (undici's
// header and body timeouts, ANSWER_TIMEOUT_MS).
//
// Deterministic: the cases come from FUZZ_SEED (default below) only. A failure names its case as
// `<phase>#<index>`; re-run that case alone (without the learned state earlier cases left) with
//   FUZZ_SEED=<seed> FUZZ_CASE=<phase>#<index> node --test test/e2e/fuzz-front-doors.test.ts
// FUZZ_SCALE=<n> runs n times as many cases (a longer hunt with the same seed, or FUZZ_SEED=$RANDOM for new ones);
// FUZZ_SHOW=<status> prints every case answered with that status, FUZZ_SLOW_MS=<ms> every case slower than that.
import assert from "node:assert/strict";
import type { ServerResponse } from "node:http";
import { describe, type TestContext, test } from "node:test";
import { type Answer, type Headers, leakProblems, parsed, type Sent, useFuzzGateway } from "../helpers/fuzz-gateway.ts";
import type { RecordedRequest } from "../helpers/mock-upstream.ts";
import {
  hostileValue,
  isObject,
  type JsonObject,
  mutate,
  preview,
  Random,
  RawJson,
  runSeededCases,
  toJsonText,
} from "../helpers/structural-fuzz.ts";

const DEFAULT_SEED = 20_260_101;
const SEED = process.env.FUZZ_SEED === undefined ? DEFAULT_SEED : Number(process.env.FUZZ_SEED);
const SCALE = Number(process.env.FUZZ_SCALE ?? 1);
/** `phase#index`: run only that case (replaying a failure). */
const ONLY_CASE = process.env.FUZZ_CASE;
const FUZZ_RUN = { seed: SEED, scale: SCALE, onlyCase: ONLY_CASE };

const CLIENT_KEY = "fuzz-doors-client-key-3c9e";
const ADMIN_KEY = "fuzz-doors-admin-key-b8d2";
const UPSTREAM_KEY = "sk-fuzz-doors-upstream-71a4f0e2";
const SECRETS = [CLIENT_KEY, ADMIN_KEY, UPSTREAM_KEY];
/** Longest one answer may take: well above the gateway's own bound (total_timeout_ms 3 s). */
const ANSWER_TIMEOUT_MS = 6_000;
const BODY_LIMIT_BYTES = 400_000;
/** Error codes a 5xx may carry: the upstream failed, not the gateway. */
const UPSTREAM_FAILURE_CODES = new Set(["upstream_unavailable", "upstream_timeout", "stream_interrupted"]);

// ---- the valid requests each mutation starts from ----

const WEATHER_TOOL_PARAMETERS = {
  type: "object",
  properties: { city: { type: "string" } },
  required: ["city"],
};

interface FrontDoor {
  readonly name: string;
  readonly paths: readonly string[];
  /** A valid body; `isStream` when the door streams; with `random`, some optional fields of the protocol too. */
  readonly body: (isStream: boolean, random?: Random) => Record<string, unknown>;
  readonly canStream: boolean;
  readonly protocol: "openai" | "anthropic";
  /** How its stream ends well, or badly but cleanly. */
  readonly stream: "chat" | "responses" | "messages";
}

const FRONT_DOORS: readonly FrontDoor[] = [
  {
    name: "chat",
    paths: ["/v1/chat/completions", "/chat/completions"],
    canStream: true,
    protocol: "openai",
    stream: "chat",
    body: (isStream, random) => ({
      model: "m",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: [{ type: "text", text: "Weather in Paris?" }] },
        {
          role: "assistant",
          content: null,
          tool_calls: [
            { id: "call_1", type: "function", function: { name: "weather", arguments: '{"city":"Paris"}' } },
          ],
        },
        { role: "tool", tool_call_id: "call_1", content: "sunny" },
      ],
      tools: [{ type: "function", function: { name: "weather", parameters: WEATHER_TOOL_PARAMETERS } }],
      tool_choice: "auto",
      max_tokens: 50,
      temperature: 0.5,
      stop: ["\n\n"],
      user: "user-1",
      stream: isStream,
      ...(isStream ? { stream_options: { include_usage: true } } : {}),
      ...someOf(random, {
        models: ["m", "alpha/m"],
        n: 1,
        seed: 7,
        logprobs: false,
        parallel_tool_calls: true,
        max_completion_tokens: 40,
        reasoning_effort: "low",
        response_format: { type: "json_object" },
        metadata: { team: "fuzz" },
      }),
    }),
  },
  {
    name: "completions",
    paths: ["/v1/completions", "/completions"],
    canStream: true,
    protocol: "openai",
    stream: "chat",
    body: (isStream) => ({
      model: "m",
      prompt: ["Say hi", "and bye"],
      max_tokens: 20,
      stream: isStream,
      echo: false,
    }),
  },
  {
    name: "embeddings",
    paths: ["/v1/embeddings", "/embeddings"],
    canStream: false,
    protocol: "openai",
    stream: "chat",
    body: () => ({ model: "e", input: ["hello", "world"], encoding_format: "float", dimensions: 8 }),
  },
  {
    name: "responses",
    paths: ["/v1/responses", "/responses"],
    canStream: true,
    protocol: "openai",
    stream: "responses",
    body: (isStream, random) => ({
      model: "m",
      instructions: "Be brief.",
      input: [
        { role: "user", content: [{ type: "input_text", text: "Weather in Paris?" }] },
        { type: "function_call", call_id: "call_1", name: "weather", arguments: '{"city":"Paris"}' },
        { type: "function_call_output", call_id: "call_1", output: "sunny" },
      ],
      tools: [{ type: "function", name: "weather", parameters: WEATHER_TOOL_PARAMETERS }],
      tool_choice: "auto",
      max_output_tokens: 50,
      text: { format: { type: "text" } },
      store: true,
      metadata: { team: "fuzz" },
      stream: isStream,
      ...someOf(random, {
        previous_response_id: knownIds.responses[0] ?? "resp_none",
        reasoning: { effort: "low" },
        truncation: "auto",
        parallel_tool_calls: false,
        user: "user-1",
        temperature: 0.2,
        include: ["reasoning.encrypted_content"],
      }),
    }),
  },
  {
    name: "messages",
    paths: ["/v1/messages", "/messages"],
    canStream: true,
    protocol: "anthropic",
    stream: "messages",
    body: (isStream, random) => ({
      model: "m",
      max_tokens: 50,
      system: [{ type: "text", text: "Be brief." }],
      messages: [
        { role: "user", content: "Weather in Paris?" },
        {
          role: "assistant",
          content: [{ type: "tool_use", id: "toolu_1", name: "weather", input: { city: "Paris" } }],
        },
        { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_1", content: "sunny" }] },
      ],
      tools: [{ name: "weather", description: "Weather", input_schema: WEATHER_TOOL_PARAMETERS }],
      tool_choice: { type: "auto" },
      stop_sequences: ["\n\n"],
      temperature: 0.5,
      metadata: { user_id: "user-1" },
      stream: isStream,
      ...someOf(random, {
        thinking: { type: "enabled", budget_tokens: 1024 },
        top_k: 5,
        top_p: 0.9,
        service_tier: "auto",
      }),
    }),
  },
  {
    name: "count_tokens",
    paths: ["/v1/messages/count_tokens", "/messages/count_tokens"],
    canStream: false,
    protocol: "anthropic",
    stream: "messages",
    body: () => ({
      model: "m",
      system: "Be brief.",
      messages: [{ role: "user", content: [{ type: "text", text: "Weather in Paris?" }] }],
      tools: [{ name: "weather", input_schema: WEATHER_TOOL_PARAMETERS }],
    }),
  },
];

/** Each of `fields` with even odds (none without `random`): the optional fields a valid request may carry. */
function someOf(random: Random | undefined, fields: Record<string, unknown>): Record<string, unknown> {
  if (random === undefined) return {};
  return Object.fromEntries(Object.entries(fields).filter(() => random.chance(0.3)));
}

// ---- headers ----

function authorizationHeaders(random: Random, key: string): Headers {
  // Mostly the plain header, so that most cases get past the key check to the code under test.
  switch (random.int(30)) {
    case 0:
      return { "x-api-key": key };
    case 1:
      return { "api-key": key };
    case 2:
      return { authorization: [`Bearer ${key}`, `Bearer ${key}`] };
    case 3:
      return { authorization: ["Bearer not-the-key", `Bearer ${key}`] };
    case 4:
      return { authorization: [`Bearer ${key}`, "Bearer not-the-key"] };
    case 5:
      return { authorization: `Bearer ${key}`, "x-api-key": "not-the-key" };
    case 6:
      return { authorization: random.pick([`bearer ${key}`, `Bearer  ${key} `, `Basic ${btoa(`u:${key}`)}`, key]) };
    case 7:
      return { authorization: random.pick(["Bearer", "Bearer ", "", `Bearer ${"k".repeat(8_000)}`]) };
    case 8:
      return {};
    default:
      return { authorization: `Bearer ${key}` };
  }
}

function oddHeaders(random: Random): Headers {
  const headers: Headers = {};
  if (random.chance(0.3)) {
    headers["x-session-id"] = random.pick<string | string[]>([
      "",
      "s",
      "x".repeat(600),
      "y".repeat(9_000),
      ["one", "two"],
      "caf\u00e9",
      "../../etc",
      "__proto__",
      "constructor",
      " spaced out ",
    ]);
  }
  if (random.chance(0.3)) {
    headers.accept = random.pick([
      "text/event-stream",
      "application/json",
      "*/*",
      "application/xml",
      "",
      "text/html;q=0.1, garbage/;;",
      "application/json, text/event-stream",
    ]);
  }
  if (random.chance(0.15)) {
    headers["x-request-id"] = random.pick<string | string[]>(["", "r".repeat(300), "a b", ["r1", "r2"], "__proto__"]);
  }
  if (random.chance(0.1)) headers["x-filler"] = "f".repeat(random.pick([1_000, 8_000, 14_000]));
  if (random.chance(0.1)) headers["anthropic-version"] = random.pick(["2023-06-01", "", "1999-01-01", "x".repeat(500)]);
  if (random.chance(0.05)) headers["content-encoding"] = random.pick(["identity", "gzip", "br", "x"]);
  return headers;
}

// ---- the gateway and its upstream ----

const fuzz = useFuzzGateway({
  upstreamModels: [{ id: "alpha-m" }, { id: "alpha-e" }],
  config: (upstreamBaseUrl) => ({
    server: {
      port: 0,
      host: "127.0.0.1",
      api_keys: [CLIENT_KEY],
      admin_keys: [ADMIN_KEY],
      body_limit_bytes: BODY_LIMIT_BYTES,
    },
    providers: [
      {
        name: "alpha",
        base_url: upstreamBaseUrl,
        api_key: UPSTREAM_KEY,
        retries: 0,
        timeout_ms: 2_000,
        first_token_timeout_ms: 1_500,
        stream_idle_timeout_ms: 1_500,
        models: { m: { id: "alpha-m" }, e: { id: "alpha-e", kind: "embedding" } },
      },
    ],
    routing: { total_timeout_ms: 3_000, max_attempts: 2 },
    cooldowns: { failure_threshold: 100_000 },
  }),
  connections: 8,
  answerTimeoutMs: ANSWER_TIMEOUT_MS,
});
const send = fuzz.send;
/** Ids the GET routes can look up: kept responses and recorded requests. */
const knownIds = { responses: [] as string[], requests: [] as string[] };

function isAnthropicPath(path: string): boolean {
  return /^\/(v1\/)?messages(\/|\?|$)/.test(path);
}

/** Problems with one answer, as sentences (empty when it is sound). */
function problemsOf(sent: Sent, answer: Answer): string[] {
  const problems = leakProblems(answer, SECRETS);
  // As it went on the wire: the URL parser resolves dot segments (`/v1/messages/..` is `/v1/`).
  const path = new URL(sent.path, "http://gateway").pathname;
  const contentType = answer.headers["content-type"] ?? "";
  if (answer.status >= 300 && answer.status < 400) return problems;
  if (path === "/health" && answer.status === 503) return problems;
  if (answer.status >= 400) {
    problems.push(...errorShapeProblems(path, answer, isAnthropicModelList(sent, path)));
    if (answer.status >= 500) {
      const code = (parsed(answer.text) as { error?: { code?: unknown } } | undefined)?.error?.code;
      const isUpstreamFailure =
        [502, 503, 504].includes(answer.status) &&
        (isAnthropicPath(path) || (typeof code === "string" && UPSTREAM_FAILURE_CODES.has(code)));
      if (!isUpstreamFailure) problems.push(`a ${answer.status} that is not an upstream failure`);
    }
    return problems;
  }
  if (path === "/metrics") {
    if (!contentType.startsWith("text/plain")) problems.push(`/metrics as ${contentType}`);
    return problems;
  }
  if (path === "/dashboard") {
    if (!contentType.startsWith("text/html")) problems.push(`/dashboard as ${contentType}`);
    return problems;
  }
  if (contentType.startsWith("text/event-stream")) {
    if (sent.method !== "POST") problems.push("a stream from a GET");
    problems.push(...streamProblems(path, answer.text));
    return problems;
  }
  if (!contentType.startsWith("application/json")) problems.push(`a ${answer.status} as ${contentType || "no type"}`);
  else if (parsed(answer.text) === undefined) problems.push("a JSON answer that does not parse");
  return problems;
}

/** The model list asked by Anthropic's clients (an `anthropic-version` header) answers, errors too, in its shape. */
function isAnthropicModelList(sent: Sent, path: string): boolean {
  return typeof sent.headers["anthropic-version"] === "string" && /^\/(v1\/)?models(\/|$)/.test(path);
}

function errorShapeProblems(path: string, answer: Answer, isAnthropicShaped = false): string[] {
  const problems: string[] = [];
  if (!(answer.headers["content-type"] ?? "").startsWith("application/json")) {
    problems.push(`an error as ${answer.headers["content-type"] ?? "no type"}`);
  }
  const body = parsed(answer.text);
  if (!isObject(body)) return [...problems, "an error body that is not a JSON object"];
  const error = body.error;
  if (!isObject(error)) return [...problems, "no `error` object"];
  if (typeof error.message !== "string" || typeof error.type !== "string") problems.push("error.message/type");
  if (isAnthropicPath(path) || isAnthropicShaped) {
    if (body.type !== "error") problems.push("not Anthropic-shaped (type: error)");
  } else if (!("code" in error && "param" in error)) {
    problems.push("error.code and error.param missing");
  } else {
    // OpenAI's SDKs type both as string | null.
    for (const field of ["code", "param"]) {
      const value = error[field];
      if (value !== null && typeof value !== "string") problems.push(`error.${field} = ${JSON.stringify(value)}`);
    }
  }
  return problems;
}

/** A stream is events of JSON and ends with its protocol's last event (or one in-band error). */
function streamProblems(path: string, text: string): string[] {
  const events = text
    .split(/\n\n/)
    .map((event) => event.trim())
    .filter((event) => event !== "" && !event.startsWith(":"));
  const problems: string[] = [];
  const datas: unknown[] = [];
  const names: string[] = [];
  for (const event of events) {
    const lines = event.split("\n");
    const name = lines.find((line) => line.startsWith("event: "))?.slice(7);
    const data = lines
      .filter((line) => line.startsWith("data: "))
      .map((line) => line.slice(6))
      .join("\n");
    names.push(name ?? "");
    if (data === "[DONE]") {
      datas.push("[DONE]");
      continue;
    }
    const value = parsed(data);
    if (value === undefined) problems.push(`an event that is not JSON: ${event.slice(0, 80)}`);
    datas.push(value);
  }
  const last = datas.at(-1);
  const lastName = names.at(-1) ?? "";
  if (/^\/(v1\/)?responses/.test(path)) {
    const type = isObject(last) ? last.type : undefined;
    if (!["response.completed", "response.incomplete", "response.failed"].includes(String(type))) {
      problems.push(`a Responses stream that ends with ${String(type)}`);
    }
  } else if (isAnthropicPath(path)) {
    if (!["message_stop", "error"].includes(lastName)) problems.push(`a Messages stream that ends with ${lastName}`);
    if (lastName === "error" && !(isObject(last) && last.type === "error" && isObject(last.error))) {
      problems.push("a Messages error event that is not Anthropic-shaped");
    }
  } else if (!(last === "[DONE]" || (isObject(last) && isObject(last.error)))) {
    problems.push("a stream that ends with neither [DONE] nor an error event");
  }
  return problems;
}

/** The gateway's own keys (client, admin) must never go upstream: only the provider's key does. */
function keysSentUpstream(): string[] {
  const problems: string[] = [];
  for (const recorded of fuzz.upstream.requests.splice(0)) {
    const text = `${JSON.stringify(recorded.headers)} ${recorded.url}`;
    for (const secret of [CLIENT_KEY, ADMIN_KEY]) {
      if (text.includes(secret)) problems.push(`a gateway key sent upstream (${secret.slice(0, 12)}…)`);
    }
  }
  return problems;
}

/** Each phase collects its failures with their case names and asserts once, so one run shows them all. */
class Findings {
  readonly #lines: string[] = [];
  /** Answers by status class (`2xx`, `4xx`, ...): a phase whose cases all end the same way tests little. */
  readonly statusClasses = new Map<string, number>();
  /** Answers by status, e.g. `{"200": 31, "400": 200}`, for the test's diagnostics. */
  readonly statuses = new Map<number, number>();
  count(status: number): void {
    const statusClass = `${Math.floor(status / 100)}xx`;
    this.statusClasses.set(statusClass, (this.statusClasses.get(statusClass) ?? 0) + 1);
    this.statuses.set(status, (this.statuses.get(status) ?? 0) + 1);
  }
  add(caseName: string, sent: Sent, answer: Answer | undefined, problems: readonly string[], note = ""): void {
    if (problems.length === 0) return;
    const shown = answer === undefined ? "no answer" : `${answer.status} ${answer.text.slice(0, 200)}`;
    this.#lines.push(
      `${caseName} ${sent.method} ${sent.path.slice(0, 120)} ${note}\n    ${problems.join("; ")}\n    -> ${shown}`,
    );
  }
  /** No unsound answer, and (unless one case was replayed) answers of each of `classes`. */
  assertNone(t: TestContext, classes: readonly string[]): void {
    const statuses = [...this.statuses].sort(([a], [b]) => a - b);
    t.diagnostic(`answers by status: ${statuses.map(([status, count]) => `${status}×${count}`).join(" ")}`);
    if (ONLY_CASE === undefined) {
      for (const statusClass of classes) {
        assert.ok((this.statusClasses.get(statusClass) ?? 0) > 0, `no ${statusClass} answer: the cases test little`);
      }
    }
    assert.equal(
      this.#lines.length,
      0,
      `${this.#lines.length} unsound answers (FUZZ_SEED=${SEED}):\n${this.#lines.slice(0, 25).join("\n")}`,
    );
  }
}

async function sendAndCheck(findings: Findings, caseName: string, sent: Sent, note = ""): Promise<Answer | undefined> {
  let answer: Answer;
  const startedAtMs = performance.now();
  try {
    answer = await send(sent);
    if (process.env.FUZZ_SLOW_MS !== undefined && performance.now() - startedAtMs > Number(process.env.FUZZ_SLOW_MS))
      console.log("SLOW", caseName, Math.round(performance.now() - startedAtMs), answer.status, note.slice(0, 300));
  } catch (error) {
    const code = (error as { code?: string }).code;
    // undici refused to send it (a header value it will not write): nothing reached the gateway.
    if (code === "UND_ERR_INVALID_ARG") return undefined;
    findings.add(caseName, sent, undefined, [`no answer: ${code ?? String(error)}`], note);
    return undefined;
  }
  findings.count(answer.status);
  if (process.env.FUZZ_SHOW === String(answer.status)) console.log("SHOW", caseName, note, answer.text.slice(0, 400));
  findings.add(caseName, sent, answer, [...problemsOf(sent, answer), ...keysSentUpstream()], note);
  // Learned limits would turn the next cases into 429s/503s that never reach the code under test.
  if (answer.status === 429 || answer.status === 503) await fuzz.gateway.runtime.resetLimits();
  return answer;
}

// ---- request framing: how the (mutated) body goes on the wire ----

function frameBody(random: Random, body: unknown): { body: string | Buffer; note: string; contentType?: string } {
  const text = toJsonText(body);
  switch (random.int(20)) {
    case 0:
      return { body: `[${text}]`, note: "body in an array" };
    case 1:
      return { body: random.pick(["42", '"a string"', "null", "true", "[]", "{}", "-0", "1e999"]), note: "scalar" };
    case 2:
      return { body: text.slice(0, random.int(text.length)), note: "truncated" };
    case 3:
      return {
        body: random.pick([
          `${text.slice(0, -1)},}`,
          text.replaceAll('"', "'"),
          text.replace(/"(\w+)":/, "$1:"),
          `${text}${text}`,
          `${text} trailing`,
          text.replace(/:\s*(\d+)/, ":NaN"),
          `// comment\n${text}`,
        ]),
        note: "invalid JSON",
      };
    case 4:
      return { body: "", note: "empty" };
    case 5:
      return { body: `\ufeff${text}`, note: "BOM" };
    case 6:
      return {
        body: Buffer.concat([Buffer.from(text.slice(0, -2)), Buffer.from([0xc3, 0x28, 0xff, 0xfe]), Buffer.from("}")]),
        note: "invalid UTF-8",
      };
    case 7:
    case 8:
      return {
        body: text,
        note: "content type",
        contentType: random.pick([
          "text/plain",
          "application/x-www-form-urlencoded",
          "multipart/form-data; boundary=x",
          "application/json; charset=utf-16",
          "application/json; charset=latin1",
          "APPLICATION/JSON",
          "application/vnd.api+json",
          "application/jsonx",
          "application/json;;;",
          "",
        ]),
      };
    default:
      return { body: text, note: "" };
  }
}

// ---- GET / DELETE routes with odd queries and ids ----

function oddId(random: Random, known: readonly string[]): string {
  const real = known.length > 0 ? random.pick(known) : "resp_x";
  return random.pick([
    real,
    encodeURIComponent(real),
    `${real}%00`,
    `${real}/..`,
    "..",
    ".",
    "...",
    "%2e%2e",
    "%2F",
    "a%2Fb",
    "%E2%82%AC",
    "%F0%9F%9A%80",
    "%ED%A0%80",
    "%C0%AF",
    "x".repeat(random.pick([300, 4_000, 12_000])),
    "__proto__",
    "constructor",
    "toString",
    "null",
    "undefined",
    "0",
    "-1",
    "%20",
    "a%20b",
    "m",
    "alpha%2Fm",
    "alpha/m",
    "req-1",
  ]);
}

function oddQueryValue(random: Random): string {
  return random.pick([
    "",
    "0",
    "1",
    "-1",
    "-100",
    "1000",
    "1001",
    "999999999999999999999",
    "1e3",
    "1e999",
    "NaN",
    "Infinity",
    "abc",
    "0x10",
    "1.5",
    "%00",
    "%FF",
    "2026-01-01T00:00:00Z",
    "2026-13-45T99:99:99Z",
    "9".repeat(16),
    "9".repeat(300),
    "__proto__",
    "asc",
    "desc",
    "m",
    "alpha",
    "true",
    "x".repeat(3_000),
  ]);
}

function oddQuery(random: Random, names: readonly string[]): string {
  const parts: string[] = [];
  const count = random.int(4);
  for (let index = 0; index < count; index++) {
    const name = random.chance(0.85) ? random.pick(names) : random.pick(["__proto__", "constructor", "x", "", "a[b]"]);
    const value = oddQueryValue(random);
    parts.push(`${name}=${value}`);
    // The same name again: Fastify turns it into an array.
    if (random.chance(0.2)) parts.push(`${name}=${oddQueryValue(random)}`);
  }
  if (random.chance(0.05)) parts.push(random.pick(["&&&", "=", "a", "a=b=c", "%", "%zz=1"]));
  return parts.length === 0 ? "" : `?${parts.join("&")}`;
}

function readRoute(random: Random): { method: "GET" | "DELETE"; path: string; key: string } {
  const responseId = () => oddId(random, knownIds.responses);
  const requestId = () => oddId(random, knownIds.requests);
  const choice = random.int(16);
  const clientRoute = (method: "GET" | "DELETE", path: string) => ({ method, path, key: CLIENT_KEY });
  switch (choice) {
    case 0:
      return clientRoute("GET", `${random.pick(["/v1/models", "/models"])}${oddQuery(random, ["limit", "after"])}`);
    case 1:
      return clientRoute("GET", `${random.pick(["/v1/models/", "/models/"])}${oddId(random, ["m", "e", "alpha/m"])}`);
    case 2:
    case 3:
      return clientRoute(
        "GET",
        `/v1/gateway/route${random.chance(0.8) ? `?model=${random.pick(["m", "e", "alpha/m", "m,e", "nope"])}&` : "?"}${oddQuery(random, ["model", "tokens", "max_tokens", "kind", "tools", "vision", "json_schema"]).slice(1)}`,
      );
    case 4:
    case 5:
      return clientRoute(
        "GET",
        `/v1/gateway/requests${oddQuery(random, ["limit", "since", "status", "model", "provider", "client"])}`,
      );
    case 6:
      return clientRoute("GET", `/v1/gateway/requests/${requestId()}`);
    case 7:
    case 8:
      return clientRoute("GET", `${random.pick(["/v1/responses/", "/responses/"])}${responseId()}`);
    case 9:
    case 10:
      return clientRoute(
        "GET",
        `${random.pick(["/v1/responses/", "/responses/"])}${responseId()}/input_items${oddQuery(random, ["limit", "order", "after", "include"])}`,
      );
    case 11:
      return clientRoute("DELETE", `${random.pick(["/v1/responses/", "/responses/"])}${responseId()}`);
    case 12:
      return clientRoute("GET", `${random.pick(["/stats", "/health", "/ok", "/metrics"])}${oddQuery(random, ["x"])}`);
    case 13:
      return {
        method: "GET",
        path: random.pick([
          "/dashboard",
          "/ui",
          "/dashboard/api/state",
          `/dashboard/api/requests/${requestId()}`,
          "/dashboard/api/nope",
        ]),
        key: ADMIN_KEY,
      };
    case 14:
      return clientRoute(
        "GET",
        random.pick([
          "/v1/messages",
          `/v1/messages/${responseId()}`,
          "/v1/messages/count_tokens",
          "/v1/chat/completions",
          "/v1/embeddings",
          "/v1/responses",
          "/v1",
          "/",
          "//v1//models",
          "/v1/models/",
          "/v1/gateway/requests/",
        ]),
      );
    default:
      return clientRoute("GET", `/v1/models${random.pick(["?", "?&", "?a=1&a=2&a=3", `?${"q=1&".repeat(2_000)}`])}`);
  }
}

// ---- upstream answers of the wrong shape ----

const UPSTREAM_ROUTES = {
  chat: "POST /v1/chat/completions",
  completions: "POST /v1/completions",
  embeddings: "POST /v1/embeddings",
} as const;

function chatAnswer(random: Random, isToolCall = random.chance(0.4)): Record<string, unknown> {
  const message: Record<string, unknown> = isToolCall
    ? {
        role: "assistant",
        content: null,
        tool_calls: [
          { id: "call_9", type: "function", function: { name: "weather", arguments: '{"city":"Paris"}' } },
          { id: "call_10", type: "function", function: { name: "weather", arguments: '{"city":"Rome"}' } },
        ],
      }
    : { role: "assistant", content: "Sunny in Paris.", refusal: null, reasoning_content: "think" };
  return {
    id: "chatcmpl-fuzz",
    object: "chat.completion",
    created: 1_767_225_600,
    model: "alpha-m",
    choices: [{ index: 0, message, logprobs: null, finish_reason: isToolCall ? "tool_calls" : "stop" }],
    usage: {
      prompt_tokens: 12,
      completion_tokens: 5,
      total_tokens: 17,
      prompt_tokens_details: { cached_tokens: 2 },
      completion_tokens_details: { reasoning_tokens: 1 },
    },
  };
}

function chatChunks(random: Random, isToolCall = random.chance(0.4)): Record<string, unknown>[] {
  const chunk = (delta: Record<string, unknown>, finishReason: string | null): Record<string, unknown> => ({
    id: "chatcmpl-fuzz",
    object: "chat.completion.chunk",
    created: 1_767_225_600,
    model: "alpha-m",
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
  });
  const chunks = [chunk({ role: "assistant", content: "" }, null)];
  if (isToolCall) {
    chunks.push(
      chunk({ tool_calls: [{ index: 0, id: "call_9", type: "function", function: { name: "weather" } }] }, null),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] }, null),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '"Paris"}' } }] }, null),
      chunk({}, "tool_calls"),
    );
  } else {
    chunks.push(
      chunk({ reasoning_content: "think" }, null),
      chunk({ content: "Sunny" }, null),
      chunk({ content: " in Paris." }, null),
      chunk({}, "stop"),
    );
  }
  chunks.push({
    id: "chatcmpl-fuzz",
    object: "chat.completion.chunk",
    created: 1_767_225_600,
    model: "alpha-m",
    choices: [],
    usage: { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17 },
  });
  return chunks;
}

function completionAnswer(): Record<string, unknown> {
  return {
    id: "cmpl-fuzz",
    object: "text_completion",
    created: 1_767_225_600,
    model: "alpha-m",
    choices: [{ text: "hi and bye", index: 0, logprobs: null, finish_reason: "stop" }],
    usage: { prompt_tokens: 4, completion_tokens: 3, total_tokens: 7 },
  };
}

function completionChunks(): Record<string, unknown>[] {
  const chunk = (text: string, finishReason: string | null) => ({
    id: "cmpl-fuzz",
    object: "text_completion",
    created: 1_767_225_600,
    model: "alpha-m",
    choices: [{ text, index: 0, logprobs: null, finish_reason: finishReason }],
  });
  return [
    chunk("hi", null),
    chunk(" and bye", null),
    chunk("", "stop"),
    { ...chunk("", null), choices: [], usage: { prompt_tokens: 4, completion_tokens: 3, total_tokens: 7 } },
  ];
}

function embeddingAnswer(): Record<string, unknown> {
  return {
    object: "list",
    data: [
      { object: "embedding", index: 0, embedding: [0.1, -0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8] },
      { object: "embedding", index: 1, embedding: [0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, -0.1] },
    ],
    model: "alpha-e",
    usage: { prompt_tokens: 2, total_tokens: 2 },
  };
}

/**
 * One mutation, half the time inside the parts of an answer the gateway reads (usage, the first choice, its
 * message or delta) rather than anywhere in the whole tree, where most slots are ids and timestamps.
 */
function mutateFocused(random: Random, answer: unknown): string {
  if (!isObject(answer) || random.chance(0.5)) return mutate(random, answer);
  const choice = Array.isArray(answer.choices) ? answer.choices[0] : undefined;
  const parts: [string, unknown][] = [
    ["usage", answer.usage],
    ["choices[0]", choice],
    ["message", isObject(choice) ? choice.message : undefined],
    ["delta", isObject(choice) ? choice.delta : undefined],
    ["data[0]", Array.isArray(answer.data) ? answer.data[0] : undefined],
  ];
  const present = parts.filter(([, part]) => isObject(part));
  if (present.length === 0) return mutate(random, answer);
  const [name, part] = random.pick(present);
  return `${name}.${mutate(random, part)}`;
}

/** What the mock answers: the base answer for the upstream route, broken 1-3 times. */
function brokenUpstreamAnswer(
  random: Random,
  route: keyof typeof UPSTREAM_ROUTES,
): { handle: (recorded: RecordedRequest, response: ServerResponse) => void; note: string } {
  const json = route === "chat" ? chatAnswer(random) : route === "completions" ? completionAnswer() : embeddingAnswer();
  const chunks: unknown[] = route === "chat" ? chatChunks(random) : completionChunks();
  const notes: string[] = [];
  const mutations = random.between(1, 3);
  for (let count = 0; count < mutations; count++) {
    notes.push(`json: ${mutateFocused(random, json)}`);
    // The usage chunk (last) and the content chunks are where the fields the gateway reads live.
    const index = random.chance(0.3) ? chunks.length - 1 : random.int(chunks.length);
    if (random.chance(0.15)) {
      const replacement = random.pick<unknown>([5, null, [], "text", new RawJson("1e999"), { error: "x" }]);
      chunks[index] = replacement;
      notes.push(`chunk ${index} = ${preview(replacement)}`);
    } else {
      notes.push(`chunk ${index}: ${mutateFocused(random, chunks[index])}`);
    }
  }
  return { note: notes.join(", "), handle: answering(json, chunks, random.chance(0.9)) };
}

/** The mock's answer: `chunks` as SSE when the gateway asked for a stream, else `json`; whatever it was sent. */
function answering(
  json: unknown,
  chunks: readonly unknown[],
  hasDone: boolean,
): (recorded: RecordedRequest, response: ServerResponse) => void {
  return (recorded, response) => {
    if ((recorded.body as { stream?: unknown } | undefined)?.stream === true) {
      response.writeHead(200, { "content-type": "text/event-stream" });
      const events = chunks.map((chunk) => `data: ${toJsonText(chunk)}\n\n`);
      response.end(`${events.join("")}${hasDone ? "data: [DONE]\n\n" : ""}`);
      return;
    }
    response.writeHead(200, { "content-type": "application/json" });
    response.end(toJsonText(json));
  };
}

/**
 * Sound answers whatever the request held: the mock's own defaults read the body (`dimensions: 1e29` has it
 * build a vector for minutes, blocking this process), and the request phase tests the gateway, not the mock.
 */
function answerSoundly(): void {
  const random = new Random(SEED);
  fuzz.upstream.reset();
  fuzz.upstream.setDefault(UPSTREAM_ROUTES.chat, {
    kind: "handler",
    handle: answering(chatAnswer(random), chatChunks(random), true),
  });
  fuzz.upstream.setDefault(UPSTREAM_ROUTES.completions, {
    kind: "handler",
    handle: answering(completionAnswer(), completionChunks(), true),
  });
  fuzz.upstream.setDefault(UPSTREAM_ROUTES.embeddings, {
    kind: "handler",
    handle: answering(embeddingAnswer(), [], true),
  });
}

/**
 * An upstream error of the wrong shape: OpenAI's error body with fields replaced, or no such body at all, with an
 * error status or inside a stream after some content; odd retry-after values; sometimes echoing the key it got.
 */
function brokenUpstreamError(random: Random): {
  handle: (recorded: RecordedRequest, response: ServerResponse) => void;
  note: string;
} {
  const status = random.pick([400, 400, 401, 403, 404, 408, 409, 413, 422, 429, 500, 503]);
  const error: Record<string, unknown> = {
    message: "Invalid value for 'n'.",
    type: "invalid_request_error",
    code: "invalid_value",
    param: "n",
  };
  const notes = [`status ${status}`];
  let body: unknown = { error };
  const shape = random.int(10);
  if (shape === 0) {
    body = random.pick<unknown>([
      { error: hostileValue(random) },
      { detail: [{ loc: ["body", "n"], msg: "bad" }] },
      { message: hostileValue(random) },
      [{ error }],
      hostileValue(random),
    ]);
    notes.push(`body = ${preview(body)}`);
  } else {
    for (let count = random.between(1, 3); count > 0; count--) notes.push(mutateFocused(random, error));
  }
  const isEchoing = random.chance(0.2);
  const retryAfter = random.chance(0.3)
    ? random.pick(["-1", "0", "1e999", "NaN", "99999999999", "Wed, 21 Oct 2015 07:28:00 GMT", "", "1.5", "abc"])
    : undefined;
  if (retryAfter !== undefined) notes.push(`retry-after: ${retryAfter}`);
  const isInStream = random.chance(0.3);
  if (isInStream) notes.push("in the stream");
  if (isEchoing) notes.push("echoing the key");
  return {
    note: notes.join(", "),
    handle: (recorded, response) => {
      let text = toJsonText(body);
      if (isEchoing) text = text.replace("Invalid", `Invalid key ${String(recorded.headers.authorization)}`);
      const isStream = (recorded.body as { stream?: unknown } | undefined)?.stream === true;
      if (isStream && isInStream) {
        response.writeHead(200, { "content-type": "text/event-stream" });
        const chunk = chatChunks(random)[0];
        response.end(`data: ${toJsonText(chunk)}\n\ndata: ${text}\n\n`);
        return;
      }
      response.writeHead(status, {
        "content-type": "application/json",
        ...(retryAfter === undefined ? {} : { "retry-after": retryAfter }),
      });
      response.end(text);
    },
  };
}

/**
 * The upstream faults named in the issue, each in every run (the random cases may or may not draw them): applied
 * to a chat answer and to every chunk of a chat stream.
 */
const NAMED_UPSTREAM_FAULTS: readonly {
  readonly label: string;
  /** Which object the fields are set on: the answer (or chunk), its first choice, or that choice's message/delta. */
  readonly at: "answer" | "choice" | "part";
  readonly fields: Readonly<Record<string, unknown>>;
}[] = [
  { label: "choices is an object", at: "answer", fields: { choices: { 0: { index: 0 } } } },
  { label: "choices is a string", at: "answer", fields: { choices: "none" } },
  { label: "choices is empty", at: "answer", fields: { choices: [] } },
  { label: "choices [null]", at: "answer", fields: { choices: [null] } },
  { label: "message/delta null", at: "choice", fields: { message: null, delta: null } },
  { label: "message/delta a string", at: "choice", fields: { message: "hi", delta: "hi" } },
  { label: "content a number", at: "part", fields: { content: 42 } },
  { label: "content an object", at: "part", fields: { content: { text: "hi" } } },
  { label: "content parts of odd types", at: "part", fields: { content: [{ text: 5 }, null, "x"] } },
  { label: "tool_calls a string", at: "part", fields: { tool_calls: "weather" } },
  { label: "tool_calls [null, 5]", at: "part", fields: { tool_calls: [null, 5] } },
  {
    label: "tool_call fields of the wrong type",
    at: "part",
    fields: { tool_calls: [{ index: "0", id: 7, type: 1, function: { name: ["w"], arguments: { city: 1 } } }] },
  },
  {
    label: "tool_call without function",
    at: "part",
    fields: { tool_calls: [{ index: 0, id: "call_1", type: "function" }] },
  },
  { label: "reasoning and refusal numbers", at: "part", fields: { reasoning_content: 1, refusal: 2 } },
  {
    label: "usage strings",
    at: "answer",
    fields: { usage: { prompt_tokens: "12", completion_tokens: "5", total_tokens: "17" } },
  },
  {
    label: "usage negative",
    at: "answer",
    fields: { usage: { prompt_tokens: -12, completion_tokens: -5, total_tokens: -17 } },
  },
  {
    label: "usage huge",
    at: "answer",
    fields: { usage: { prompt_tokens: new RawJson("1e999"), completion_tokens: 1e308, total_tokens: 2 ** 60 } },
  },
  { label: "usage an array", at: "answer", fields: { usage: [12, 5] } },
  { label: "finish_reason a number", at: "choice", fields: { finish_reason: 7 } },
  { label: "finish_reason unknown", at: "choice", fields: { finish_reason: "weird_reason" } },
  { label: "finish_reason empty", at: "choice", fields: { finish_reason: "" } },
  { label: "finish_reason an object", at: "choice", fields: { finish_reason: { type: "stop" } } },
  {
    label: "huge numbers in ids and timestamps",
    at: "answer",
    fields: { created: new RawJson("1e999"), id: new RawJson("12345678901234567890") },
  },
  { label: "choice index huge", at: "choice", fields: { index: new RawJson("123456789012345678901234567890") } },
  { label: "model a number", at: "answer", fields: { model: 5 } },
];

/** The named fault in a sound chat answer and stream (`withTools`: the answer is a tool call). */
function namedFaultAnswer(
  fault: (typeof NAMED_UPSTREAM_FAULTS)[number],
  withTools: boolean,
): (recorded: RecordedRequest, response: ServerResponse) => void {
  const random = new Random(SEED);
  const json = chatAnswer(random, withTools);
  const chunks = chatChunks(random, withTools);
  const breakOne = (answer: JsonObject) => {
    const choice = Array.isArray(answer.choices) ? answer.choices[0] : undefined;
    const part = isObject(choice) ? (isObject(choice.message) ? choice.message : choice.delta) : undefined;
    const target = fault.at === "answer" ? answer : fault.at === "choice" ? choice : part;
    // A chunk without that object (the usage chunk has no choice) stays as it was.
    if (isObject(target)) Object.assign(target, fault.fields);
  };
  breakOne(json);
  for (const chunk of chunks) if (isObject(chunk)) breakOne(chunk);
  return answering(json, chunks, true);
}

/** A translated answer must have its protocol's types: SDKs parse these fields without checking. */
function answerShapeProblems(door: FrontDoor, text: string): string[] {
  const body = parsed(text);
  if (!isObject(body)) return ["a 200 answer that is not a JSON object"];
  const problems: string[] = [];
  const isCount = (value: unknown) => typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
  if (door.name === "chat" || door.name === "completions") {
    if (!Array.isArray(body.choices)) problems.push("choices is not an array");
  } else if (door.name === "embeddings") {
    if (!Array.isArray(body.data)) problems.push("data is not an array");
  } else if (door.name === "responses") {
    if (body.object !== "response" || !Array.isArray(body.output)) return ["not a response object with output[]"];
    for (const item of body.output) {
      if (!isObject(item)) {
        problems.push("an output item that is not an object");
        continue;
      }
      if (item.type === "message") {
        for (const part of Array.isArray(item.content) ? item.content : [undefined]) {
          // An output_text part has its `text`, a refusal part its `refusal`.
          const field = isObject(part) && part.type === "refusal" ? "refusal" : "text";
          if (!isObject(part) || typeof part[field] !== "string") problems.push(`output ${field} is not a string`);
        }
      }
      if (item.type === "function_call" && (typeof item.name !== "string" || typeof item.arguments !== "string")) {
        problems.push("function_call name/arguments are not strings");
      }
    }
    const usage = body.usage;
    if (usage !== null && usage !== undefined) {
      if (!isObject(usage) || !isCount(usage.input_tokens) || !isCount(usage.output_tokens)) {
        problems.push(`usage is not whole counts: ${JSON.stringify(usage)}`);
      }
    }
  } else if (door.name === "messages") {
    if (body.type !== "message" || !Array.isArray(body.content)) return ["not a message with content[]"];
    for (const block of body.content) {
      if (!isObject(block)) problems.push("a content block that is not an object");
      else if (block.type === "text" && typeof block.text !== "string") problems.push("text block text not a string");
      else if (block.type === "tool_use" && (typeof block.name !== "string" || !isObject(block.input))) {
        problems.push("tool_use name/input of the wrong type");
      }
    }
    const usage = body.usage;
    if (!isObject(usage) || !isCount(usage.input_tokens) || !isCount(usage.output_tokens)) {
      problems.push(`usage is not whole counts: ${JSON.stringify(usage)}`);
    }
  }
  return problems;
}

/** A translated stream's events must have their protocol's types too (checked on the events that carry them). */
function streamShapeProblems(door: FrontDoor, text: string): string[] {
  const events = text
    .split(/\n\n/)
    .map((event) =>
      parsed(
        event
          .split("\n")
          .find((line) => line.startsWith("data: "))
          ?.slice(6) ?? "",
      ),
    )
    .filter(isObject);
  const problems: string[] = [];
  const isCount = (value: unknown) => typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
  if (door.name === "messages") {
    for (const event of events) {
      const usage = event.type === "message_start" && isObject(event.message) ? event.message.usage : event.usage;
      if ((event.type === "message_start" || event.type === "message_delta") && isObject(usage)) {
        // The counts, and the SDK's nullable fields (`output_tokens_details`, `server_tool_use`, ...): null or counts.
        for (const [name, value] of Object.entries(usage)) {
          const isSound = isCount(value) || (value === null && !name.endsWith("_tokens"));
          const isCounts = isObject(value) && Object.values(value).every(isCount);
          if (!isSound && !isCounts) problems.push(`${event.type} usage.${name} = ${JSON.stringify(value)}`);
        }
      }
      const delta = event.delta;
      if (event.type === "content_block_delta" && isObject(delta)) {
        if (delta.type === "text_delta" && typeof delta.text !== "string") problems.push("text_delta text");
        if (delta.type === "input_json_delta" && typeof delta.partial_json !== "string") problems.push("partial_json");
      }
    }
  } else if (door.name === "responses") {
    const last = events.at(-1);
    if (isObject(last) && isObject(last.response) && last.type !== "response.failed") {
      problems.push(...answerShapeProblems(door, JSON.stringify(last.response)));
    }
    for (const event of events) {
      if (event.type === "response.output_text.delta" && typeof event.delta !== "string") problems.push("text delta");
    }
  }
  return problems;
}

// ---- the tests ----

describe(`front doors fuzz (FUZZ_SEED=${SEED})`, () => {
  test("seed data: kept responses and recorded requests for the GET routes to find", async () => {
    for (const isStream of [false, true]) {
      const door = FRONT_DOORS.find((candidate) => candidate.name === "responses");
      assert.ok(door !== undefined);
      const answer = await send({
        method: "POST",
        path: "/v1/responses",
        headers: { authorization: `Bearer ${CLIENT_KEY}`, "content-type": "application/json" },
        body: JSON.stringify(door.body(isStream)),
      });
      assert.equal(answer.status, 200, answer.text);
      const id = /"id":"(resp_[^"]+)"/.exec(answer.text)?.[1];
      assert.ok(id !== undefined, answer.text.slice(0, 300));
      knownIds.responses.push(id);
    }
    const listed = await send({
      method: "GET",
      path: "/v1/gateway/requests?limit=5",
      headers: { authorization: `Bearer ${CLIENT_KEY}` },
    });
    assert.equal(listed.status, 200, listed.text);
    for (const record of (JSON.parse(listed.text) as { data: { id: string }[] }).data)
      knownIds.requests.push(record.id);
    assert.ok(knownIds.requests.length > 0);
  });

  test("valid requests of every protocol, broken one field at a time", async (t) => {
    const findings = new Findings();
    answerSoundly();
    await runSeededCases(FUZZ_RUN, "request", 700, async (random, caseName) => {
      const door = random.pick(FRONT_DOORS);
      const isStream = door.canStream && random.chance(0.4);
      const body: unknown = structuredClone(door.body(isStream, random));
      const notes = [door.name, isStream ? "stream" : "json"];
      const mutations = random.chance(0.1) ? 0 : random.between(1, 3);
      for (let count = 0; count < mutations; count++) notes.push(mutate(random, body));
      const framed = frameBody(random, body);
      if (framed.note !== "") notes.push(framed.note);
      const headers: Headers = { ...authorizationHeaders(random, CLIENT_KEY), ...oddHeaders(random) };
      const contentType = framed.contentType ?? "application/json";
      if (contentType !== "") headers["content-type"] = contentType;
      const sent: Sent = { method: "POST", path: random.pick(door.paths), headers, body: framed.body };
      await sendAndCheck(findings, caseName, sent, notes.join(" | "));
    });
    findings.assertNone(t, ["2xx", "4xx"]);
  });

  test("GET and DELETE routes: odd query strings, path ids and headers", async (t) => {
    const findings = new Findings();
    answerSoundly();
    await runSeededCases(FUZZ_RUN, "read", 350, async (random, caseName) => {
      const route = readRoute(random);
      const headers: Headers = { ...authorizationHeaders(random, route.key), ...oddHeaders(random) };
      await sendAndCheck(findings, caseName, { method: route.method, path: route.path, headers });
    });
    findings.assertNone(t, ["2xx", "4xx"]);
  });

  test("admin routes: odd keys and bodies", async (t) => {
    const findings = new Findings();
    await runSeededCases(FUZZ_RUN, "admin", 20, async (random, caseName) => {
      const path = random.pick(["/admin/cooldowns/reset", "/admin/models/refresh", "/admin/reload", "/admin/nope"]);
      const key = random.pick([ADMIN_KEY, ADMIN_KEY, CLIENT_KEY, "nope"]);
      const headers: Headers = { ...authorizationHeaders(random, key), ...oddHeaders(random) };
      const framed = frameBody(random, random.pick<unknown>([{}, { provider: "alpha" }, [], hostileValue(random)]));
      if (random.chance(0.7)) headers["content-type"] = framed.contentType || "application/json";
      const withBody = random.chance(0.6);
      await sendAndCheck(findings, caseName, {
        method: "POST",
        path,
        headers,
        ...(withBody ? { body: framed.body } : {}),
      });
    });
    findings.assertNone(t, ["2xx", "4xx"]);
  });

  test("upstream answers with fields of the wrong type, through every front door, JSON and stream", async (t) => {
    const findings = new Findings();
    const doors = FRONT_DOORS.filter((door) => door.name !== "count_tokens");
    await runSeededCases(FUZZ_RUN, "upstream", 320, async (random, caseName) => {
      const door = random.pick(doors);
      const isStream = door.canStream && random.chance(0.5);
      const route = door.name === "completions" ? "completions" : door.name === "embeddings" ? "embeddings" : "chat";
      const broken = brokenUpstreamAnswer(random, route);
      fuzz.upstream.reset();
      fuzz.upstream.setDefault(UPSTREAM_ROUTES[route], { kind: "handler", handle: broken.handle });
      const sent: Sent = {
        method: "POST",
        path: random.pick(door.paths),
        headers: { authorization: `Bearer ${CLIENT_KEY}`, "content-type": "application/json" },
        body: JSON.stringify(door.body(isStream)),
      };
      const note = `${door.name} ${isStream ? "stream" : "json"} | ${broken.note}`;
      const answer = await sendAndCheck(findings, caseName, sent, note);
      if (answer?.status !== 200) return;
      const contentType = answer.headers["content-type"] ?? "";
      if (contentType.startsWith("application/json")) {
        findings.add(caseName, sent, answer, answerShapeProblems(door, answer.text), note);
      } else if (contentType.startsWith("text/event-stream")) {
        findings.add(caseName, sent, answer, streamShapeProblems(door, answer.text), note);
      }
    });
    fuzz.upstream.reset();
    findings.assertNone(t, ["2xx", "5xx"]);
  });

  test("named upstream faults (choices, message, content, tool_calls, usage, finish_reason): every door", async (t) => {
    const findings = new Findings();
    const doors = FRONT_DOORS.filter((door) => ["chat", "responses", "messages"].includes(door.name));
    let index = 0;
    for (const fault of NAMED_UPSTREAM_FAULTS) {
      for (const door of doors) {
        for (const isStream of [false, true]) {
          const caseName = `named#${index++}`;
          if (ONLY_CASE !== undefined && ONLY_CASE !== caseName) continue;
          const withTools = index % 2 === 0;
          fuzz.upstream.reset();
          fuzz.upstream.setDefault(UPSTREAM_ROUTES.chat, {
            kind: "handler",
            handle: namedFaultAnswer(fault, withTools),
          });
          const sent: Sent = {
            method: "POST",
            path: door.paths[0] ?? "",
            headers: { authorization: `Bearer ${CLIENT_KEY}`, "content-type": "application/json" },
            body: JSON.stringify(door.body(isStream)),
          };
          const note = `${fault.label} | ${door.name} ${isStream ? "stream" : "json"}${withTools ? " tools" : ""}`;
          const answer = await sendAndCheck(findings, caseName, sent, note);
          if (answer?.status !== 200) continue;
          const contentType = answer.headers["content-type"] ?? "";
          const shapeProblems = contentType.startsWith("text/event-stream")
            ? streamShapeProblems(door, answer.text)
            : answerShapeProblems(door, answer.text);
          findings.add(caseName, sent, answer, shapeProblems, note);
        }
      }
    }
    fuzz.upstream.reset();
    findings.assertNone(t, ["2xx", "5xx"]);
  });

  test("upstream errors with fields of the wrong type: the caller's error shape, JSON and stream", async (t) => {
    const findings = new Findings();
    const doors = FRONT_DOORS.filter((door) => door.name !== "count_tokens");
    await runSeededCases(FUZZ_RUN, "upstream-error", 160, async (random, caseName) => {
      const door = random.pick(doors);
      const isStream = door.canStream && random.chance(0.5);
      const route = door.name === "completions" ? "completions" : door.name === "embeddings" ? "embeddings" : "chat";
      const broken = brokenUpstreamError(random);
      fuzz.upstream.reset();
      fuzz.upstream.setDefault(UPSTREAM_ROUTES[route], { kind: "handler", handle: broken.handle });
      const sent: Sent = {
        method: "POST",
        path: random.pick(door.paths),
        headers: { authorization: `Bearer ${CLIENT_KEY}`, "content-type": "application/json" },
        body: JSON.stringify(door.body(isStream)),
      };
      await sendAndCheck(findings, caseName, sent, `${door.name} ${isStream ? "stream" : "json"} | ${broken.note}`);
    });
    fuzz.upstream.reset();
    findings.assertNone(t, ["4xx", "5xx"]);
  });

  test("afterwards: the gateway serves, nothing was unhandled, no key reached a log line", async () => {
    const ok = await send({ method: "GET", path: "/ok", headers: {} });
    assert.equal(ok.status, 200, ok.text);
    const stats = await send({ method: "GET", path: "/stats", headers: { authorization: `Bearer ${CLIENT_KEY}` } });
    assert.equal(stats.status, 200, stats.text.slice(0, 300));
    const metrics = await send({ method: "GET", path: "/metrics", headers: { authorization: `Bearer ${CLIENT_KEY}` } });
    assert.equal(metrics.status, 200, metrics.text.slice(0, 300));
    // Whatever usage the upstream claimed, what the gateway counted stays whole, finite and not below zero.
    const oddValues = metrics.text
      .split("\n")
      .filter((line) => !line.startsWith("#") && /\s(NaN|[+-]Inf|-\S+)$/.test(line));
    assert.deepEqual(oddValues, [], "metrics with NaN, infinite or negative values");
    for (const row of (JSON.parse(stats.text) as { deployments: Record<string, unknown>[] }).deployments) {
      for (const field of ["tokens_in", "tokens_out"]) {
        const value = row[field];
        assert.ok(
          Number.isSafeInteger(value) && (value as number) >= 0,
          `/stats ${String(row.provider)}/${String(row.model)} ${field} = ${JSON.stringify(value)}`,
        );
      }
    }
    assert.deepEqual(fuzz.unhandled, [], "no unhandled rejection or uncaught exception");
    const leaks = fuzz.logLines.filter((line) => SECRETS.some((secret) => line.includes(secret)));
    assert.deepEqual(
      leaks.map((line) => line.slice(0, 300)),
      [],
      "a key in a log line",
    );
    assert.ok(fuzz.logLines.length > 0, "the log was captured");
  });
});
