// Rows kept before 2026-12-07 held every id of their chain (`chainIds`, `historyItemIds`); rows kept since hold only
// their own input's ids and their chain's first response (chain-items.ts). A chain that continues an old row is
// still checked against what that row held, turns after it, and the new rows do not grow with the chain.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "../../clock.ts";
import { InvalidRequestError } from "../../errors/gateway-error.ts";
import { completedAnswer } from "../__fixtures__/fixtures.ts";
import { inMemory } from "./kept-responses.ts";
import { prefetch } from "./prefetch.ts";
import { toChatRequest } from "./request-mapping.ts";
import { ResponseStore, type StoredResponse } from "./response-store.ts";

/** A row as the previous version kept it: every id of its chain in it. */
const OLD_ROW: StoredResponse = {
  response: completedAnswer("resp_old2", "two"),
  conversation: [
    { role: "user", content: "one" },
    { role: "assistant", content: "one" },
    { role: "user", content: "two" },
    { role: "assistant", content: "two" },
  ],
  chainIds: ["resp_old1"],
  historyItemIds: ["msg_client_1", "msg_out_resp_old1", "msg_client_2"],
};

function userMessage(id: string): Record<string, unknown> {
  return { type: "message", id, role: "user", content: [{ type: "input_text", text: id }] };
}

/** The request translated as the Responses door translates it; the answer kept as it keeps it. */
async function turn(
  store: ResponseStore,
  previous: string | undefined,
  input: unknown[],
  id: string,
): Promise<StoredResponse | InvalidRequestError> {
  const body = { model: "m", ...(previous === undefined ? {} : { previous_response_id: previous }), input };
  let translated: ReturnType<typeof toChatRequest>;
  try {
    translated = toChatRequest(body, await prefetch(inMemory(store), body));
  } catch (error) {
    if (error instanceof InvalidRequestError) return error;
    throw error;
  }
  const kept: StoredResponse = {
    response: completedAnswer(id, id),
    conversation: [...translated.conversation, { role: "assistant", content: id }],
    ...(translated.chain === undefined ? {} : { chain: translated.chain }),
  };
  store.put(kept);
  return kept;
}

test("a chain continuing a row kept before 2026-12-07 still refuses the ids that row held, turns later", async () => {
  const store = new ResponseStore({ maxEntries: 100, maxBytes: 1_000_000, maxAgeMs: 3_600_000 }, new ManualClock());
  store.put(OLD_ROW);
  for (const id of ["msg_client_1", "msg_out_resp_old1", "msg_out_resp_old2", "msg_old1_0"]) {
    const refused = await turn(store, "resp_old2", [userMessage(id)], "resp_never");
    assert.ok(refused instanceof InvalidRequestError, id);
    assert.equal(refused.code, "duplicate_item");
  }
  let previous = "resp_old2";
  for (let index = 3; index <= 6; index++) {
    const kept = await turn(store, previous, [userMessage(`msg_client_${index}`)], `resp_new${index}`);
    assert.ok(!(kept instanceof InvalidRequestError));
    // The old row's ids are copied once, not added to turn after turn.
    assert.equal(kept.chain?.rootId, "resp_old1");
    assert.deepEqual(kept.chain?.inputIds, [`msg_client_${index}`]);
    assert.equal(kept.chain?.earlier?.itemIds.length, 4);
    previous = kept.response.id;
  }
  for (const id of ["msg_client_1", "msg_out_resp_old1", "msg_out_resp_old2", "msg_client_3", "msg_out_resp_new4"]) {
    const refused = await turn(store, previous, [userMessage(id)], "resp_never");
    assert.ok(refused instanceof InvalidRequestError, `${id} is in the chain`);
    assert.match(refused.message, new RegExp(`Duplicate item found with id ${id}\\.`));
  }
  // A branch from the old row: the first branch's items are not in it.
  const branch = await turn(store, "resp_old2", [userMessage("msg_client_b")], "resp_branch");
  assert.ok(!(branch instanceof InvalidRequestError));
  const across = await turn(store, "resp_branch", [userMessage("msg_client_4")], "resp_across");
  assert.ok(!(across instanceof InvalidRequestError), "an item of another branch is not a duplicate");
});

test("an id two branches of one chain both brought is refused in each branch, turns later", async () => {
  const store = new ResponseStore({ maxEntries: 100, maxBytes: 1_000_000, maxAgeMs: 3_600_000 }, new ManualClock());
  const root = await turn(store, undefined, [userMessage("msg_client_0")], "resp_root");
  assert.ok(!(root instanceof InvalidRequestError));
  // Two continuations of one response (a turn asked again) with the same client id: each branch holds it once.
  for (const branch of ["a", "b"]) {
    const first = await turn(store, "resp_root", [userMessage("msg_client_x")], `resp_${branch}1`);
    assert.ok(!(first instanceof InvalidRequestError), branch);
    const second = await turn(store, `resp_${branch}1`, [userMessage(`msg_client_${branch}`)], `resp_${branch}2`);
    assert.ok(!(second instanceof InvalidRequestError), branch);
  }
  for (const branch of ["a", "b"]) {
    const refused = await turn(store, `resp_${branch}2`, [userMessage("msg_client_x")], "resp_never");
    assert.ok(refused instanceof InvalidRequestError, `branch ${branch} holds msg_client_x`);
    assert.equal(refused.code, "duplicate_item");
  }
});
