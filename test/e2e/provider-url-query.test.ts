// A provider whose base_url carries a query string (Azure OpenAI's `?api-version=2024-10-21`, a proxy's `?key=`)
// wants it on every call: chat (JSON and streamed), completions, embeddings and model discovery each reach the
// mock upstream as `<base path>/<endpoint>?<query>`. A credential parameter among them (`key=`) is redacted
// wherever the gateway echoes it: an error body quoting the URL, the request log, every log line.
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { test } from "node:test";
import { assertNoSecret, CHAT_ROUTE, HELLO, send, useGateway, useMock } from "../helpers/e2e.ts";

const QUERY_KEY = "Pq7RzT2vWx9YbN4mKc6HdJ3sLf8GaE5u";
const QUERY = `api-version=2024-10-21&key=${QUERY_KEY}`;

test("a base_url's query string goes with every upstream call and discovery, and its key is never echoed", async (t) => {
  const mock = await useMock(t, { models: [{ id: "chat-model" }, { id: "text-embedding-3-small" }] });
  const logLines: string[] = [];
  const gateway = await useGateway(
    t,
    `providers:
  - name: azure
    base_url: ${mock.baseUrl}/?${QUERY}
    api_key: sk-azure-unrelated-000000
    retries: 0
cooldowns:
  failure_threshold: 100
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

  // Discovery: the list under the base path, with the query (not the base URL itself, nor the query dropped).
  const listed = mock.requests.filter((recorded) => recorded.method === "GET");
  assert.deepEqual(
    listed.map((recorded) => recorded.url),
    [`/v1/models?${QUERY}`],
  );
  const models = await send(gateway, "GET", "/v1/models");
  assert.equal(models.status, 200, models.text);
  assert.match(models.text, /chat-model/);

  const chat = await send(gateway, "POST", "/v1/chat/completions", { body: { model: "chat-model", messages: HELLO } });
  assert.equal(chat.status, 200, chat.text);
  const streamed = await send(gateway, "POST", "/v1/chat/completions", {
    body: { model: "chat-model", messages: HELLO, stream: true },
  });
  assert.equal(streamed.status, 200, streamed.text);
  assert.match(streamed.text, /data: \[DONE\]/);
  const completion = await send(gateway, "POST", "/v1/completions", { body: { model: "chat-model", prompt: "hi" } });
  assert.equal(completion.status, 200, completion.text);
  const embedding = await send(gateway, "POST", "/v1/embeddings", {
    body: { model: "text-embedding-3-small", input: "hi" },
  });
  assert.equal(embedding.status, 200, embedding.text);
  assert.deepEqual(
    mock.requests.filter((recorded) => recorded.method === "POST").map((recorded) => recorded.url),
    [
      `/v1/chat/completions?${QUERY}`,
      `/v1/chat/completions?${QUERY}`,
      `/v1/completions?${QUERY}`,
      `/v1/embeddings?${QUERY}`,
    ],
  );

  // An upstream quoting the URL it was called with (the key in it) in its error: redacted in the answer and record.
  mock.setDefault(CHAT_ROUTE, (recorded) => ({
    kind: "json",
    status: 400,
    body: { error: { message: `bad request to ${recorded.url}`, type: "invalid_request_error" } },
  }));
  const refused = await send(gateway, "POST", "/v1/chat/completions", {
    body: { model: "chat-model", messages: HELLO },
    headers: { "x-request-id": "query-key-echo" },
  });
  assert.equal(refused.status, 400, refused.text);
  assert.match(refused.text, /key=\[redacted\]/, "the echo was redacted, not dropped (else the test is vacuous)");
  assertNoSecret(refused, QUERY_KEY);
  const record = await waitForRecord(gateway, "query-key-echo");
  assert.ok(!record.includes(QUERY_KEY), `the request log holds the key: ${record}`);
  const leaking = logLines.filter((line) => line.includes(QUERY_KEY));
  assert.deepEqual(leaking, [], "no log line holds the key");
  assert.ok(logLines.length > 0, "the gateway logged (else the log check is vacuous)");
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
