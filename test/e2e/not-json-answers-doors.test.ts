// An upstream answering 200 `Content-Type: application/json` with a body that is not JSON (a proxy's HTML page) is a
// failed attempt (`bad_response`, upstream/json-attempt.ts) on every door: with no other candidate, the client gets a
// 502 `upstream_unavailable` in its protocol (a batch line its error line, a background response `failed`), never a
// crash, and the record says the same.
import assert from "node:assert/strict";
import { test } from "node:test";
import { runOneFailingLine } from "../helpers/batches-scene.ts";
import { CHAT_ROUTE, openAiClient, send, useGateway, useMock } from "../helpers/e2e.ts";
import type { TestGateway } from "../helpers/gateway.ts";

interface ListedRecord {
  readonly id: string;
  readonly batchId?: string;
  readonly status: number;
  readonly outcome: string;
  readonly attempts: readonly { outcome: string }[];
}

async function htmlScene(t: Parameters<typeof useMock>[0]): Promise<TestGateway> {
  const mock = await useMock(t);
  mock.setDefault(CHAT_ROUTE, {
    kind: "text",
    status: 200,
    body: "<html><body>502 Bad Gateway</body></html>",
    headers: { "content-type": "application/json" },
  });
  return useGateway(
    t,
    `providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha
    retries: 0
    models:
      m: { id: m }
cooldowns:
  failure_threshold: 1000
request_log:
  enabled: true
`,
  );
}

async function records(gateway: TestGateway): Promise<ListedRecord[]> {
  const listed = await send(gateway, "GET", "/v1/gateway/requests?limit=50");
  return (listed.json as { data: ListedRecord[] }).data;
}

function assertBadResponse(record: ListedRecord | undefined, what: string): void {
  assert.ok(record, `${what}: no record`);
  assert.deepEqual(
    [record.status, record.outcome, record.attempts.map((attempt) => attempt.outcome)],
    [502, "bad_response", ["bad_response"]],
    what,
  );
}

test("a 200 whose JSON body is HTML: a 502 in each live door's protocol, recorded as bad_response", async (t) => {
  const gateway = await htmlScene(t);
  const hi = [{ role: "user", content: "hi" }];
  const doors: [string, string, Record<string, unknown>, (json: unknown) => string | undefined][] = [
    ["chat", "/v1/chat/completions", { model: "m", messages: hi }, (json) => (json as ErrorBody).error.code],
    ["messages", "/v1/messages", { model: "m", max_tokens: 9, messages: hi }, (json) => (json as ErrorBody).error.type],
    ["responses", "/v1/responses", { model: "m", input: "hi" }, (json) => (json as ErrorBody).error.code],
    [
      "responses store: false",
      "/v1/responses",
      { model: "m", input: "hi", store: false },
      (json) => (json as ErrorBody).error.code,
    ],
  ];
  for (const [what, path, body, codeOf] of doors) {
    const response = await send(gateway, "POST", path, { body });
    assert.equal(response.status, 502, `${what}: ${response.text}`);
    assert.equal(codeOf(response.json), what === "messages" ? "api_error" : "upstream_unavailable", what);
    assertBadResponse(
      (await records(gateway)).find((record) => record.id === response.headers["x-request-id"]),
      what,
    );
  }
});

interface ErrorBody {
  readonly error: { readonly code?: string; readonly type?: string };
}

test("a 200 whose JSON body is HTML: a background response fails, a batch line is an error line; both recorded", async (t) => {
  const gateway = await htmlScene(t);
  const created = await send(gateway, "POST", "/v1/responses", { body: { model: "m", input: "hi", background: true } });
  assert.equal(created.status, 200, created.text);
  const id = (created.json as { id: string }).id;
  let run: { status: string } = { status: "queued" };
  for (let polls = 0; polls < 200 && (run.status === "queued" || run.status === "in_progress"); polls++) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    run = (await send(gateway, "GET", `/v1/responses/${id}`)).json as { status: string };
  }
  assert.equal(run.status, "failed", JSON.stringify(run));
  assertBadResponse(
    (await records(gateway)).find((record) => record.id === created.headers["x-request-id"]),
    "background",
  );
  const client = openAiClient(gateway);
  const { batch, response } = await runOneFailingLine(client, "/v1/chat/completions", {
    model: "m",
    messages: [{ role: "user", content: "hi" }],
  });
  assert.equal(response.status_code, 502, JSON.stringify(response));
  const tries = (await records(gateway)).filter((record) => record.batchId === batch.id);
  assert.ok(tries.length > 0, "no record of the line");
  for (const record of tries) assertBadResponse(record, "batch line");
});
