// The Files and Batch APIs run by the gateway, driven by the real `openai` SDK (`client.files.*`,
// `client.batches.*`) against the scripted mock upstream: upload, create, poll to `completed`, read the output and
// error files; pacing under a small rate limit (every line served, none failed); a line every provider refuses in the
// error file; an invalid input file fails the batch naming the line; cancel; expiry; a restart resumes a batch from
// the state file; named clients never see each other's files and batches; bad input is a clear error.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import OpenAI, { toFile } from "openai";

import {
  chatAndEmbeddingsScene,
  chatLine,
  createBatch,
  echoing,
  isFinished,
  linesOf,
  providersYaml,
  sentContents,
  serverWithKeys,
  TWO_TEAMS_YAML,
  UPSTREAM_ID,
  upload,
  waitForBatch,
  waitForCompleted,
} from "../helpers/batches-scene.ts";
import { CHAT_ROUTE, errorOf, openAiClient, send, useGateway, useMock } from "../helpers/e2e.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { startGatewayProcess } from "../helpers/gateway-process.ts";
import { chatCompletion, type MockUpstream, type RecordedRequest } from "../helpers/mock-upstream.ts";
import { parsePrometheusText, sumOf } from "../helpers/prometheus-text.ts";

describe("Batch API with the openai SDK", () => {
  test("upload, create, poll to completed, read the output file: every custom_id with the mock's answer", async (t) => {
    const mock = await useMock(t);
    echoing(mock);
    const gateway = await useGateway(t, providersYaml(mock));
    const client = openAiClient(gateway);
    const lines = ["a", "b", "c", "d", "e"].map((id) => chatLine(`req-${id}`, `line ${id}`));
    const file = await upload(client, `${lines.join("\n")}\n`);
    assert.match(file.id, /^file-/);
    assert.equal(file.object, "file");
    assert.equal(file.purpose, "batch");
    assert.equal(file.filename, "input.jsonl");
    assert.equal(file.bytes, Buffer.byteLength(`${lines.join("\n")}\n`));
    assert.equal(file.status, "processed");
    assert.equal(typeof file.created_at, "number");
    assert.equal(typeof file.expires_at, "number");
    assert.deepEqual(await client.files.retrieve(file.id), file);
    assert.equal(await (await client.files.content(file.id)).text(), `${lines.join("\n")}\n`);

    const created = await client.batches.create({
      input_file_id: file.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
      metadata: { job: "nightly" },
    });
    assert.match(created.id, /^batch_/);
    assert.equal(created.object, "batch");
    assert.equal(created.endpoint, "/v1/chat/completions");
    assert.equal(created.input_file_id, file.id);
    assert.equal(created.completion_window, "24h");
    assert.deepEqual(created.metadata, { job: "nightly" });
    assert.equal(created.expires_at, (created.created_at ?? 0) + 24 * 3600);
    const done = await waitForCompleted(client, created.id, 5);
    assert.equal(done.error_file_id, null);
    assert.equal(typeof done.completed_at, "number");
    assert.equal(typeof done.in_progress_at, "number");
    assert.equal(typeof done.finalizing_at, "number");
    assert.equal(done.model, "m");
    const output = await linesOf(client, done.output_file_id);
    assert.deepEqual(output.map((line) => line.custom_id).sort(), ["req-a", "req-b", "req-c", "req-d", "req-e"]);
    for (const line of output) {
      assert.match(String(line.id), /^batch_req_/);
      assert.equal(line.error, null);
      const response = line.response as {
        status_code: number;
        request_id: string;
        body: { choices: { message: { content: string } }[] };
      };
      assert.equal(response.status_code, 200);
      assert.equal(response.request_id, line.id);
      const letter = String(line.custom_id).slice(4);
      assert.equal(response.body.choices[0]?.message.content, `echo: line ${letter}`);
    }
    assert.equal(mock.requests.filter((request) => request.path === "/v1/chat/completions").length, 5);
    const outputFile = await client.files.retrieve(done.output_file_id ?? "");
    assert.equal(outputFile.purpose, "batch_output");
    // Each line left a normal request record, marked with the batch.
    const listedRecords = await send(gateway, "GET", "/v1/gateway/requests?limit=50");
    const records = (listedRecords.json as { data: { batchId?: string; status: number }[] }).data.filter(
      (record) => record.batchId === done.id,
    );
    assert.equal(records.length, 5);
    // Listed, newest first.
    const listed = await client.batches.list();
    assert.deepEqual(
      listed.data.map((batch) => batch.id),
      [done.id],
    );
  });
});

