// The Files and Batch APIs against a hostile client, an unlucky upstream and an operator's bad day (an adversarial
// review of the batches): each test here failed on the code as first merged, or guards what the review found holding.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import OpenAI from "openai";
import type { Batch } from "openai/resources/batches";
import { MAX_JSON_DEPTH } from "../../src/config/request-bounds.ts";
import { BatchBooks } from "../../src/pipeline/batch-books.ts";
import { buildServer } from "../../src/server/build-server.ts";
import { type BatchRow, MemoryBatchRows } from "../../src/state/batch-rows.ts";
import {
  chatLine,
  createBatch,
  echoing,
  isFinished,
  linesOf,
  providersYaml,
  sentContents,
  TWO_TEAMS_YAML,
  UPSTREAM_ID,
  upload,
  waitForBatch,
} from "../helpers/batches-scene.ts";
import { CHAT_ROUTE, errorOf, openAiClient, send, useGateway, useMock } from "../helpers/e2e.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { chatCompletion, type MockUpstream, type RecordedRequest } from "../helpers/mock-upstream.ts";

const KEY = "sk-alpha-0123456789abcdefghijklmnop";

describe("Batch API: what an upstream echoes", () => {
  test("an upstream echoing the key in a 400, a 500 and a 422: the error file has it redacted", async (t) => {
    const mock = await useMock(t);
    mock.setDefault(CHAT_ROUTE, (request: RecordedRequest) => {
      const content = (request.body as { messages: { content: string }[] }).messages.at(-1)?.content ?? "";
      const auth = String(request.headers.authorization ?? "");
      if (content === "400")
        return {
          kind: "json",
          status: 400,
          body: { error: { message: `bad ${auth}`, type: `t ${auth}`, code: auth, param: auth }, echo: auth },
        };
      if (content === "500")
        return { kind: "json", status: 500, body: { error: { message: `boom ${auth}` }, echo: auth } };
      if (content === "422") return { kind: "json", status: 422, body: { detail: `d ${auth}` } };
      return { kind: "json", body: chatCompletion(`echo ${auth}`, UPSTREAM_ID) };
    });
    const gateway = await useGateway(t, providersYaml(mock, { apiKey: KEY }));
    const client = openAiClient(gateway);
    const file = await upload(client, [chatLine("a", "400"), chatLine("b", "500"), chatLine("c", "422")].join("\n"));
    const batch = await createBatch(client, file.id);
    const done = await waitForBatch(client, batch.id, isFinished, 30_000);
    const text = await (await client.files.content(done.error_file_id ?? "")).text();
    assert.ok(!text.includes("0123456789abcdef"), text);
  });
});

describe("Batch API: hostile input files", () => {
  test("a file of 300,000 tiny lines past max_lines: refused without blocking live requests", async (t) => {
    const mock = await useMock(t);
    const gateway = await useGateway(t, `${providersYaml(mock, { apiKey: KEY })}batches:\n  max_lines: 10\n`);
    const client = openAiClient(gateway);
    const count = 300_000;
    const text = Array.from({ length: count }, (_, at) => chatLine(`t${at}`, "x")).join("\n");
    const file = await upload(client, text);
    // The gateway runs in this process: the event loop's longest stall is what a live request would have waited.
    const delays = monitorEventLoopDelay({ resolution: 10 });
    delays.enable();
    const batch = await createBatch(client, file.id);
    const done = await waitForBatch(client, batch.id, isFinished);
    delays.disable();
    const stalledMs = delays.max / 1e6;
    assert.equal(done.status, "failed");
    assert.equal(done.errors?.data?.[0]?.code, "too_many_requests");
    assert.ok(stalledMs < 1_000, `the event loop stalled ${stalledMs} ms`);
  });
});

