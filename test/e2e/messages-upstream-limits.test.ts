// POST /v1/messages through `@anthropic-ai/sdk`, for what OpenAI-compatible providers refuse that Anthropic takes:
// a long or structured `metadata.user_id` (Claude Code's JSON object) as chat's `user`, and more than 4
// `stop_sequences` (the rest are matched by the gateway). The mock upstream refuses what OpenAI refuses, with OpenAI's
// 400, so a gateway that forwards either as it came fails the request.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import {
  CHAT_ROUTE,
  chatRequests,
  type ListedRecord,
  oneProviderScene,
  recordsOf,
  type useMock,
} from "../helpers/e2e.ts";
import {
  chatChunk,
  chatCompletion,
  chatErrorChunk,
  type MockStep,
  type RecordedRequest,
} from "../helpers/mock-upstream.ts";

const UPSTREAM_ID = "vendor/m-instruct";

/** OpenAI's answer to a `user` over 64 characters (and what it answers otherwise: `Fine.`). */
function openAiLike(recorded: RecordedRequest): MockStep {
  const { user, stop } = recorded.body as { user?: unknown; stop?: unknown };
  if (Array.isArray(stop) && stop.length > 4) {
    return {
      kind: "json",
      status: 400,
      body: {
        error: {
          message: `Invalid 'stop': array too long. Expected an array with maximum length 4, but got an array with length ${stop.length} instead.`,
          type: "invalid_request_error",
          param: "stop",
          code: "array_above_max_length",
        },
      },
    };
  }
  if (typeof user === "string" && user.length > 64) {
    return {
      kind: "json",
      status: 400,
      body: {
        error: {
          message: `Invalid 'user': string too long. Expected a string with maximum length 64, but got a string with length ${user.length} instead.`,
          type: "invalid_request_error",
          param: "user",
          code: "string_above_max_length",
        },
      },
    };
  }
  return { kind: "json", body: chatCompletion("Fine.", UPSTREAM_ID) };
}

/** Six stop sequences: the fifth and sixth are past what OpenAI takes. */
const STOPS = ["<a>", "<b>", "<c>", "<d>", "END", "STOP HERE"];
/** An answer that runs past the sixth sequence, as a provider not told of it writes it. */
const RUN_ON = ["Alpha beta", " STOP", " HE", "RE and more", " text END"];

async function scene(t: Parameters<typeof useMock>[0]) {
  const { mock, gateway } = await oneProviderScene(t, { id: UPSTREAM_ID });
  mock.setDefault(CHAT_ROUTE, openAiLike);
  return { mock, gateway, client: new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 }) };
}

/** Claude Code's `metadata.user_id` (2.1.78 and later): a JSON object, its session id new in each session. */
function claudeCodeUserId(sessionId: string): string {
  return JSON.stringify({
    device_id: "5f0c2b7e9a1d4c3b8e6f0a2d4b6c8e0f1a3c5e7b9d1f3a5c7e9b1d3f5a7c9e1b",
    account_uuid: "0b6c1f0e-3d4a-4c8b-9e2f-7a1b3c5d7e9f",
    session_id: sessionId,
  });
}

describe("messages API: metadata.user_id as chat's `user`", () => {
  test("a long, structured user_id is sent as a 64-character hash, one per user and device whatever the session", async (t) => {
    const { mock, client } = await scene(t);
    const request = { model: "m", max_tokens: 32, messages: [{ role: "user" as const, content: "Hi" }] };
    const first = await client.messages.create({
      ...request,
      metadata: { user_id: claudeCodeUserId("6d2f8c1a-0e4b-4f7d-9a3c-5b1e7d9f2a4c") },
    });
    assert.deepEqual(first.content, [{ type: "text", text: "Fine.", citations: null }]);
    await client.messages.create({
      ...request,
      metadata: { user_id: claudeCodeUserId("9a7e5c3b-1f2d-4e6a-8b0c-2d4f6a8c0e1b") },
    });
    const long = "u".repeat(300);
    await client.messages.create({ ...request, stream: false, metadata: { user_id: long } });
    await client.messages.create({ ...request, metadata: { user_id: "user-42" } });
    const users = chatRequests(mock).map((recorded) => (recorded.body as { user?: unknown }).user);
    assert.equal(users.length, 4);
    const [firstUser, secondUser, longUser, shortUser] = users as string[];
    assert.match(firstUser ?? "", /^[0-9a-f]{64}$/);
    assert.equal(secondUser, firstUser, "a new session of the same user keeps its id");
    assert.match(longUser ?? "", /^[0-9a-f]{64}$/);
    assert.notEqual(longUser, firstUser);
    assert.equal(shortUser, "user-42", "an id that fits goes as it came");
  });
});

