// The Files and Batch routes load at their first request (src/server/batch-doors.ts), but a gateway whose state file
// holds batches starts their runner at start: a batch in progress at a restart is resumed with no request arriving,
// and files uploaded before a restart are listed after it. First requests to both lazily loaded modules at once are
// each served by their own door.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { chatLine, createBatch, echoing, providersYaml, upload, waitForCompleted } from "../helpers/batches-scene.ts";
import { openAiClient, useGateway, useMock } from "../helpers/e2e.ts";
import { startTestGateway } from "../helpers/gateway.ts";

function stateYaml(yaml: string): string {
  const dir = mkdtempSync(join(tmpdir(), "llm-gateway-batches-lazy-"));
  return `${yaml}batches:\n  concurrency: 1\nstate:\n  path: ${JSON.stringify(join(dir, "state.db"))}\n`;
}

function lineContents(requests: readonly { path: string; body: unknown }[]): string[] {
  return requests
    .filter((request) => request.path === "/v1/chat/completions")
    .map((request) => (request.body as { messages: { content: string }[] }).messages.at(-1)?.content ?? "");
}

// First in the file: this process has imported neither door's module yet, so the two imports (which share chunks in
// the bundle and modules from the sources) really run at once.
test("first requests to the Messages, Responses, Files and Batch routes at once: each answered as its door does", async (t) => {
  const mock = await useMock(t);
  echoing(mock);
  const gateway = await useGateway(t, providersYaml(mock));
  const json = { "content-type": "application/json" };
  const form = new FormData();
  form.set("purpose", "batch");
  form.set("file", new Blob([chatLine("c-1", "concurrent")]), "input.jsonl");
  const [messages, responses, uploaded, batches] = await Promise.all([
    fetch(`${gateway.baseUrl}/messages`, {
      method: "POST",
      headers: json,
      body: JSON.stringify({ model: "m", max_tokens: 16, messages: [{ role: "user", content: "to messages" }] }),
    }),
    fetch(`${gateway.baseUrl}/responses`, {
      method: "POST",
      headers: json,
      body: JSON.stringify({ model: "m", input: "to responses" }),
    }),
    fetch(`${gateway.baseUrl}/files`, { method: "POST", body: form }),
    fetch(`${gateway.baseUrl}/batches`),
  ]);
  const messageBody = (await messages.json()) as { type: string; content: { text: string }[] };
  assert.equal(messages.status, 200);
  assert.equal(messageBody.type, "message");
  assert.equal(messageBody.content[0]?.text, "echo: to messages");
  const responseBody = (await responses.json()) as { object: string; output_text?: string; output: unknown[] };
  assert.equal(responses.status, 200);
  assert.equal(responseBody.object, "response");
  assert.match(JSON.stringify(responseBody.output), /echo: to responses/);
  const file = (await uploaded.json()) as { object: string; purpose: string };
  assert.equal(uploaded.status, 200);
  assert.deepEqual([file.object, file.purpose], ["file", "batch"]);
  assert.equal(batches.status, 200);
  assert.deepEqual(((await batches.json()) as { data: unknown[] }).data, []);
});

test("a restart resumes a batch in progress before any request reaches the restarted gateway", async (t) => {
  const mock = await useMock(t);
  echoing(mock, 250);
  const yaml = stateYaml(providersYaml(mock));
  const first = await startTestGateway(yaml);
  let isFirstClosed = false;
  t.after(async () => {
    if (!isFirstClosed) await first.close();
  });
  const ids = ["1", "2", "3", "4", "5", "6"];
  const firstClient = openAiClient(first);
  const file = await upload(firstClient, ids.map((id) => chatLine(`r-${id}`, `line ${id}`)).join("\n"));
  const batch = await createBatch(firstClient, file.id);
  await mock.waitForRequests(2, 10_000);
  await first.close();
  isFirstClosed = true;

  const second = await useGateway(t, yaml);
  // No request to the second gateway until every line reached the upstream: only a runner started at start sends them.
  const deadlineMs = Date.now() + 15_000;
  while (!ids.every((id) => lineContents(mock.requests).includes(`line ${id}`))) {
    assert.ok(Date.now() < deadlineMs, `lines sent so far: ${lineContents(mock.requests).join(", ")}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const done = await waitForCompleted(openAiClient(second), batch.id, ids.length);
  assert.deepEqual(done.request_counts, { total: ids.length, completed: ids.length, failed: 0 });
});

test("files uploaded before a restart are listed and read after it", async (t) => {
  const mock = await useMock(t);
  echoing(mock);
  const yaml = stateYaml(providersYaml(mock));
  const first = await startTestGateway(yaml);
  let isFirstClosed = false;
  t.after(async () => {
    if (!isFirstClosed) await first.close();
  });
  const text = [chatLine("a", "kept line")].join("\n");
  const file = await upload(openAiClient(first), text);
  await first.close();
  isFirstClosed = true;

  const client = openAiClient(await useGateway(t, yaml));
  const listed = await client.files.list();
  assert.deepEqual(
    listed.data.map((entry) => entry.id),
    [file.id],
  );
  assert.equal(await (await client.files.content(file.id)).text(), text);
});
