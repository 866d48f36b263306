// One record per request, complete, from the pipeline to every subscriber: a failover, a stream continued on
// another upstream after a mid-stream cut, and a request that queued for a busy slot. Each record must agree
// with what the upstreams saw and what the client got.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, test } from "node:test";
import type { RequestRecord } from "../../src/observability/request-record.ts";
import { keepAnswerFor } from "../helpers/answer-cache-scene.ts";
import { oneProviderScene, oneProviderYaml, send, useGateway, useMock, VENDOR_MODEL_ID } from "../helpers/e2e.ts";
import { startScene } from "../helpers/limits-scene.ts";
import { chatChunk, chatCompletion, chatUsageChunk, type SseScript } from "../helpers/mock-upstream.ts";
import { waitUntil } from "../helpers/sse-client.ts";
import { CHAT_ROUTE, MODEL, startTwoProviders } from "../helpers/two-providers.ts";

function recordsOf(runtime: { onRecord(listener: (record: RequestRecord) => void): () => void }): RequestRecord[] {
  const records: RequestRecord[] = [];
  runtime.onRecord((record) => records.push(record));
  return records;
}

describe("request records", () => {
  test("a failover: both attempts with outcomes and timings, the candidates, the answer's tokens", async (t) => {
    const scene = await startTwoProviders(t);
    const records = recordsOf(scene.gateway.runtime);
    scene.primary.enqueue(CHAT_ROUTE, { kind: "json", status: 500, body: { error: { message: "boom" } } });
    scene.backup.enqueue(CHAT_ROUTE, {
      kind: "json",
      body: chatCompletion("hi", MODEL, { prompt_tokens: 7, completion_tokens: 3 }),
    });
    const answer = await scene.client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "hello" }],
    });
    assert.equal(answer.choices[0]?.message.content, "hi");
    await waitUntil(() => records.length === 1, "the record");
    const record = records[0] as RequestRecord;
    assert.equal(record.endpoint, "chat");
    assert.equal(record.clientProtocol, "openai-chat");
    assert.equal(record.requestedModel, MODEL);
    assert.equal(record.isStream, false);
    assert.equal(record.status, 200);
    assert.equal(record.outcome, "success");
    assert.deepEqual(
      record.candidates.map((candidate) => candidate.deploymentKey),
      ["alpha/m", "beta/m"],
    );
    assert.ok(
      (record.candidates[0]?.score ?? 0) > (record.candidates[1]?.score ?? 0),
      "scores are recorded, best first",
    );
    assert.deepEqual(
      record.attempts.map((attempt) => [attempt.deploymentKey, attempt.role, attempt.outcome, attempt.status]),
      [
        ["alpha/m", "primary", "server_error", 500],
        ["beta/m", "primary", "success", 200],
      ],
    );
    for (const attempt of record.attempts) {
      assert.ok(attempt.durationMs >= 0 && attempt.headersMs !== undefined, "every attempt has its timings");
    }
    assert.deepEqual(record.servedBy, { deploymentKey: "beta/m", provider: "beta", model: MODEL, cost: "paid" });
    assert.equal(record.tokensIn, 7);
    assert.equal(record.tokensOut, 3);
    assert.ok(record.durationMs >= 0 && record.timeToHeadersMs !== undefined);
    assert.ok(!JSON.stringify(record).includes("secret"), "no key in the record");
  });

  test("a continued stream: the cut segment, the continuation attempt, the splice, the combined end", async (t) => {
    const scene = await startTwoProviders(t);
    const records = recordsOf(scene.gateway.runtime);
    const words = ["one", " two", " three", " four"];
    const first: SseScript[] = [
      { data: chatChunk("", MODEL, { id: "chatcmpl-a", role: true }) },
      ...words.slice(0, 2).map((word) => ({ data: chatChunk(word, MODEL, { id: "chatcmpl-a" }) })),
    ];
    scene.primary.enqueue(CHAT_ROUTE, { kind: "sse", events: first, end: "destroy" });
    scene.backup.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: [
        { data: chatChunk("", MODEL, { role: true }) },
        ...words.slice(2).map((word) => ({ data: chatChunk(word, MODEL) })),
        { data: chatChunk("", MODEL, { finishReason: "stop" }) },
        { data: chatUsageChunk(MODEL, { prompt_tokens: 20, completion_tokens: 2 }) },
      ],
    });
    const stream = await scene.client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "count" }],
      stream: true,
    });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    assert.equal(text, words.join(""));
    await waitUntil(() => records.length === 1, "the record");
    const record = records[0] as RequestRecord;
    assert.equal(record.isStream, true);
    assert.equal(record.status, 200);
    assert.equal(record.outcome, "success");
    assert.deepEqual(
      record.attempts.map((attempt) => [attempt.deploymentKey, attempt.role, attempt.outcome]),
      [
        ["alpha/m", "primary", "stream_cut"],
        ["beta/m", "continuation", "success"],
      ],
    );
    assert.equal(record.attempts[1]?.mode, "prefill");
    assert.ok(record.attempts[0]?.firstTokenMs !== undefined, "the first token's time is recorded");
    assert.equal(record.continuations.length, 1);
    assert.deepEqual(
      { ...record.continuations[0], reason: "" },
      { provider: "beta", model: MODEL, afterChars: "one two".length, reason: "", mode: "prefill" },
    );
    assert.equal(record.tokensOut > 0, true, "the combined usage is recorded");
    assert.ok(record.timeToFirstTokenMs !== undefined);
  });

  test("a queued request: the wait is recorded, and so is the request refused when the queue is full", async (t) => {
    const scene = await startScene(t, {
      beta: false,
      alphaModel: { limits: { concurrency: 1 } },
      config: { routing: { queue_timeout_ms: 5_000, max_queued: 1 } },
    });
    const records = recordsOf(scene.gateway.runtime);
    scene.alpha.setDefault(CHAT_ROUTE, () => ({
      kind: "json",
      body: chatCompletion("x", "alpha-model"),
      delayMs: 300,
    }));
    const busy = scene.chat();
    await scene.alpha.waitForRequests(1);
    const queued = scene.chat();
    await waitUntil(() => scene.gateway.runtime.queuedRequests === 1, "the queued request");
    const refused = await scene.chat();
    assert.equal(refused.status, 429);
    assert.equal((await busy).status, 200);
    assert.equal((await queued).status, 200);
    await waitUntil(() => records.length === 3, "three records");
    const [refusedRecord, busyRecord, queuedRecord] = [
      records.find((record) => record.status === 429),
      records.find((record) => record.status === 200 && record.queueWaitMs < 100),
      records.find((record) => record.status === 200 && record.queueWaitMs >= 100),
    ];
    assert.ok(refusedRecord !== undefined && busyRecord !== undefined && queuedRecord !== undefined);
    assert.equal(refusedRecord.errorCode, "rate_limit_exceeded");
    assert.deepEqual(refusedRecord.attempts, []);
    assert.ok(
      refusedRecord.skips.some((skip) => skip.phase === "plan" && skip.cause === "budget"),
      "the skip says why",
    );
    assert.ok(queuedRecord.queueWaitMs >= 150, `queued ${queuedRecord.queueWaitMs} ms`);
    assert.deepEqual(
      queuedRecord.attempts.map((attempt) => attempt.outcome),
      ["success"],
    );
  });

  test("a client that leaves while queued: 499 client_aborted with its wait, not a 429 refusal", async (t) => {
    const scene = await startTwoProviders(t, {
      primaryModel: { limits: { concurrency: 1 } },
      backupModel: { limits: { concurrency: 1 } },
      routing: { queue_timeout_ms: 5_000, max_wait_for_better_ms: 0 },
    });
    const records = recordsOf(scene.gateway.runtime);
    scene.primary.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("a", MODEL), delayMs: 1_500 });
    scene.backup.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("b", MODEL), delayMs: 1_500 });
    const busy = [scene.postChat({}), scene.postChat({})].map((answer) => answer.then((done) => done.body.text()));
    await waitUntil(() => scene.primary.requests.length + scene.backup.requests.length === 2, "both slots taken");
    const leaving = new AbortController();
    const queued = scene.postChat({}, leaving.signal).catch(() => "aborted");
    await waitUntil(() => scene.gateway.runtime.queuedRequests === 1, "the request queued");
    await new Promise((resolve) => setTimeout(resolve, 100));
    leaving.abort();
    assert.equal(await queued, "aborted");
    await Promise.all(busy);
    await waitUntil(() => records.length === 3, "three records");
    const left = records.find((record) => record.status !== 200) as RequestRecord;
    assert.equal(left.status, 499);
    assert.equal(left.outcome, "client_aborted");
    assert.ok(left.queueWaitMs >= 90, `its wait is kept: ${left.queueWaitMs} ms`);
    assert.deepEqual(left.attempts, []);
    // Its last plan's skips say why nothing was free (docs/observability.md "Which requests leave a record").
    assert.deepEqual(
      left.skips.map((skip) => [skip.phase, skip.cause, /concurrency limit/.test(skip.reason)]),
      [
        ["plan", "budget", true],
        ["plan", "budget", true],
      ],
    );
  });

  test("a request that never queued records no queue wait, and the queue-wait histogram observes none", async (t) => {
    const scene = await startTwoProviders(t, { routing: { queue_timeout_ms: 5_000 } });
    const records = recordsOf(scene.gateway.runtime);
    scene.primary.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("a", MODEL) });
    // Planning takes a fraction of a millisecond: counted as a wait, a few in a hundred crossed a millisecond.
    for (let index = 0; index < 200; index++) {
      const answer = await scene.postChat({});
      assert.equal(answer.statusCode, 200);
      await answer.body.text();
    }
    await waitUntil(() => records.length === 200, "the records");
    assert.deepEqual(
      records.filter((record) => record.queueWaitMs !== 0).map((record) => record.queueWaitMs),
      [],
      "planning is not waiting",
    );
    const metrics = await fetch(`${scene.gateway.url}/metrics`);
    const count = /^llm_gateway_queue_wait_seconds_count\{[^}]*\} (\d+)$/m.exec(await metrics.text());
    assert.ok(count === null || count[1] === "0", `observed: ${count?.[0]}`);
  });

  test("a cut stream's attempt lasts until its cut, not until the continuation it handed over to ended", async (t) => {
    const scene = await startTwoProviders(t);
    const records = recordsOf(scene.gateway.runtime);
    scene.primary.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: [{ data: chatChunk("", MODEL, { role: true }) }, { data: chatChunk("Hello", MODEL) }],
      end: "destroy",
    });
    // The continuation takes ~600 ms: three words 200 ms apart.
    scene.backup.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: [
        ...[" wide", " world", "."].flatMap((word): SseScript[] => [
          { delayMs: 200 },
          { data: chatChunk(word, MODEL) },
        ]),
        { data: chatChunk("", MODEL, { finishReason: "stop" }) },
      ],
    });
    const stream = scene.client.chat.completions.stream({ model: MODEL, messages: [{ role: "user", content: "q" }] });
    assert.equal((await stream.finalChatCompletion()).choices[0]?.message.content, "Hello wide world.");
    await waitUntil(() => records.length === 1, "the record");
    const record = records[0] as RequestRecord;
    const [cut, continued] = record.attempts;
    assert.equal(cut?.outcome, "stream_cut");
    assert.equal(continued?.role, "continuation");
    assert.ok(record.durationMs >= 550, `the answer took ${record.durationMs} ms`);
    // Ended before the continuation's 600 ms of scripted gaps, which a loaded machine only lengthens: an attempt timed
    // to the answer's end would last them too (a bound on the clock alone broke under load).
    const cutMs = cut?.durationMs ?? Number.POSITIVE_INFINITY;
    assert.ok(
      cutMs <= record.durationMs - 550,
      `the cut attempt lasted ${cutMs} of the answer's ${record.durationMs} ms`,
    );
  });

  test("a JSON answer is written before its record's subscribers run: a slow one does not delay it", async (t) => {
    const { mock, gateway } = await oneProviderScene(t);
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("hi", "m") });
    const records = recordsOf(gateway.runtime);
    // A subscriber that holds the event loop (a request log on a slow disk, an exporter): the answer must already be
    // out. The client is another process, so that it can read the answer while this one is held; it marks a file once
    // it has, and the hold ends when it sees the mark. An ordering, not a time: a gateway that ran the subscribers
    // before writing the answer holds until its cap, the client answerless meanwhile.
    const answeredPath = join(mkdtempSync(join(tmpdir(), "records-answered-")), "answered");
    t.after(() => rmSync(dirname(answeredPath), { recursive: true, force: true }));
    const HOLD_CAP_MS = 30_000;
    let wasReleasedByClient = false;
    gateway.runtime.onRecord(() => {
      const until = performance.now() + HOLD_CAP_MS;
      while (performance.now() < until) {
        if (existsSync(answeredPath)) {
          wasReleasedByClient = true;
          return;
        }
      }
    });
    const client = spawn(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        `const { writeFileSync } = await import("node:fs");
         const response = await fetch(${JSON.stringify(`${gateway.url}/v1/chat/completions`)}, {
           method: "POST",
           headers: { "content-type": "application/json" },
           body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hello" }] }),
         });
         const text = await response.text();
         writeFileSync(${JSON.stringify(answeredPath)}, "");
         process.stdout.write(JSON.stringify({ status: response.status, text }));`,
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    let output = "";
    client.stdout.setEncoding("utf8").on("data", (text: string) => {
      output += text;
    });
    await once(client, "exit");
    const answer = JSON.parse(output) as { status: number; text: string };
    assert.equal(answer.status, 200);
    assert.match(answer.text, /"hi"/);
    assert.equal(records.length, 1);
    assert.equal(records[0]?.status, 200);
    assert.ok(wasReleasedByClient, `the client had no answer while a subscriber held the loop (${HOLD_CAP_MS} ms)`);
  });

  test("a JSON answer the door fails to send (reply.send throws) still leaves its record", async (t) => {
    const mock = await useMock(t);
    const gateway = await useGateway(t, `${oneProviderYaml(mock)}cache:\n  enabled: true\n`);
    const records = recordsOf(gateway.runtime);
    // A kept row whose status no response may carry (in this process's own memory: a shared row of that kind is refused
    // as damaged, answer-cache-versions.test.ts): Fastify's reply.code throws on it, after
    // the record was completed and before the door hands it to the subscribers (forwarding-route.ts, in a finally).
    const body = { model: "m", messages: [{ role: "user", content: "kept with a bad status" }] };
    const bodyText = JSON.stringify(chatCompletion("Kept.", VENDOR_MODEL_ID));
    const row = {
      api: "chat",
      form: "json",
      bodyText,
      status: 1000,
      provider: "alpha",
      model: VENDOR_MODEL_ID,
    } as const;
    await keepAnswerFor(gateway, "chat", body, { ...row, cost: "free" });
    const response = await send(gateway, "POST", "/v1/chat/completions", { body });
    assert.equal(response.status, 500);
    assert.equal(mock.requests.length, 0, "answered from the kept row");
    await waitUntil(() => records.length === 1, "the request's record");
    assert.equal(records[0]?.cache, "hit");
    // What the client got (Fastify's error handler's 500), not the kept row's status.
    assert.equal(records[0]?.status, 500);
    assert.equal(records[0]?.outcome, "rejected");
  });
});
