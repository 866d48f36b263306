// The queue (`routing.queue_timeout_ms`) and the wait-for-better rule (`routing.max_wait_for_better_ms`, left at
// its default) work together: a request whose only candidate is over `rps: 1`, or whose `concurrency: 1` slot is
// taken, waits its turn in arrival order instead of getting a 429 at once.
import assert from "node:assert/strict";
import { connect } from "node:net";
import { describe, test } from "node:test";
import { Agent } from "undici";
import { stringify } from "yaml";
import { chatRequests, postChat, type RawResponse, useGateway, useMock } from "../helpers/e2e.ts";
import { chatCompletion, type MockUpstream } from "../helpers/mock-upstream.ts";

const CHAT_ROUTE = "POST /v1/chat/completions";

/** Alpha alone serves `m`, with the given limits; routing has only `queue_timeout_ms: 3000` (defaults otherwise). */
function yamlFor(alpha: MockUpstream, limits: Record<string, number>): string {
  return stringify({
    providers: [
      {
        name: "alpha",
        base_url: alpha.baseUrl,
        api_key: "sk-alpha-secret",
        retries: 0,
        timeout_ms: 5_000,
        models: { m: { id: "alpha-model", limits } },
      },
    ],
    routing: { queue_timeout_ms: 3_000 },
  });
}

function contentOf(body: unknown): string {
  return String((body as { messages: { content: string }[] }).messages[0]?.content);
}

async function sendInOrder(
  gateway: Parameters<typeof postChat>[0],
  names: readonly string[],
): Promise<{ answers: RawResponse[]; elapsedMs: number[] }> {
  const startedAtMs = performance.now();
  const elapsedMs: number[] = [];
  const answers: Promise<RawResponse>[] = [];
  for (const name of names) {
    answers.push(
      postChat(gateway, { model: "m", messages: [{ role: "user", content: name }] }).then((answer) => {
        elapsedMs.push(performance.now() - startedAtMs);
        return answer;
      }),
    );
    // Arrival order: each request reaches the gateway before the next one is sent.
    await new Promise((resolve) => setTimeout(resolve, 30));
  }
  return { answers: await Promise.all(answers), elapsedMs };
}

describe("queue with the default wait-for-better rule", () => {
  test("rps: 1 — requests beyond the rate wait their turn and are served in arrival order", async (t) => {
    const alpha = await useMock(t);
    alpha.setDefault(CHAT_ROUTE, (request) => ({ kind: "json", body: chatCompletion(contentOf(request.body), "x") }));
    const gateway = await useGateway(t, yamlFor(alpha, { rps: 1 }));
    const names = ["first", "second", "third"];
    const { answers } = await sendInOrder(gateway, names);
    for (const answer of answers) assert.equal(answer.status, 200, answer.text);
    assert.deepEqual(
      chatRequests(alpha).map((request) => contentOf(request.body)),
      names,
      "served in arrival order",
    );
    const times = chatRequests(alpha).map((request) => request.receivedAtMs);
    for (let index = 1; index < times.length; index++) {
      const gapMs = (times[index] ?? 0) - (times[index - 1] ?? 0);
      // The budget counts a request from its send; the mock, in this process, may read it later on a loaded machine.
      assert.ok(gapMs >= 500, `requests ${index - 1} and ${index} reached alpha ${gapMs} ms apart (rps: 1)`);
    }
  });

  for (const isStream of [false, true]) {
    const kind = isStream ? "streams" : "JSON";
    test(`rps: 2 — a request counts from when it was sent, not reserved: a slow new connection delays the next (${kind})`, async (t) => {
      const alpha = await useMock(t);
      // Every new upstream connection takes 300 ms to open, as a TLS handshake to a distant provider can: the first
      // two requests are reserved at once but reach alpha 300 ms later. The third, queued, must not reach alpha
      // within a second of the first (the provider counts a request when it arrives), however early it was reserved.
      let connections = 0;
      const slowToConnect = new Agent({
        connect: (options, callback) => {
          connections++;
          setTimeout(() => {
            const socket = connect({ host: options.hostname, port: Number(options.port) });
            socket.once("connect", () => callback(null, socket));
            socket.once("error", (error) => callback(error, null));
          }, 300);
        },
      });
      t.after(() => slowToConnect.close());
      const gateway = await useGateway(t, yamlFor(alpha, { rps: 2 }), { dispatcher: slowToConnect });
      const answers = await Promise.all(
        ["first", "second", "third"].map((name) =>
          postChat(gateway, { model: "m", stream: isStream, messages: [{ role: "user", content: name }] }),
        ),
      );
      for (const answer of answers) {
        assert.equal(answer.status, 200, answer.text);
        assert.equal(answer.text.includes("[DONE]"), isStream, answer.text);
      }
      assert.equal(connections, 2, "the third request reused a connection");
      const times = chatRequests(alpha)
        .map((request) => request.receivedAtMs)
        .sort((left, right) => left - right);
      const gapMs = (times[2] ?? 0) - (times[0] ?? 0);
      // 700 ms when the charge counted from the reservation; the mock's own event-loop delay aside, 1 000.
      assert.ok(gapMs >= 950, `three requests reached alpha within ${gapMs} ms (rps: 2)`);
    });
  }

  test("concurrency: 1 — waiters get the slot in arrival order as it frees", async (t) => {
    const alpha = await useMock(t);
    alpha.setDefault(CHAT_ROUTE, (request) => ({
      kind: "json",
      body: chatCompletion(contentOf(request.body), "x"),
      delayMs: 300,
    }));
    const gateway = await useGateway(t, yamlFor(alpha, { concurrency: 1 }));
    const names = ["busy", "first", "second", "third"];
    const { answers } = await sendInOrder(gateway, names);
    for (const answer of answers) assert.equal(answer.status, 200, answer.text);
    assert.deepEqual(
      chatRequests(alpha).map((request) => contentOf(request.body)),
      names,
    );
    assert.equal(alpha.activeRequests(), 0);
  });

  test("a waiter still times out with 429 after queue_timeout_ms when the slot never frees", async (t) => {
    const alpha = await useMock(t);
    alpha.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("slow", "x"), delayMs: 4_500 });
    const gateway = await useGateway(t, yamlFor(alpha, { concurrency: 1 }));
    const busy = postChat(gateway, { model: "m" });
    await alpha.waitForRequests(1);
    const startedAtMs = performance.now();
    const refused = await postChat(gateway, { model: "m" });
    const waitedMs = performance.now() - startedAtMs;
    assert.equal(refused.status, 429, refused.text);
    assert.ok(waitedMs >= 2_800, `refused after ${waitedMs} ms, before queue_timeout_ms`);
    assert.equal((await busy).status, 200);
  });
});