describe("Batch API: failures, validation and bad input", () => {
  test("a line every provider refuses, and one for an unknown model, go to the error file; the others are served", async (t) => {
    const mock = await useMock(t);
    mock.setDefault(CHAT_ROUTE, (request: RecordedRequest) => {
      const content = (request.body as { messages: { content: string }[] }).messages.at(-1)?.content ?? "";
      if (content === "refuse me") {
        return {
          kind: "json",
          status: 400,
          body: { error: { message: "Invalid prompt", type: "invalid_request_error", code: "invalid_prompt" } },
        };
      }
      return { kind: "json", body: chatCompletion(`echo: ${content}`, UPSTREAM_ID) };
    });
    const gateway = await useGateway(t, providersYaml(mock));
    const client = openAiClient(gateway);
    const file = await upload(
      client,
      [
        chatLine("ok-1", "hello"),
        chatLine("bad", "refuse me"),
        chatLine("nomodel", "hi", "no-such-model"),
        chatLine("ok-2", "again"),
      ].join("\n"),
    );
    const batch = await createBatch(client, file.id);
    const done = await waitForBatch(client, batch.id, isFinished);
    assert.equal(done.status, "completed");
    assert.deepEqual(done.request_counts, { total: 4, completed: 2, failed: 2 });
    const output = await linesOf(client, done.output_file_id);
    assert.deepEqual(output.map((line) => line.custom_id).sort(), ["ok-1", "ok-2"]);
    const errors = await linesOf(client, done.error_file_id);
    const byId = new Map(errors.map((line) => [line.custom_id, line]));
    assert.deepEqual([...byId.keys()].sort(), ["bad", "nomodel"]);
    const refused = byId.get("bad")?.response as { status_code: number; body: { error: { message: string } } };
    assert.equal(refused.status_code, 400);
    assert.match(refused.body.error.message, /Invalid prompt/);
    assert.equal(byId.get("bad")?.error, null);
    const unknown = byId.get("nomodel")?.response as { status_code: number; body: { error: { code: string } } };
    assert.equal(unknown.status_code, 404);
    assert.equal(unknown.body.error.code, "model_not_found");
  });

  test("an input file with bad lines fails the batch, each bad line named as OpenAI names it", async (t) => {
    const mock = await useMock(t);
    echoing(mock);
    const gateway = await useGateway(t, providersYaml(mock));
    const client = openAiClient(gateway);
    const text = [
      chatLine("one", "fine"),
      "{not json",
      JSON.stringify({ method: "POST", url: "/v1/chat/completions", body: { model: "m", messages: [] } }),
      chatLine("one", "duplicate"),
      JSON.stringify({ custom_id: "u", method: "POST", url: "/v1/embeddings", body: { model: "m", input: "x" } }),
      JSON.stringify({ custom_id: "g", method: "GET", url: "/v1/chat/completions", body: { model: "m" } }),
    ].join("\n");
    const file = await upload(client, text);
    const batch = await createBatch(client, file.id);
    const done = await waitForBatch(client, batch.id, isFinished);
    assert.equal(done.status, "failed");
    assert.equal(typeof done.failed_at, "number");
    assert.equal(done.output_file_id, null);
    const data = done.errors?.data ?? [];
    assert.deepEqual(
      data.map((entry) => [entry.line, entry.code, entry.param]),
      [
        [2, "invalid_json_line", null],
        [3, "missing_required_parameter", "custom_id"],
        [4, "duplicate_custom_id", "custom_id"],
        [5, "mismatched_url", "url"],
        [6, "invalid_method", "method"],
      ],
    );
    assert.equal(mock.requests.filter((request) => request.path === "/v1/chat/completions").length, 0);
  });

  test("bad input gets a clear error in OpenAI's shape, never a crash", async (t) => {
    const mock = await useMock(t);
    echoing(mock);
    const gateway = await useGateway(t, `${providersYaml(mock)}batches:\n  max_file_bytes: 1000\n`);
    const client = openAiClient(gateway);
    const status = async (call: () => Promise<unknown>): Promise<[number, string | null | undefined, string]> => {
      try {
        await call();
      } catch (error) {
        if (error instanceof OpenAI.APIError) {
          return [error.status ?? 0, (error.error as { param?: string } | undefined)?.param, String(error.code)];
        }
        throw error;
      }
      return assert.fail("expected an error");
    };
    // Only `batch` files are kept.
    assert.deepEqual(
      await status(async () =>
        client.files.create({ file: await toFile(Buffer.from(chatLine("a", "b")), "x.jsonl"), purpose: "fine-tune" }),
      ),
      [400, "purpose", "invalid_value"],
    );
    // Larger than batches.max_file_bytes.
    assert.deepEqual(await status(() => upload(client, "x".repeat(5_000))), [413, "file", "payload_too_large"]);
    // Not text.
    assert.deepEqual(
      await status(async () =>
        client.files.create({ file: await toFile(Buffer.from([0xff, 0xfe, 0x00, 0xc3]), "x.bin"), purpose: "batch" }),
      ),
      [400, "file", "invalid_value"],
    );
    // JSON instead of an upload.
    const json = await send(gateway, "POST", "/v1/files", { body: { purpose: "batch" } });
    assert.equal(json.status, 400);
    assert.equal(errorOf(json).code, "invalid_content_type");
    // Unknown ids.
    assert.deepEqual(await status(() => client.files.retrieve("file-nope")), [404, "file_id", "file_not_found"]);
    assert.deepEqual(await status(() => client.files.content("file-nope")), [404, "file_id", "file_not_found"]);
    assert.deepEqual(await status(() => client.files.delete("file-nope")), [404, "file_id", "file_not_found"]);
    assert.deepEqual(await status(() => client.batches.retrieve("batch_nope")), [404, "batch_id", "batch_not_found"]);
    assert.deepEqual(await status(() => client.batches.cancel("batch_nope")), [404, "batch_id", "batch_not_found"]);
    assert.deepEqual(
      await status(() =>
        client.batches.create({
          input_file_id: "file-nope",
          endpoint: "/v1/chat/completions",
          completion_window: "24h",
        }),
      ),
      [404, "input_file_id", "file_not_found"],
    );
    const file = await upload(client, chatLine("a", "b"));
    assert.deepEqual(
      await status(() =>
        client.batches.create({
          input_file_id: file.id,
          endpoint: "/v1/moderations" as "/v1/chat/completions",
          completion_window: "24h",
        }),
      ),
      [400, "endpoint", "invalid_value"],
    );
    assert.deepEqual(
      await status(() =>
        client.batches.create({
          input_file_id: file.id,
          endpoint: "/v1/chat/completions",
          completion_window: "1h" as "24h",
        }),
      ),
      [400, "completion_window", "invalid_value"],
    );
    const notObject = await send(gateway, "POST", "/v1/batches", { body: "[1,2]" });
    assert.equal(notObject.status, 400);
    assert.equal(errorOf(notObject).code, "invalid_body");
    const badLimit = await send(gateway, "GET", "/v1/files?limit=0");
    assert.equal(errorOf(badLimit).param, "limit");
    // Deleted: gone.
    assert.deepEqual(await client.files.delete(file.id), { id: file.id, object: "file", deleted: true });
    assert.deepEqual(await status(() => client.files.retrieve(file.id)), [404, "file_id", "file_not_found"]);
    // The gateway still serves.
    const health = await send(gateway, "GET", "/ok");
    assert.equal(health.status, 200);
  });

  test("named clients see only their own files and batches (memory mode: state.path :memory:)", async (t) => {
    const mock = await useMock(t);
    echoing(mock);
    const gateway = await useGateway(
      t,
      `${TWO_TEAMS_YAML}${providersYaml(mock)}state:
  path: ":memory:"
`,
    );
    const teamA = openAiClient(gateway, "sk-team-a");
    const teamB = openAiClient(gateway, "sk-team-b");
    const file = await upload(teamA, chatLine("a", "for team a"));
    const batch = await createBatch(teamA, file.id);
    const done = await waitForBatch(teamA, batch.id, isFinished);
    assert.equal(done.status, "completed");
    const notFound = async (call: () => Promise<unknown>): Promise<number | undefined> => {
      try {
        await call();
      } catch (error) {
        if (error instanceof OpenAI.APIError) return error.status;
        throw error;
      }
      return 200;
    };
    assert.equal(await notFound(() => teamB.files.retrieve(file.id)), 404);
    assert.equal(await notFound(() => teamB.files.content(file.id)), 404);
    assert.equal(await notFound(() => teamB.files.content(done.output_file_id ?? "")), 404);
    assert.equal(await notFound(() => teamB.files.delete(file.id)), 404);
    assert.equal(await notFound(() => teamB.batches.retrieve(batch.id)), 404);
    assert.equal(await notFound(() => teamB.batches.cancel(batch.id)), 404);
    assert.equal(
      await notFound(() =>
        teamB.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" }),
      ),
      404,
    );
    assert.deepEqual((await teamB.files.list()).data, []);
    assert.deepEqual((await teamB.batches.list()).data, []);
    // Team A still has them all.
    assert.equal((await teamA.files.list()).data.length, 2);
    assert.equal((await teamA.files.list({ purpose: "batch" })).data.length, 1);
    assert.equal((await teamA.batches.retrieve(batch.id)).status, "completed");
    // Its line's record carries its client.
    const listed = await send(gateway, "GET", "/v1/gateway/requests?limit=10", {
      headers: { authorization: "Bearer sk-team-a" },
    });
    const records = (listed.json as { data: { batchId?: string; client?: string }[] }).data;
    assert.ok(
      records.some((record) => record.batchId === batch.id && record.client === "team-a"),
      listed.text,
    );
  });
});

