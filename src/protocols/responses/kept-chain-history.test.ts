// A chain's kept rows (kept-chain-history.ts): which turns hold a pointer and which the whole history again, how a
// read rebuilds it, a link gone, and the in-memory store's re-stamp (a chain ages together under max_age_ms).
import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "../../clock.ts";
import { GatewayError } from "../../errors/gateway-error.ts";
import { completedAnswer } from "../__fixtures__/fixtures.ts";
import type { ChatMessage } from "../chat-completions.ts";
import { CHAIN_WHOLE_EVERY, chainPrevious, keptChainTurn, withChainHistory } from "./kept-chain-history.ts";
import { inMemory } from "./kept-responses.ts";
import { ResponseStore, type StoredResponse } from "./response-store.ts";

const HOUR_MS = 3_600_000;

/** Keeps `turns` turns of one chain as the Responses door does; returns the store, the clock and the ids. */
async function keptChain(turns: number, maxAgeMs = 24 * HOUR_MS) {
  const clock = new ManualClock();
  const store = new ResponseStore({ maxEntries: 1_000, maxBytes: 1 << 24, maxAgeMs }, clock);
  const kept = inMemory(store);
  const ids: string[] = [];
  let previous: { raw: StoredResponse; whole: StoredResponse } | undefined;
  for (let turn = 1; turn <= turns; turn += 1) {
    const id = `resp_${turn}`;
    const history: ChatMessage[] = [...(previous?.whole.conversation ?? []), { role: "user", content: `Turn ${turn}` }];
    const own = keptChainTurn(history, chainPrevious(previous?.raw, previous?.whole));
    const answer: ChatMessage = { role: "assistant", content: `Answer ${turn}` };
    const row: StoredResponse = {
      response: completedAnswer(id, `Answer ${turn}`, `msg_${turn}`),
      ...own,
      conversation: [...own.conversation, answer],
    };
    await kept.put(row);
    const raw = await kept.get(id);
    assert.ok(raw);
    previous = { raw, whole: await withChainHistory(kept, raw) };
    ids.push(id);
    clock.advance(1_000);
  }
  return { store, kept, clock, ids };
}

test("every 16th turn is kept whole; the others hold their own turn and the ids back to the last whole one", async () => {
  const { kept, ids } = await keptChain(40);
  const rows = await Promise.all(ids.map((id) => kept.get(id)));
  const wholeTurns = rows.flatMap((row, index) => (row?.chainHistory === undefined ? [index + 1] : []));
  assert.deepEqual(wholeTurns, [1, 1 + CHAIN_WHOLE_EVERY, 1 + 2 * CHAIN_WHOLE_EVERY]);
  assert.deepEqual(rows[15]?.chainHistory?.previousIds, ids.slice(0, 15));
  assert.equal(rows[15]?.conversation.length, 2, "turn 16 keeps its own input and answer");
  assert.equal(rows[16]?.conversation.length, 34, "turn 17 the whole chain");
  const whole = await withChainHistory(kept, rows[39] as StoredResponse);
  const texts = whole.conversation.map((message) => message.content);
  assert.deepEqual(texts.slice(0, 4), ["Turn 1", "Answer 1", "Turn 2", "Answer 2"]);
  assert.equal(texts.length, 80);
  assert.deepEqual(texts.slice(-2), ["Turn 40", "Answer 40"]);
  assert.equal(whole.chainHistory, undefined);
});

test("a link gone is the 400 previous_response_not_found naming it, not a shorter history", async () => {
  const { kept, ids } = await keptChain(6);
  await kept.delete(ids[2] ?? "");
  const sixth = (await kept.get(ids[5] ?? "")) as StoredResponse;
  await assert.rejects(withChainHistory(kept, sixth), (error: unknown) => {
    assert.ok(error instanceof GatewayError);
    assert.equal(error.status, 400);
    assert.equal(error.code, "previous_response_not_found");
    assert.match(error.message, /'resp_3' not found: response 'resp_6' continues it/);
    return true;
  });
  // Turn 2 reads only turn 1: still whole.
  const second = await withChainHistory(kept, (await kept.get(ids[1] ?? "")) as StoredResponse);
  assert.equal(second.conversation.length, 4);
});

test("a continuation kept stamps the rows it reads as kept now: max_age_ms takes the chain with its newest turn", async () => {
  // Turns a second apart; the chain's first turn is 4 s old when the last is kept, with max_age_ms 3 s.
  const { kept, clock, ids } = await keptChain(5, 3_000);
  clock.advance(1_500);
  const last = (await kept.get(ids[4] ?? "")) as StoredResponse;
  assert.equal(
    (await withChainHistory(kept, last)).conversation.length,
    10,
    "the first turn expired with a later one kept",
  );
  clock.advance(2_000);
  assert.equal(await kept.get(ids[0] ?? ""), undefined);
  assert.equal(await kept.get(ids[4] ?? ""), undefined, "the chain expires together");
});
