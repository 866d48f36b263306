// A batch line the gateway's own limits refuse in its pipeline, after its runner's check saw room, goes back to wait:
// no record, no error counted, its client's charge given back, and a 429 for its runner to wait its time. Room can go
// between the runner's check and the line's reservation (a live request planned meanwhile, another replica spending a
// shared budget: the Redis ledger's check does not see it), and a live request may queue meanwhile (the live-first
// hold of plan-request.ts). Each such try left a 429 record with the batch's id before. An upstream's own 429 (an
// attempt was sent) still leaves its record.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { ManualClock } from "../../src/clock.ts";
import { RateLimitedError, UpstreamOverloadedError, UpstreamUnavailableError } from "../../src/errors/gateway-error.ts";
import type { RequestRecord } from "../../src/observability/request-record.ts";
import { handleChatRequest } from "../../src/pipeline/chat-request.ts";
import { CHAT_ENDPOINT } from "../../src/pipeline/endpoints.ts";
import type { GatewayRuntime } from "../../src/pipeline/gateway-runtime.ts";
import { CLIENT_SCOPE_PREFIX } from "../../src/pipeline/snapshot.ts";
import {
  chatLine,
  createBatch,
  echoing,
  linesOf,
  providersYaml,
  sentContents,
  serverWithKeys,
  UPSTREAM_ID,
  upload,
  waitForBatch,
  waitForCompleted,
} from "../helpers/batches-scene.ts";
import { CHAT_ROUTE, HELLO, openAiClient, postChat, useGateway, useMock } from "../helpers/e2e.ts";
import { startTestGateway, type TestGateway } from "../helpers/gateway.ts";
import { chatCompletion, rateLimited } from "../helpers/mock-upstream.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../helpers/redis-server.ts";

const START_MS = Date.UTC(2026, 0, 1, 12);

/** Every record the gateway publishes from now on. */
function recordsOf(runtime: GatewayRuntime): RequestRecord[] {
  const records: RequestRecord[] = [];
  runtime.recorder.onRecord((record) => records.push(record));
  return records;
}

/** One batch line through the pipeline, as the runner's executor sends it (batch-lines.ts pipelineExecutor). */
function sendLine(runtime: GatewayRuntime, client?: string): Promise<unknown> {
  return handleChatRequest(
    runtime,
    CHAT_ENDPOINT,
    { model: "m", messages: HELLO },
    {
      requestId: "batch_req_test",
      clientProtocol: "openai-chat",
      signal: new AbortController().signal,
      client,
      log: { warn: () => {} },
      batchId: "batch_test",
    },
  );
}

