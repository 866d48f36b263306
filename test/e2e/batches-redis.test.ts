// The Files and Batch APIs with `state.redis_url`: replicas on one Redis share files and batches. A file uploaded on
// one gateway feeds a batch created on another, whose results any of them reads; a batch whose running replica is
// killed (SIGKILL) is taken over by another once its lease lapses, with each custom_id exactly once in the output;
// a cancel on a replica that does not run the batch stops it; and the same basic flow on a 3-master Redis Cluster.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, type TestContext, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import OpenAI from "openai";
import {
  chatLine,
  createBatch,
  echoing,
  isFinished,
  linesOf,
  providersYaml,
  sentContents,
  upload,
  waitForBatch,
  waitForCompleted,
} from "../helpers/batches-scene.ts";
import { CHAT_ROUTE, useGateway, useMock } from "../helpers/e2e.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { startGatewayProcess } from "../helpers/gateway-process.ts";
import { chatCompletion, type MockUpstream } from "../helpers/mock-upstream.ts";
import { isRedisClusterAvailable, REDIS_CLUSTER_MISSING, useRedisCluster } from "../helpers/redis-cluster.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../helpers/redis-server.ts";

const skipWithoutRedis = { skip: isRedisInstalled() ? false : REDIS_MISSING };

function yamlFor(mock: MockUpstream, redisUrl: string, extra = "", batches = ""): string {
  return `${providersYaml(mock)}state:
  path: ":memory:"
  redis_url: ${redisUrl}
  redis_key_prefix: "batches-redis-e2e:"
${extra}batches:
  lease_ms: 1500
${batches}`;
}

const clientOf = (url: string) => new OpenAI({ baseURL: `${url}/v1`, apiKey: "x", maxRetries: 0 });

/** Upload on `a`, create on `b`, poll and read the results on `a`: every custom_id once, with its answer. */
async function basicFlow(a: OpenAI, b: OpenAI): Promise<void> {
  const ids = ["1", "2", "3", "4"];
  const file = await upload(a, ids.map((id) => chatLine(`r-${id}`, `line ${id}`)).join("\n"));
  assert.equal((await b.files.retrieve(file.id)).bytes, file.bytes, "the file uploaded on A is found on B");
  const batch = await createBatch(b, file.id);
  const done = await waitForCompleted(a, batch.id, 4);
  const output = await linesOf(a, done.output_file_id);
  assert.deepEqual(
    output.map((line) => line.custom_id).sort(),
    ids.map((id) => `r-${id}`),
  );
  for (const line of output) {
    const body = (line.response as { body: { choices: { message: { content: string } }[] } }).body;
    assert.equal(body.choices[0]?.message.content, `echo: line ${String(line.custom_id).slice(2)}`);
  }
  // B lists the batch and reads the same output file.
  assert.ok((await b.batches.list()).data.some((listed) => listed.id === batch.id));
  assert.equal((await linesOf(b, done.output_file_id)).length, 4);
}

/**
 * Two gateway processes on one Redis: a batch of `ids` (custom_id `<customIdPrefix>-<id>`) uploaded on `other` and
 * created on `runner`, then `runner` killed (SIGKILL: no shutdown, the lease is not given up) once the mock got
 * `requestsBeforeKill` lines; `client` reads on `other`.
 */
async function killRunnerMidBatch(
  t: TestContext,
  options: { ids: string[]; customIdPrefix: string; batchesYaml: string; requestsBeforeKill: number },
) {
  const mock = await useMock(t);
  echoing(mock, 300);
  const redis = await useRedisServer(t);
  const yaml = yamlFor(mock, redis.url, "", options.batchesYaml);
  const runner = await startGatewayProcess(t, yaml);
  const other = await startGatewayProcess(t, yaml);
  const lines = options.ids.map((id) => chatLine(`${options.customIdPrefix}-${id}`, `line ${id}`));
  const file = await upload(clientOf(other.url), lines.join("\n"));
  // Created on `runner`: it takes the batch's lease at once, so `other` only watches until it lapses.
  const batch = await createBatch(clientOf(runner.url), file.id);
  await mock.waitForRequests(options.requestsBeforeKill, 10_000);
  await runner.stop();
  return { mock, batch, client: clientOf(other.url) };
}

