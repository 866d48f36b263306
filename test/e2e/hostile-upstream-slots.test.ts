// Issue 13, findings 5, 6 (stream part) and 9: whoever is slow or broken, the provider is blamed only for what
// it did, and every slot (the budget's concurrency slot, the provider's in-flight slot) is given back.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { request } from "undici";
import { CHAT_ENDPOINT } from "../../src/pipeline/endpoints.ts";
import { handleRequest } from "../../src/pipeline/handle-request.ts";
import { pumpStream } from "../../src/server/write-stream.ts";
import { CHAT_ROUTE, errorOf, postChat, rowOf, statsOf, useGateway, useMock } from "../helpers/e2e.ts";
import { chatChunk, chatCompletion, type MockUpstream } from "../helpers/mock-upstream.ts";
import { postJson, readTimed, strictSseData, waitUntil } from "../helpers/sse-client.ts";

const KEY = "sk-alpha-slots-0123456789abcdef";

/** Provider alpha (no retries; `alphaKeys`, YAML, one a line) serving one `model` entry; `extra` after it. */
function alphaConfig(mock: MockUpstream, alphaKeys: readonly string[], model = "m: {}", extra = ""): string {
  return `providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: ${KEY}
    retries: 0
${alphaKeys.map((line) => `    ${line}\n`).join("")}    models:
      ${model}
${extra}`;
}

interface BudgetRow {
  scope: string;
  in_flight: number;
}

async function inFlightOf(gateway: Parameters<typeof statsOf>[0], key: string): Promise<number> {
  const row = rowOf(await statsOf(gateway), key) as unknown as { budgets: BudgetRow[] };
  assert.ok(row.budgets.length > 0, "the deployment has budget scopes");
  // The provider's scope and the model's each count the same request.
  return Math.max(...row.budgets.map((budget) => budget.in_flight));
}

describe("a slow-reading client is never blamed on the provider (finding 5)", () => {
  test("a client that stops reading for 4x stream_idle_timeout_ms: no upstream_timeout, no failure, no circuit", async (t) => {
    const mock = await useMock(t);
    const content = "e".repeat(16 * 1024);
    const events = 1024; // 16 MiB: far more than every socket buffer between the upstream and the client holds
    let upstreamFinishedAt = 0;
    mock.enqueue(CHAT_ROUTE, {
      kind: "handler",
      handle: async (_request, response) => {
        response.writeHead(200, { "content-type": "text/event-stream" });
        const event = `data: ${JSON.stringify(chatChunk(content, "m"))}\n\n`;
        for (let index = 0; index < events; index++) {
          if (response.destroyed) return;
          if (!response.write(event)) await new Promise((resolve) => response.once("drain", resolve));
        }
        response.write(`data: ${JSON.stringify(chatChunk("", "m", { finishReason: "stop" }))}\n\n`);
        response.end("data: [DONE]\n\n");
        upstreamFinishedAt = performance.now();
      },
    });
    const gateway = await useGateway(
      t,
      alphaConfig(mock, ["stream_idle_timeout_ms: 300"], undefined, "cooldowns:\n  failure_threshold: 1\n"),
    );
    const answer = await postJson(`${gateway.baseUrl}/chat/completions`, {
      model: "m",
      stream: true,
      messages: [{ role: "user", content: "hi" }],
    });
    assert.equal(answer.statusCode, 200, answer.statusCode === 200 ? "" : await answer.body.text());
    // Not a byte read for 1.2 s: the gateway's writes back up, it stops reading the upstream, the upstream waits.
    await sleep(1200);
    const resumedAt = performance.now();
    const { text } = await readTimed(answer.body);
    const payloads = strictSseData(text);
    assert.equal(payloads.at(-1), "[DONE]", `the stream ended with ${payloads.at(-1)?.slice(0, 300)}`);
    assert.ok(!text.includes("upstream_timeout"));
    assert.equal(payloads.length, events + 2, "every event arrived");
    assert.ok(upstreamFinishedAt > resumedAt, "backpressure reached the upstream (it waited for the client)");
    const row = rowOf(await statsOf(gateway), "alpha/m");
    assert.equal(row.failures, 0);
    assert.equal(row.successes, 1);
    assert.equal(row.circuit, "closed");
    assert.equal(row.cooldown, null);
    // And the provider still serves the next request.
    const next = await postChat(gateway, { model: "m" });
    assert.equal(next.status, 200);
  });
});