/** The mock answers each chat request with its echo after `delayMs`. */
function slowEcho(mock: MockUpstream, delayMs: number): void {
  mock.setDefault(CHAT_ROUTE, (request: RecordedRequest) => {
    const content = (request.body as { messages: { content: string }[] }).messages.at(-1)?.content ?? "";
    return { kind: "json", body: chatCompletion(`echo: ${content}`, UPSTREAM_ID), delayMs };
  });
}

function chatCalls(mock: MockUpstream): RecordedRequest[] {
  return mock.requests.filter((request) => request.path === "/v1/chat/completions");
}

describe("Batch API: pacing, cancel, expiry, restart", () => {
  test("a model limited to 2 requests a second serves every line at that pace, none failed", async (t) => {
    const mock = await useMock(t);
    echoing(mock);
    const gateway = await useGateway(
      t,
      `${providersYaml(mock, { modelKeys: ", limits: { rps: 2 }" })}batches:\n  concurrency: 4\n`,
    );
    const client = openAiClient(gateway);
    const ids = ["1", "2", "3", "4", "5", "6"];
    const file = await upload(client, ids.map((id) => chatLine(`p-${id}`, `line ${id}`)).join("\n"));
    const startedAt = Date.now();
    const batch = await createBatch(client, file.id);
    const done = await waitForCompleted(client, batch.id, 6, 30_000);
    assert.equal(done.error_file_id, null);
    assert.deepEqual(
      (await linesOf(client, done.output_file_id)).map((line) => line.custom_id).sort(),
      ids.map((id) => `p-${id}`),
    );
    // At the limit's pace: never a third request within a second of the one two before it.
    const times = chatCalls(mock).map((request) => request.receivedAtMs);
    assert.equal(times.length, 6);
    for (let at = 2; at < times.length; at++) {
      assert.ok(
        (times[at] ?? 0) - (times[at - 2] ?? 0) >= 900,
        `requests too close: ${times.map((time) => time - startedAt)}`,
      );
    }
    assert.ok(Date.now() - startedAt >= 1_900);
  });

  test("a named client's own budget paces its batch lines too: all served, none failed", async (t) => {
    const mock = await useMock(t);
    echoing(mock);
    const gateway = await useGateway(
      t,
      `${serverWithKeys("{ key: sk-slow, name: slow, limits: { rps: 1 } }")}${providersYaml(mock)}batches:
  concurrency: 2
`,
    );
    const client = openAiClient(gateway, "sk-slow");
    const ids = ["1", "2", "3"];
    const file = await upload(client, ids.map((id) => chatLine(`b-${id}`, `line ${id}`)).join("\n"));
    const batch = await createBatch(client, file.id);
    await waitForCompleted(client, batch.id, 3, 20_000);
    const times = chatCalls(mock).map((request) => request.receivedAtMs);
    assert.equal(times.length, 3, "the client's refusals never reached the upstream");
    // Three requests at 1 a second (counted from each charge, before the upstream call): two seconds from first to last.
    assert.ok((times[2] ?? 0) - (times[0] ?? 0) >= 1_500, `requests too close: ${times}`);
  });

  test("cancel: cancelling at once, the line in flight finishes, then cancelled with what finished", async (t) => {
    const mock = await useMock(t);
    slowEcho(mock, 500);
    const gateway = await useGateway(t, `${providersYaml(mock)}batches:\n  concurrency: 1\n`);
    const client = openAiClient(gateway);
    const file = await upload(
      client,
      ["1", "2", "3", "4", "5"].map((id) => chatLine(`c-${id}`, `line ${id}`)).join("\n"),
    );
    const batch = await createBatch(client, file.id);
    await mock.waitForRequests(1, 5_000);
    const cancelling = await client.batches.cancel(batch.id);
    assert.equal(cancelling.status, "cancelling");
    assert.equal(typeof cancelling.cancelling_at, "number");
    const done = await waitForBatch(client, batch.id, isFinished);
    assert.equal(done.status, "cancelled");
    assert.equal(typeof done.cancelled_at, "number");
    assert.deepEqual(done.request_counts, { total: 5, completed: 1, failed: 0 });
    assert.deepEqual(
      (await linesOf(client, done.output_file_id)).map((line) => line.custom_id),
      ["c-1"],
    );
    await sleep(700);
    assert.equal(chatCalls(mock).length, 1, "no line starts after the cancel");
    // Cancelling a finished batch changes nothing.
    assert.equal((await client.batches.cancel(batch.id)).status, "cancelled");
  });

  test("cancel while lines wait for a limit: they stop waiting, cancelled at once", async (t) => {
    const mock = await useMock(t);
    echoing(mock);
    const gateway = await useGateway(
      t,
      `${providersYaml(mock, { modelKeys: ", limits: { rpm: 1 }" })}batches:\n  concurrency: 2\n`,
    );
    const client = openAiClient(gateway);
    const file = await upload(client, ["1", "2", "3"].map((id) => chatLine(`w-${id}`, `line ${id}`)).join("\n"));
    const batch = await createBatch(client, file.id);
    await waitForBatch(client, batch.id, (current) => (current.request_counts?.completed ?? 0) === 1);
    await sleep(200);
    const cancelledAt = Date.now();
    await client.batches.cancel(batch.id);
    const done = await waitForBatch(client, batch.id, isFinished);
    assert.equal(done.status, "cancelled");
    assert.ok(Date.now() - cancelledAt < 2_000, `cancelled after ${Date.now() - cancelledAt} ms`);
    assert.deepEqual(done.request_counts, { total: 3, completed: 1, failed: 0 });
    assert.equal(chatCalls(mock).length, 1, "the waiting lines were never sent");
  });

  test("a line waiting for a limit holds no slot: its batch's lines for a free model, and another batch, run meanwhile", async (t) => {
    const mock = await useMock(t);
    echoing(mock);
    const gateway = await useGateway(
      t,
      `providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha
    models:
      slow: { id: ${UPSTREAM_ID}, limits: { rpm: 1 } }
      fast: { id: vendor/fast }
batches:
  concurrency: 1
`,
    );
    const client = openAiClient(gateway);
    const lines = [
      chatLine("s-1", "s-1", "slow"),
      chatLine("s-2", "s-2", "slow"),
      chatLine("f-1", "f-1", "fast"),
      chatLine("s-3", "s-3", "slow"),
      chatLine("f-2", "f-2", "fast"),
    ];
    const mixed = await createBatch(client, (await upload(client, lines.join("\n"))).id);
    // s-2 and s-3 wait a minute for the slow model's budget; the one slot serves the fast lines meanwhile.
    const served = await waitForBatch(client, mixed.id, (batch) => (batch.request_counts?.completed ?? 0) >= 3, 8_000);
    assert.equal(served.status, "in_progress");
    const other = await createBatch(
      client,
      (await upload(client, [chatLine("o-1", "o-1", "fast"), chatLine("o-2", "o-2", "fast")].join("\n"))).id,
    );
    await waitForCompleted(client, other.id, 2, 8_000);
    assert.deepEqual(
      sentContents(mock),
      ["s-1", "f-1", "f-2", "o-1", "o-2"],
      "in the file's order, waiting lines not sent",
    );
    await client.batches.cancel(mixed.id);
    const cancelled = await waitForBatch(client, mixed.id, isFinished);
    assert.equal(cancelled.status, "cancelled");
    assert.deepEqual(cancelled.request_counts, { total: 5, completed: 3, failed: 0 });
    assert.deepEqual(
      (await linesOf(client, cancelled.output_file_id)).map((line) => line.custom_id),
      ["s-1", "f-1", "f-2"],
    );
    assert.equal(chatCalls(mock).length, 5, "the waiting lines were never sent");
  });

  test("completion window elapsed: expired, the lines not run in the error file as batch_expired", async (t) => {
    const mock = await useMock(t);
    slowEcho(mock, 600);
    const gateway = await useGateway(
      t,
      `${providersYaml(mock)}batches:\n  concurrency: 1\n  completion_window_ms: 1500\n`,
    );
    const client = openAiClient(gateway);
    const ids = ["1", "2", "3", "4", "5", "6", "7", "8"];
    const file = await upload(client, ids.map((id) => chatLine(`x-${id}`, `line ${id}`)).join("\n"));
    const batch = await createBatch(client, file.id);
    assert.equal(batch.expires_at, (batch.created_at ?? 0) + 1);
    const done = await waitForBatch(client, batch.id, isFinished);
    assert.equal(done.status, "expired");
    assert.equal(typeof done.expired_at, "number");
    const output = await linesOf(client, done.output_file_id);
    const errors = await linesOf(client, done.error_file_id);
    assert.ok(output.length >= 1 && output.length < ids.length, `served ${output.length}`);
    assert.equal(output.length + errors.length, ids.length);
    assert.deepEqual(
      [...output, ...errors].map((line) => line.custom_id).sort(),
      ids.map((id) => `x-${id}`),
    );
    for (const line of errors) {
      assert.equal(line.response, null);
      assert.deepEqual(line.error, {
        code: "batch_expired",
        message: "This request could not be executed before the completion window expired.",
      });
    }
    assert.deepEqual(done.request_counts, { total: ids.length, completed: output.length, failed: errors.length });
    assert.equal(chatCalls(mock).length, output.length);
  });

  test("a restart resumes an in_progress batch from the state file: each custom_id exactly once", async (t) => {
    const mock = await useMock(t);
    slowEcho(mock, 300);
    const dir = mkdtempSync(join(tmpdir(), "llm-gateway-batches-"));
    const yaml = `${providersYaml(mock)}batches:\n  concurrency: 1\nstate:\n  path: ${JSON.stringify(join(dir, "state.db"))}\n`;
    const first = await startTestGateway(yaml);
    let isFirstClosed = false;
    t.after(async () => {
      if (!isFirstClosed) await first.close();
    });
    const ids = ["1", "2", "3", "4", "5", "6"];
    const firstClient = openAiClient(first);
    const file = await upload(firstClient, ids.map((id) => chatLine(`r-${id}`, `line ${id}`)).join("\n"));
    const batch = await createBatch(firstClient, file.id);
    await mock.waitForRequests(3, 10_000);
    const before = await firstClient.batches.retrieve(batch.id);
    assert.equal(before.status, "in_progress");
    await first.close();
    isFirstClosed = true;
    const sentBefore = chatCalls(mock).length;

    const second = await useGateway(t, yaml);
    const client = openAiClient(second);
    const done = await waitForCompleted(client, batch.id, 6);
    const output = await linesOf(client, done.output_file_id);
    assert.deepEqual(
      output.map((line) => line.custom_id).sort(),
      ids.map((id) => `r-${id}`),
    );
    // The lines written before the stop were not sent again: at most the one in flight at the stop ran twice.
    const contents = chatCalls(mock).map(
      (request) => (request.body as { messages: { content: string }[] }).messages.at(-1)?.content,
    );
    assert.ok(contents.length <= ids.length + 1, `sent ${contents.length}: ${contents}`);
    assert.ok(sentBefore >= 3);
    for (const id of ["1", "2"]) assert.equal(contents.filter((content) => content === `line ${id}`).length, 1);
  });
});

