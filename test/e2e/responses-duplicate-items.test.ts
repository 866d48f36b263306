// OpenAI's `Duplicate item found with id ...` (400) on POST /v1/responses, with the openai SDK as the client and the
// mock upstream behind the gateway: refused only for an item the request's history really holds (the chain
// `previous_response_id` continues, or the `conversation` it names), never for an item of another response whose text
// happens to be the same.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { badRequest, chatRequests, oneProviderScene, serveEveryChat } from "../helpers/e2e.ts";
import type { MockUpstream } from "../helpers/mock-upstream.ts";

function sentContents(mock: MockUpstream, index: number): unknown[] {
  const messages = ((chatRequests(mock)[index]?.body ?? {}) as { messages?: { content: unknown }[] }).messages ?? [];
  return messages.map((message) => message.content);
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
});
