// A native Responses provider's STREAMED answer is held to what its JSON answer is (docs/protocols.md "Native Responses
// providers"): a malformed stream (data that is not JSON, an event before `response.created`, an item event before its
// `response.output_item.added`, an output item or a final `output` the next turn's input would refuse, `[DONE]` before
// `response.completed`) is a `bad_response`. Before the client's first byte the next candidate serves the request;
// after, the stream ends with OpenAI's `error` and `response.failed` events, and the answer is neither kept nor added to
// its conversation. Before 2026-12-08 such a stream was relayed and kept, and every later turn of its conversation was
// a 400. Client: the openai SDK; upstreams: two mocks marked `responses_api: native`.
import assert from "node:assert/strict";
import type { ServerResponse } from "node:http";
import { describe, test } from "node:test";
import OpenAI from "openai";
import { send } from "../helpers/e2e.ts";
import type { TestGateway } from "../helpers/gateway.ts";
import {
  answerEvents,
  messageEvents,
  RESPONSES_ROUTE,
  sseText,
  streamStart,
  textMessage,
} from "../helpers/native-responses-stream.ts";
import { MODEL, startTwoProviders } from "../helpers/two-providers.ts";

type Json = Record<string, unknown>;

const NATIVE = { responses_api: "native" } as const;

const GOOD = answerEvents([textMessage("msg_good", "Served whole.")]);

const noRole = (() => {
  const { role: _role, ...item } = textMessage("msg_1", "Hi");
  return item;
})();

/** Streams whose fault is read before anything went to the client: each is written at once, as one chunk. */
const MALFORMED_BEFORE_FIRST_BYTE: Record<string, string> = {
  "a data line that is not JSON": `${sseText(streamStart())}data: {"type": "response.output_item.added", oops\n\n${sseText(messageEvents("msg_1", ["Hi"]), 2)}`,
  "an output_text.delta before response.created": sseText([
    { type: "response.output_text.delta", item_id: "msg_1", output_index: 0, content_index: 0, delta: "Hi" },
    ...GOOD,
  ]),
  "a delta for an output never added": sseText([
    ...streamStart(),
    { type: "response.output_text.delta", item_id: "msg_1", output_index: 0, content_index: 0, delta: "Hi" },
  ]),
  "an output_item.done whose message has no role": sseText([
    ...streamStart(),
    ...messageEvents("msg_1", ["Hi"]).slice(0, -1),
    { type: "response.output_item.done", output_index: 0, item: noRole },
  ]),
  "a response.completed whose function_call has an empty name": sseText(
    answerEvents([{ type: "function_call", id: "fc_1", call_id: "call_1", name: "", arguments: "{}" }]),
  ),
  "[DONE] before response.completed": `${sseText([...streamStart(), ...messageEvents("msg_1", ["Hi"])])}data: [DONE]\n\n`,
};

interface ListedRecord {
  readonly outcome: string;
  readonly route?: string;
  readonly attempts: readonly { provider: string; outcome: string }[];
}