describe("Batch API: a gateway process killed mid-batch", () => {
  test("SIGKILL mid-batch, start again on the same state file: it completes with each custom_id exactly once", async (t) => {
    const mock = await useMock(t);
    slowEcho(mock, 300);
    const dir = mkdtempSync(join(tmpdir(), "llm-gateway-batches-kill-"));
    const yaml = `${providersYaml(mock)}batches:\n  concurrency: 1\nstate:\n  path: ${JSON.stringify(join(dir, "state.db"))}\n`;
    const first = await startGatewayProcess(t, yaml);
    const clientOf = (url: string) => new OpenAI({ baseURL: `${url}/v1`, apiKey: "x", maxRetries: 0 });
    const ids = ["1", "2", "3", "4", "5", "6"];
    const file = await upload(clientOf(first.url), ids.map((id) => chatLine(`k-${id}`, `line ${id}`)).join("\n"));
    const batch = await clientOf(first.url).batches.create({
      input_file_id: file.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
    });
    await mock.waitForRequests(3, 10_000);
    await first.stop(); // SIGKILL: no shutdown at all
    const second = await startGatewayProcess(t, yaml);
    const client = clientOf(second.url);
    const done = await waitForCompleted(client, batch.id, 6, 20_000);
    const output = await linesOf(client, done.output_file_id);
    assert.deepEqual(
      output.map((line) => line.custom_id).sort(),
      ids.map((id) => `k-${id}`),
    );
    // The file uploaded before the kill is still there, and what finished before it was not sent again.
    assert.equal((await client.files.retrieve(file.id)).id, file.id);
    const contents = chatCalls(mock).map(
      (request) => (request.body as { messages: { content: string }[] }).messages.at(-1)?.content,
    );
    for (const id of ["1", "2"]) assert.equal(contents.filter((content) => content === `line ${id}`).length, 1);
    assert.ok(contents.length <= ids.length + 1, `sent ${contents.length}: ${contents}`);
  });
});

