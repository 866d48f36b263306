// What a client sends never puts a key into a log line: a credential-named query parameter of the request target is
// redacted in the debug `request done` line, and any configured client or admin key (not only provider keys) is
// redacted from every line and every stored record, with the keys of the config now serving (after a reload too).
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { Writable } from "node:stream";
import { test } from "node:test";
import { CHAT_ROUTE, type RawResponse, send, useGateway, useMock } from "../helpers/e2e.ts";
import type { TestGateway } from "../helpers/gateway.ts";
import { chatCompletion } from "../helpers/mock-upstream.ts";

/** Every line the gateway's logger writes, as text. */
function capturedLines(): { stream: Writable; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(chunk.toString("utf8"));
      callback();
    },
  });
  return { stream, lines };
}

test("the debug `request done` line logs the request target with credential query parameters redacted", async (t) => {
  const mock = await useMock(t);
  const { stream, lines } = capturedLines();
  const gateway = await useGateway(
    t,
    `providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha-provider-key-000000
    models:
      m: {}
`,
    { logLevel: "debug", logStream: stream },
  );
  // No known key shape, and not a configured secret: only the parameter's name says it is a credential.
  const queryKey = "Ck2VbN8mTz5RwX2cLp7HsD4jFa9GeY6u";
  const answer = await send(gateway, "GET", `/v1/models?api_key=${queryKey}&key=${queryKey}x&limit=5`);
  assert.equal(answer.status, 200, answer.text);
  const done = lines
    .map((line) => JSON.parse(line) as { msg: string; url?: string })
    .find((line) => line.msg === "request done");
  assert.ok(done !== undefined, `no request done line:\n${lines.join("")}`);
  assert.equal(done.url, "/v1/models?api_key=%5Bredacted%5D&key=%5Bredacted%5D&limit=5");
  for (const line of lines) assert.ok(!line.includes(queryKey), `a line leaks the query key: ${line}`);
});

/** The request log is written after the answer: wait until the record is there. */
async function recordOf(gateway: TestGateway, id: string, key: string): Promise<RawResponse> {
  for (let tries = 0; tries < 100; tries++) {
    const record = await send(gateway, "GET", `/v1/gateway/requests/${id}`, {
      headers: { authorization: `Bearer ${key}` },
    });
    if (record.status === 200) return record;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.fail(`no record ${id}`);
}

test("client and admin keys are redacted from every log line and stored record, the keys a reload brings and retires too", async (t) => {
  // No known key shape: only the configured values say they are secrets.
  const clientKey = "Cl1entQ8wErTy5UiOp3AsDfGh7Jk";
  const namedKey = "NamedZx4Cv6Bn8Mq2Wl9Ep5Rt3Yu";
  const adminKey = "AdminPo9Iu8Yt7Re6Wq5As4Df3Gh";
  const newKey = "RotatedLk2Jh4Gf6Ds8Aq1Wz3Xc5";
  const mock = await useMock(t);
  mock.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("hello", "m") });
  const { stream, lines } = capturedLines();
  const gateway = await useGateway(
    t,
    `server:
  port: 0
  host: 127.0.0.1
  api_keys:
    - ${clientKey}
    - { key: ${namedKey}, name: app }
  admin_keys: [${adminKey}]
providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha-provider-key-000000
    models:
      m: {}
log:
  content: true
`,
    { logLevel: "debug", logStream: stream },
  );
  const as = (key: string) => ({ authorization: `Bearer ${key}` });
  // A parameter whose name says nothing of a credential: the debug `request done` line quotes it as it came.
  const listed = await send(gateway, "GET", `/v1/models?note=${clientKey}&ref=${adminKey}`, { headers: as(clientKey) });
  assert.equal(listed.status, 200, listed.text);
  // A prompt quoting every key, kept in the request log (`log.content: true`).
  const chat = await send(gateway, "POST", "/v1/chat/completions", {
    headers: as(namedKey),
    body: { model: "m", messages: [{ role: "user", content: `my keys: ${clientKey} ${namedKey} ${adminKey}` }] },
  });
  assert.equal(chat.status, 200, chat.text);
  const record = await recordOf(gateway, chat.headers["x-request-id"] ?? "", clientKey);
  assert.match(record.text, /my keys: \[redacted\] \[redacted\] \[redacted\]/, record.text);
  assert.ok(mock.requests.at(-1)?.bodyText.includes(clientKey), "the prompt went upstream as written");

  // A reload replaces the unnamed client key: the new one is redacted, and so is the one it retired.
  writeFileSync(gateway.configPath, readFileSync(gateway.configPath, "utf8").replace(clientKey, newKey));
  const reload = await send(gateway, "POST", "/admin/reload", { headers: as(adminKey) });
  assert.equal(reload.status, 200, reload.text);
  const after = await send(gateway, "GET", `/v1/models?note=${newKey}&old=${clientKey}`, { headers: as(newKey) });
  assert.equal(after.status, 200, after.text);
  assert.equal((await send(gateway, "GET", "/v1/models", { headers: as(clientKey) })).status, 401, "revoked");

  const done = lines.filter((line) => line.includes('"request done"'));
  assert.ok(done.length >= 2, lines.join(""));
  assert.ok(
    done.some((line) => line.includes("note=[redacted]&ref=[redacted]")),
    `the keys were in the line, redacted: ${done.join("")}`,
  );
  assert.ok(
    done.some((line) => line.includes("note=[redacted]&old=[redacted]")),
    done.join(""),
  );
  for (const line of lines) {
    for (const key of [clientKey, namedKey, adminKey, newKey]) assert.ok(!line.includes(key), `leaks ${key}: ${line}`);
  }
  for (const key of [clientKey, namedKey, adminKey]) assert.ok(!record.text.includes(key), `record leaks ${key}`);
});

