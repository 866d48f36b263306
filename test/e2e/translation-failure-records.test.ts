// An answer its door fails to translate for the client is what the client gets instead of the answer: an error. The
// request's record must say that error, on every door that translates a JSON answer: the live Messages and Responses
// doors (kept or `store: false`), a background response, and a batch line on `/v1/responses`. The background run's
// and the batch line's records were published before the translation, as the 200 `success` the provider gave, while
// the run failed and the line's output was an error line. No upstream answer makes a translator throw on purpose (the
// attempt refuses one the doors cannot give, json-attempt.ts, responses-answer.ts), so the doors' translators are
// swapped, as the adapters import them, for ones that throw on one marked answer (test/helpers/held-import.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import { runOneFailingLine } from "../helpers/batches-scene.ts";
import { CHAT_ROUTE, oneProviderYaml, openAiClient, send, useGateway, useMock } from "../helpers/e2e.ts";
import type { TestGateway } from "../helpers/gateway.ts";
import { swapImport } from "../helpers/held-import.ts";
import { chatCompletion, type MockUpstream } from "../helpers/mock-upstream.ts";

/** The answer text the swapped translators throw on. */
const MARKER = "untranslatable-answer";

/** `module`'s `name`, throwing on an answer holding MARKER (a translator's bug) and translating any other. */
function throwingOnMarker(name: string): (url: string) => string {
  return (url) =>
    [
      `import * as real from ${JSON.stringify(url)};`,
      `export * from ${JSON.stringify(url)};`,
      `export function ${name}(answer, ...rest) {`,
      `  if (JSON.stringify(answer).includes(${JSON.stringify(MARKER)})) throw new TypeError("a translator bug");`,
      `  return real.${name}(answer, ...rest);`,
      "}",
    ].join("\n");
}

// The doors are imported at their first request (server/lazy-routes.ts): swapped before any.
const restores = [
  swapImport(
    "/src/server/responses-adapter.ts",
    "../protocols/responses/response-mapping.ts",
    throwingOnMarker("toResponseObject"),
  ),
  swapImport(
    "/src/server/messages-adapter.ts",
    "../protocols/messages/response-mapping.ts",
    throwingOnMarker("toMessageObject"),
  ),
];
test.after(() => {
  for (const restore of restores) restore();
});

interface ListedRecord {
  readonly id: string;
  readonly batchId?: string;
  readonly status: number;
  readonly outcome: string;
  readonly errorCode?: string;
}

async function scene(t: Parameters<typeof useMock>[0]): Promise<{ mock: MockUpstream; gateway: TestGateway }> {
  const mock = await useMock(t);
  mock.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion(MARKER, "m") });
  const gateway = await useGateway(t, `${oneProviderYaml(mock)}request_log:\n  enabled: true\n`);
  return { mock, gateway };
}

async function records(gateway: TestGateway): Promise<ListedRecord[]> {
  const listed = await send(gateway, "GET", "/v1/gateway/requests?limit=50");
  assert.equal(listed.status, 200, listed.text);
  return (listed.json as { data: ListedRecord[] }).data;
}

test("a live answer the door cannot translate: the client's error is its record's, Messages and Responses", async (t) => {
  const { gateway } = await scene(t);
  const requests: [string, string, Record<string, unknown>][] = [
    ["messages", "/v1/messages", { model: "m", max_tokens: 50, messages: [{ role: "user", content: "hi" }] }],
    ["responses, kept", "/v1/responses", { model: "m", input: "hi" }],
    ["responses, store: false", "/v1/responses", { model: "m", input: "hi", store: false }],
  ];
  for (const [what, path, body] of requests) {
    const response = await send(gateway, "POST", path, { body });
    assert.equal(response.status, 500, `${what}: ${response.text}`);
    const record = (await records(gateway)).find((listed) => listed.id === response.headers["x-request-id"]);
    assert.ok(record, `${what}: no record`);
    assert.deepEqual([record.status, record.outcome, record.errorCode], [500, "rejected", "internal_error"], what);
  }
});

test("a background response whose answer cannot be translated: the run fails, and its record says so", async (t) => {
  const { gateway } = await scene(t);
  const created = await send(gateway, "POST", "/v1/responses", { body: { model: "m", input: "hi", background: true } });
  assert.equal(created.status, 200, created.text);
  const id = (created.json as { id: string }).id;
  let run: { status: string } = { status: "queued" };
  for (let polls = 0; polls < 200 && (run.status === "queued" || run.status === "in_progress"); polls++) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    run = (await send(gateway, "GET", `/v1/responses/${id}`)).json as { status: string };
  }
  assert.equal(run.status, "failed", JSON.stringify(run));
  const record = (await records(gateway)).find((listed) => listed.id === created.headers["x-request-id"]);
  assert.ok(record, "no record of the background run");
  assert.deepEqual([record.status, record.outcome, record.errorCode], [500, "rejected", "internal_error"]);
});

// The line was tried again too, as after a 5xx from every candidate: each try called the upstream and charged the
// client again (up to 3), for an answer its translator throws on each time alike. It is final on the first.
test("a batch line whose answer cannot be translated: one error line, one upstream call, its record says that error", async (t) => {
  const { mock, gateway } = await scene(t);
  const client = openAiClient(gateway);
  const { batch: done, response } = await runOneFailingLine(client, "/v1/responses", { model: "m", input: "hi" });
  assert.equal(response.status_code, 500, JSON.stringify(response));
  assert.equal(response.body.error.code, "internal_error");
  assert.equal(
    mock.requests.filter((request) => request.path === "/v1/chat/completions").length,
    1,
    "the upstream was called again for the same answer",
  );
  const tries = (await records(gateway)).filter((listed) => listed.batchId === done.id);
  assert.equal(tries.length, 1, "the line was tried (and its client charged) more than once");
  for (const record of tries) {
    assert.deepEqual([record.status, record.outcome, record.errorCode], [500, "rejected", "internal_error"]);
  }
  // The answer's tokens were spent: the batch's usage says so (chatCompletion's 10 prompt tokens, 1 word).
  assert.deepEqual([done.request_counts?.failed, done.usage?.input_tokens, done.usage?.output_tokens], [1, 10, 1]);
});
