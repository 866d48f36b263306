// A body rule's value that came from the environment (`user: ${TENANT_TOKEN}`) is sent upstream in every body, and an
// upstream echoes what it was sent as readily as the key: such values are redacted like the key, from the client's
// error (JSON and in-stream, through each front door), the request log and every log line. A short one (`${TIER}` = `auto`) is a setting and
// stays. Real gateway, scripted mock upstream over loopback, the real OpenAI SDK and plain HTTP as clients.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import { test } from "node:test";
import { APIError } from "openai";
import { tempDir } from "../helpers/cli-process.ts";
import {
  assertNoSecret,
  CHAT_ROUTE,
  chatRequests,
  HELLO,
  openAiClient,
  send,
  useGateway,
  useMock,
} from "../helpers/e2e.ts";
import { chatChunk } from "../helpers/mock-upstream.ts";

/** Not key-shaped: only the config can say it is a secret. */
const TENANT_TOKEN = "tenant-7Hq2Zp9Lr4VxK3";
const ACCOUNT_ID = "9f3e1c7a55b2d4e8";
const TIER = "auto";

test("a body rule's value from an environment variable is redacted wherever an upstream echoes it", async (t) => {
  const mock = await useMock(t);
  const logLines: string[] = [];
  const gateway = await useGateway(
    t,
    `providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha-unrelated-000000
    retries: 0
    body:
      override: { user: "\${TENANT_TOKEN}" }
      defaults: { service_tier: "\${TIER}" }
    models:
      m:
        id: alpha-m
        body:
          defaults: { metadata: { account: "acct-\${ACCOUNT_ID}" } }
cooldowns:
  failure_threshold: 100
`,
    {
      env: { TENANT_TOKEN, ACCOUNT_ID, TIER },
      logLevel: "trace",
      logStream: new Writable({
        write(chunk: Buffer, _encoding, done) {
          logLines.push(chunk.toString("utf8"));
          done();
        },
      }),
    },
  );
  const echo = (body: unknown) => {
    const sent = body as { user?: string; metadata?: { account?: string }; service_tier?: string };
    return `invalid user ${sent.user} for ${sent.metadata?.account} on tier ${sent.service_tier}`;
  };
  mock.setDefault(CHAT_ROUTE, (recorded) => ({
    kind: "json",
    status: 400,
    body: { error: { message: echo(recorded.body), type: "invalid_request_error", param: null, code: null } },
  }));

  const refused = await send(gateway, "POST", "/v1/chat/completions", {
    body: { model: "m", messages: HELLO },
    headers: { "x-request-id": "body-secret-echo" },
  });
  assert.equal(refused.status, 400, refused.text);
  const sent = chatRequests(mock)[0]?.body as { user?: unknown; metadata?: unknown } | undefined;
  assert.equal(sent?.user, TENANT_TOKEN, "the rule sent the variable's value (else the test is vacuous)");
  assert.deepEqual(sent?.metadata, { account: `acct-${ACCOUNT_ID}` });
  assert.match(refused.text, /invalid user \[redacted\] for acct-\[redacted\] on tier auto/, refused.text);
  assertNoSecret(refused, TENANT_TOKEN);
  assertNoSecret(refused, ACCOUNT_ID);

  // The real SDK, streamed: the refusal comes before the first byte, as an HTTP error.
  const client = openAiClient(gateway);
  const streamed = await client.chat.completions.create({ model: "m", messages: HELLO, stream: true }).then(
    () => undefined,
    (error: unknown) => error,
  );
  assert.ok(streamed instanceof APIError, String(streamed));
  assert.equal(streamed.status, 400);
  assert.match(streamed.message, /\[redacted\]/);
  assert.ok(!streamed.message.includes(TENANT_TOKEN), streamed.message);
  assert.ok(!JSON.stringify(streamed.error).includes(ACCOUNT_ID), JSON.stringify(streamed.error));

  // The other front doors render the same refusal in their own shape, as redacted.
  const messages = await send(gateway, "POST", "/v1/messages", {
    body: { model: "m", max_tokens: 16, messages: HELLO },
  });
  const responses = await send(gateway, "POST", "/v1/responses", { body: { model: "m", input: "hi" } });
  for (const answer of [messages, responses]) {
    assert.equal(answer.status, 400, answer.text);
    assert.match(answer.text, /invalid user \[redacted\]/, answer.text);
    assertNoSecret(answer, TENANT_TOKEN);
    assertNoSecret(answer, ACCOUNT_ID);
  }

  // An error event after the first content: the one in-band error the client gets is redacted too.
  mock.setDefault(CHAT_ROUTE, (recorded) => ({
    kind: "sse",
    events: [
      { data: chatChunk("Hel", "alpha-m", { role: true }) },
      { data: { error: { message: echo(recorded.body), type: "invalid_request_error", code: null } } },
    ],
  }));
  const broken = await send(gateway, "POST", "/v1/chat/completions", {
    body: { model: "m", messages: HELLO, stream: true },
    headers: { "x-request-id": "body-secret-stream" },
  });
  assert.equal(broken.status, 200, broken.text);
  assert.match(broken.text, /Hel/);
  assert.match(broken.text, /"error"/, "the stream ended in an error event (else the check below is vacuous)");
  assertNoSecret(broken, TENANT_TOKEN);
  assertNoSecret(broken, ACCOUNT_ID);

  for (const id of ["body-secret-echo", "body-secret-stream"]) {
    const record = await waitForRecord(gateway, id);
    assert.ok(!record.includes(TENANT_TOKEN) && !record.includes(ACCOUNT_ID), `the request log holds it: ${record}`);
  }
  assert.ok(logLines.length > 0, "the gateway logged (else the log check is vacuous)");
  const leaking = logLines.filter((line) => line.includes(TENANT_TOKEN) || line.includes(ACCOUNT_ID));
  assert.deepEqual(leaking, [], "no log line holds a rule's secret");
});

