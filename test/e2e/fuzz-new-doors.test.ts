// Seeded structural fuzzing of the newer routes, beside test/e2e/fuzz-front-doors.test.ts (its own seeds and
// gateway, so that adding these routes did not reshuffle that file's cases): the Conversations API (CRUD and
// `/items`, odd path ids and `after`/`limit`/`order`/`include` queries), the Responses door's `conversation`, the
// JSON doors speech, image generation, rerank and moderations (a valid body broken a field at a time, with the same
// mutations as the front doors' fuzzer), and the multipart uploads (transcriptions, translations, image edits and variations)
// broken as uploads are: no boundary, the boundary inside a file, a part without a name, many tiny parts, a file in a
// text field and text in a file field, empty files, a cut body, `Content-Length` lies, very long part headers.
// Conversations are also made of broken items and then continued by Responses requests (JSON and streamed) and
// listed. Every answer must be sound: a 4xx in the OpenAI error shape with a message of at most 1,000 characters (a
// 5xx only as an upstream failure), no configured key in it, nothing sent upstream for a refused request, an empty
// file refused, listed items with a string id and type and a status OpenAI's SDKs know, no hang (undici's timeouts),
// and afterwards the gateway answers /health and its request log, with nothing unhandled and no key in a log line.
//
// Deterministic: the cases come from FUZZ_SEED only; a failure names its case `<phase>#<index>`, replayed alone by
//   FUZZ_SEED=<seed> FUZZ_CASE=<phase>#<index> node --test test/e2e/fuzz-new-doors.test.ts
// FUZZ_SCALE=<n> runs n times as many cases; FUZZ_SHOW=<status> prints every case answered with that status.
import assert from "node:assert/strict";
import { connect } from "node:net";
import { describe, type TestContext, test } from "node:test";
import { type Answer, type Headers, leakProblems, parsed, type Sent, useFuzzGateway } from "../helpers/fuzz-gateway.ts";
import {
  hostileValue,
  isObject,
  mutate,
  preview,
  type Random,
  runSeededCases,
  toJsonText,
} from "../helpers/structural-fuzz.ts";

const DEFAULT_SEED = 20_261_206;
const SEED = process.env.FUZZ_SEED === undefined ? DEFAULT_SEED : Number(process.env.FUZZ_SEED);
const SCALE = Number(process.env.FUZZ_SCALE ?? 1);
const ONLY_CASE = process.env.FUZZ_CASE;
const FUZZ_RUN = { seed: SEED, scale: SCALE, onlyCase: ONLY_CASE };

const CLIENT_KEY = "fuzz-new-client-key-5d1a";
const UPSTREAM_KEY = "sk-fuzz-new-upstream-8e3b27c4";
const SECRETS = [CLIENT_KEY, UPSTREAM_KEY];
const ANSWER_TIMEOUT_MS = 6_000;
const BODY_LIMIT_BYTES = 300_000;
const UPSTREAM_FAILURE_CODES = new Set(["upstream_unavailable", "upstream_timeout"]);

/** Conversations and items the id and query cases can find. */
const known = { conversations: [] as string[], items: [] as string[] };

const PNG = Buffer.concat([Buffer.from("\x89PNG\r\n\x1a\n", "latin1"), Buffer.alloc(200, 7)]);
const WAV = Buffer.concat([Buffer.from("RIFF", "latin1"), Buffer.alloc(300, 3)]);