/** The newest record of the Responses door (the kept-response reads after it leave records of their own, `route`d). */
async function recordOf(gateway: TestGateway): Promise<ListedRecord> {
  for (let tries = 0; tries < 100; tries++) {
    const listed = await send(gateway, "GET", "/v1/gateway/requests?limit=20");
    const record = (listed.json as { data: ListedRecord[] }).data.find((listed) => listed.route === undefined);
    if (record !== undefined) return record;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error("no request record");
}

async function eventsOf(stream: AsyncIterable<{ type: string }>): Promise<Json[]> {
  const events: Json[] = [];
  for await (const event of stream) events.push(event as unknown as Json);
  return events;
}

function textOf(events: readonly Json[]): string {
  return events
    .filter((event) => event.type === "response.output_text.delta")
    .map((event) => event.delta)
    .join("");
}

describe("a malformed native Responses stream before the first byte", () => {
  for (const [what, body] of Object.entries(MALFORMED_BEFORE_FIRST_BYTE)) {
    test(`${what}: a bad_response, the next native candidate serves the stream`, async (t) => {
      const { primary, backup, gateway, client } = await startTwoProviders(t, { primary: NATIVE, backup: NATIVE });
      primary.enqueue(RESPONSES_ROUTE, { kind: "sse", events: [{ raw: body }], end: "close-without-done" });
      backup.enqueue(RESPONSES_ROUTE, { kind: "sse", events: [{ raw: sseText(GOOD) }], end: "close-without-done" });
      const events = await eventsOf(await client.responses.create({ model: MODEL, input: "Hi", stream: true }));
      assert.equal(textOf(events), "Served whole.");
      assert.deepEqual(
        events.filter((event) => event.type === "response.created" || event.type === "response.completed").length,
        2,
        "one response.created and one response.completed: the malformed stream sent the client nothing",
      );
      const completed = events.at(-1) as { type: string; response: { id: string; output_text: string } };
      assert.equal(completed.type, "response.completed");
      assert.equal((await client.responses.retrieve(completed.response.id)).output_text, "Served whole.");
      const record = await recordOf(gateway);
      assert.deepEqual(
        record.attempts.map((attempt) => [attempt.provider, attempt.outcome]),
        [
          ["alpha", "bad_response"],
          ["beta", "success"],
        ],
      );
    });
  }
});

/** The client's first delta has been read: what the mock waits for before its malformed rest. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = (): void => {};
  const promise = new Promise<void>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

/** The malformed rest of a stream that began well (its message's first delta "Hel" went to the client). */
const MALFORMED_AFTER_FIRST_BYTE: Record<string, string> = {
  "an output_item.done whose message has no role": sseText(
    [{ type: "response.output_item.done", output_index: 0, item: noRole }],
    5,
  ),
  "a response.completed whose output holds a function_call with no call_id": sseText(
    [
      {
        type: "response.completed",
        response: { ...(GOOD.at(-1) as { response: Json }).response, output: [{ type: "function_call", name: "f" }] },
      },
    ],
    5,
  ),
  "a data line that is not JSON": "data: <html>502</html>\n\n",
  "[DONE] before response.completed": "data: [DONE]\n\n",
};

describe("a malformed native Responses stream after the first byte", () => {
  for (const [what, rest] of Object.entries(MALFORMED_AFTER_FIRST_BYTE)) {
    test(`${what}: the error event, not kept, not added to its conversation`, async (t) => {
      const { primary, backup, gateway, client } = await startTwoProviders(t, { primary: NATIVE, backup: NATIVE });
      const firstDelta = deferred();
      primary.enqueue(RESPONSES_ROUTE, {
        kind: "handler",
        handle: async (_request, response: ServerResponse) => {
          response.writeHead(200, { "content-type": "text/event-stream" });
          response.write(sseText([...streamStart(), ...messageEvents("msg_1", ["Hel"]).slice(0, 3)]));
          await firstDelta.promise;
          response.end(rest);
        },
      });
      const conversation = await client.conversations.create({});
      const stream = await client.responses.create({
        model: MODEL,
        input: "Hi",
        stream: true,
        conversation: conversation.id,
      });
      const events: Json[] = [];
      // The gateway's `error` event (then `response.failed`): the SDK throws it as an APIError in OpenAI's shape.
      await assert.rejects(
        async () => {
          for await (const event of stream) {
            events.push(event as unknown as Json);
            if (event.type === "response.output_text.delta") firstDelta.resolve();
          }
        },
        (error: unknown) =>
          error instanceof OpenAI.APIError &&
          error.code === "stream_interrupted" &&
          /The upstream stream failed after it had started/.test(error.message),
      );
      assert.equal(textOf(events), "Hel");
      assert.equal(
        events.some((event) => event.type === "response.completed"),
        false,
      );
      const id = (events[0] as { response: { id: string } }).response.id;
      // Not kept: a continuation from it is OpenAI's 400 for an unknown previous response, a GET its 404.
      await assert.rejects(
        client.responses.create({ model: MODEL, input: "Go on", previous_response_id: id }),
        (error: unknown) => error instanceof OpenAI.BadRequestError && error.code === "previous_response_not_found",
      );
      await assert.rejects(client.responses.retrieve(id), OpenAI.NotFoundError);
      const items = await client.conversations.items.list(conversation.id);
      assert.deepEqual(items.data, [], "the failed turn joined its conversation");
      assert.equal(backup.requests.length, 0, "a native stream is not continued");
      const listed = await send(gateway, "GET", "/v1/gateway/requests?limit=10");
      const failed = (listed.json as { data: ListedRecord[] }).data.find((record) =>
        record.attempts.some((attempt) => attempt.outcome === "bad_response"),
      );
      assert.ok(failed, "the record says bad_response");
    });
  }
});

test("the raw stream after a malformed event: the error event, then response.failed, the event not relayed", async (t) => {
  const { primary, gateway } = await startTwoProviders(t, { primary: NATIVE, backup: NATIVE });
  const firstDelta = deferred();
  primary.enqueue(RESPONSES_ROUTE, {
    kind: "handler",
    handle: async (_request, response: ServerResponse) => {
      response.writeHead(200, { "content-type": "text/event-stream" });
      response.write(sseText([...streamStart(), ...messageEvents("msg_1", ["Hel"]).slice(0, 3)]));
      await firstDelta.promise;
      response.end("data: <html>502</html>\n\n");
    },
  });
  const answer = await fetch(`${gateway.url}/v1/responses`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: MODEL, input: "Hi", stream: true }),
  });
  assert.ok(answer.body);
  const decoder = new TextDecoder();
  let text = "";
  for await (const chunk of answer.body) {
    text += decoder.decode(chunk, { stream: true });
    if (text.includes("response.output_text.delta")) firstDelta.resolve();
  }
  const types = [...text.matchAll(/^event: (.+)$/gm)].map((match) => match[1]);
  assert.deepEqual(types.slice(-2), ["error", "response.failed"], types.join(", "));
  assert.equal(text.includes("<html>"), false, "the malformed event is not relayed");
  const failed = JSON.parse(
    text
      .trim()
      .split("\n")
      .at(-1)
      ?.replace(/^data: /, "") ?? "{}",
  ) as {
    response: { status: string; error: { message: string } };
  };
  assert.equal(failed.response.status, "failed");
  assert.match(failed.response.error.message, /not a JSON object/);
});