describe("Batch API: other endpoints, live traffic first", () => {
  test("/v1/responses lines are translated as the Responses door does; /v1/embeddings lines are served as is", async (t) => {
    const { mock, client } = await chatAndEmbeddingsScene(t);
    const responsesFile = await upload(
      client,
      [
        JSON.stringify({ custom_id: "r1", method: "POST", url: "/v1/responses", body: { model: "m", input: "first" } }),
        JSON.stringify({
          custom_id: "r2",
          method: "POST",
          url: "/v1/responses",
          body: { model: "m", input: "second", stream: true },
        }),
      ].join("\n"),
    );
    const responses = await client.batches.create({
      input_file_id: responsesFile.id,
      endpoint: "/v1/responses",
      completion_window: "24h",
    });
    const embeddingsFile = await upload(
      client,
      JSON.stringify({ custom_id: "e1", method: "POST", url: "/v1/embeddings", body: { model: "e", input: "text" } }),
    );
    const embeddings = await client.batches.create({
      input_file_id: embeddingsFile.id,
      endpoint: "/v1/embeddings",
      completion_window: "24h",
    });
    const responsesDone = await waitForBatch(client, responses.id, isFinished);
    assert.equal(responsesDone.status, "completed", JSON.stringify(responsesDone));
    const answers = new Map(
      (await linesOf(client, responsesDone.output_file_id)).map((line) => [
        line.custom_id,
        (line.response as { body: { object: string; output_text?: string; output: { content: { text: string }[] }[] } })
          .body,
      ]),
    );
    assert.equal(answers.get("r1")?.object, "response");
    assert.equal(answers.get("r1")?.output[0]?.content[0]?.text, "echo: first");
    assert.equal(answers.get("r2")?.output[0]?.content[0]?.text, "echo: second");
    // The upstream got chat requests, not streamed.
    for (const request of chatCalls(mock)) assert.notEqual((request.body as { stream?: boolean }).stream, true);
    const embeddingsDone = await waitForBatch(client, embeddings.id, isFinished);
    assert.equal(embeddingsDone.status, "completed");
    const [embedded] = await linesOf(client, embeddingsDone.output_file_id);
    assert.ok(embedded !== undefined);
    assert.deepEqual(
      (embedded.response as { body: { data: { embedding: number[] }[] } }).body.data[0]?.embedding,
      [0.5, 0.25],
    );
    assert.equal(embeddingsDone.usage?.input_tokens, 3);
  });

  test("live traffic first: a live request waiting in the route queue is served before the next batch line", async (t) => {
    const mock = await useMock(t);
    echoing(mock);
    // One provider-wide budget of 1 request a second, shared by the live request's model and the batch's: the
    // batch's lines wait in no queue of the live model, only the runner's own rule keeps them behind it.
    const gateway = await useGateway(
      t,
      `providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha
    limits: { rps: 1 }
    models:
      m: { id: ${UPSTREAM_ID} }
      other: { id: vendor/other }
routing:
  queue_timeout_ms: 10000
batches:
  concurrency: 1
`,
    );
    const client = openAiClient(gateway);
    const file = await upload(
      client,
      ["1", "2", "3", "4"].map((id) => chatLine(`l-${id}`, `batch ${id}`, "other")).join("\n"),
    );
    const batch = await createBatch(client, file.id);
    await mock.waitForRequests(1, 5_000);
    await sleep(100);
    // The budget is spent for this second: the live request queues for it, the batch's next line waits behind it.
    const live = await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "live" }] });
    assert.equal(live.choices[0]?.message.content, "echo: live");
    const done = await waitForBatch(client, batch.id, isFinished, 20_000);
    assert.equal(done.status, "completed");
    assert.deepEqual(done.request_counts, { total: 4, completed: 4, failed: 0 });
    const order = chatCalls(mock).map(
      (request) => (request.body as { messages: { content: string }[] }).messages.at(-1)?.content,
    );
    assert.equal(order[0], "batch 1");
    assert.equal(order[1], "live", `served in the order ${order}`);
  });
});