const fuzz = useFuzzGateway({
  upstreamModels: [],
  scriptUpstream: (upstream) => {
    const json = (body: unknown) => ({ kind: "json" as const, body });
    upstream.setDefault("POST /v1/audio/transcriptions", json({ text: "words" }));
    upstream.setDefault("POST /v1/audio/translations", json({ text: "words" }));
    upstream.setDefault("POST /v1/audio/speech", {
      kind: "text",
      status: 200,
      body: "ID3-audio-bytes",
      headers: { "content-type": "audio/mpeg" },
    });
    const image = json({ created: 1_733_443_200, data: [{ b64_json: "aGk=" }] });
    upstream.setDefault("POST /v1/images/generations", image);
    upstream.setDefault("POST /v1/images/edits", image);
    upstream.setDefault("POST /v1/images/variations", image);
    upstream.setDefault("POST /v1/rerank", json({ results: [{ index: 0, relevance_score: 0.9 }] }));
    // One result per input, as a moderation model answers (a text, each text of a list, a list of parts: one).
    upstream.setDefault("POST /v1/moderations", (request) => {
      const input = (request.body as { input?: unknown } | undefined)?.input;
      const count = Array.isArray(input) && typeof input[0] === "string" ? input.length : 1;
      const result = { flagged: false, categories: { hate: false }, category_scores: { hate: 0.01 } };
      return json({ id: "modr-fuzz", model: "alpha-moderation", results: Array(count).fill(result) });
    });
  },
  config: (upstreamBaseUrl) => ({
    server: { port: 0, host: "127.0.0.1", api_keys: [CLIENT_KEY], body_limit_bytes: BODY_LIMIT_BYTES },
    providers: [
      {
        name: "alpha",
        base_url: upstreamBaseUrl,
        api_key: UPSTREAM_KEY,
        retries: 0,
        timeout_ms: 2_000,
        models: {
          m: { id: "alpha-m" },
          stt: { id: "alpha-stt", kind: "transcription" },
          tts: { id: "alpha-tts", kind: "speech" },
          img: { id: "alpha-img", kind: "image" },
          rr: { id: "alpha-rr", kind: "rerank" },
          mod: { id: "alpha-moderation", kind: "moderation" },
        },
      },
    ],
    routing: { total_timeout_ms: 3_000, max_attempts: 2 },
    cooldowns: { failure_threshold: 100_000 },
    // The answer cache fingerprints hostile bodies (rerank is cacheable); the request log keeps their content.
    cache: { enabled: true },
    log: { content: true },
  }),
  connections: 4,
  answerTimeoutMs: ANSWER_TIMEOUT_MS,
  defaultHeaders: { authorization: `Bearer ${CLIENT_KEY}` },
});
const send = fuzz.send;

// ---- sending and judging ----

/** Problems with one answer, as sentences; `upstreamCalls` is how many requests the mock got for it. */
function problemsOf(answer: Answer, upstreamCalls: number): string[] {
  const problems = leakProblems(answer, SECRETS);
  if (answer.status < 400) return problems;
  const contentType = answer.headers["content-type"] ?? "";
  if (!contentType.startsWith("application/json")) problems.push(`an error as ${contentType || "no type"}`);
  const body = parsed(answer.text);
  const error = isObject(body) ? body.error : undefined;
  if (!isObject(error)) {
    problems.push("no `error` object");
  } else {
    if (typeof error.message !== "string" || error.message === "") problems.push("no error.message");
    // A clear error names what was wrong; it does not echo kilobytes of the request back.
    else if (error.message.length > 1_000) problems.push(`a ${error.message.length}-character error.message`);
    if (typeof error.type !== "string") problems.push("no error.type");
    for (const field of ["code", "param"]) {
      const value = error[field];
      if (!(field in error)) problems.push(`no error.${field}`);
      else if (value !== null && typeof value !== "string") problems.push(`error.${field} = ${JSON.stringify(value)}`);
    }
  }
  const code = isObject(error) ? error.code : undefined;
  const isUpstreamFailure =
    [502, 503, 504].includes(answer.status) && typeof code === "string" && UPSTREAM_FAILURE_CODES.has(code);
  if (answer.status >= 500 && !isUpstreamFailure) problems.push(`a ${answer.status} that is not an upstream failure`);
  // The mock answers every call well: a refusal after an upstream call means the gateway sent refused input on.
  if (answer.status >= 400 && answer.status < 500 && answer.status !== 429 && upstreamCalls > 0) {
    problems.push(`refused, yet ${upstreamCalls} request(s) went upstream`);
  }
  return problems;
}

class Findings {
  readonly #lines: string[] = [];
  readonly statuses = new Map<number, number>();
  add(caseName: string, sent: Sent, answer: Answer | undefined, problems: readonly string[], note: string): void {
    if (answer !== undefined) this.statuses.set(answer.status, (this.statuses.get(answer.status) ?? 0) + 1);
    if (problems.length === 0) return;
    const text = answer?.text ?? "";
    const cut = text.length > 300 ? `${text.slice(0, 200)}…${text.slice(-100)}` : text;
    const shown = answer === undefined ? "no answer" : `${answer.status} ${cut}`;
    this.#lines.push(
      `${caseName} ${sent.method} ${sent.path.slice(0, 120)} ${note}\n    ${problems.join("; ")}\n    -> ${shown}`,
    );
  }
  assertNone(t: TestContext, expected: readonly number[]): void {
    const statuses = [...this.statuses].sort(([a], [b]) => a - b);
    t.diagnostic(`answers by status: ${statuses.map(([status, count]) => `${status}×${count}`).join(" ")}`);
    if (ONLY_CASE === undefined) {
      for (const status of expected) assert.ok(this.statuses.has(status), `no ${status} answer: the cases test little`);
    }
    assert.equal(
      this.#lines.length,
      0,
      `${this.#lines.length} unsound answers (FUZZ_SEED=${SEED}):\n${this.#lines.slice(0, 25).join("\n")}`,
    );
  }
}