describe("Batch API with Redis: replicas share files and batches", () => {
  test("upload on A, create on B, read the results on A: every custom_id once", skipWithoutRedis, async (t) => {
    const mock = await useMock(t);
    echoing(mock, 20);
    const redis = await useRedisServer(t);
    const a = await useGateway(t, yamlFor(mock, redis.url));
    const b = await useGateway(t, yamlFor(mock, redis.url));
    await basicFlow(clientOf(a.baseUrl.replace(/\/v1$/, "")), clientOf(b.baseUrl.replace(/\/v1$/, "")));
  });

  test(
    "the running replica killed (SIGKILL) mid-batch: the other takes it over, each custom_id exactly once",
    skipWithoutRedis,
    async (t) => {
      const ids = ["1", "2", "3", "4", "5", "6"];
      const { mock, batch, client } = await killRunnerMidBatch(t, {
        ids,
        customIdPrefix: "k",
        batchesYaml: "  concurrency: 1\n",
        requestsBeforeKill: 3,
      });
      const done = await waitForCompleted(client, batch.id, 6);
      const output = await linesOf(client, done.output_file_id);
      assert.deepEqual(
        output.map((line) => line.custom_id).sort(),
        ids.map((id) => `k-${id}`),
      );
      // What finished before the kill was not sent again; the line in flight at the kill at most twice.
      const contents = sentContents(mock);
      for (const id of ["1", "2"]) assert.equal(contents.filter((content) => content === `line ${id}`).length, 1);
      assert.ok(contents.length <= ids.length + 1, `sent ${contents.length}: ${contents}`);
    },
  );

  test(
    "the running replica killed, the window ends while the other runs it: expired, each custom_id once in one file",
    skipWithoutRedis,
    async (t) => {
      const ids = Array.from({ length: 30 }, (_, index) => String(index + 1));
      const { batch, client } = await killRunnerMidBatch(t, {
        ids,
        customIdPrefix: "e",
        batchesYaml: "  concurrency: 1\n  completion_window_ms: 3000\n",
        requestsBeforeKill: 2,
      });
      const done = await waitForBatch(client, batch.id, isFinished);
      assert.equal(done.status, "expired", JSON.stringify(done));
      const output = await linesOf(client, done.output_file_id);
      const errors = await linesOf(client, done.error_file_id);
      assert.ok(output.length >= 1, "the lines written before the kill are in the output");
      assert.ok(errors.length >= 1, "the lines not run are in the error file");
      for (const line of errors) assert.equal((line.error as { code: string }).code, "batch_expired");
      assert.deepEqual([...output, ...errors].map((line) => line.custom_id).sort(), ids.map((id) => `e-${id}`).sort());
      assert.deepEqual(done.request_counts, { total: 30, completed: output.length, failed: errors.length });
    },
  );

  test(
    "cancel on the replica that does not run the batch stops it: cancelled, the lines not run never sent",
    skipWithoutRedis,
    async (t) => {
      const mock = await useMock(t);
      echoing(mock, 400);
      const redis = await useRedisServer(t);
      const yaml = yamlFor(mock, redis.url, "", "  concurrency: 1\n");
      const runner = clientOf((await useGateway(t, yaml)).baseUrl.replace(/\/v1$/, ""));
      const other = clientOf((await useGateway(t, yaml)).baseUrl.replace(/\/v1$/, ""));
      const ids = ["1", "2", "3", "4", "5", "6", "7", "8"];
      const file = await upload(other, ids.map((id) => chatLine(`c-${id}`, `line ${id}`)).join("\n"));
      const batch = await createBatch(runner, file.id);
      await mock.waitForRequests(1, 10_000);
      const cancelling = await other.batches.cancel(batch.id);
      assert.equal(cancelling.status, "cancelling");
      const done = await waitForBatch(other, batch.id, isFinished, 10_000);
      assert.equal(done.status, "cancelled", JSON.stringify(done));
      const sentAtEnd = sentContents(mock).length;
      assert.ok(sentAtEnd < ids.length, `every line was sent (${sentAtEnd}): the cancel did not reach the runner`);
      const output = await linesOf(other, done.output_file_id);
      assert.equal(output.length, done.request_counts?.completed);
      // Nothing more is sent after the batch ended.
      await sleep(1_000);
      assert.equal(sentContents(mock).length, sentAtEnd);
    },
  );

  test(
    "Redis unreachable: the routes answer 503 service_unavailable without the store's words, and work again after",
    skipWithoutRedis,
    async (t) => {
      const mock = await useMock(t);
      echoing(mock, 20);
      const redis = await useRedisServer(t);
      const gateway = await useGateway(t, yamlFor(mock, redis.url));
      await redis.kill();
      const response = await fetch(`${gateway.baseUrl}/batches`);
      assert.equal(response.status, 503);
      const body = (await response.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, "service_unavailable");
      assert.doesNotMatch(body.error.message, new RegExp(String(redis.port)));
      await redis.restart();
      const client = clientOf(gateway.baseUrl.replace(/\/v1$/, ""));
      const deadline = Date.now() + 10_000;
      for (;;) {
        try {
          const file = await upload(client, chatLine("a", "b"));
          assert.equal((await client.files.retrieve(file.id)).id, file.id);
          break;
        } catch (error) {
          if (Date.now() > deadline) throw error;
          await sleep(200);
        }
      }
    },
  );

  test(
    "a batch A gave up at once (created, then A stopped) is taken by B at once, not at B's next look 100 s later",
    skipWithoutRedis,
    async (t) => {
      const mock = await useMock(t);
      echoing(mock, 20);
      const redis = await useRedisServer(t);
      // lease_ms 300 s: B looks for batches to take every 100 s; only a nudge (pub/sub) brings this one sooner.
      const yaml = `${providersYaml(mock)}state:
  path: ":memory:"
  redis_url: ${redis.url}
  redis_key_prefix: "batches-nudge-e2e:"
batches:
  lease_ms: 300000
`;
      const a = await startTestGateway(yaml);
      t.after(() => (isAClosed ? undefined : a.close()));
      let isAClosed = false;
      const b = await useGateway(t, yaml);
      const clientA = clientOf(a.baseUrl.replace(/\/v1$/, ""));
      const clientB = clientOf(b.baseUrl.replace(/\/v1$/, ""));
      const ids = ["1", "2", "3", "4"];
      const file = await upload(clientA, ids.map((id) => chatLine(`n-${id}`, `line ${id}`)).join("\n"));
      const batch = await createBatch(clientA, file.id);
      // A's graceful exit gives up the batch's lease (A took it at the create, or is taking it).
      await a.close();
      isAClosed = true;
      const stoppedAt = Date.now();
      const done = await waitForCompleted(clientB, batch.id, 4, 15_000);
      assert.ok(Date.now() - stoppedAt < 15_000);
      assert.deepEqual(
        (await linesOf(clientB, done.output_file_id)).map((line) => line.custom_id).sort(),
        ids.map((id) => `n-${id}`),
      );
    },
  );

  for (const store of ["Redis", "the state file", "memory"] as const) {
    test(`the output file is in line order, not the order the lines finished (${store})`, {
      skip: store === "Redis" && !isRedisInstalled() ? REDIS_MISSING : false,
    }, async (t) => {
      const mock = await useMock(t);
      // Line 1 answers last: it finishes after the 39 others, past the first page (32 results) of the batch's end.
      mock.setDefault(CHAT_ROUTE, (request) => {
        const content = (request.body as { messages: { content: string }[] }).messages.at(-1)?.content ?? "";
        const body = chatCompletion(`echo: ${content}`, "vendor/m-instruct");
        return content === "line 1" ? { kind: "json", body, delayMs: 1_500 } : { kind: "json", body };
      });
      let state = `state:\n  path: ":memory:"\n`;
      if (store === "Redis") {
        const redis = await useRedisServer(t);
        state += `  redis_url: ${redis.url}\n  redis_key_prefix: "batches-order-e2e:"\n`;
      }
      if (store === "the state file") {
        state = `state:\n  path: ${JSON.stringify(join(mkdtempSync(join(tmpdir(), "batches-order-")), "state.db"))}\n`;
      }
      const gateway = await useGateway(t, `${providersYaml(mock)}${state}batches:\n  concurrency: 8\n`);
      const client = clientOf(gateway.baseUrl.replace(/\/v1$/, ""));
      const ids = Array.from({ length: 40 }, (_, index) => `o-${index + 1}`);
      const file = await upload(client, ids.map((id) => chatLine(id, `line ${id.slice(2)}`)).join("\n"));
      const done = await waitForCompleted(client, (await createBatch(client, file.id)).id, ids.length, 20_000);
      assert.equal(sentContents(mock)[0], "line 1", "line 1 was sent first");
      assert.deepEqual(
        (await linesOf(client, done.output_file_id)).map((line) => line.custom_id),
        ids,
      );
    });
  }

  test("Redis Cluster (3 masters): upload on A, create on B, read the results on A", {
    skip: isRedisClusterAvailable() ? false : REDIS_CLUSTER_MISSING,
  }, async (t) => {
    const mock = await useMock(t);
    echoing(mock, 20);
    const cluster = await useRedisCluster(t);
    const yaml = yamlFor(mock, cluster.url, "  redis_cluster: true\n");
    const a = await useGateway(t, yaml);
    const b = await useGateway(t, yaml);
    // A start waits for the cluster at most START_READY_WAIT_MS per store (its ready check can fail on a loaded
    // machine: CLUSTER INFO slower than the command timeout), then goes on and reconnects in the background.
    await Promise.all([a, b].map((gateway) => untilFilesAnswer(gateway.baseUrl)));
    await basicFlow(clientOf(a.baseUrl.replace(/\/v1$/, "")), clientOf(b.baseUrl.replace(/\/v1$/, "")));
  });
});

/** Resolves once the gateway's Files route answers 200 (its Redis connection is up); fails after 15 s. */
async function untilFilesAnswer(baseUrl: string): Promise<void> {
  const deadlineMs = Date.now() + 15_000;
  for (;;) {
    const response = await fetch(`${baseUrl}/files`);
    await response.arrayBuffer();
    if (response.status === 200) return;
    assert.ok(Date.now() < deadlineMs, `GET /v1/files still answers ${response.status}`);
    await sleep(200);
  }
}