describe("Batch API: lines past a live request's JSON bounds", () => {
  test("a line nested 200,000 deep and one object of 300,000 members: the batch fails naming both, nothing sent", async (t) => {
    const mock = await useMock(t);
    echoing(mock);
    const gateway = await useGateway(t, providersYaml(mock, { apiKey: KEY }));
    const client = openAiClient(gateway);
    const levels = 200_000;
    const deep = `{"custom_id":"deep","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":"x"}],"metadata":${"[".repeat(levels)}${"]".repeat(levels)}}}`;
    const wideObject = `{${Array.from({ length: 300_000 }, (_, at) => `"${at}":1`).join(",")}}`;
    const wide = `{"custom_id":"wide","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":"x"}],"logit_bias":${wideObject}}}`;
    const file = await upload(client, [deep, wide, chatLine("fine", "x")].join("\n"));
    const done = await waitForBatch(client, (await createBatch(client, file.id)).id, isFinished);
    // Before: the deep line overflowed the stack in the runner and was never written (`completed`, 1 of 3 lines
    // answered, none failed); the wide one was parsed and sent upstream, 3.5 MB, as no live request may be.
    assert.equal(done.status, "failed", JSON.stringify(done));
    assert.deepEqual(
      done.errors?.data?.map((error) => [error.line, error.code]),
      [
        [1, "invalid_value"],
        [2, "invalid_value"],
      ],
    );
    assert.match(done.errors?.data?.[0]?.message ?? "", /deeper than 64 levels/);
    assert.match(done.errors?.data?.[1]?.message ?? "", /more than 10000 members/);
    assert.deepEqual(sentContents(mock), []);
  });

  test("a body exactly MAX_JSON_DEPTH deep, which the live door takes, runs as a line (the line's own object is not the body's level)", async (t) => {
    const mock = await useMock(t);
    echoing(mock);
    const gateway = await useGateway(t, providersYaml(mock, { apiKey: KEY }));
    const client = openAiClient(gateway);
    // The body object is level 1, a field's arrays the 63 below it: 64 levels, as the JSON door counts them. A field
    // the gateway does not read (`metadata` is held to OpenAI's bounds: an object of strings).
    const nested = `${"[".repeat(MAX_JSON_DEPTH - 1)}${"]".repeat(MAX_JSON_DEPTH - 1)}`;
    const body = `{"model":"m","messages":[{"role":"user","content":"deepest"}],"client_extra":${nested}}`;
    const live = await send(gateway, "POST", "/v1/chat/completions", { body });
    assert.equal(live.status, 200, live.text);
    const line = `{"custom_id":"at-bound","method":"POST","url":"/v1/chat/completions","body":${body}}`;
    const file = await upload(client, line);
    const done = await waitForBatch(client, (await createBatch(client, file.id)).id, isFinished);
    // Before: the line's wrapper counted as a level, so the batch failed "deeper than 64 levels".
    assert.equal(done.status, "completed", JSON.stringify(done.errors));
    assert.deepEqual(done.request_counts, { total: 1, completed: 1, failed: 0 });
  });
});

describe("Batch API: fairness between batches", () => {
  for (const scene of ["another client's", "the same client's"] as const) {
    test(`a 1-line batch created behind a long one (${scene}) is served in its turn, not after the long one`, async (t) => {
      const mock = await useMock(t);
      echoing(mock, 150);
      const gateway = await useGateway(
        t,
        `${TWO_TEAMS_YAML}${providersYaml(mock, { apiKey: KEY })}batches:
  concurrency: 1
`,
      );
      const big = openAiClient(gateway, "sk-team-a");
      const small = openAiClient(gateway, scene === "the same client's" ? "sk-team-a" : "sk-team-b");
      const bigFile = await upload(
        big,
        Array.from({ length: 8 }, (_, at) => chatLine(`big-${at}`, `big ${at}`)).join("\n"),
      );
      const bigBatch = await createBatch(big, bigFile.id);
      await mock.waitForRequests(1, 5_000);
      const smallFile = await upload(small, chatLine("small", "small"));
      const smallBatch = await createBatch(small, smallFile.id);
      const smallDone = await waitForBatch(small, smallBatch.id, isFinished);
      assert.equal(smallDone.status, "completed");
      // One line each in turn: the small batch's line went at most after the big one's second, not after its eighth.
      const order = sentContents(mock);
      assert.ok(order.indexOf("small") >= 1 && order.indexOf("small") <= 2, `sent in the order ${order}`);
      assert.notEqual((await big.batches.retrieve(bigBatch.id)).status, "completed");
      const bigDone = await waitForBatch(big, bigBatch.id, isFinished);
      assert.deepEqual(bigDone.request_counts, { total: 8, completed: 8, failed: 0 });
    });
  }
});