/** Upstream requests other than the model listing, taken from the mock's record. */
function takeUpstreamCalls(): number {
  return fuzz.upstream.requests.splice(0).filter((recorded) => recorded.path !== "/v1/models").length;
}

async function sendAndCheck(
  findings: Findings,
  caseName: string,
  sent: Sent,
  note: string,
): Promise<Answer | undefined> {
  takeUpstreamCalls();
  let answer: Answer;
  try {
    answer = await send(sent);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === "UND_ERR_INVALID_ARG") return undefined; // undici would not send it: nothing reached the gateway
    findings.add(caseName, sent, undefined, [`no answer: ${code ?? String(error)}`], note);
    return undefined;
  }
  const upstreamCalls = takeUpstreamCalls();
  if (process.env.FUZZ_SHOW === String(answer.status)) {
    console.log("SHOW", caseName, sent.method, sent.path.slice(0, 80), note.slice(0, 120), answer.text.slice(0, 160));
  }
  findings.add(caseName, sent, answer, problemsOf(answer, upstreamCalls), note);
  if (answer.status === 429 || answer.status === 503) await fuzz.gateway.runtime.resetLimits();
  return answer;
}

// ---- JSON bodies: a valid one, broken a field at a time ----

/** How a JSON body goes on the wire: mostly as it is, sometimes cut, wrapped, or sent as another type. */
function frameJson(random: Random, body: unknown): { body: string; note: string; contentType: string } {
  const text = toJsonText(body);
  const contentType = "application/json";
  switch (random.int(14)) {
    case 0:
      return { body: `[${text}]`, note: "body in an array", contentType };
    case 1:
      return { body: random.pick(["42", '"s"', "null", "true", "[]", "{}", ""]), note: "scalar", contentType };
    case 2:
      return { body: text.slice(0, random.int(text.length)), note: "truncated", contentType };
    case 3:
      return {
        body: text,
        note: "as another type",
        contentType: random.pick([
          "text/plain",
          "multipart/form-data; boundary=x",
          "application/x-www-form-urlencoded",
        ]),
      };
    default:
      return { body: text, note: "", contentType };
  }
}

const JSON_DOORS: readonly { name: string; path: string; body: () => Record<string, unknown> }[] = [
  {
    name: "speech",
    path: "/v1/audio/speech",
    body: () => ({ model: "tts", input: "Hello there.", voice: "alloy", response_format: "mp3", speed: 1 }),
  },
  {
    name: "images",
    path: "/v1/images/generations",
    body: () => ({ model: "img", prompt: "A red fox", n: 1, size: "1024x1024", response_format: "b64_json" }),
  },
  {
    name: "rerank",
    path: "/v1/rerank",
    body: () => ({ model: "rr", query: "fox", documents: ["a fox", "a dog"], top_n: 1, return_documents: true }),
  },
  {
    name: "moderations",
    path: "/v1/moderations",
    body: () => ({ model: "mod", input: ["a fox", "a dog"] }),
  },
  {
    name: "moderations-parts",
    path: "/v1/moderations",
    body: () => ({
      input: [
        { type: "text", text: "a fox" },
        { type: "image_url", image_url: { url: "data:image/png;base64,aGk=" } },
      ],
    }),
  },
  {
    name: "responses-conversation",
    path: "/v1/responses",
    body: () => ({
      model: "m",
      conversation: known.conversations[0] ?? "conv_none",
      input: [{ role: "user", content: [{ type: "input_text", text: "Hi" }] }],
      store: false,
    }),
  },
  {
    name: "input-tokens-conversation",
    path: "/v1/responses/input_tokens",
    body: () => ({
      model: "m",
      conversation: { id: known.conversations[1] ?? "conv_none" },
      input: "How many tokens?",
      tools: [{ type: "function", name: "weather", parameters: { type: "object", properties: {} } }],
    }),
  },
  {
    name: "conversation-create",
    path: "/v1/conversations",
    body: () => ({
      metadata: { topic: "fuzz" },
      items: [
        { type: "message", role: "user", status: "completed", content: [{ type: "input_text", text: "Hello" }] },
        { type: "message", role: "assistant", content: [{ type: "output_text", text: "Hi" }] },
      ],
    }),
  },
];