describe("every concurrency slot is released whatever the adapter does (finding 6, stream part)", () => {
  test("a model id outside Latin-1 on a stream: answered (or refused in OpenAI shape), and the slot is always freed", async (t) => {
    const mock = await useMock(t);
    mock.setDefault(CHAT_ROUTE, {
      kind: "sse",
      events: [
        { data: chatChunk("Hi", "模型-unicode", { role: true }) },
        { data: chatChunk("", "模型-unicode", { finishReason: "stop" }) },
      ],
    });
    const gateway = await useGateway(
      t,
      alphaConfig(mock, ["limits: { concurrency: 2 }"], 'uni: { id: "模型-unicode" }'),
    );
    // More requests than the concurrency limit: a leaked slot would turn the third into a 429.
    for (let index = 0; index < 4; index++) {
      const answer = await postChat(gateway, { model: "uni", stream: true });
      if (answer.status === 200) {
        assert.ok(answer.text.endsWith("data: [DONE]\n\n"), answer.text);
      } else {
        // Were the head refused (Node rejects a raw non-Latin-1 header value): an OpenAI-shaped 500, never a 429.
        assert.equal(answer.status, 500, answer.text);
        assert.equal(errorOf(answer).code, "internal_error");
      }
      assert.equal(await inFlightOf(gateway, "alpha/uni"), 0, `in_flight after request ${index + 1}`);
    }
    await waitUntil(() => mock.activeRequests() === 0, "every upstream call was hung up on");
  });

  test("StreamAnswer.cancel() before the stream was ever pulled settles it: slot freed, upstream aborted, record published", async (t) => {
    const mock = await useMock(t);
    mock.setDefault(CHAT_ROUTE, { kind: "sse", events: [{ data: chatChunk("Hi", "m", { role: true }) }], end: "hang" });
    const gateway = await useGateway(t, alphaConfig(mock, ["max_in_flight: 1", "limits: { concurrency: 1 }"]));
    const records: string[] = [];
    gateway.runtime.onRecord((record) => records.push(record.outcome));
    const controller = new AbortController();
    const result = await handleRequest(
      gateway.runtime,
      CHAT_ENDPOINT,
      { model: "m", stream: true, messages: [{ role: "user", content: "hi" }] },
      { requestId: "r1", clientProtocol: "openai-chat", signal: controller.signal, log: { warn: () => {} } },
    );
    assert.equal(result.kind, "stream");
    assert.equal(await inFlightOf(gateway, "alpha/m"), 1);
    assert.equal(gateway.runtime.inFlight.inFlight("alpha"), 1);
    if (result.kind === "stream") {
      await result.cancel();
      await result.cancel(); // idempotent
      const next = await result.events.next();
      assert.equal(next.done, true, "a cancelled stream yields nothing");
    }
    assert.equal(await inFlightOf(gateway, "alpha/m"), 0);
    await waitUntil(() => gateway.runtime.inFlight.inFlight("alpha") === 0, "the provider's in-flight slot is free");
    await waitUntil(() => mock.activeRequests() === 0, "the upstream call was hung up on");
    assert.deepEqual(records, ["client_aborted"]);
    // Nobody is blamed for it.
    assert.equal(rowOf(await statsOf(gateway), "alpha/m").failures, 0);
  });
});

