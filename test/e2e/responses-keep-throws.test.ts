// A Responses answer whose keeping throws (kept.put: the store of kept responses failing in a way its own error
// handling did not catch; a store bug): the answer was made, so the client still gets it whole, streamed
// (`response.completed`, the stream ended, not cut) or as JSON (a 200, not a 500), and the failure is logged at error
// level with the request's id, and the answer's record says it was not kept (`isAnswerNotKept`). No request reaches such a throw on purpose (the stores report a failed write
// themselves, responses-kept-store.test.ts), so the door's view of the store is swapped, as responses-adapter.ts
// imports it, for one whose `put` throws (test/helpers/held-import.ts swapImport).
import assert from "node:assert/strict";
import { test } from "node:test";
import OpenAI from "openai";
import {
  CHAT_ROUTE,
  logCollector,
  oneProviderYaml,
  openAiClient,
  recordsOf,
  useGateway,
  useMock,
  VENDOR_MODEL_ID,
} from "../helpers/e2e.ts";
import { swapImport } from "../helpers/held-import.ts";
import { chatCompletion, chatStream } from "../helpers/mock-upstream.ts";

const SECRET = "/internal/store-bug.ts:9";

// The Responses door is imported at its first request (server/lazy-routes.ts): swapped before any.
const restore = swapImport("/src/server/responses-adapter.ts", "../protocols/responses/kept-for-client.ts", (url) =>
  [
    `import * as real from ${JSON.stringify(url)};`,
    `export * from ${JSON.stringify(url)};`,
    "export function forClient(kept, client) {",
    "  const own = real.forClient(kept, client);",
    `  return { ...own, put: async () => { throw new TypeError(${JSON.stringify(`a bug at ${SECRET}`)}); } };`,
    "}",
  ].join("\n"),
);
test.after(() => restore());

test("a streamed Responses answer whose keeping throws still ends with response.completed; the failure is logged", async (t) => {
  const mock = await useMock(t);
  const logs = logCollector();
  const gateway = await useGateway(t, `${oneProviderYaml(mock)}request_log:\n  enabled: true\n`, {
    logLevel: "info",
    logStream: logs.stream,
  });
  mock.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(["Kept", " or not."], VENDOR_MODEL_ID) });
  const client = openAiClient(gateway);
  const stream = client.responses.stream({ model: "m", input: "hi" });
  const final = await stream.finalResponse();
  assert.equal(final.status, "completed");
  assert.equal(final.output_text, "Kept or not.");
  const logged = logs.lines.filter((line) => line.includes("could not be kept"));
  assert.equal(logged.length, 1, logs.lines.join(""));
  assert.match(logged[0] ?? "", /store-bug/, "the exception is in the log");
  assert.match(logged[0] ?? "", /"level":50/, "at error level");
  assert.match(logged[0] ?? "", /"reqId"/, "with the request's id");
  // The record says so (a success: the answer was sent whole).
  const { records } = await recordsOf(gateway, "responses");
  assert.equal(records[0]?.status, 200, JSON.stringify(records));
  assert.equal((records[0] as { isAnswerNotKept?: boolean } | undefined)?.isAnswerNotKept, true);
  // Not kept: a continuation from it is told so, as for any response the store does not have.
  await assert.rejects(client.responses.retrieve(final.id), OpenAI.NotFoundError);
});

test("a JSON Responses answer whose keeping throws is still answered 200; the failure is logged", async (t) => {
  const mock = await useMock(t);
  const logs = logCollector();
  const gateway = await useGateway(t, `${oneProviderYaml(mock)}request_log:\n  enabled: true\n`, {
    logLevel: "info",
    logStream: logs.stream,
  });
  mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Kept or not.", VENDOR_MODEL_ID) });
  const answer = await openAiClient(gateway).responses.create({ model: "m", input: "hi" });
  assert.equal(answer.output_text, "Kept or not.");
  assert.equal(logs.lines.filter((line) => line.includes("could not be kept")).length, 1, logs.lines.join(""));
  // The record says so too (until 2026-12-07 a JSON answer's record was published before its keeping).
  const { records } = await recordsOf(gateway, "responses");
  assert.equal(records[0]?.status, 200, JSON.stringify(records));
  assert.equal((records[0] as { isAnswerNotKept?: boolean } | undefined)?.isAnswerNotKept, true);
});