describe("Batch API: live metrics", () => {
  test("batch lines stay out of requests_total and the latency histograms; batch_requests_total counts them", async (t) => {
    const mock = await useMock(t);
    echoing(mock);
    const gateway = await useGateway(t, providersYaml(mock));
    const client = openAiClient(gateway);
    const live = await send(gateway, "POST", "/v1/chat/completions", {
      body: { model: "m", messages: [{ role: "user", content: "live" }] },
    });
    assert.equal(live.status, 200);
    const file = await upload(client, ["1", "2", "3"].map((id) => chatLine(`m-${id}`, `line ${id}`)).join("\n"));
    const batch = await createBatch(client, file.id);
    await waitForCompleted(client, batch.id, 3);
    const metrics = parsePrometheusText((await send(gateway, "GET", "/metrics")).text);
    assert.equal(sumOf(metrics, "llm_gateway_requests_total", { endpoint: "chat" }), 1);
    // The Files and Batch API calls (upload, create, polls) are requests of their own since 2026-12-08 (records of
    // their routes, docs/observability.md); the lines are not.
    const managed = ["files", "batches"].map((endpoint) => sumOf(metrics, "llm_gateway_requests_total", { endpoint }));
    assert.ok(
      managed.every((count) => count >= 1),
      `files, batches: ${managed}`,
    );
    const requests = sumOf(metrics, "llm_gateway_requests_total", {});
    assert.equal(requests, 1 + (managed[0] ?? 0) + (managed[1] ?? 0));
    assert.equal(sumOf(metrics, "llm_gateway_client_requests_total", {}), requests);
    for (const name of ["request_duration_seconds", "time_to_headers_seconds", "overhead_seconds"]) {
      assert.equal(
        sumOf(metrics, `llm_gateway_${name}_count`, { endpoint: "chat" }),
        1,
        `${name}: the live request only`,
      );
    }
    assert.equal(sumOf(metrics, "llm_gateway_request_duration_seconds_count", {}), requests);
    assert.equal(sumOf(metrics, "llm_gateway_batch_requests_total", { endpoint: "chat", status_class: "2xx" }), 3);
    // What the upstreams served still counts every line: their attempts and tokens are the providers' load.
    assert.equal(sumOf(metrics, "llm_gateway_attempts_total", { outcome: "success" }), 4);
  });
});