describe("Batch API: a running batch's input file, across a restart", () => {
  /**
   * A batch of 10 slow lines (0.4 s each) on a state file; `during` runs once 2 lines were sent; then the gateway stops and starts
   * again on the same file, and the batch is awaited there.
   */
  async function restartMidBatch(
    t: import("node:test").TestContext,
    batchesYaml: string,
    during: (client: OpenAI, fileId: string) => Promise<void>,
  ): Promise<{ done: Batch; mock: MockUpstream }> {
    const mock = await useMock(t);
    echoing(mock, 400);
    const dir = mkdtempSync(join(tmpdir(), "llm-gateway-batches-hostile-"));
    const yaml = `${providersYaml(mock, { apiKey: KEY })}batches:\n  concurrency: 1\n${batchesYaml}state:\n  path: ${JSON.stringify(join(dir, "state.db"))}\n`;
    const first = await startTestGateway(yaml);
    let isFirstClosed = false;
    t.after(async () => {
      if (!isFirstClosed) await first.close();
    });
    const firstClient = openAiClient(first);
    const file = await upload(
      firstClient,
      Array.from({ length: 10 }, (_, at) => chatLine(`d-${at}`, `line ${at}`)).join("\n"),
    );
    const batch = await createBatch(firstClient, file.id);
    await mock.waitForRequests(2, 10_000);
    await during(firstClient, file.id);
    await first.close();
    isFirstClosed = true;
    const second = await useGateway(t, yaml);
    return { done: await waitForBatch(openAiClient(second), batch.id, isFinished), mock };
  }

  test("deleting it while its batch runs is refused (400 naming the batch); the batch completes after a restart", async (t) => {
    const { done } = await restartMidBatch(t, "", async (client, fileId) => {
      try {
        await client.files.delete(fileId);
        assert.fail("the delete was accepted");
      } catch (error) {
        assert.ok(error instanceof OpenAI.APIError, String(error));
        assert.equal(error.status, 400);
        assert.equal((error.error as { param?: string }).param, "file_id");
        assert.match(error.message, /still running/);
      }
      assert.equal((await client.files.retrieve(fileId)).id, fileId);
    });
    assert.equal(done.status, "completed", JSON.stringify(done));
    assert.deepEqual(done.request_counts, { total: 10, completed: 10, failed: 0 });
  });

  test("past its expires_at (retention_ms shorter than the window) it is still read after a restart", async (t) => {
    const { done } = await restartMidBatch(t, "  retention_ms: 2000\n", async (client, fileId) => {
      // Its expires_at is 1 to 2 s after its upload (whole seconds).
      await sleep(2_100);
      assert.equal((await client.batches.list()).data[0]?.status, "in_progress");
      await assert.rejects(client.files.retrieve(fileId), /404/);
    });
    assert.equal(done.status, "completed", JSON.stringify(done));
    assert.deepEqual(done.request_counts, { total: 10, completed: 10, failed: 0 });
  });
});