describe("messages API: stop_sequences past what chat providers take", () => {
  test("JSON: the first 4 go upstream; the answer ends at the first of the rest, stop_reason stop_sequence", async (t) => {
    const { mock, client } = await scene(t);
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion(RUN_ON.join(""), UPSTREAM_ID) });
    const message = await client.messages.create({
      model: "m",
      max_tokens: 64,
      messages: [{ role: "user", content: "Go" }],
      stop_sequences: STOPS,
    });
    assert.deepEqual(message.content, [{ type: "text", text: "Alpha beta ", citations: null }]);
    assert.equal(message.stop_reason, "stop_sequence");
    assert.equal(message.stop_sequence, "STOP HERE");
    const [sent] = chatRequests(mock);
    assert.deepEqual((sent?.body as { stop?: unknown } | undefined)?.stop, STOPS.slice(0, 4));
  });

  test("streamed: the text is cut at a sequence split across chunks; what might start one waits for the next", async (t) => {
    const { mock, client } = await scene(t);
    mock.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: [
        { data: chatChunk("", UPSTREAM_ID, { role: true }) },
        ...RUN_ON.map((piece) => ({ data: chatChunk(piece, UPSTREAM_ID) })),
        { data: chatChunk("", UPSTREAM_ID, { finishReason: "stop" }) },
      ],
    });
    const stream = client.messages.stream({
      model: "m",
      max_tokens: 64,
      messages: [{ role: "user", content: "Go" }],
      stop_sequences: STOPS,
    });
    const deltas: string[] = [];
    stream.on("text", (delta) => deltas.push(delta));
    const message = await stream.finalMessage();
    assert.equal(deltas.join(""), "Alpha beta ");
    assert.deepEqual(message.content, [{ type: "text", text: "Alpha beta ", citations: null }]);
    assert.equal(message.stop_reason, "stop_sequence");
    assert.equal(message.stop_sequence, "STOP HERE");
  });

  test("streamed: a start of a sequence that never completes is text after all", async (t) => {
    const { mock, client } = await scene(t);
    mock.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: [
        { data: chatChunk("Say STOP", UPSTREAM_ID, { role: true }) },
        { data: chatChunk(" HER", UPSTREAM_ID) },
        { data: chatChunk("", UPSTREAM_ID, { finishReason: "stop" }) },
      ],
    });
    const message = await client.messages
      .stream({ model: "m", max_tokens: 64, messages: [{ role: "user", content: "Go" }], stop_sequences: STOPS })
      .finalMessage();
    assert.deepEqual(message.content, [{ type: "text", text: "Say STOP HER", citations: null }]);
    assert.equal(message.stop_reason, "end_turn");
    assert.equal(message.stop_sequence, null);
  });
});

describe("messages API: an upstream failure after a stop sequence the gateway matched", () => {
  test("streamed: the answer already ended for the client at the sequence, and ends so, not with an error", async (t) => {
    const { mock, client } = await scene(t);
    mock.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: [
        { data: chatChunk("", UPSTREAM_ID, { role: true }) },
        { data: chatChunk("Alpha beta STOP HERE and", UPSTREAM_ID) },
        { data: chatChunk(" more text the client never sees", UPSTREAM_ID) },
        { data: chatErrorChunk(UPSTREAM_ID, { code: 500, message: "Internal error" }) },
      ],
    });
    const stream = client.messages.stream({
      model: "m",
      max_tokens: 64,
      messages: [{ role: "user", content: "Go" }],
      stop_sequences: STOPS,
    });
    const message = await stream.finalMessage();
    assert.deepEqual(message.content, [{ type: "text", text: "Alpha beta ", citations: null }]);
    assert.equal(message.stop_reason, "stop_sequence");
    assert.equal(message.stop_sequence, "STOP HERE");
  });
});