test("a preset's body rule value from an environment variable (or an override variable) is redacted as the config file's", async (t) => {
  const mock = await useMock(t);
  const presetsDir = tempDir(t);
  // A preset as the built-in ones are written, with rule values taken from the environment.
  writeFileSync(
    join(presetsDir, "tenantcloud.yaml"),
    `description: A host that bills a tenant named in every body
signup_url: https://example.com/keys
base_url: ${mock.baseUrl}
api_key_env_var: TENANTCLOUD_API_KEY
body:
  override: { user: "\${TENANT_TOKEN}", service_tier: "\${TIER}" }
known_models:
  alpha-m: { body: { defaults: { metadata: { account: "acct-\${ACCOUNT_ID}" } } } }
sources:
  - { url: "https://example.com/docs", date: "2026-12-06", covers: "test" }
`,
  );
  const logLines: string[] = [];
  const env = { TENANT_TOKEN, ACCOUNT_ID, TIER, TENANTCLOUD_API_KEY: "sk-tenantcloud" };
  const gateway = await useGateway(
    t,
    `providers:
  - preset: tenantcloud
    retries: 0
    models:
      m: { id: alpha-m }
request_log:
  enabled: true
cooldowns:
  failure_threshold: 100
`,
    {
      env,
      presetsDir,
      logLevel: "trace",
      logStream: new Writable({
        write(chunk: Buffer, _encoding, done) {
          logLines.push(chunk.toString("utf8"));
          done();
        },
      }),
    },
  );
  mock.setDefault(CHAT_ROUTE, (recorded) => {
    const sent = recorded.body as { user?: string; metadata?: { account?: string }; service_tier?: string };
    const message = `invalid user ${sent.user} for ${sent.metadata?.account} on tier ${sent.service_tier}`;
    return { kind: "json", status: 400, body: { error: { message, type: "invalid_request_error", param: null } } };
  });
  const refused = await send(gateway, "POST", "/v1/chat/completions", {
    body: { model: "m", messages: HELLO },
    headers: { "x-request-id": "preset-secret-echo" },
  });
  assert.equal(refused.status, 400, refused.text);
  const sent = chatRequests(mock)[0]?.body as { user?: unknown; metadata?: unknown } | undefined;
  assert.equal(sent?.user, TENANT_TOKEN, "the preset's rule sent the variable's value (else the test is vacuous)");
  assert.deepEqual(sent?.metadata, { account: `acct-${ACCOUNT_ID}` });
  assert.match(refused.text, /invalid user \[redacted\] for acct-\[redacted\] on tier auto/, refused.text);
  assertNoSecret(refused, TENANT_TOKEN);
  assertNoSecret(refused, ACCOUNT_ID);
  const record = await waitForRecord(gateway, "preset-secret-echo");
  assert.ok(!record.includes(TENANT_TOKEN) && !record.includes(ACCOUNT_ID), `the request log holds it: ${record}`);
  assert.ok(logLines.length > 0, "the gateway logged (else the log check is vacuous)");
  const leaking = logLines.filter((line) => line.includes(TENANT_TOKEN) || line.includes(ACCOUNT_ID));
  assert.deepEqual(leaking, [], "no log line holds a preset rule's secret");

  // An override variable replaces the preset's field with a value from the environment: a secret as well.
  const overridden = await useGateway(
    t,
    "providers:\n  - preset: tenantcloud\n    retries: 0\n    models:\n      m: { id: alpha-m }\n",
    {
      env: { ...env, LLM_GATEWAY_PRESET_TENANTCLOUD_BODY: `{ override: { user: ${ACCOUNT_ID}x } }` },
      presetsDir,
    },
  );
  const again = await send(overridden, "POST", "/v1/chat/completions", { body: { model: "m", messages: HELLO } });
  assert.equal(again.status, 400, again.text);
  assert.equal((chatRequests(mock).at(-1)?.body as { user?: unknown } | undefined)?.user, `${ACCOUNT_ID}x`);
  assert.match(again.text, /invalid user \[redacted\]/, again.text);
  assertNoSecret(again, `${ACCOUNT_ID}x`);
});

