// Two corners of the Responses API through the openai SDK, with the mock upstream speaking only Chat Completions:
// a refusal (`refusal`, streamed `delta.refusal`) arrives as a `refusal` part, not as text, after any text; and
// `GET /v1/responses/{id}/input_items` lists what a kept response answered, in OpenAI's list shape with paging.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import OpenAI from "openai";
import { CHAT_ROUTE, oneProviderScene, send, VENDOR_MODEL_ID } from "../helpers/e2e.ts";
import { type ChatChunkBody, chatChunk, chatCompletion } from "../helpers/mock-upstream.ts";

const UPSTREAM_ID = VENDOR_MODEL_ID;

const scene = oneProviderScene;

function refusalChunk(refusal: string): ChatChunkBody {
  const chunk = chatChunk("", UPSTREAM_ID);
  (chunk.choices[0]?.delta as Record<string, unknown>).refusal = refusal;
  return chunk;
}

describe("Responses API corners", () => {
  test("a streamed refusal is a refusal part (refusal.delta events), not output text", async (t) => {
    const { mock, client } = await scene(t);
    const chunks = [
      chatChunk("", UPSTREAM_ID, { role: true }),
      refusalChunk("I can't"),
      refusalChunk(" help with that."),
      chatChunk("", UPSTREAM_ID, { finishReason: "stop" }),
    ];
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: chunks.map((data) => ({ data })) });
    const stream = client.responses.stream({ model: "m", input: "Something bad" });
    let refusalDeltas = "";
    let textDeltas = 0;
    for await (const event of stream) {
      if (event.type === "response.refusal.delta") refusalDeltas += event.delta;
      if (event.type === "response.output_text.delta") textDeltas++;
    }
    const final = await stream.finalResponse();
    assert.equal(refusalDeltas, "I can't help with that.");
    assert.equal(textDeltas, 0);
    assert.equal(final.output_text, "", "a refusal is not output text");
    const [item] = final.output;
    const parts = item?.type === "message" ? item.content : [];
    assert.deepEqual(
      parts.map((part) => [part.type, part.type === "refusal" ? part.refusal : part.text]),
      [["refusal", "I can't help with that."]],
    );
  });

  test("text then a refusal, JSON and streamed: output_text and refusal parts of one item, refusal.done whole", async (t) => {
    const { mock, client } = await scene(t);
    const answer = chatCompletion("Let me see.", UPSTREAM_ID);
    const choices = answer.choices.map((choice) => ({
      ...choice,
      message: { ...choice.message, refusal: "I can't help with that." },
    }));
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: { ...answer, choices } });
    const partsOf = (response: OpenAI.Responses.Response) => {
      const [item, ...rest] = response.output;
      assert.equal(rest.length, 0, "one message item");
      return (item?.type === "message" ? item.content : []).map((part) => [
        part.type,
        part.type === "refusal" ? part.refusal : part.text,
      ]);
    };
    const expected = [
      ["output_text", "Let me see."],
      ["refusal", "I can't help with that."],
    ];
    const created = await client.responses.create({ model: "m", input: "Something bad" });
    assert.deepEqual(partsOf(created), expected);
    assert.equal(created.output_text, "Let me see.", "the refusal is not output text");

    const chunks = [
      chatChunk("Let me see.", UPSTREAM_ID, { role: true }),
      refusalChunk("I can't"),
      refusalChunk(" help with that."),
      chatChunk("", UPSTREAM_ID, { finishReason: "stop" }),
    ];
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: chunks.map((data) => ({ data })) });
    const stream = client.responses.stream({ model: "m", input: "Something bad" });
    const refusalEvents: [string, number, string][] = [];
    for await (const event of stream) {
      if (event.type === "response.refusal.delta") refusalEvents.push([event.type, event.content_index, event.delta]);
      if (event.type === "response.refusal.done") refusalEvents.push([event.type, event.content_index, event.refusal]);
    }
    assert.deepEqual(refusalEvents, [
      ["response.refusal.delta", 1, "I can't"],
      ["response.refusal.delta", 1, " help with that."],
      ["response.refusal.done", 1, "I can't help with that."],
    ]);
    assert.deepEqual(partsOf(await stream.finalResponse()), expected);
  });

  test("input_items: the conversation a kept response answered, newest first, paged; 404 and 400 as OpenAI", async (t) => {
    const { mock, gateway, client } = await scene(t);
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Hello!", UPSTREAM_ID) });
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Fine.", UPSTREAM_ID) });
    const first = await client.responses.create({ model: "m", instructions: "Be kind.", input: "Hi" });
    const second = await client.responses.create({
      model: "m",
      previous_response_id: first.id,
      input: [{ role: "user", content: [{ type: "input_text", text: "How are you?" }] }],
    });

    const texts = (items: { type: string; content?: unknown }[]) =>
      items.map((item) => (item.content as { text: string }[] | undefined)?.[0]?.text);
    const newestFirst = await client.responses.inputItems.list(second.id);
    assert.deepEqual(texts(newestFirst.data), ["How are you?", "Hello!", "Hi"], "instructions are not an item");
    const all: { type: string; id?: string; content?: unknown }[] = [];
    for await (const item of client.responses.inputItems.list(second.id, { order: "asc", limit: 2 })) all.push(item);
    assert.deepEqual(texts(all), ["Hi", "Hello!", "How are you?"], "pages of 2 followed through `after`");
    assert.equal(new Set(all.map((item) => item.id)).size, 3, "every item has its own id");
    assert.equal((all[1] as { role?: string }).role, "assistant");

    const again = await client.responses.inputItems.list(second.id, { order: "asc", limit: 2 });
    assert.deepEqual(
      again.data.map((item) => item.id),
      all.slice(0, 2).map((item) => item.id),
      "ids are stable between calls",
    );
    await assert.rejects(client.responses.inputItems.list("resp_unknown"), OpenAI.NotFoundError);
    const bad = await send(gateway, "GET", `/v1/responses/${second.id}/input_items?limit=0`);
    assert.equal(bad.status, 400);
    assert.equal((bad.json as { error: { param: string } }).error.param, "limit");
    // An unknown cursor is quoted cut, as a conversation's: a query can carry kilobytes of it.
    const unknown = await send(gateway, "GET", `/v1/responses/${second.id}/input_items?after=${"x".repeat(6_000)}`);
    assert.equal(unknown.status, 400);
    const error = (unknown.json as { error: { param: string; message: string } }).error;
    assert.equal(error.param, "after");
    assert.ok(error.message.length < 200, error.message);
  });
});