describe("messages API: the relay after a stop sequence the gateway matched", () => {
  // The answer the client got was whole at the sequence: what the upstream does after it (breaks, or is cut off by the
  // gateway) is no failure of the request, and nothing is continued for text nobody will see.
  const afterMatch: readonly [string, MockStep][] = [
    [
      "an error event",
      {
        kind: "sse",
        events: [
          { data: chatChunk("Alpha beta STOP HERE and", UPSTREAM_ID, { role: true }) },
          { data: chatChunk(" more", UPSTREAM_ID) },
          { data: chatErrorChunk(UPSTREAM_ID, { code: 500, message: "Internal error" }) },
        ],
      },
    ],
    [
      "a cut connection",
      {
        kind: "sse",
        events: [
          { data: chatChunk("Alpha beta STOP HERE and", UPSTREAM_ID, { role: true }) },
          { data: chatChunk(" more", UPSTREAM_ID) },
        ],
        end: "destroy",
      },
    ],
  ];
  for (const [what, step] of afterMatch) {
    test(`streamed, then ${what}: a success, continued nowhere`, async (t) => {
      const { mock, gateway, client } = await scene(t);
      mock.enqueue(CHAT_ROUTE, step);
      const message = await client.messages
        .stream({ model: "m", max_tokens: 64, messages: [{ role: "user", content: "Go" }], stop_sequences: STOPS })
        .finalMessage();
      assert.equal(message.stop_reason, "stop_sequence");
      assert.deepEqual(message.content, [{ type: "text", text: "Alpha beta ", citations: null }]);
      let record: ListedRecord | undefined;
      for (let tries = 0; record === undefined && tries < 200; tries++) {
        record = (await recordsOf(gateway, "messages")).records[0];
        if (record === undefined) await new Promise((resolve) => setTimeout(resolve, 25));
      }
      assert.ok(record, "the request left its record");
      assert.equal(record.status, 200);
      assert.equal(record.outcome, "success");
      assert.equal(chatRequests(mock).length, 1, "no continuation was started");
    });
  }
});

describe("messages API: text held back for a stop sequence, then a tool call", () => {
  test("streamed: the held text ends the text block before the tool_use block, as it came", async (t) => {
    const { mock, client } = await scene(t);
    const toolCall = {
      id: "chatcmpl-x",
      object: "chat.completion.chunk",
      model: UPSTREAM_ID,
      choices: [
        {
          index: 0,
          delta: {
            tool_calls: [
              { index: 0, id: "call_1", type: "function", function: { name: "lookup", arguments: '{"q":"x"}' } },
            ],
          },
          finish_reason: null,
        },
      ],
    };
    mock.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: [
        { data: chatChunk("Let me look that up. ST", UPSTREAM_ID, { role: true }) },
        { data: toolCall },
        { data: chatChunk("", UPSTREAM_ID, { finishReason: "tool_calls" }) },
      ],
    });
    const message = await client.messages
      .stream({
        model: "m",
        max_tokens: 64,
        messages: [{ role: "user", content: "Go" }],
        stop_sequences: STOPS,
        tools: [{ name: "lookup", input_schema: { type: "object", properties: { q: { type: "string" } } } }],
      })
      .finalMessage();
    assert.deepEqual(
      message.content.map((block) => (block.type === "text" ? block.text : block.type)),
      ["Let me look that up. ST", "tool_use"],
    );
    assert.equal(message.stop_reason, "tool_use");
  });
});

describe("messages API: how many stop sequences the gateway matches", () => {
  test("at most 1,000 and 50,000 characters in all; more is Anthropic's 400 naming stop_sequences, never sent", async (t) => {
    const { mock, client } = await scene(t);
    const request = { model: "m", max_tokens: 32, messages: [{ role: "user" as const, content: "Hi" }] };
    // Each one built the automaton before: 20 MB of them held the event loop 16 s and took 1 GB.
    const refusedFor = async (stopSequences: string[]) => {
      const error = await client.messages.create({ ...request, stop_sequences: stopSequences }).then(
        () => undefined,
        (caught: unknown) => caught,
      );
      assert.ok(error instanceof Anthropic.BadRequestError, String(error));
      const body = error.error as { type?: string; error?: { type?: string; message?: string } };
      assert.equal(body.type, "error");
      assert.equal(body.error?.type, "invalid_request_error");
      return body.error?.message ?? "";
    };
    const many = Array.from({ length: 1_001 }, (_, index) => `<${index}>`);
    assert.match(await refusedFor(many), /`stop_sequences`: at most 1,000 stop sequences/);
    const long = ["<a>", "<b>", "<c>", "<d>", "x".repeat(50_000)];
    assert.match(await refusedFor(long), /`stop_sequences`: stop sequences of at most 50,000 characters in all/);
    assert.equal(chatRequests(mock).length, 0, "nothing was sent upstream");
    // At the bounds: served, the rest matched by the gateway.
    const atBounds = [...many.slice(0, 999), "y".repeat(50_000 - many.slice(0, 999).join("").length)];
    const served = await client.messages.create({ ...request, stop_sequences: atBounds });
    assert.deepEqual(served.content, [{ type: "text", text: "Fine.", citations: null }]);
  });
});
