// Native Responses providers (`responses_api: native`, docs/protocols.md "Native Responses providers"): the client's
// Responses body goes to `<base_url>/responses` (model replaced, previous_response_id expanded, store false), the
// answer comes back with the gateway's own id and is kept; failover between native and translated candidates works
// both ways before the first byte; a native stream cut after it started ends in `response.failed`. Clients: the
// openai SDK; upstreams: mocks serving /v1/responses (and chat for the translated candidate).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { send } from "../helpers/e2e.ts";
import {
  chatCompletion,
  chatStream,
  type MockUpstream,
  rateLimited,
  type SseScript,
} from "../helpers/mock-upstream.ts";
import { CHAT_ROUTE, MODEL, sentBody, startTwoProviders } from "../helpers/two-providers.ts";

const RESPONSES_ROUTE = "POST /v1/responses";
const NATIVE_MODEL = "native-model-2026";

function message(id: string, text: string) {
  return {
    id,
    type: "message",
    status: "completed",
    role: "assistant",
    content: [{ type: "output_text", text, annotations: [] }],
  };
}

/** A Responses API response object as OpenAI answers it (with `store: false`, as the gateway asks). */
function nativeResponse(text: string, status: "completed" | "in_progress" = "completed") {
  return {
    id: "resp_upstream_1",
    object: "response",
    created_at: 1767225600,
    status,
    error: null,
    incomplete_details: null,
    model: NATIVE_MODEL,
    output: status === "completed" ? [message("msg_upstream_1", text)] : [],
    usage: status === "completed" ? { input_tokens: 11, output_tokens: 4, total_tokens: 15 } : null,
    store: false,
    previous_response_id: null,
    metadata: {},
  };
}

/** A native stream with `event:` lines, as OpenAI sends it: created ... text deltas ... completed (unless `cutAfter`). */
function nativeStream(words: string[], options: { cutAfterDeltas?: number } = {}): SseScript[] {
  const text = words.join("");
  const item = { ...message("msg_upstream_1", ""), status: "in_progress", content: [] };
  const at = { item_id: "msg_upstream_1", output_index: 0, content_index: 0 };
  const events: Record<string, unknown>[] = [
    { type: "response.created", response: nativeResponse("", "in_progress") },
    { type: "response.in_progress", response: nativeResponse("", "in_progress") },
    { type: "response.output_item.added", output_index: 0, item },
    { type: "response.content_part.added", ...at, part: { type: "output_text", text: "", annotations: [] } },
  ];
  for (const [index, word] of words.entries()) {
    if (index === options.cutAfterDeltas) break;
    events.push({ type: "response.output_text.delta", ...at, delta: word, logprobs: [] });
  }
  if (options.cutAfterDeltas === undefined) {
    events.push(
      { type: "response.output_text.done", ...at, text, logprobs: [] },
      { type: "response.content_part.done", ...at, part: { type: "output_text", text, annotations: [] } },
      { type: "response.output_item.done", output_index: 0, item: message("msg_upstream_1", text) },
      { type: "response.completed", response: nativeResponse(text) },
    );
  }
  return events.map((event, index) => ({
    raw: `event: ${String(event.type)}\ndata: ${JSON.stringify({ ...event, sequence_number: index })}\n\n`,
  }));
}

function responsesBodies(upstream: MockUpstream): Record<string, unknown>[] {
  return upstream.requests
    .filter((request) => request.path === "/v1/responses")
    .map((request) => request.body as Record<string, unknown>);
}

async function lastRecord(gateway: { baseUrl: string }) {
  const listed = await send(gateway as Parameters<typeof send>[0], "GET", "/v1/gateway/requests?limit=1");
  return (
    listed.json as {
      data: { tokensIn: number; tokensOut: number; outcome: string; attempts: { provider: string }[] }[];
    }
  ).data[0];
}