/** The conversation's `conversation` field of the Responses door, in every form the API takes and some it does not. */
function oddConversationField(random: Random): unknown {
  const id = known.conversations[0] ?? "conv_none";
  return random.pick<unknown>([
    id,
    { id },
    { id: oddId(random, known.conversations) },
    oddId(random, known.conversations),
    { id: [id] },
    { conversation: id },
    [id],
    hostileValue(random),
  ]);
}

// ---- path ids and queries ----

function oddId(random: Random, ids: readonly string[]): string {
  const real = ids.length > 0 ? random.pick(ids) : "conv_none";
  switch (random.int(14)) {
    case 0:
      return "";
    case 1:
      return `${real}%00`;
    case 2:
      return encodeURIComponent(`${real}\u0000x`);
    case 3:
      return encodeURIComponent("模型🚀\u202e");
    case 4:
      return `conv_${"a".repeat(random.pick([128, 129, 5_000, 60_000]))}`;
    case 5:
      return random.pick(["..", ".", "%2e%2e", "%2F", "a%2Fb", "%", "%zz", "%c0%af", "%ED%A0%80"]);
    case 6:
      return random.pick(["__proto__", "constructor", "conv___proto__", "conv_constructor", "toString"]);
    case 7:
      return `${real}${random.pick(["%20", "+", "%0d%0a", "%09", "'", "%22"])}`;
    case 8:
      return real.toUpperCase();
    case 9:
      return `conv_${random.pick(["-", "_", "a-b_c", "0"])}`;
    default:
      return real;
  }
}

function oddQueryValue(random: Random): string {
  return random.pick([
    "",
    "1",
    "0",
    "-1",
    "100",
    "101",
    "1e2",
    "1.5",
    "NaN",
    "Infinity",
    "0x10",
    "asc",
    "desc",
    "ASC",
    "random",
    "%00",
    "%ff",
    "%",
    encodeURIComponent("\ud83d\ude80"),
    "9".repeat(400),
    "x".repeat(random.pick([300, 20_000])),
    known.items[0] ?? "msg_none",
    "message.input_image.image_url",
    "__proto__",
  ]);
}

function oddQuery(random: Random, names: readonly string[]): string {
  const pairs: string[] = [];
  const count = random.pick([0, 1, 2, 3, 6, 40]);
  for (let index = 0; index < count; index++) {
    const name = random.chance(0.85) ? random.pick(names) : random.pick(["__proto__", "", "limit[]", "include[]", "x"]);
    pairs.push(random.chance(0.1) ? name : `${name}=${oddQueryValue(random)}`);
  }
  return pairs.length === 0 ? "" : `?${pairs.join("&")}`;
}

// ---- multipart uploads ----

interface Part {
  name?: string;
  filename?: string;
  type?: string;
  data: Buffer | string;
  /** Written instead of the usual headers (a very long or odd part header). */
  rawHeaders?: string;
}

interface UploadDoor {
  readonly name: string;
  readonly path: string;
  readonly parts: () => Part[];
}

const UPLOAD_DOORS: readonly UploadDoor[] = [
  {
    name: "transcriptions",
    path: "/v1/audio/transcriptions",
    parts: () => [
      { name: "model", data: "stt" },
      { name: "file", filename: "a.wav", type: "audio/wav", data: WAV },
      { name: "response_format", data: "json" },
      { name: "timestamp_granularities[]", data: "word" },
      { name: "language", data: "en" },
    ],
  },
  {
    name: "translations",
    path: "/v1/audio/translations",
    parts: () => [
      { name: "model", data: "stt" },
      { name: "file", filename: "a.wav", type: "audio/wav", data: WAV },
      { name: "prompt", data: "words" },
    ],
  },
  {
    name: "image_edits",
    path: "/v1/images/edits",
    parts: () => [
      { name: "model", data: "img" },
      { name: "prompt", data: "add a hat" },
      { name: "image[]", filename: "a.png", type: "image/png", data: PNG },
      { name: "image[]", filename: "b.png", type: "image/png", data: PNG },
      { name: "mask", filename: "m.png", type: "image/png", data: PNG },
      { name: "n", data: "1" },
    ],
  },
  {
    name: "image_variations",
    path: "/v1/images/variations",
    parts: () => [
      { name: "model", data: "img" },
      { name: "image", filename: "a.png", type: "image/png", data: PNG },
      { name: "size", data: "256x256" },
    ],
  },
];