describe("Batch API: a line over the door's own limits", () => {
  test("a line whose body is over server.body_limit_bytes goes to the error file as a 413, never upstream", async (t) => {
    const mock = await useMock(t);
    echoing(mock, 0);
    const gateway = await useGateway(t, `server:\n  body_limit_bytes: 4000\n${providersYaml(mock, { apiKey: KEY })}`);
    const client = openAiClient(gateway);
    const file = await upload(client, [chatLine("small", "hello"), chatLine("large", "x".repeat(10_000))].join("\n"));
    const batch = await createBatch(client, file.id);
    const done = await waitForBatch(client, batch.id, isFinished);
    assert.equal(done.status, "completed");
    assert.deepEqual(done.request_counts, { total: 2, completed: 1, failed: 1 });
    const errors = (await (await client.files.content(done.error_file_id ?? "")).text()).trim().split("\n");
    assert.equal(errors.length, 1);
    const line = JSON.parse(errors[0] ?? "") as {
      custom_id: string;
      response: { status_code: number; body: { error: { code: string; message: string } } };
    };
    assert.equal(line.custom_id, "large");
    assert.equal(line.response.status_code, 413);
    assert.equal(line.response.body.error.code, "payload_too_large");
    assert.match(line.response.body.error.message, /server\.body_limit_bytes/);
    assert.deepEqual(sentContents(mock), ["hello"]);
  });

  test("a line whose raw body is over the limit is a 413 though its body serialised again would fit (the live door's rule, unparsed)", async (t) => {
    // The body's own bytes pass the limit (spaces inside it): the live door refuses such a body unread. The runner
    // parsed the line and measured it serialised again (spaces gone), so it sent it; now the line's length decides,
    // before any parse, and a 60 MB line no longer blocks the event loop twice more (parse, serialise).
    const mock = await useMock(t);
    echoing(mock, 0);
    const gateway = await useGateway(t, `server:\n  body_limit_bytes: 4000\n${providersYaml(mock, { apiKey: KEY })}`);
    const client = openAiClient(gateway);
    const padded = chatLine("padded", "spaced").replace('"body":{', `"body":{${" ".repeat(10_000)}`);
    const file = await upload(client, [chatLine("small", "hello"), padded].join("\n"));
    const batch = await createBatch(client, file.id);
    const done = await waitForBatch(client, batch.id, isFinished);
    assert.equal(done.status, "completed");
    assert.deepEqual(done.request_counts, { total: 2, completed: 1, failed: 1 });
    const [line] = await linesOf(client, done.error_file_id);
    const response = line?.response as { status_code: number; body: { error: { code: string } } };
    assert.equal(line?.custom_id, "padded");
    assert.equal(response.status_code, 413);
    assert.equal(response.body.error.code, "payload_too_large");
    assert.deepEqual(sentContents(mock), ["hello"]);
  });
});

/**
 * Memory rows whose input file is spoiled once its batch starts (the line marked SPOIL no longer JSON): the only way a
 * test reaches a line's run throwing where no answer is made of it (a bug there), through the server's `batches`
 * option. The bytes are the runner's own copy (the rows hand out the stored Buffer).
 */
class SpoilingRows extends MemoryBatchRows {
  override async replaceBatch(row: BatchRow, expectedJson: string): Promise<boolean> {
    const batch = JSON.parse(row.json) as Batch;
    if (batch.status === "in_progress") {
      const content = await this.fileContent(batch.input_file_id);
      const at = content?.indexOf("SPOIL") ?? -1;
      if (content !== undefined && at >= 0) content.fill(1, at, at + "SPOIL".length);
    }
    return super.replaceBatch(row, expectedJson);
  }
}

describe("Batch API: a line whose run throws", () => {
  test("it goes to the error file as a 500 (no cause, no stack) and counts failed; the others are served", async (t) => {
    const mock = await useMock(t);
    echoing(mock, 0);
    const gateway = await useGateway(t, providersYaml(mock, { apiKey: KEY }));
    const { runtime } = gateway;
    const rows = new SpoilingRows();
    const app = buildServer(runtime, {
      logger: false,
      batches: { books: new BatchBooks(rows, runtime.clock, () => runtime.snapshot.config.batches) },
    });
    t.after(() => app.close());
    await app.listen({ port: 0, host: "127.0.0.1" });
    const address = app.server.address();
    assert.ok(address !== null && typeof address === "object");
    const client = new OpenAI({ baseURL: `http://127.0.0.1:${address.port}/v1`, apiKey: "x", maxRetries: 0 });
    const file = await upload(
      client,
      [chatLine("a", "one"), chatLine("bad", "SPOIL"), chatLine("c", "three")].join("\n"),
    );
    const batch = await createBatch(client, file.id);
    const done = await waitForBatch(client, batch.id, isFinished);
    // It ended `completed` with { total: 3, completed: 2, failed: 0 } and no error file: the line was only logged.
    assert.equal(done.status, "completed");
    assert.deepEqual(done.request_counts, { total: 3, completed: 2, failed: 1 });
    const errors = await linesOf(client, done.error_file_id);
    assert.equal(errors.length, 1);
    const line = errors[0] as { custom_id: string; response: { status_code: number; body: unknown }; error: unknown };
    assert.equal(line.custom_id, "bad");
    assert.equal(line.response.status_code, 500);
    assert.equal(line.error, null);
    const body = line.response.body as { error: { type: string; code: string; message: string } };
    assert.equal(body.error.type, "server_error");
    assert.equal(body.error.code, "internal_error");
    assert.doesNotMatch(JSON.stringify(line), /SyntaxError|JSON|at .*\.ts|sk-alpha|0123456789/);
    assert.deepEqual(sentContents(mock).sort(), ["one", "three"]);
    assert.deepEqual((await linesOf(client, done.output_file_id)).map((output) => output.custom_id).sort(), ["a", "c"]);
  });
});