test("a client or admin key shorter than 8 characters is not searched for: it would match inside numbers and words", async (t) => {
  const mock = await useMock(t);
  const gateway = await useGateway(
    t,
    `server:
  port: 0
  host: 127.0.0.1
  api_keys: ["1234", "LongEnough8"]
  admin_keys: ["test", "AdminLong9"]
providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha-provider-key-000000
    models:
      m: {}
`,
  );
  const secrets = gateway.runtime.secrets.list();
  assert.ok(secrets.includes("LongEnough8") && secrets.includes("AdminLong9"), secrets.join(" "));
  assert.ok(!secrets.includes("1234") && !secrets.includes("test"), secrets.join(" "));
  assert.ok(secrets.includes("sk-alpha-provider-key-000000"), "the provider keys are there too");
});

test("keys replaced by two reloads with nothing redacted in between (A -> B -> C) are still redacted, A's too", async (t) => {
  // No known key shape: only the configured values say they are secrets.
  const keys = ["ClientAq1Wz3Xc5Lk2Jh4Gf6D", "ClientBq9Rt3Yu5Io7Pa2Sd4F", "ClientCm8Nb6Vc4Xz2Lk9Jh7G"];
  const providerKeys = ["ProviderAx7Kp2Wq9Lm4Zt6R", "ProviderBv3Hs8Dn1Fg5Qy2E", "ProviderCj6Tu4Yr9Wm2Ne8P"];
  const adminKey = "AdminPo9Iu8Yt7Re6Wq5As4Df3Gh";
  const mock = await useMock(t);
  // A late upstream error quoting every key the gateway ever held (a request in flight across the reloads).
  const echo = `seen ${[...keys, ...providerKeys].join(" ")}`;
  mock.setDefault(CHAT_ROUTE, {
    kind: "json",
    status: 400,
    body: { error: { message: echo, type: "invalid_request_error" } },
  });
  const config = (index: number) => `server:
  port: 0
  host: 127.0.0.1
  api_keys: [${keys[index]}]
  admin_keys: [${adminKey}]
providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: ${providerKeys[index]}
    retries: 0
    models:
      m: {}
`;
  // Silent: no log line runs the redaction between the reloads, and no request is made under A or B.
  const gateway = await useGateway(t, config(0));
  const stateText = readFileSync(gateway.configPath, "utf8").slice(config(0).length);
  for (const index of [1, 2]) {
    writeFileSync(gateway.configPath, `${config(index)}${stateText}`);
    const reload = await send(gateway, "POST", "/admin/reload", { headers: { authorization: `Bearer ${adminKey}` } });
    assert.equal(reload.status, 200, reload.text);
  }
  const refused = await send(gateway, "POST", "/v1/chat/completions", {
    headers: { authorization: `Bearer ${keys[2]}` },
    body: { model: "m", messages: [{ role: "user", content: "hi" }] },
  });
  assert.equal(refused.status, 400, refused.text);
  assert.equal(mock.requests.at(-1)?.headers.authorization, `Bearer ${providerKeys[2]}`, "C serves");
  assert.match(refused.text, /seen( \[redacted\]){6}/, refused.text);
  const record = await recordOf(gateway, refused.headers["x-request-id"] ?? "", keys[2] ?? "");
  for (const key of [...keys, ...providerKeys]) {
    assert.ok(!refused.text.includes(key), `the client's error leaks ${key}`);
    assert.ok(!record.text.includes(key), `the record leaks ${key}`);
  }
});