async function waitUntil(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

async function liveOk(gateway: TestGateway, apiKey?: string): Promise<void> {
  const headers = apiKey === undefined ? {} : { authorization: `Bearer ${apiKey}` };
  const answer = await postChat(gateway, { model: "m", messages: HELLO }, headers);
  assert.equal(answer.status, 200, answer.text);
}

describe("a batch line refused by the gateway's own limits in its pipeline waits without a record", () => {
  test("no candidate has room at its plan (taken since the runner's check): a 429 to wait, no record", async (t) => {
    const mock = await useMock(t);
    echoing(mock);
    const clock = new ManualClock(START_MS);
    const gateway = await useGateway(t, providersYaml(mock, { modelKeys: ", limits: { rpm: 1 }" }), { clock });
    await liveOk(gateway);
    const records = recordsOf(gateway.runtime);
    await assert.rejects(sendLine(gateway.runtime), (error: unknown) => {
      assert.ok(error instanceof RateLimitedError, String(error));
      assert.ok((error.retryAfterMs ?? 0) > 0, "the time to wait, for the runner");
      return true;
    });
    assert.deepEqual(records, [], "the old pipeline published a 429 record with the batch's id");
    assert.equal(mock.requests.length, 1, "nothing sent for the line");
  });

  test("its client's budget refuses it, or the plan after the charge: no record, and the charge is given back", async (t) => {
    const mock = await useMock(t);
    echoing(mock);
    const clock = new ManualClock(START_MS);
    const gateway = await useGateway(
      t,
      `${serverWithKeys("{ key: sk-team, name: team, limits: { rpm: 2 } }")}${providersYaml(mock, { modelKeys: ", limits: { rpm: 1 }" })}`,
      { clock },
    );
    await liveOk(gateway, "sk-team");
    const records = recordsOf(gateway.runtime);
    // The client has room (1 of 2), the model none: charged, then refused at its plan.
    await assert.rejects(sendLine(gateway.runtime, "team"), RateLimitedError);
    assert.deepEqual(
      records.map((record) => record.status),
      [],
      "no record",
    );
    const scope = gateway.runtime.snapshot.clientScopes.get("team");
    assert.ok(scope !== undefined && scope.id === `${CLIENT_SCOPE_PREFIX}team`);
    const verdict = gateway.runtime.budgets.check([scope], { tokens: 0 }, clock.now());
    assert.equal(
      verdict.isAllowed,
      true,
      "the line's charge was given back: the client's second request of the minute is free",
    );
    // The client's own budget refuses the next two (its live request spends the second slot of the minute).
    await liveOkOrRefused(gateway);
    await assert.rejects(sendLine(gateway.runtime, "team"), RateLimitedError);
    assert.deepEqual(
      records.filter((record) => record.batchId !== undefined),
      [],
      "no record for the line its client's budget refused",
    );
  });

  test("a live request queued meanwhile (the live-first hold): the line is refused for its runner to wait, without a record", async (t) => {
    const mock = await useMock(t);
    let releaseBusy: () => void = () => {};
    const busyAnswered = new Promise<void>((resolve) => {
      releaseBusy = resolve;
    });
    mock.setDefault(CHAT_ROUTE, () => ({
      kind: "handler",
      handle: async (_request, response) => {
        await busyAnswered;
        response.writeHead(200, { "content-type": "application/json" });
        response.end(JSON.stringify(chatCompletion("busy", UPSTREAM_ID)));
      },
    }));
    const gateway = await useGateway(
      t,
      `${providersYaml(mock, { moreModels: "      busy: { id: vendor/busy, limits: { concurrency: 1 } }\n" })}routing:
  queue_timeout_ms: 10000
`,
    );
    const first = postChat(gateway, { model: "busy", messages: HELLO });
    await mock.waitForRequests(1);
    const queued = postChat(gateway, { model: "busy", messages: HELLO });
    await waitUntil(() => gateway.runtime.queuedRequests === 1, "the live request queued");
    const records = recordsOf(gateway.runtime);
    // `m` has room: only the hold refuses the line (its runner checked the queue before a live request came).
    await assert.rejects(sendLine(gateway.runtime), RateLimitedError);
    assert.deepEqual(records, [], "the old pipeline published a 429 record with the batch's id");
    releaseBusy();
    assert.equal((await first).status, 200);
    assert.equal((await queued).status, 200);
  });

  test("every candidate's circuit open: a 503 with the probe's time to wait, no record (nothing was sent)", async (t) => {
    const mock = await useMock(t);
    mock.setDefault(CHAT_ROUTE, { kind: "json", status: 500, body: { error: { message: "down" } } });
    const clock = new ManualClock(START_MS);
    const gateway = await useGateway(t, `${providersYaml(mock)}cooldowns:\n  failure_threshold: 3\n`, { clock });
    // Live requests fail (502) until the circuit opens: the next one gets a 503 without any upstream request.
    let status = 0;
    for (let tries = 0; tries < 5 && status !== 503; tries++) {
      status = (await postChat(gateway, { model: "m", messages: HELLO })).status;
    }
    assert.equal(status, 503);
    const sent = mock.requests.length;
    const records = recordsOf(gateway.runtime);
    // The circuit opened after the runner's look (a line in flight failed meanwhile): the pipeline finds no candidate.
    await assert.rejects(sendLine(gateway.runtime), (error: unknown) => {
      assert.ok(error instanceof UpstreamUnavailableError, String(error));
      assert.equal(error.status, 503);
      assert.ok((error.retryAfterMs ?? 0) > 0, "the time to the probe, for the runner");
      return true;
    });
    await sleep(50);
    assert.deepEqual(
      records.map((record) => [record.status, record.errorCode]),
      [],
      "the old pipeline published a 503 record with the batch's id at each try",
    );
    assert.equal(mock.requests.length, sent, "nothing sent for the line");
  });

  test("every candidate cooling after an overload (529): the overload's 503 with its time to wait, no record", async (t) => {
    const mock = await useMock(t);
    mock.enqueue(CHAT_ROUTE, {
      kind: "json",
      status: 529,
      headers: { "retry-after": "30" },
      body: { type: "error", error: { type: "overloaded_error", message: "Overloaded" } },
    });
    const clock = new ManualClock(START_MS);
    const gateway = await useGateway(t, providersYaml(mock), { clock });
    assert.equal((await postChat(gateway, { model: "m", messages: HELLO })).status, 503);
    const records = recordsOf(gateway.runtime);
    // The cooldown began after the runner's look (a live request was answered 529 meanwhile): nothing to try.
    await assert.rejects(sendLine(gateway.runtime), (error: unknown) => {
      assert.ok(error instanceof UpstreamOverloadedError, String(error));
      assert.ok((error.retryAfterMs ?? 0) > 0, "the cooldown's time, for the runner");
      return true;
    });
    await sleep(50);
    assert.deepEqual(records, [], "a 503 upstream_overloaded record with the batch's id at each try");
    assert.equal(mock.requests.length, 1, "nothing sent for the line");
  });

  test("an upstream's own 429 keeps its record: it was sent", async (t) => {
    const mock = await useMock(t);
    mock.setDefault(CHAT_ROUTE, () => rateLimited({ retryAfter: "30" }));
    const gateway = await useGateway(t, providersYaml(mock));
    const records = recordsOf(gateway.runtime);
    await assert.rejects(sendLine(gateway.runtime), RateLimitedError);
    await waitUntil(() => records.length === 1, "the line's record");
    assert.equal(records[0]?.batchId, "batch_test");
    assert.equal(records[0]?.status, 429);
    assert.equal(records[0]?.attempts.length, 1);
  });
});

async function liveOkOrRefused(gateway: TestGateway): Promise<void> {
  // The model's minute is spent: the live request is refused (429) but charged to its client, as live requests are.
  const answer = await postChat(gateway, { model: "m", messages: HELLO }, { authorization: "Bearer sk-team" });
  assert.equal(answer.status, 429, answer.text);
}

const skipWithoutRedis = { skip: isRedisInstalled() ? false : REDIS_MISSING };

function sharedYaml(mock: Parameters<typeof providersYaml>[0], redisUrl: string): string {
  return `${providersYaml(mock, { modelKeys: ", limits: { rpm: 1 }" })}state:
  path: ":memory:"
  redis_url: ${redisUrl}
  redis_key_prefix: "batch-deferrals-e2e:"
batches:
  lease_ms: 1500
`;
}

describe("a shared budget spent by another replica", skipWithoutRedis, () => {
  test("the runner's check sees room, the shared reserve refuses the line: it waits unsent, without a record", async (t: TestContext) => {
    const mock = await useMock(t);
    echoing(mock);
    const redis = await useRedisServer(t);
    const clock = new ManualClock(START_MS);
    const runner = await useGateway(t, sharedYaml(mock, redis.url), { clock });
    const other = await startTestGateway(sharedYaml(mock, redis.url), { clock });
    const runnerRecords = recordsOf(runner.runtime);
    const otherRecords = recordsOf(other.runtime);
    // The other replica spends the model's minute; the runner's own books (its check) do not see it.
    await liveOk(other);
    // Gone before the batch: the runner is the only replica that may run it (one that took the line could not see a
    // refusal of its own spending: its own books know it).
    await other.close();
    const client = openAiClient(runner);
    const batch = await createBatch(client, (await upload(client, chatLine("r-1", "r-1"))).id);
    await waitForBatch(client, batch.id, (kept) => kept.status === "in_progress");
    // Long enough for the line to be tried (and, refused, to wait): its reserve is the shared one.
    await sleep(1_500);
    assert.deepEqual(sentContents(mock), ["Say hello"], "the line was not sent");
    const batchRecords = (): RequestRecord[] =>
      [...runnerRecords, ...otherRecords].filter((record) => record.batchId === batch.id);
    assert.deepEqual(
      batchRecords().map((record) => record.status),
      [],
      "no 429 record for the line (the old pipeline left one at each try)",
    );
    clock.advance(60_000);
    await waitForCompleted(client, batch.id, 1, 15_000);
    assert.deepEqual(
      batchRecords().map((record) => record.status),
      [200],
    );
  });
});

describe("a batch whose every candidate stays failing (circuits open for its whole window)", () => {
  test("its lines wait unsent, leave no record, and the batch still expires at its window's end", async (t) => {
    const mock = await useMock(t);
    mock.setDefault(CHAT_ROUTE, { kind: "json", status: 500, body: { error: { message: "down" } } });
    const gateway = await useGateway(
      t,
      `${providersYaml(mock)}cooldowns:\n  failure_threshold: 3\n  circuit_first_probe_ms: 3600000\n  circuit_open_ms: 3600000\nbatches:\n  completion_window_ms: 2500\n`,
    );
    // Live requests fail (502) until the circuit opens for an hour: then a 503 without an upstream request.
    let status = 0;
    for (let tries = 0; tries < 5 && status !== 503; tries++) {
      status = (await postChat(gateway, { model: "m", messages: HELLO })).status;
    }
    assert.equal(status, 503);
    const sent = mock.requests.length;
    const records = recordsOf(gateway.runtime);
    const client = openAiClient(gateway);
    const file = await upload(client, [chatLine("w-1", "one"), chatLine("w-2", "two")].join("\n"));
    const done = await waitForBatch(
      client,
      (await createBatch(client, file.id)).id,
      (batch) => batch.status === "expired",
      15_000,
    );
    assert.deepEqual(done.request_counts, { total: 2, completed: 0, failed: 2 }, JSON.stringify(done));
    assert.equal(mock.requests.length, sent, "nothing sent for the lines");
    assert.deepEqual(
      (await linesOf(client, done.error_file_id)).map((line) => [
        line.custom_id,
        (line.error as { code: string }).code,
      ]),
      [
        ["w-1", "batch_expired"],
        ["w-2", "batch_expired"],
      ],
    );
    assert.deepEqual(
      records.filter((record) => record.batchId !== undefined).map((record) => [record.status, record.errorCode]),
      [],
    );
  });
});