function encodeParts(parts: readonly Part[], boundary: string, lineEnd = "\r\n"): Buffer {
  const chunks: Buffer[] = [];
  for (const part of parts) {
    let headers = part.rawHeaders;
    if (headers === undefined) {
      const name = part.name === undefined ? "" : `; name="${part.name}"`;
      const filename = part.filename === undefined ? "" : `; filename="${part.filename}"`;
      headers = `Content-Disposition: form-data${name}${filename}`;
      if (part.type !== undefined) headers += `${lineEnd}Content-Type: ${part.type}`;
    }
    chunks.push(Buffer.from(`--${boundary}${lineEnd}${headers}${lineEnd}${lineEnd}`, "utf8"));
    chunks.push(typeof part.data === "string" ? Buffer.from(part.data, "utf8") : part.data);
    chunks.push(Buffer.from(lineEnd));
  }
  chunks.push(Buffer.from(`--${boundary}--${lineEnd}`));
  return Buffer.concat(chunks);
}

/** One upload, broken one way: its parts, their encoding, or the framing. */
function brokenUpload(
  random: Random,
  door: UploadDoor,
): { body: Buffer | string; contentType: string | undefined; note: string; lie?: "longer" | "shorter" } {
  const parts = door.parts();
  let boundary = "----fuzz7MA4YWxkTrZu0gW";
  let contentType: string | undefined;
  let lineEnd = "\r\n";
  let note: string;
  const textParts = parts.filter((part) => part.filename === undefined);
  const fileParts = parts.filter((part) => part.filename !== undefined);
  const anyPart = (): Part => random.pick(parts);
  switch (random.int(22)) {
    case 0:
      contentType = random.pick(["multipart/form-data", "multipart/form-data;", "multipart/form-data; boundary="]);
      note = "no boundary";
      break;
    case 1: {
      const file = random.pick(fileParts);
      file.data = Buffer.concat([
        Buffer.from(`--${boundary}\r\n`),
        file.data as Buffer,
        Buffer.from(`\r\n--${boundary}--`),
      ]);
      note = "the boundary inside a file";
      break;
    }
    case 2:
      delete anyPart().name;
      note = "a part without a name";
      break;
    case 3: {
      const count = random.pick([65, 2_000, 20_000]);
      for (let index = 0; index < count; index++) parts.push({ name: random.pick(["n", "x", "prompt"]), data: "" });
      note = `${count} tiny parts`;
      break;
    }
    case 4: {
      const field = random.pick(textParts);
      field.filename = random.pick(["x.txt", ""]);
      field.type = "text/plain";
      note = `a file in the text field ${field.name}`;
      break;
    }
    case 5: {
      const file = random.pick(fileParts);
      delete file.filename;
      delete file.type;
      file.data = random.pick(["not a file", "", "x".repeat(5_000)]);
      note = `text in the file field ${file.name}`;
      break;
    }
    case 6: {
      const emptied = fileParts.filter((_file, index) => index === 0 || random.chance(0.5));
      for (const file of emptied) file.data = Buffer.alloc(0);
      note = `empty files: ${emptied.map((file) => file.name).join(", ")}`;
      break;
    }
    case 7: {
      const body = encodeParts(parts, boundary);
      return {
        body: body.subarray(0, random.int(body.length)),
        contentType: `multipart/form-data; boundary=${boundary}`,
        note: "a cut body",
      };
    }
    case 8: {
      const where = anyPart();
      const long = "h".repeat(random.pick([5_000, 17_000, 100_000]));
      where.rawHeaders = random.pick([
        `Content-Disposition: form-data; name="${where.name ?? "x"}"; filename="${long}"`,
        `Content-Disposition: form-data; name="${where.name ?? "x"}"\r\nContent-Type: ${long}`,
        `Content-Disposition: form-data; name="${where.name ?? "x"}"\r\nX-Filler: ${long}`,
        `Content-Disposition: form-data; name="${long}"`,
      ]);
      note = `a ${long.length}-byte part header`;
      break;
    }
    case 9: {
      const where = anyPart();
      where.name = random.pick([
        "mo\u0000del",
        "模型",
        "\u202efile",
        "file\r\nX: y",
        "__proto__",
        "constructor",
        "",
        "model[]",
        "image[][]",
      ]);
      note = `a part named ${JSON.stringify(where.name)}`;
      break;
    }
    case 10: {
      const file = random.pick(fileParts);
      file.filename = random.pick([
        "a\u0000.png",
        "模型🚀.wav",
        "../../etc/passwd",
        '"',
        "\\",
        "\r\n",
        "x".repeat(300),
      ]);
      note = `a file named ${JSON.stringify(file.filename).slice(0, 40)}`;
      break;
    }
    case 11: {
      const duplicate = { ...anyPart() };
      parts.push(duplicate);
      note = `${duplicate.name} twice`;
      break;
    }
    case 12: {
      const missing = anyPart();
      parts.splice(parts.indexOf(missing), 1);
      note = `no ${missing.name}`;
      break;
    }
    case 13: {
      const field = random.pick(textParts);
      const value = hostileValue(random);
      field.data = typeof value === "string" ? value : toJsonText(value);
      note = `${field.name} = ${preview(value)}`;
      break;
    }
    case 14:
      lineEnd = "\n";
      note = "LF line ends";
      break;
    case 15:
      boundary = random.pick(["b".repeat(71), "b".repeat(2_000), "a b", '"quoted"', "é", "--", "-"]);
      contentType = random.pick([
        `multipart/form-data; boundary=${boundary}`,
        `multipart/form-data; boundary="${boundary}"`,
      ]);
      note = `boundary ${boundary.slice(0, 20)}`;
      break;
    case 16:
      contentType = random.pick([
        `multipart/form-data; boundary=other`,
        `multipart/form-data; boundary=${boundary}; boundary=other`,
        `multipart/mixed; boundary=${boundary}`,
        `Multipart/Form-Data; BOUNDARY=${boundary}`,
        `multipart/form-data;boundary=${boundary};charset=utf-16`,
      ]);
      note = `content type ${contentType}`;
      break;
    case 17:
      return {
        body: random.pick(['{"model":"stt"}', "model=stt&file=x", ""]),
        contentType: random.pick(["application/json", "application/x-www-form-urlencoded", "text/plain"]),
        note: "not an upload",
      };
    case 18:
      return {
        body: encodeParts(parts, boundary),
        contentType: `multipart/form-data; boundary=${boundary}`,
        note: "Content-Length lies",
        lie: random.pick(["longer", "shorter"]),
      };
    case 19: {
      const body = encodeParts(parts, boundary);
      return {
        body: Buffer.concat([body.subarray(0, body.length - `--${boundary}--\r\n`.length)]),
        contentType: `multipart/form-data; boundary=${boundary}`,
        note: "no closing boundary",
      };
    }
    case 20: {
      const file = random.pick(fileParts);
      file.data = Buffer.alloc(BODY_LIMIT_BYTES + 10, 1);
      note = "a file over the body limit";
      break;
    }
    default: {
      const extra = random.pick(["stream", "models", "models[]", "user", "unknown_field", "n"]);
      parts.push({ name: extra, data: String(preview(hostileValue(random))) });
      note = `an extra ${extra}`;
      break;
    }
  }
  return {
    body: encodeParts(parts, boundary, lineEnd),
    contentType: contentType ?? `multipart/form-data; boundary=${boundary}`,
    note,
  };
}