test("an adapter whose rendering throws mid-stream: pumpStream closes the stream, the slots are freed, the response cut", async (t) => {
  const mock = await useMock(t);
  mock.setDefault(CHAT_ROUTE, { kind: "sse", events: [{ data: chatChunk("Hi", "m", { role: true }) }], end: "hang" });
  const gateway = await useGateway(t, alphaConfig(mock, ["limits: { concurrency: 1 }"]));
  const server = createServer(async (_request, response) => {
    const result = await handleRequest(
      gateway.runtime,
      CHAT_ENDPOINT,
      { model: "m", stream: true, messages: [{ role: "user", content: "hi" }] },
      { requestId: "r2", clientProtocol: "openai-chat", signal: new AbortController().signal, log: { warn: () => {} } },
    );
    if (result.kind !== "stream") throw new Error("expected a stream");
    response.writeHead(200, { "content-type": "text/event-stream" });
    await assert.rejects(
      pumpStream(response, result.events, () => {
        throw new Error("a translator bug");
      }),
      /a translator bug/,
    );
    await result.cancel(); // a no-op now: the stream is already settled
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => server.close());
  const address = server.address() as AddressInfo;
  await assert.rejects(request(`http://127.0.0.1:${address.port}/`).then((answer) => answer.body.text()));
  await waitUntil(() => mock.activeRequests() === 0, "the upstream call was hung up on");
  assert.equal(await inFlightOf(gateway, "alpha/m"), 0);
  await waitUntil(() => gateway.runtime.inFlight.inFlight("alpha") === 0, "the provider's in-flight slot is free");
});

describe("providers[].max_in_flight (finding 9)", () => {
  async function scene(t: Parameters<typeof useMock>[0], holdMs: number, timeoutMs: number, extra: string) {
    const mock: MockUpstream = await useMock(t);
    let active = 0;
    let maxActive = 0;
    mock.setDefault(CHAT_ROUTE, {
      kind: "handler",
      handle: async (_request, response) => {
        active++;
        maxActive = Math.max(maxActive, active);
        await sleep(holdMs);
        active--;
        response.writeHead(200, { "content-type": "application/json" });
        response.end(JSON.stringify(chatCompletion("slow but fine", "m")));
      },
    });
    const gateway = await useGateway(
      t,
      alphaConfig(mock, [`timeout_ms: ${timeoutMs}`, "max_in_flight: 2"], undefined, extra),
    );
    return { mock, gateway, maxActive: () => maxActive };
  }

  test("requests beyond the cap wait for a slot; the wait never counts against timeout_ms or the provider", async (t) => {
    const { gateway, maxActive } = await scene(t, 250, 750, "");
    // 12 requests x 250 ms at 2 at a time = 1.5 s, twice timeout_ms (750 ms): the last ones would have timed out
    // had they all been sent (and waited in the HTTP pool) at once.
    const answers = await Promise.all(Array.from({ length: 12 }, () => postChat(gateway, { model: "m" })));
    assert.deepEqual(
      answers.map((answer) => answer.status),
      Array(12).fill(200),
    );
    assert.equal(maxActive(), 2, "never more than max_in_flight requests at the upstream");
    const row = rowOf(await statsOf(gateway), "alpha/m");
    assert.equal(row.failures, 0);
    assert.equal(row.successes, 12);
    assert.equal(row.circuit, "closed");
    assert.equal(gateway.runtime.inFlight.inFlight("alpha"), 0);
  });

  test("a request that cannot get a slot while the provider would still get its whole timeout_ms is skipped (429)", async (t) => {
    // timeout_ms 1000 of total_timeout_ms 1200: a request may wait 200 ms for a slot; the slots free after 500 ms.
    const { gateway, maxActive } = await scene(t, 500, 1000, "routing:\n  total_timeout_ms: 1200\n");
    const answers = await Promise.all(Array.from({ length: 6 }, () => postChat(gateway, { model: "m" })));
    const statuses = answers.map((answer) => answer.status).sort();
    assert.deepEqual(statuses, [200, 200, 429, 429, 429, 429]);
    assert.equal(maxActive(), 2);
    for (const answer of answers.filter((one) => one.status === 429)) {
      assert.equal(errorOf(answer).code, "rate_limit_exceeded");
    }
    const row = rowOf(await statsOf(gateway), "alpha/m");
    assert.equal(row.failures, 0);
    assert.equal(row.circuit, "closed");
  });
});
