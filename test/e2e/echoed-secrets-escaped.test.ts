// An upstream echoes a key in a form other than as written or JSON-escaped once: an error message that is itself a
// JSON body (the key escaped twice), an encoder that escapes `/` as `\/` (PHP's json_encode) or `+` as `\u002B`
// (.NET's System.Text.Json), a URL it quotes (`%2B`, `%2F`, `%3D`). Base64 keys hold `+`, `/` and `=`; a key may
// hold `"` or `\`. Each form must be redacted wherever the echo goes: the client's error, the request log, the log
// lines, the reasons /stats shows. (echoed-secrets.test.ts: the same outputs for the plain forms.)
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { CHAT_ROUTE, HELLO, type RawResponse, send } from "../helpers/e2e.ts";
import { startTestGateway, type TestGateway } from "../helpers/gateway.ts";
import { type MockStep, type MockUpstream, type RecordedRequest, startMockUpstream } from "../helpers/mock-upstream.ts";

/** A base64 key (an Azure- or AWS-style secret): `+`, `/` and `=`. */
const BASE64_KEY = "Zq3+Lk8/Wm2xNp7+Rt5/Vb9yHc4=";
/** A key with the two characters JSON escapes (`"`, `\`). */
const QUOTED_KEY = 'Qk7"Xw4\\Pz9-Lm2Vn8Tb';
const CLIENT_KEY = "client-key-escaped-0123";

type Encoder = (value: unknown) => string;
const json: Encoder = (value) => JSON.stringify(value);
/** PHP's json_encode: `/` as `\/`. */
const php: Encoder = (value) => JSON.stringify(value).replaceAll("/", "\\/");
/** .NET's System.Text.Json default encoder: HTML-sensitive characters and `+` as `\u00XX` (upper-case hex). */
const dotnet: Encoder = (value) =>
  JSON.stringify(value).replace(/\\"|[+<>&'`]/g, (found) => {
    const character = found === '\\"' ? '"' : found;
    return `\\u${character.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}`;
  });
/** Go's encoding/json: `<`, `>`, `&` as `\u003c` (lower-case hex). */
const go: Encoder = (value) =>
  JSON.stringify(value).replace(/[<>&]/g, (found) => `\\u${found.charCodeAt(0).toString(16).padStart(4, "0")}`);

/** The upstream's error body: its message quoting the Authorization header it got, in a JSON body encoded twice. */
function twiceEncoded(encode: Encoder, key: string): string {
  const inner = encode({ error: { message: `Incorrect API key provided: Bearer ${key}` } });
  return encode({ error: { message: `upstream said ${inner}`, type: "invalid_request_error" } });
}

/** model id -> [the provider's key, the body its upstream answers with]. */
const ECHOES: Record<string, (key: string) => string> = {
  "twice-json": (key) => twiceEncoded(json, key),
  "twice-php": (key) => twiceEncoded(php, key),
  "twice-dotnet": (key) => twiceEncoded(dotnet, key),
  "twice-go": (key) => twiceEncoded(go, key),
  "once-php": (key) => php({ error: { message: `Incorrect API key provided: ${key}` } }),
  "url-quoted": (key) =>
    json({ error: { message: `GET https://api.example.com/v1/models?key=${encodeURIComponent(key)} failed: 400` } }),
};

/** Every form of `key` the echoes above put in any output: what must never appear. */
function leakedForms(key: string): string[] {
  const once = [json, php, dotnet, go].map((encode) => encode(key).slice(1, -1));
  const twice = [json, php, dotnet, go].map((encode) => encode(encode(key).slice(1, -1)).slice(1, -1));
  const inRecord = [...once, ...twice].map((form) => json(form).slice(1, -1));
  return [...new Set([key, ...once, ...twice, ...inRecord, encodeURIComponent(key)])];
}

const FORMS = [...new Set([...leakedForms(BASE64_KEY), ...leakedForms(QUOTED_KEY)])];

function assertClean(what: string, text: string): void {
  assert.deepEqual(
    FORMS.filter((form) => text.includes(form)),
    [],
    `${what} leaks a key: ${text}`,
  );
}