/**
 * A request whose `Content-Length` is not its body's length, written on a raw socket (undici would not send it):
 * longer, the client then closes its side; shorter, the rest arrives as the next "request". Either way the answer,
 * if any, is a 4xx, and the gateway keeps serving.
 */
async function sendLying(path: string, contentType: string, body: Buffer, lie: "longer" | "shorter"): Promise<string> {
  const url = new URL(fuzz.gateway.url);
  const length = lie === "longer" ? body.length + 1_000 : Math.floor(body.length / 2);
  const socket = connect(Number(url.port), url.hostname);
  const chunks: Buffer[] = [];
  socket.on("data", (chunk: Buffer) => chunks.push(chunk));
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  socket.write(
    `POST ${path} HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${CLIENT_KEY}\r\n` +
      `Content-Type: ${contentType}\r\nContent-Length: ${length}\r\n\r\n`,
  );
  socket.write(body);
  socket.end();
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      socket.destroy();
      resolve();
    }, ANSWER_TIMEOUT_MS);
    socket.once("close", () => {
      clearTimeout(timer);
      resolve();
    });
    socket.once("error", () => undefined);
  });
  return Buffer.concat(chunks).toString("latin1");
}

// ---- the tests ----

describe(`new doors fuzz (FUZZ_SEED=${SEED})`, () => {
  test("seed data: conversations with items for the id and query cases to find", async () => {
    for (let index = 0; index < 2; index++) {
      const answer = await send({
        method: "POST",
        path: "/v1/conversations",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          items: [
            { type: "message", role: "user", content: [{ type: "input_text", text: "Hello" }] },
            { type: "message", role: "assistant", content: [{ type: "output_text", text: "Hi" }] },
          ],
        }),
      });
      assert.equal(answer.status, 200, answer.text);
      const id = (parsed(answer.text) as { id: string }).id;
      known.conversations.push(id);
      const items = await send({ method: "GET", path: `/v1/conversations/${id}/items`, headers: {} });
      for (const item of (parsed(items.text) as { data: { id: string }[] }).data) known.items.push(item.id);
    }
    assert.ok(known.items.length >= 4);
  });

  test("JSON doors (speech, images, rerank, moderations, conversations, Responses' conversation): broken a field at a time", async (t) => {
    const findings = new Findings();
    await runSeededCases(FUZZ_RUN, "json", 260, async (random, caseName) => {
      const door = random.pick(JSON_DOORS);
      const body = door.body();
      let what: string;
      if (door.name.endsWith("-conversation") && random.chance(0.5)) {
        body.conversation = oddConversationField(random);
        what = `conversation = ${preview(body.conversation)}`;
      } else {
        what = mutate(random, body);
        if (random.chance(0.2)) what += `; ${mutate(random, body)}`;
      }
      const framed = frameJson(random, body);
      const sent: Sent = {
        method: "POST",
        path: random.chance(0.8) ? door.path : door.path.slice(3),
        headers: { "content-type": framed.contentType },
        body: framed.body,
      };
      await sendAndCheck(findings, caseName, sent, `${door.name}: ${what} ${framed.note}`);
    });
    findings.assertNone(t, [200, 400]);
  });

  test("conversations: odd path ids, queries and update/items bodies", async (t) => {
    const findings = new Findings();
    await runSeededCases(FUZZ_RUN, "conversations", 220, async (random, caseName) => {
      const id = oddId(random, known.conversations);
      const itemId = oddId(random, known.items);
      const base = random.chance(0.85) ? "/v1/conversations" : "/conversations";
      const route = random.int(7);
      let sent: Sent;
      let note = "";
      if (route === 0) sent = { method: "GET", path: `${base}/${id}`, headers: {} };
      else if (route === 1) {
        const query = oddQuery(random, ["after", "limit", "order", "include"]);
        sent = { method: "GET", path: `${base}/${id}/items${query}`, headers: {} };
      } else if (route === 2) sent = { method: "GET", path: `${base}/${id}/items/${itemId}`, headers: {} };
      else if (route === 3) {
        const body: Record<string, unknown> = { metadata: { topic: "x" } };
        const what = mutate(random, body);
        sent = {
          method: "POST",
          path: `${base}/${id}`,
          headers: { "content-type": "application/json" },
          body: frameJson(random, body).body,
        };
        note = what;
      } else if (route === 4) {
        const body: Record<string, unknown> = {
          items: [{ type: "message", role: "user", content: [{ type: "input_text", text: "More" }] }],
        };
        note = mutate(random, body);
        sent = {
          method: "POST",
          path: `${base}/${id}/items${oddQuery(random, ["include"])}`,
          headers: { "content-type": "application/json" },
          body: frameJson(random, body).body,
        };
      } else if (route === 5) {
        // Deleting a real conversation would leave the later cases nothing to find: only odd ids.
        const target = known.conversations.includes(id) ? `${id}x` : id;
        sent = { method: "DELETE", path: `${base}/${target}`, headers: {} };
      } else {
        const target = known.items.includes(itemId) ? `${itemId}x` : itemId;
        sent = { method: "DELETE", path: `${base}/${id}/items/${target}`, headers: {} };
      }
      await sendAndCheck(findings, caseName, sent, note);
    });
    findings.assertNone(t, [200, 400, 404]);
  });

  test("conversations made of broken items, then continued by Responses requests (JSON and streamed) and listed", async (t) => {
    const findings = new Findings();
    await runSeededCases(FUZZ_RUN, "kept-items", 90, async (random, caseName) => {
      const body = JSON_DOORS.find((door) => door.name === "conversation-create")?.body() ?? {};
      const what = mutate(random, body);
      const created = await sendAndCheck(
        findings,
        caseName,
        {
          method: "POST",
          path: "/v1/conversations",
          headers: { "content-type": "application/json" },
          body: toJsonText(body),
        },
        `create: ${what}`,
      );
      const id = created?.status === 200 ? (parsed(created.text) as { id?: unknown }).id : undefined;
      if (typeof id !== "string") return;
      const isStream = random.chance(0.5);
      const responses: Sent = {
        method: "POST",
        path: "/v1/responses",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          model: "m",
          conversation: random.chance(0.5) ? id : { id },
          input: "And?",
          stream: isStream,
        }),
      };
      const answer = await sendAndCheck(findings, `${caseName}/responses`, responses, `${what}, stream ${isStream}`);
      if (isStream && answer?.status === 200 && !/"type":"response\.(completed|incomplete|failed)"/.test(answer.text)) {
        findings.add(`${caseName}/responses`, responses, answer, ["a stream without its last event"], what);
      }
      const query = oddQuery(random, ["after", "limit", "order", "include"]);
      const listing: Sent = { method: "GET", path: `/v1/conversations/${id}/items${query}`, headers: {} };
      const listed = await sendAndCheck(findings, `${caseName}/items`, listing, what);
      // Listed as OpenAI's SDKs type an item: an id, a type and (when there is one) a status they know.
      const data = listed?.status === 200 ? (parsed(listed.text) as { data?: unknown }).data : [];
      for (const item of Array.isArray(data) ? data : []) {
        const status = isObject(item) ? item.status : undefined;
        if (!isObject(item) || typeof item.id !== "string" || typeof item.type !== "string") {
          findings.add(`${caseName}/items`, listing, listed, ["an item without a string id and type"], what);
        } else if (status !== undefined && !["in_progress", "completed", "incomplete"].includes(String(status))) {
          findings.add(`${caseName}/items`, listing, listed, [`an item with status ${preview(status)}`], what);
        }
      }
    });
    findings.assertNone(t, [200, 400]);
  });

  test("uploads (transcriptions, translations, image edits and variations): broken multipart bodies", async (t) => {
    const findings = new Findings();
    await runSeededCases(FUZZ_RUN, "uploads", 200, async (random, caseName) => {
      const door = random.pick(UPLOAD_DOORS);
      const upload = brokenUpload(random, door);
      const path = random.chance(0.8) ? door.path : door.path.slice(3);
      const note = `${door.name}: ${upload.note}`;
      if (upload.lie !== undefined) {
        takeUpstreamCalls();
        const raw = await sendLying(path, upload.contentType ?? "", upload.body as Buffer, upload.lie);
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0);
        const problems: string[] = [];
        if (status >= 500) problems.push(`a ${status} for a Content-Length lie`);
        for (const secret of SECRETS) if (raw.includes(secret)) problems.push("a key in the answer");
        findings.add(caseName, { method: "POST", path, headers: {} }, undefined, problems, `${note} (${upload.lie})`);
        return;
      }
      const headers: Headers = upload.contentType === undefined ? {} : { "content-type": upload.contentType };
      const sent: Sent = { method: "POST", path, headers, body: upload.body };
      const answer = await sendAndCheck(findings, caseName, sent, note);
      // An empty file is refused before any provider is asked (the checks above: nothing went upstream).
      if (note.includes("empty files") && answer !== undefined && answer.status !== 400) {
        findings.add(caseName, sent, answer, ["an empty file not refused"], note);
      }
    });
    findings.assertNone(t, [200, 400]);
  });

  test("afterwards: the gateway answers /health and its request log, nothing was unhandled, no key was logged", async () => {
    const health = await send({ method: "GET", path: "/health", headers: {} });
    assert.equal(health.status, 200, health.text);
    const records = await send({ method: "GET", path: "/v1/gateway/requests?limit=50", headers: {} });
    assert.equal(records.status, 200, records.text.slice(0, 300));
    assert.deepEqual(fuzz.unhandled, []);
    assert.ok(fuzz.logLines.length > 100, "the gateway logged at debug level");
    for (const secret of SECRETS) {
      const line = fuzz.logLines.find((text) => text.includes(secret));
      assert.equal(line, undefined, `a key in a log line: ${line?.slice(0, 300)}`);
    }
  });
});