describe("Batch API: memory of running batches", () => {
  for (const store of ["memory", "the state file"] as const) {
    test(`five batches of one 20 MB input file, created at once, hold its bytes once, not a copy each (${store})`, async (t) => {
      setFlagsFromString("--expose-gc");
      const collect = runInNewContext("gc") as () => void;
      const mock = await useMock(t);
      mock.setDefault(CHAT_ROUTE, { kind: "hang" });
      const statePath =
        store === "memory"
          ? '":memory:"'
          : JSON.stringify(join(mkdtempSync(join(tmpdir(), "llm-gateway-batches-memory-")), "state.db"));
      const gateway = await useGateway(
        t,
        `${providersYaml(mock, { apiKey: KEY })}batches:\n  concurrency: 1\nstate:\n  path: ${statePath}\n`,
      );
      const client = openAiClient(gateway);
      const filler = "word ".repeat(400);
      const text = Array.from({ length: 10_000 }, (_, at) => chatLine(`r${at}`, `${filler}${at}`)).join("\n");
      const file = await upload(client, text);
      collect();
      const held = (): number => process.memoryUsage().heapUsed + process.memoryUsage().external;
      const before = held();
      const batches = await Promise.all(
        Array.from({ length: 5 }, () =>
          client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" }),
        ),
      );
      for (const batch of batches) {
        for (;;) {
          const current = await client.batches.retrieve(batch.id);
          if (current.status !== "validating") {
            assert.equal(current.status, "in_progress");
            break;
          }
          await sleep(20);
        }
      }
      collect();
      const grownBytes = held() - before;
      // Parsed bodies cost about the file's size each, as does a copy of its bytes: 5 batches, 5 x 20 MB or more.
      assert.ok(
        grownBytes < 2 * file.bytes,
        `the heap and buffers grew ${Math.round(grownBytes / 1e6)} MB for a ${file.bytes / 1e6} MB file`,
      );
    });
  }
});

describe("Batch API: hostile uploads", () => {
  test("two files, `purpose` twice, a file as a text field, a hostile filename: clear errors, the name kept as data only", async (t) => {
    const mock = await useMock(t);
    const gateway = await useGateway(t, providersYaml(mock, { apiKey: KEY }));
    const post = async (fill: (form: FormData) => void): Promise<{ status: number; body: Record<string, unknown> }> => {
      const form = new FormData();
      fill(form);
      const response = await fetch(`${gateway.url}/v1/files`, { method: "POST", body: form });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    };
    const errorOfBody = (body: Record<string, unknown>) => body.error as { message: string; param: string | null };
    const twoFiles = await post((form) => {
      form.append("purpose", "batch");
      form.append("file", new Blob(["{}"]), "a.jsonl");
      form.append("file", new Blob(["{}"]), "b.jsonl");
    });
    assert.equal(twoFiles.status, 400);
    assert.equal(errorOfBody(twoFiles.body).param, "file");
    const twoPurposes = await post((form) => {
      form.append("purpose", "batch");
      form.append("purpose", "batch");
      form.append("file", new Blob(["{}"]), "a.jsonl");
    });
    assert.equal(twoPurposes.status, 400);
    assert.equal(errorOfBody(twoPurposes.body).param, "purpose");
    assert.match(errorOfBody(twoPurposes.body).message, /more than once/);
    const textFile = await post((form) => {
      form.append("purpose", "batch");
      form.append("file", "just text");
    });
    assert.equal(textFile.status, 400);
    assert.equal(errorOfBody(textFile.body).param, "file");
    const hostileName = `../../etc/pa\u0000ss${"x".repeat(10_000)}`;
    const named = await post((form) => {
      form.append("purpose", "batch");
      form.append("file", new Blob([chatLine("a", "b")]), hostileName);
    });
    assert.equal(named.status, 200);
    assert.equal(named.body.filename, hostileName.slice(0, 256));
    assert.match(String(named.body.id), /^file-[0-9a-f]+$/);
  });
});