/** The request log is written after the answer: wait until the record is there. */
async function waitForRecord(gateway: Parameters<typeof send>[0], id: string): Promise<string> {
  for (let tries = 0; tries < 100; tries++) {
    const response = await send(gateway, "GET", `/v1/gateway/requests/${id}`);
    if (response.status === 200) return response.text;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.fail(`no record for ${id}`);
}

test("an override variable's rule: its value from a variable is redacted, its stop sequence is not", async (t) => {
  const mock = await useMock(t);
  const presetsDir = tempDir(t);
  writeFileSync(
    join(presetsDir, "tenantcloud.yaml"),
    `description: A host that bills a tenant named in every body
signup_url: https://example.com/keys
base_url: ${mock.baseUrl}
api_key_env_var: TENANTCLOUD_API_KEY
sources:
  - { url: "https://example.com/docs", date: "2026-12-06", covers: "test" }
`,
  );
  const STOP = "Observation:";
  const logLines: string[] = [];
  const gateway = await useGateway(
    t,
    `providers:
  - preset: tenantcloud
    retries: 0
    models:
      m: { id: alpha-m }
request_log:
  enabled: true
cooldowns:
  failure_threshold: 100
`,
    {
      env: {
        TENANT_TOKEN,
        TENANTCLOUD_API_KEY: "sk-tenantcloud",
        // The variable's text as a shell passes it in single quotes: `${TENANT_TOKEN}` is the gateway's to read.
        LLM_GATEWAY_PRESET_TENANTCLOUD_BODY: `{ override: { user: "\${TENANT_TOKEN}", stop: ["${STOP}"] } }`,
      },
      presetsDir,
      logLevel: "trace",
      logStream: new Writable({
        write(chunk: Buffer, _encoding, done) {
          logLines.push(chunk.toString("utf8"));
          done();
        },
      }),
    },
  );
  mock.setDefault(CHAT_ROUTE, (recorded) => {
    const sent = recorded.body as { user?: string; stop?: string[] };
    const message = `invalid user ${sent.user} with stop ${sent.stop?.join(",")}`;
    return { kind: "json", status: 400, body: { error: { message, type: "invalid_request_error", param: null } } };
  });
  const refused = await send(gateway, "POST", "/v1/chat/completions", {
    body: { model: "m", messages: HELLO },
    headers: { "x-request-id": "override-stop" },
  });
  assert.equal(refused.status, 400, refused.text);
  const sent = chatRequests(mock)[0]?.body as { user?: unknown; stop?: unknown } | undefined;
  assert.equal(sent?.user, TENANT_TOKEN, "the override's variable reference was read from the environment");
  assert.deepEqual(sent?.stop, [STOP]);
  assert.match(refused.text, new RegExp(`invalid user \\[redacted\\] with stop ${STOP}`), refused.text);
  assertNoSecret(refused, TENANT_TOKEN);
  const record = await waitForRecord(gateway, "override-stop");
  assert.ok(record.includes(`with stop ${STOP}`), `the request log shows the stop sequence: ${record}`);
  assert.ok(!record.includes(TENANT_TOKEN), `the request log holds the token: ${record}`);
  assert.deepEqual(
    logLines.filter((line) => line.includes(TENANT_TOKEN)),
    [],
    "no log line holds the override's secret",
  );
});
