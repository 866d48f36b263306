// The forwarded doors' pipeline (forwarding-route.ts) is imported at the first request: a failed import answers 500
// in OpenAI's shape (nothing sent upstream, no request left open) and the next request imports again; a request that
// waited for the import counts that wait in its record (its client waited it too). Over loopback, the real gateway;
// the import is failed or held by a module resolve hook (test/helpers/held-import.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import {
  CHAT_ROUTE,
  chatRequests,
  oneProviderYaml,
  postChat,
  useGateway,
  useMock,
  VENDOR_MODEL_ID,
} from "../../test/helpers/e2e.ts";
import { holdImport, swapImport } from "../../test/helpers/held-import.ts";
import { chatCompletion } from "../../test/helpers/mock-upstream.ts";
import type { RequestRecord } from "../observability/request-record.ts";

const PIPELINE = "../pipeline/handle-request.ts";
const IMPORTER = "/src/server/forwarding-route.ts";

// First in this file: the pipeline must not have been imported yet (it stays so, every import here fails).
test("a failed import of the pipeline is a 500 in OpenAI's shape, nothing sent upstream, no request left open", async (t) => {
  const deregister = swapImport(
    IMPORTER,
    PIPELINE,
    () => "throw new Error('/secret/place/handle-request-X.js is broken');",
  );
  t.after(deregister);
  const mock = await useMock(t);
  const gateway = await useGateway(t, oneProviderYaml(mock));
  for (const stream of [false, true]) {
    const answer = await postChat(gateway, { model: "m", stream });
    assert.equal(answer.status, 500, answer.text);
    const error = (answer.json as { error?: { type?: string; code?: string; message?: string } }).error;
    assert.equal(error?.type, "server_error");
    assert.equal(error?.code, "internal_error");
    assert.match(error?.message ?? "", /The request pipeline could not be loaded; retry the request/);
    assert.doesNotMatch(answer.text, /secret\/place/);
  }
  assert.equal(chatRequests(mock).length, 0);
  assert.equal(gateway.runtime.openRequests.size, 0);
});

test("the next request imports the pipeline again, and its record counts the time it waited for the import", async (t) => {
  const held = holdImport(IMPORTER, PIPELINE);
  t.after(() => {
    held.release();
    held.deregister();
  });
  const mock = await useMock(t);
  const gateway = await useGateway(t, oneProviderYaml(mock));
  mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Loaded.", VENDOR_MODEL_ID) });
  const records: RequestRecord[] = [];
  gateway.runtime.onRecord((record) => records.push(record));
  const sentAtMs = Date.now();
  const answering = postChat(gateway, { model: "m" });
  await held.reached;
  await sleep(300);
  held.release();
  const answer = await answering;
  const waitedMs = Date.now() - sentAtMs;
  assert.equal(answer.status, 200, answer.text);
  assert.match(answer.text, /Loaded\./);
  for (const deadline = Date.now() + 5_000; records.length === 0; await sleep(10)) {
    assert.ok(Date.now() < deadline, "no record of the request");
  }
  // The request was held ~300 ms in the import: its record (request log, metrics' latency) said a few ms.
  assert.ok(
    (records[0]?.durationMs ?? 0) >= 250,
    `the record's duration ${records[0]?.durationMs} ms leaves out the import (the client waited ${waitedMs} ms)`,
  );
});