function echoing(recorded: RecordedRequest): MockStep {
  const model = (recorded.body as { model?: string } | undefined)?.model ?? "";
  const [name, provider] = model.split(":");
  const key = provider === "quoted" ? QUOTED_KEY : BASE64_KEY;
  const echo = ECHOES[name ?? ""];
  assert.ok(echo !== undefined, model);
  return { kind: "text", status: 400, headers: { "content-type": "application/json" }, body: echo(key) };
}

describe("a key an upstream echoes escaped twice, with `\\/`, `\\u002B` or percent-encoded reaches no output", () => {
  let mock: MockUpstream;
  let gateway: TestGateway;
  const logLines: string[] = [];
  const answers = new Map<string, RawResponse>();
  before(async () => {
    mock = await startMockUpstream();
    mock.setDefault(CHAT_ROUTE, echoing);
    const models = (provider: string) =>
      Object.keys(ECHOES)
        .map((name) => `      ${name}-${provider}: { id: "${name}:${provider}" }`)
        .join("\n");
    gateway = await startTestGateway(
      `server:
  port: 0
  host: 127.0.0.1
  api_keys: [${CLIENT_KEY}]
providers:
  - name: base64
    base_url: ${mock.baseUrl}
    api_key: "${BASE64_KEY}"
    retries: 0
    models:
${models("base64")}
  - name: quoted
    base_url: ${mock.baseUrl}
    api_key: ${JSON.stringify(QUOTED_KEY)}
    retries: 0
    models:
${models("quoted")}
cooldowns:
  failure_threshold: 100
routing:
  max_wait_for_better_ms: 0
`,
      {
        logLevel: "trace",
        logStream: new Writable({
          write(chunk: Buffer, _encoding, done) {
            logLines.push(chunk.toString("utf8"));
            done();
          },
        }),
      },
    );
    for (const provider of ["base64", "quoted"]) {
      for (const name of Object.keys(ECHOES)) {
        const model = `${name}-${provider}`;
        answers.set(
          model,
          await send(gateway, "POST", "/v1/chat/completions", {
            headers: { authorization: `Bearer ${CLIENT_KEY}` },
            body: { model, messages: HELLO },
          }),
        );
      }
    }
  });
  after(async () => {
    await gateway?.close();
    await mock?.close();
  });

  test("the upstreams were sent the keys and echoed them in each form (else every check is vacuous)", () => {
    const sent = new Set(mock.requests.map((recorded) => recorded.headers.authorization));
    assert.ok(sent.has(`Bearer ${BASE64_KEY}`) && sent.has(`Bearer ${QUOTED_KEY}`), [...sent].join(", "));
    assert.equal(answers.size, 2 * Object.keys(ECHOES).length);
  });

  test("the client's error (the upstream's 400 passed on)", () => {
    for (const [model, answer] of answers) {
      assert.equal(answer.status, 400, `${model}: ${answer.text}`);
      assert.match(answer.text, /upstream said|Incorrect API key|failed: 400/, `${model}: the echo was passed on`);
      assertClean(`the answer to ${model}`, answer.text);
    }
  });

  test("the request log's record of each request", async () => {
    for (const [model, answer] of answers) {
      const id = answer.headers["x-request-id"];
      assert.ok(id !== undefined, model);
      let record: RawResponse | undefined;
      for (let tries = 0; tries < 100 && record?.status !== 200; tries++) {
        record = await send(gateway, "GET", `/v1/gateway/requests/${id}`, {
          headers: { authorization: `Bearer ${CLIENT_KEY}` },
        });
        if (record.status !== 200) await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.equal(record?.status, 200, model);
      assertClean(`the record of ${model}`, record?.text ?? "");
    }
  });

  test("/stats and the log lines at every level", async () => {
    const stats = await send(gateway, "GET", "/stats", { headers: { authorization: `Bearer ${CLIENT_KEY}` } });
    assertClean("/stats", stats.text);
    assert.ok(
      logLines.some((line) => line.includes("upstream said")),
      "a line quoted the upstream (else vacuous)",
    );
    for (const line of logLines) assertClean("a log line", line);
  });
});
