// OpenAI's `Duplicate item found with id ...` (400) on POST /v1/responses, with the openai SDK as the client and the
// mock upstream behind the gateway: refused only for an item the request's history really holds (the chain
// `previous_response_id` continues, or the `conversation` it names), never for an item of another response whose text
// happens to be the same.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type OpenAI from "openai";
import {
  badRequest,
  chatRequests,
  oneProviderScene,
  oneProviderYaml,
  openAiClient,
  sentContentsOf,
  serveEveryChat,
  useGateway,
  useMock,
} from "../helpers/e2e.ts";
import type { MockUpstream } from "../helpers/mock-upstream.ts";

type ResponseInputItem = OpenAI.Responses.ResponseInputItem;

/**
 * A user message carrying an id, as `input_items` and a conversation's items list it. The SDK types input messages
 * without one; the API takes it (and refuses an id its history already holds).
 */
function userMessage(id: string, text: string): ResponseInputItem {
  return { type: "message", id, role: "user", content: [{ type: "input_text", text }] } as ResponseInputItem;
}

function sentContents(mock: MockUpstream, index: number): unknown[] {
  return sentContentsOf(chatRequests(mock)[index]);
}

describe("responses API: duplicate items", () => {
  test("an item of an unrelated response whose history reads the same as the chain's start is not a duplicate", async (t) => {
    const { mock, client } = await oneProviderScene(t);
    serveEveryChat(mock, "Same answer.");
    const first = await client.responses.create({ model: "m", input: "one" });
    const second = await client.responses.create({ model: "m", previous_response_id: first.id, input: "two" });
    // Asked apart, the same question gets the same answer: its kept conversation equals the chain's first turn.
    const apart = await client.responses.create({ model: "m", input: "one" });
    const apartItem = apart.output[0]?.id ?? "";
    await client.responses.create({
      model: "m",
      previous_response_id: second.id,
      input: [{ type: "item_reference", id: apartItem }],
    });
    assert.deepEqual(sentContents(mock, 3), ["one", "Same answer.", "two", "Same answer.", "Same answer."]);
    // The chain's own first answer is still refused.
    const refused = await badRequest(
      client.responses.create({
        model: "m",
        previous_response_id: second.id,
        input: [{ type: "item_reference", id: first.output[0]?.id ?? "" }],
      }),
    );
    assert.equal(refused.code, "duplicate_item");
    assert.equal(chatRequests(mock).length, 4);
  });

  test("previous_response_id: an inline item carrying the id of an item in the chain is refused, as OpenAI does", async (t) => {
    const { mock, client } = await oneProviderScene(t);
    serveEveryChat(mock, "Same answer.");
    const first = await client.responses.create({ model: "m", input: "one" });
    const answer = first.output[0];
    assert.ok(answer !== undefined && answer.type === "message");
    // The previous output sent back with its id, as a client that keeps its own history and continues by id too.
    const resent = await badRequest(
      client.responses.create({
        model: "m",
        previous_response_id: first.id,
        input: [answer, { role: "user", content: "two" }],
      }),
    );
    assert.equal(resent.code, "duplicate_item");
    assert.equal(resent.param, "input[0].id");
    assert.match(resent.message, new RegExp(`Duplicate item found with id ${answer.id}\\.`));
    assert.equal(chatRequests(mock).length, 1);

    // Two turns on, the first answer is still in the chain; so is every item input_items lists.
    const second = await client.responses.create({ model: "m", previous_response_id: first.id, input: "two" });
    const twoOn = await badRequest(
      client.responses.create({ model: "m", previous_response_id: second.id, input: [answer] }),
    );
    assert.equal(twoOn.code, "duplicate_item");
    const listed = (await client.responses.inputItems.list(second.id, { order: "asc" })).data[0];
    assert.ok(listed !== undefined && listed.type === "message");
    const relisted = await badRequest(
      client.responses.create({
        model: "m",
        previous_response_id: second.id,
        input: [userMessage(listed.id, "one")],
      }),
    );
    assert.match(relisted.message, new RegExp(`Duplicate item found with id ${listed.id}\\.`));
    // One id twice in one input.
    const twice = await badRequest(
      client.responses.create({
        model: "m",
        input: [userMessage("msg_mine", "a"), userMessage("msg_mine", "b")],
      }),
    );
    assert.equal(twice.param, "input[1].id");
    assert.equal(chatRequests(mock).length, 2);

    // An id of the client's own that the chain does not hold goes upstream after the history.
    await client.responses.create({
      model: "m",
      previous_response_id: second.id,
      input: [userMessage("msg_mine", "three")],
    });
    assert.deepEqual(sentContents(mock, 2), ["one", "Same answer.", "two", "Same answer.", "three"]);
  });

  test("conversation: an inline item or item_reference of an item the conversation holds is refused", async (t) => {
    const { mock, client } = await oneProviderScene(t);
    serveEveryChat(mock, "Same answer.");
    const conversation = await client.conversations.create({});
    const first = await client.responses.create({ model: "m", conversation: conversation.id, input: "one" });
    const answer = first.output[0];
    assert.ok(answer !== undefined && answer.type === "message");
    const inline = await badRequest(
      client.responses.create({
        model: "m",
        conversation: conversation.id,
        input: [answer, { role: "user", content: "two" }],
      }),
    );
    assert.equal(inline.code, "duplicate_item");
    assert.equal(inline.param, "input[0].id");
    const referenced = await badRequest(
      client.responses.create({
        model: "m",
        conversation: conversation.id,
        input: [{ type: "item_reference", id: answer.id }],
      }),
    );
    assert.equal(referenced.code, "duplicate_item");
    // The conversation's own item ids, as its items list shows them.
    const question = (await client.conversations.items.list(conversation.id, { order: "asc" })).data[0];
    assert.ok(question !== undefined && question.type === "message");
    const listed = await badRequest(
      client.responses.create({
        model: "m",
        conversation: conversation.id,
        input: [userMessage(question.id, "one")],
      }),
    );
    assert.match(listed.message, new RegExp(`Duplicate item found with id ${question.id}\\.`));
    assert.equal(chatRequests(mock).length, 1);
    // Nothing was added to the conversation by the refusals.
    assert.equal((await client.conversations.items.list(conversation.id)).data.length, 2);
  });

  test("a chain started with a conversation holds that conversation's items: refused by previous_response_id too", async (t) => {
    const { mock, client } = await oneProviderScene(t);
    serveEveryChat(mock, "Same answer.");
    const conversation = await client.conversations.create({ items: [{ role: "user", content: "zero" }] });
    const heldId = (await client.conversations.items.list(conversation.id)).data[0]?.id ?? "";
    assert.notEqual(heldId, "");
    const first = await client.responses.create({ model: "m", conversation: conversation.id, input: "one" });
    assert.deepEqual(sentContents(mock, 0), ["zero", "one"]);
    // The conversation's first item went upstream with `first`: the chain continuing it holds it.
    const resent = await badRequest(
      client.responses.create({ model: "m", previous_response_id: first.id, input: [userMessage(heldId, "zero")] }),
    );
    assert.equal(resent.code, "duplicate_item");
    assert.match(resent.message, new RegExp(`Duplicate item found with id ${heldId}.`));
    // So is `first`'s own input, under the id the conversation lists it by.
    const listed = (await client.conversations.items.list(conversation.id, { order: "asc" })).data[1]?.id ?? "";
    assert.match(listed, /^msg_/);
    const relisted = await badRequest(
      client.responses.create({ model: "m", previous_response_id: first.id, input: [userMessage(listed, "one")] }),
    );
    assert.match(relisted.message, new RegExp(`Duplicate item found with id ${listed}\\.`));
    const second = await client.responses.create({ model: "m", previous_response_id: first.id, input: "two" });
    const twoOn = await badRequest(
      client.responses.create({ model: "m", previous_response_id: second.id, input: [userMessage(heldId, "zero")] }),
    );
    assert.equal(twoOn.code, "duplicate_item");
    assert.equal(chatRequests(mock).length, 2);
  });

  test("conversation: an item sent again with the id the client gave it (replaced by the gateway's) is refused", async (t) => {
    const { mock, client } = await oneProviderScene(t);
    serveEveryChat(mock, "Same answer.");
    const conversation = await client.conversations.create({ items: [userMessage("msg_client_zero", "zero")] });
    await client.conversations.items.create(conversation.id, { items: [userMessage("msg_client_one", "one")] });
    const given = await badRequest(
      client.responses.create({
        model: "m",
        conversation: conversation.id,
        input: [userMessage("msg_client_one", "one"), { role: "user", content: "two" }],
      }),
    );
    assert.equal(given.code, "duplicate_item");
    assert.equal(given.param, "input[0].id");
    // So is an input item of an earlier response with `conversation`, kept there under a new id.
    const first = await client.responses.create({
      model: "m",
      conversation: conversation.id,
      input: [userMessage("msg_client_two", "two")],
    });
    assert.equal(first.status, "completed");
    const again = await badRequest(
      client.responses.create({
        model: "m",
        conversation: conversation.id,
        input: [userMessage("msg_client_two", "two")],
      }),
    );
    assert.match(again.message, /Duplicate item found with id msg_client_two\./);
    // And a chain continuing that response holds the conversation's items under either id.
    const continued = await badRequest(
      client.responses.create({
        model: "m",
        previous_response_id: first.id,
        input: [userMessage("msg_client_zero", "zero")],
      }),
    );
    assert.equal(continued.code, "duplicate_item");
    assert.equal(chatRequests(mock).length, 1);
  });
  test("conversation: the ids a client gave its input items count toward the conversation's bound before going upstream", async (t) => {
    const mock = await useMock(t);
    serveEveryChat(mock, "Short.");
    // A conversation is bounded by the store's max_bytes; the client's ids are kept beside the items (clientIds).
    const gateway = await useGateway(t, `${oneProviderYaml(mock)}responses:\n  store:\n    max_bytes: 20000\n`);
    const client = openAiClient(gateway);
    const conversation = await client.conversations.create({ items: [{ role: "user", content: "x".repeat(9_000) }] });
    const refused = await badRequest(
      client.responses.create({
        model: "m",
        conversation: conversation.id,
        input: [userMessage(`msg_${"i".repeat(12_000)}`, "Hi.")],
      }),
    );
    assert.equal(refused.param, "conversation");
    assert.equal(chatRequests(mock).length, 0, "refused before anything went upstream");
  });
});