describe("native Responses providers", () => {
  test("background: a native provider is called without background; the stream it relays is kept under the gateway's id", async (t) => {
    const { primary, client } = await startTwoProviders(t, { primary: { responses_api: "native" } });
    primary.enqueue(RESPONSES_ROUTE, { kind: "sse", events: nativeStream(["Hello ", "there."]) });
    const stream = await client.responses.create({ model: MODEL, input: "Hi", background: true, stream: true });
    let id = "";
    let text = "";
    for await (const event of stream) {
      if (event.type === "response.created") {
        id = event.response.id;
        assert.equal(event.response.background, true);
      }
      if (event.type === "response.output_text.delta") text += event.delta;
    }
    assert.equal(text, "Hello there.");
    assert.notEqual(id, "resp_upstream_1");
    const sent = responsesBodies(primary)[0];
    assert.equal(sent?.background, undefined, "the provider answers while the gateway waits");
    assert.equal(sent?.stream, true);
    for (;;) {
      const kept = await client.responses.retrieve(id);
      if (kept.status === "in_progress" || kept.status === "queued") continue;
      assert.equal(kept.status, "completed");
      assert.equal(kept.output_text, "Hello there.");
      assert.equal(kept.background, true);
      break;
    }
  });

  test("JSON: the body goes to /responses as the client sent it; the answer is kept under the gateway's id", async (t) => {
    const { primary, backup, gateway, client } = await startTwoProviders(t, { primary: { responses_api: "native" } });
    primary.enqueue(RESPONSES_ROUTE, { kind: "json", body: nativeResponse("Hello natively.") });
    const first = await client.responses.create({
      model: MODEL,
      instructions: "Be brief.",
      input: "Hi",
      metadata: { team: "a" },
      reasoning: { effort: "low" },
    });
    assert.equal(first.output_text, "Hello natively.");
    assert.match(first.id, /^resp_/);
    assert.notEqual(first.id, "resp_upstream_1", "the gateway's own id, so GET and previous_response_id work");
    assert.equal(first.model, NATIVE_MODEL);
    assert.equal((first as unknown as { store: boolean }).store, true, "the client's store, not the one sent upstream");
    const sent = responsesBodies(primary)[0];
    assert.equal(sent?.model, "m");
    assert.equal(sent?.store, false);
    assert.equal(sent?.instructions, "Be brief.");
    assert.deepEqual(sent?.reasoning, { effort: "low" }, "native: reasoning passes as it is");
    assert.deepEqual(sent?.input, [{ type: "message", role: "user", content: "Hi" }]);
    assert.equal(backup.requests.length, 0);
    const record = await lastRecord(gateway);
    assert.equal(record?.tokensIn, 11, "usage from input_tokens");
    assert.equal(record?.tokensOut, 4, "usage from output_tokens");

    assert.equal((await client.responses.retrieve(first.id)).output_text, "Hello natively.");
    primary.enqueue(RESPONSES_ROUTE, { kind: "json", body: nativeResponse("Still here.") });
    const second = await client.responses.create({ model: MODEL, input: "And now?", previous_response_id: first.id });
    assert.equal(second.output_text, "Still here.");
    assert.equal(second.previous_response_id, first.id);
    const followUp = responsesBodies(primary)[1];
    assert.equal("previous_response_id" in (followUp ?? {}), false, "the provider never saw the gateway's ids");
    assert.deepEqual(followUp?.input, [
      { type: "message", role: "user", content: "Hi" },
      { type: "message", role: "assistant", content: "Hello natively." },
      { type: "message", role: "user", content: "And now?" },
    ]);
  });

  test("conversation: its items go in `input` without the gateway's ids, no `conversation` upstream; the turn is added", async (t) => {
    const { primary, client } = await startTwoProviders(t, { primary: { responses_api: "native" } });
    const conversation = await client.conversations.create({ items: [{ role: "user", content: "I am Ada." }] });
    primary.enqueue(RESPONSES_ROUTE, { kind: "json", body: nativeResponse("Hello Ada.") });
    const answer = await client.responses.create({ model: MODEL, conversation: conversation.id, input: "Hi" });
    assert.deepEqual(answer.conversation, { id: conversation.id });
    const sent = responsesBodies(primary)[0];
    assert.equal("conversation" in (sent ?? {}), false, "the provider never saw the gateway's conversation");
    assert.deepEqual(sent?.input, [
      { type: "message", status: "completed", role: "user", content: [{ type: "input_text", text: "I am Ada." }] },
      { type: "message", role: "user", content: "Hi" },
    ]);
    const items = [];
    for await (const item of client.conversations.items.list(conversation.id, { order: "asc" })) items.push(item);
    assert.deepEqual(
      items.map((item) => [item.type, "role" in item ? item.role : null]),
      [
        ["message", "user"],
        ["message", "user"],
        ["message", "assistant"],
      ],
    );
    assert.equal(items[2]?.id, answer.output[0]?.id);
  });

  test("stream: events relayed with the gateway's id; finalResponse() and GET see the kept answer", async (t) => {
    const { primary, gateway, client } = await startTwoProviders(t, { primary: { responses_api: "native" } });
    primary.enqueue(RESPONSES_ROUTE, {
      kind: "sse",
      events: nativeStream(["Native", " stream", "."]),
      end: "close-without-done",
    });
    const stream = client.responses.stream({ model: MODEL, input: "Hi" });
    const sequence: number[] = [];
    for await (const event of stream) sequence.push(event.sequence_number);
    const final = await stream.finalResponse();
    assert.equal(final.output_text, "Native stream.");
    assert.match(final.id, /^resp_/);
    assert.notEqual(final.id, "resp_upstream_1");
    assert.equal(final.status, "completed");
    assert.deepEqual(
      sequence,
      sequence.map((_, index) => index),
      "sequence numbers from 0, increasing",
    );
    assert.equal(responsesBodies(primary)[0]?.stream, true);
    const record = await lastRecord(gateway);
    assert.deepEqual([record?.tokensIn, record?.tokensOut], [11, 4], "usage from response.completed");
    assert.equal((await client.responses.retrieve(final.id)).output_text, "Native stream.");
  });

  test("failover before the first byte: native -> translated (500 on /responses) and translated -> native (429)", async (t) => {
    const nativeFirst = await startTwoProviders(t, { primary: { responses_api: "native" } });
    nativeFirst.primary.enqueue(RESPONSES_ROUTE, { kind: "json", status: 500, body: { error: { message: "boom" } } });
    nativeFirst.backup.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: chatStream(["Translated", " instead."], "beta-model", { usage: true }),
    });
    const stream = nativeFirst.client.responses.stream({ model: MODEL, input: "Hi" });
    const final = await stream.finalResponse();
    assert.equal(final.output_text, "Translated instead.");
    assert.equal(final.model, "beta-model");
    assert.equal(nativeFirst.backup.requests[0]?.path, "/v1/chat/completions");

    const nativeSecond = await startTwoProviders(t, { backup: { responses_api: "native" } });
    nativeSecond.primary.enqueue(CHAT_ROUTE, rateLimited({ retryAfter: "30" }));
    nativeSecond.backup.enqueue(RESPONSES_ROUTE, { kind: "json", body: nativeResponse("Native instead.") });
    const answer = await nativeSecond.client.responses.create({ model: MODEL, input: "Hi" });
    assert.equal(answer.output_text, "Native instead.");
    assert.equal(sentBody(nativeSecond.primary).messages !== undefined, true, "alpha got the chat translation");
    assert.equal(responsesBodies(nativeSecond.backup).length, 1);
  });

  test("an error event before any output is a failed attempt: the next candidate answers, the reason is kept", async (t) => {
    const { primary, backup, gateway, client } = await startTwoProviders(t, { primary: { responses_api: "native" } });
    const preamble = nativeStream([], { cutAfterDeltas: 0 }).slice(0, 2);
    const error = { type: "error", code: "server_error", message: "The server is overloaded", sequence_number: 2 };
    primary.enqueue(RESPONSES_ROUTE, {
      kind: "sse",
      events: [...preamble, { raw: `event: error\ndata: ${JSON.stringify(error)}\n\n` }],
      end: "close-without-done",
    });
    backup.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(["Rescued."], "beta-model", { usage: true }) });
    const final = await client.responses.stream({ model: MODEL, input: "Hi" }).finalResponse();
    assert.equal(final.output_text, "Rescued.");
    const listed = await send(gateway, "GET", "/v1/gateway/requests?limit=1");
    const [record] = (listed.json as { data: { attempts: { provider: string; reason: string }[] }[] }).data;
    assert.equal(record?.attempts[0]?.provider, "alpha");
    assert.match(record?.attempts[0]?.reason ?? "", /overloaded/);
  });

  test("a native stream cut after it started ends with error and response.failed, not continued", async (t) => {
    const { primary, backup, gateway, client } = await startTwoProviders(t, { primary: { responses_api: "native" } });
    primary.enqueue(RESPONSES_ROUTE, {
      kind: "sse",
      events: nativeStream(["Half", " an", " answer"], { cutAfterDeltas: 2 }),
      end: "destroy",
    });
    backup.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("should not be asked", "beta-model") });
    const raw = await send(gateway, "POST", "/v1/responses", { body: { model: MODEL, input: "Hi", stream: true } });
    const events = raw.text
      .split("\n\n")
      .filter((block) => block.startsWith("event: "))
      .map((block) => JSON.parse(block.slice(block.indexOf("data: ") + 6)) as Record<string, unknown>);
    const deltas = events.filter((event) => event.type === "response.output_text.delta").map((event) => event.delta);
    assert.deepEqual(deltas, ["Half", " an"], "what the provider sent before the cut was relayed");
    const [error, failed] = events.slice(-2);
    assert.equal(error?.type, "error");
    assert.equal(error?.code, "stream_interrupted");
    assert.equal(failed?.type, "response.failed");
    const response = failed?.response as { id: string; status: string; error: { code: string } };
    assert.equal(response.status, "failed");
    assert.equal(response.error.code, "server_error", "one of OpenAI's ResponseError codes");
    assert.equal(response.id, (events[0]?.response as { id?: string } | undefined)?.id, "one response id throughout");
    assert.match(response.id, /^resp_/);
    assert.deepEqual(
      events.map((event) => event.sequence_number),
      events.map((_, index) => index),
    );

    primary.enqueue(RESPONSES_ROUTE, {
      kind: "sse",
      events: nativeStream(["Half", " an", " answer"], { cutAfterDeltas: 2 }),
      end: "destroy",
    });
    await assert.rejects(client.responses.stream({ model: MODEL, input: "Hi" }).finalResponse());
    assert.equal(backup.requests.length, 0, "a native stream is not continued elsewhere");
    const record = await lastRecord(gateway);
    assert.equal(record?.outcome, "stream_cut");
  });
});
