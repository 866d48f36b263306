// Keep-alives (`server.stream_keepalive_ms`) on the Responses API's background streams: the create call with
// `background: true, stream: true` and the resumed `GET /v1/responses/{id}?stream=true`. A run whose upstream is
// silent longer than the interval wrote nothing to its readers, and a proxy in front cut them. Real gateway, mock
// upstream over loopback; the raw body shows the comments, the OpenAI SDK shows they change nothing of the events.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { CHAT_ROUTE, openAiClient, send } from "../helpers/e2e.ts";
import { KEEPALIVE_MS, keepAliveScene, UPSTREAM_MODEL, withoutKeepAlives } from "../helpers/keepalive-scene.ts";
import { chatStream, type MockStep } from "../helpers/mock-upstream.ts";

/** Silent this long mid-answer: several keep-alive intervals. */
const SILENT_MS = KEEPALIVE_MS * 4;

/** "Hel", then silence, then "lo" and the end. */
function pausedStream(): MockStep {
  const [role, hel, ...rest] = chatStream(["Hel", "lo"], UPSTREAM_MODEL);
  const events = [role, hel, { delayMs: SILENT_MS }, ...rest].filter((event) => event !== undefined);
  return { kind: "sse", events };
}

function keepAlivesIn(text: string): number {
  return text.split(": keep-alive\n\n").length - 1;
}

describe("background Responses streams get keep-alives", () => {
  test("background: true + stream: true, an upstream silent for several intervals: keep-alives between the events", async (t) => {
    const { mock, gateway } = await keepAliveScene(t);
    mock.enqueue(CHAT_ROUTE, pausedStream());
    const answer = await send(gateway, "POST", "/v1/responses", {
      body: { model: "m", input: "x", background: true, stream: true },
    });
    assert.equal(answer.status, 200, answer.text);
    assert.ok(keepAlivesIn(answer.text) >= 2, `keep-alives written: ${keepAlivesIn(answer.text)}`);
    assert.match(withoutKeepAlives(answer.text), /response\.completed/);
  });

  test("resumed with GET ?stream=true while the upstream is silent: keep-alives, and the SDK reads the same events", async (t) => {
    const { mock, gateway } = await keepAliveScene(t);
    mock.enqueue(CHAT_ROUTE, pausedStream());
    const sdk = openAiClient(gateway);
    const created = await sdk.responses.create({ model: "m", input: "x", background: true, stream: true });
    let id = "";
    let lastSequence = -1;
    for await (const event of created) {
      if (event.type === "response.created") id = event.response.id;
      lastSequence = event.sequence_number;
      if (event.type === "response.output_text.delta") break;
    }
    const resumed = await send(gateway, "GET", `/v1/responses/${id}?stream=true&starting_after=${lastSequence}`);
    assert.equal(resumed.status, 200, resumed.text);
    assert.ok(keepAlivesIn(resumed.text) >= 2, `keep-alives written: ${keepAlivesIn(resumed.text)}`);
    assert.match(withoutKeepAlives(resumed.text), /"delta":"lo"/);
    const replayed: string[] = [];
    for await (const event of await sdk.responses.retrieve(id, { stream: true, starting_after: lastSequence })) {
      replayed.push(event.type);
    }
    assert.equal(replayed.at(-1), "response.completed");
  });
});