describe("Batch API: a config reload mid-batch", () => {
  test("the batch's model removed by a reload: the lines after it go to the error file as model_not_found, the counts add up", async (t) => {
    const mock = await useMock(t);
    echoing(mock, 300);
    const head = "server:\n  port: 0\n  host: 127.0.0.1\n  admin_keys: [sk-admin-batches-0123456789]\n";
    const gateway = await useGateway(t, `${head}${providersYaml(mock, { apiKey: KEY })}batches:\n  concurrency: 1\n`);
    const client = openAiClient(gateway);
    const file = await upload(
      client,
      Array.from({ length: 6 }, (_, at) => chatLine(`h-${at}`, `line ${at}`)).join("\n"),
    );
    const batch = await createBatch(client, file.id);
    await mock.waitForRequests(2, 10_000);
    const text = readFileSync(gateway.configPath, "utf8");
    writeFileSync(gateway.configPath, text.replace(`m: { id: ${UPSTREAM_ID} }`, "other: { id: vendor/other }"));
    const reloaded = await send(gateway, "POST", "/admin/reload", {
      headers: { authorization: "Bearer sk-admin-batches-0123456789" },
    });
    assert.equal(reloaded.status, 200, reloaded.text);
    const done = await waitForBatch(client, batch.id, isFinished);
    assert.equal(done.status, "completed");
    const counts = done.request_counts ?? { total: 0, completed: 0, failed: 0 };
    assert.equal(counts.total, 6);
    assert.equal(counts.completed + counts.failed, 6);
    assert.ok(counts.completed >= 2 && counts.failed >= 1, JSON.stringify(counts));
    const errors = (await (await client.files.content(done.error_file_id ?? "")).text()).trim().split("\n");
    assert.equal(errors.length, counts.failed);
    for (const line of errors) {
      const parsed = JSON.parse(line) as { response: { status_code: number; body: { error: { code: string } } } };
      assert.equal(parsed.response.status_code, 404);
      assert.equal(parsed.response.body.error.code, "model_not_found");
    }
    assert.equal(sentContents(mock).length, counts.completed);
  });
});

describe("Batch API: max_files when every file is a running batch's input", () => {
  test("an upload or a create past max_files is a 429 in OpenAI's shape; a batch's end still fits its files", async (t) => {
    const mock = await useMock(t);
    echoing(mock, 400);
    // One input file and the room its batch's output and error files need: 3.
    const gateway = await useGateway(t, `${providersYaml(mock, { apiKey: KEY })}batches:\n  max_files: 3\n`);
    const client = openAiClient(gateway);
    const input = await upload(client, [chatLine("a", "a"), chatLine("b", "b")].join("\n"));
    const batch = await createBatch(client, input.id);
    const refused = await send(gateway, "POST", "/v1/batches", {
      body: { input_file_id: input.id, endpoint: "/v1/chat/completions", completion_window: "24h" },
    });
    assert.equal(refused.status, 429, refused.text);
    const error = errorOf(refused);
    assert.equal(error.type, "rate_limit_error");
    assert.match(error.message, /batches\.max_files: 3/);
    const form = new FormData();
    form.append("purpose", "batch");
    form.append("file", new Blob([chatLine("c", "c")]), "more.jsonl");
    const upload2 = await fetch(`${gateway.baseUrl}/files`, { method: "POST", body: form });
    assert.equal(upload2.status, 429);
    const uploadError = ((await upload2.json()) as { error: { code: string; message: string } }).error;
    assert.equal(uploadError.code, "rate_limit_exceeded");
    assert.match(uploadError.message, /batches\.max_files: 3/);
    const done = await waitForBatch(client, batch.id, isFinished);
    assert.equal(done.status, "completed");
    const files = (await client.files.list()).data;
    assert.ok(files.length <= 3, `kept ${files.length} files`);
    assert.ok(files.some((file) => file.id === done.output_file_id));
    // Ended: its input may go for a new upload.
    assert.equal((await upload(client, chatLine("d", "d"))).object, "file");
    assert.ok((await client.files.list()).data.length <= 3);
  });
});

