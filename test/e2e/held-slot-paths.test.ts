// Review coverage of upstream/held-slot.ts (a `max_in_flight` slot given back once its attempt is recorded): on the
// paths where the release comes at another time than a JSON answer's end (the client gone before the upstream
// answered, the client gone mid-stream, an overload in a 200's event stream before any content), the slot still goes
// back exactly once: the upstream never has more than one request of a `max_in_flight: 1` provider, and the next
// request is served.
import assert from "node:assert/strict";
import type { ServerResponse } from "node:http";
import { describe, type TestContext, test } from "node:test";
import { request } from "undici";
import { CHAT_ROUTE, chatRequests, HELLO, postChat, useGateway, useMock } from "../helpers/e2e.ts";
import { chatChunk, chatCompletion, chatStream, type MockUpstream } from "../helpers/mock-upstream.ts";
import { waitUntil } from "../helpers/sse-client.ts";

type Gateway = Awaited<ReturnType<typeof useGateway>>;

/** Counts the requests `mock` is answering at once (`peak`: the most). */
function counted(mock: MockUpstream, answer: (response: ServerResponse, index: number) => Promise<void>) {
  const counter = { active: 0, peak: 0, count: 0 };
  mock.setDefault(CHAT_ROUTE, {
    kind: "handler",
    handle: async (_request, response) => {
      counter.active += 1;
      counter.peak = Math.max(counter.peak, counter.active);
      const index = counter.count++;
      response.once("close", () => {
        counter.active -= 1;
      });
      await answer(response, index);
    },
  });
  return counter;
}

async function oneSlotGateway(t: TestContext, mock: MockUpstream, spare?: MockUpstream): Promise<Gateway> {
  return useGateway(
    t,
    `providers:
  - name: busy
    base_url: ${mock.baseUrl}
    api_key: sk-busy
    retries: 0
    timeout_ms: 5000
    max_in_flight: 1
    models:
      m: {}
${
  spare === undefined
    ? ""
    : `  - name: spare
    base_url: ${spare.baseUrl}
    api_key: sk-spare
    retries: 0
    models:
      m: {}
`
}`,
  );
}

function streamBody(): string {
  return JSON.stringify({ model: "m", stream: true, messages: HELLO });
}

describe("held-slot paths (review coverage)", () => {
  test("a JSON client gone before the upstream answered: the slot goes back, the next request is served", async (t) => {
    const mock = await useMock(t);
    let releaseFirst: () => void = () => {};
    const counter = counted(mock, async (response, index) => {
      if (index === 0) await new Promise<void>((resolve) => (releaseFirst = resolve));
      if (response.destroyed) return;
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify(chatCompletion(`answer ${index}`, "m")));
    });
    const gateway = await oneSlotGateway(t, mock);
    const abort = new AbortController();
    const gone = request(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "m", messages: HELLO }),
      signal: abort.signal,
    }).catch(() => undefined);
    await mock.waitForRequests(1);
    abort.abort();
    await gone;
    await waitUntil(() => gateway.runtime.inFlight.inFlight("busy") === 0, "the slot given back");
    releaseFirst();
    const next = await postChat(gateway, { model: "m" });
    assert.equal(next.status, 200, next.text);
    assert.equal(counter.peak, 1);
    assert.equal(gateway.runtime.inFlight.inFlight("busy"), 0);
  });

  test("a stream client gone mid-stream: the slot goes back once, the next two requests go one at a time", async (t) => {
    const mock = await useMock(t);
    const counter = counted(mock, async (response, index) => {
      response.writeHead(200, { "content-type": "text/event-stream" });
      response.write(`data: ${JSON.stringify(chatChunk(`part ${index}`, "m"))}\n\n`);
      if (index === 0) return; // held open until the gateway hangs up
      await new Promise((resolve) => setTimeout(resolve, 50));
      response.write(`data: ${JSON.stringify(chatChunk("", "m", { finishReason: "stop" }))}\n\ndata: [DONE]\n\n`);
      response.end();
    });
    const gateway = await oneSlotGateway(t, mock);
    const first = await request(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: streamBody(),
    });
    const iterator = first.body[Symbol.asyncIterator]();
    await iterator.next();
    first.body.destroy();
    await waitUntil(() => gateway.runtime.inFlight.inFlight("busy") === 0, "the slot given back");
    const answers = await Promise.all([
      postChat(gateway, { model: "m", stream: true }),
      postChat(gateway, { model: "m", stream: true }),
    ]);
    for (const answer of answers) assert.equal(answer.status, 200, answer.text);
    assert.equal(counter.peak, 1, "one request at a time: the slot was not given back twice");
    assert.equal(counter.count, 3);
    assert.equal(gateway.runtime.inFlight.inFlight("busy"), 0);
  });

  test("a 200 stream whose first event is overloaded_error: the waiting request goes to the spare, not to busy", async (t) => {
    const mock = await useMock(t);
    const spare = await useMock(t);
    spare.setDefault(CHAT_ROUTE, (recorded) =>
      (recorded.body as { stream?: boolean }).stream === true
        ? { kind: "sse", events: chatStream(["from spare"], "m") }
        : { kind: "json", body: chatCompletion("from spare", "m") },
    );
    let releaseFirst: () => void = () => {};
    const counter = counted(mock, async (response, index) => {
      if (index === 0) await new Promise<void>((resolve) => (releaseFirst = resolve));
      response.writeHead(200, { "content-type": "text/event-stream" });
      const error = { type: "error", error: { type: "overloaded_error", message: "Overloaded" } };
      response.write(`event: error\ndata: ${JSON.stringify(error)}\n\n`);
      // Kept open, as providers often do after an error event: the gateway hangs up.
    });
    const gateway = await oneSlotGateway(t, mock, spare);
    const first = postChat(gateway, { model: "m", stream: true });
    await mock.waitForRequests(1);
    const second = postChat(gateway, { model: "m" });
    await waitUntil(() => gateway.runtime.inFlight.waiting("busy") === 1, "the second request waiting for the slot");
    releaseFirst();
    const [streamed, json] = await Promise.all([first, second]);
    assert.equal(streamed.status, 200, streamed.text);
    assert.match(streamed.text, /from spare/);
    assert.equal(json.status, 200, json.text);
    assert.equal(chatRequests(mock).length, 1, "the waiting request saw busy's cooldown");
    assert.equal(counter.peak, 1);
    await waitUntil(() => gateway.runtime.inFlight.inFlight("busy") === 0, "the slot given back");
  });
});