describe("Batch API: a large batch's end", () => {
  test("writing the output file of 1,000 answers of 64 KB (state file) stalls the event loop briefly, not for its whole size", async (t) => {
    const mock = await useMock(t);
    const answer = chatCompletion(`${"word ".repeat(13_000)}`, UPSTREAM_ID);
    mock.setDefault(CHAT_ROUTE, { kind: "json", body: answer });
    const statePath = JSON.stringify(join(mkdtempSync(join(tmpdir(), "llm-gateway-batches-end-")), "state.db"));
    const gateway = await useGateway(
      t,
      `${providersYaml(mock, { apiKey: KEY })}batches:\n  concurrency: 8\nstate:\n  path: ${statePath}\n`,
    );
    const client = openAiClient(gateway);
    const count = 1_000;
    const file = await upload(client, Array.from({ length: count }, (_, at) => chatLine(`r${at}`, "x")).join("\n"));
    const batch = await createBatch(client, file.id);
    // The lines' own runs stall little; the end (reading every result, writing the files) is what is measured.
    await waitForBatch(client, batch.id, (current) => (current.request_counts?.completed ?? 0) >= count - 50, 120_000);
    // The gateway runs in this process: the event loop's longest stall is what a live request would have waited.
    const delays = monitorEventLoopDelay({ resolution: 5 });
    delays.enable();
    const turns = watchTurns();

    const done = await waitForBatch(client, batch.id, isFinished, 120_000);
    const { longestCpuMs, cpuMs } = turns.stop();
    delays.disable();
    const stalledMs = delays.max / 1e6;
    t.diagnostic(`longest turn ${longestCpuMs.toFixed(0)} ms of CPU of ${cpuMs.toFixed(0)}; stalled ${stalledMs} ms`);
    assert.equal(done.status, "completed", JSON.stringify(done));
    assert.deepEqual(done.request_counts, { total: count, completed: count, failed: 0 });
    const output = await (await client.files.content(done.output_file_id ?? "")).text();
    const lines = output.trimEnd().split("\n");
    assert.equal(lines.length, count);
    assert.deepEqual(
      new Set(lines.map((line) => (JSON.parse(line) as { custom_id: string }).custom_id)),
      new Set(Array.from({ length: count }, (_, at) => `r${at}`)),
    );
    // The longest turn by this thread's own CPU: a machine busy with other processes makes a turn longer on the clock
    // (the thread waits for a core), not in CPU, so that is what is bounded, and against the end's CPU in all, which
    // a slower machine stretches alike. Every result read, joined and written in one turn was most of the end's CPU
    // (and 4,000 to 7,000 ms on the clock on a loaded 2-core machine); a page of 256 KB at a time is a few ms.
    assert.ok(
      longestCpuMs < 0.25 * cpuMs,
      `one turn took ${longestCpuMs.toFixed(0)} ms of the end's ${cpuMs.toFixed(0)} ms of CPU`,
    );
    // On the clock, a bound far above the machine's own scheduling (about 200 ms under heavy load), far below the
    // stall of an end in one turn.
    assert.ok(stalledMs < 2_000, `the event loop stalled ${stalledMs} ms at the batch's end`);
  });
});

/**
 * The event loop's turns, as this thread's CPU between timer ticks 5 ms apart: the longest, and all of it since the
 * start. What the machine's other processes take (the thread waiting for a core) is in neither.
 */
function watchTurns(): { stop(): { longestCpuMs: number; cpuMs: number } } {
  const cpuMsOf = (usage: NodeJS.CpuUsage) => (usage.user + usage.system) / 1_000;
  const started = cpuMsOf(process.threadCpuUsage());
  let last = started;
  let longestCpuMs = 0;
  const tick = () => {
    const now = cpuMsOf(process.threadCpuUsage());
    longestCpuMs = Math.max(longestCpuMs, now - last);
    last = now;
  };
  const timer = setInterval(tick, 5);
  return {
    stop() {
      clearInterval(timer);
      tick();
      return { longestCpuMs, cpuMs: last - started };
    },
  };
}
