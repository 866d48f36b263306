// prefetch over the persistent stores (the embedded file, Redis): a continuation whose input carries many ids that
// the store's index gives to one response reads that response once, not once per id. Each read is its whole row (a
// whole conversation, parsed): 2,000 ids of a 2,000-message turn were 2,000 parses of that row at once.
// And each store's item index keeps one response per id of a chain: an id two branches bring stays found in both.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../../../test/helpers/redis-server.ts";
import { ManualClock } from "../../clock.ts";
import { InvalidRequestError } from "../../errors/gateway-error.ts";
import { EmbeddedKeptResponses } from "../../state/embedded-kept-responses.ts";
import { RedisKeptResponses } from "../../state/redis-kept-responses.ts";
import { completedAnswer } from "../__fixtures__/fixtures.ts";
import { keptChainTurn } from "./kept-chain-history.ts";
import type { KeptResponseRows } from "./kept-response-rows.ts";
import { inRows, type KeptResponses } from "./kept-responses.ts";
import { prefetch } from "./prefetch.ts";
import { toChatRequest } from "./request-mapping.ts";

const LIMITS = { maxEntries: 100, maxBytes: 100_000_000, maxAgeMs: 3_600_000 };
let prefixCounter = 0;

const BACKENDS: Record<string, (t: TestContext) => Promise<KeptResponseRows>> = {
  embedded: async (t) => {
    const rows = new EmbeddedKeptResponses(join(mkdtempSync(join(tmpdir(), "pf-")), "state.db"), LIMITS, clock());
    t.after(() => rows.close());
    return rows;
  },
  redis: async (t) => {
    const server = await useRedisServer(t);
    const rows = new RedisKeptResponses(server.url, `pf${prefixCounter++}:`, false, LIMITS, clock());
    await rows.connect();
    t.after(() => rows.close());
    return rows;
  },
};

function clock(): ManualClock {
  return new ManualClock();
}

const IDS = Array.from({ length: 2_000 }, (_, index) => `msg_client_${index}`);
const itemsOf = (ids: readonly string[]) =>
  ids.map((id) => ({ type: "message", id, role: "user", content: [{ type: "input_text", text: id }] }));

for (const [name, backend] of Object.entries(BACKENDS)) {
  test(`${name}: a continuation carrying many ids of one kept response reads that response once`, async (t) => {
    if (name === "redis" && !isRedisInstalled()) return t.skip(REDIS_MISSING);
    const rows = await backend(t);
    const kept = inRows(rows, () => assert.fail("no put error expected"));
    let previous: string | undefined;
    for (const [index, input] of [itemsOf(IDS), itemsOf(["msg_other"])].entries()) {
      const body = { model: "m", input, ...(previous === undefined ? {} : { previous_response_id: previous }) };
      const translated = toChatRequest(body, await prefetch(kept, body));
      const id = `resp_turn${index}`;
      const conversation = [...translated.conversation, { role: "assistant" as const, content: id }];
      const chain = translated.chain === undefined ? {} : { chain: translated.chain };
      assert.equal(await kept.put({ response: completedAnswer(id, id), conversation, ...chain }), true);
      previous = id;
    }
    const counted = countingReads(rows);
    // Its ids, and the ids `input_items` lists for its items (msg_<response id less resp_>_<index>).
    const listed = IDS.map((_, index) => `msg_turn0_${index}`);
    for (const ids of [IDS, listed]) {
      counted.rowsRead = 0;
      const body = { model: "m", previous_response_id: previous, input: itemsOf(ids) };
      const lookup = await prefetch(counted.kept, body);
      assert.throws(
        () => toChatRequest(body, lookup),
        (error) => error instanceof InvalidRequestError,
      );
      // The previous response and the one that brought the ids: each read once.
      assert.ok(counted.rowsRead <= 2, `${ids[0]}: ${counted.rowsRead} rows read`);
    }
  });
}

for (const [name, backend] of Object.entries(BACKENDS)) {
  test(`${name}: many ids of a continuation kept as a pointer: each row of its chain read once`, async (t) => {
    if (name === "redis" && !isRedisInstalled()) return t.skip(REDIS_MISSING);
    const rows = await backend(t);
    const kept = inRows(rows, () => assert.fail("no put error expected"));
    // resp_root (whole), resp_brought (its turn, pointing to resp_root) brought the ids, resp_last continues it.
    let previous: string | undefined;
    for (const [id, input] of [
      ["resp_root", itemsOf(["msg_root"])],
      ["resp_brought", itemsOf(IDS.slice(0, 200))],
      ["resp_last", itemsOf(["msg_last"])],
    ] as const) {
      const body = { model: "m", input, ...(previous === undefined ? {} : { previous_response_id: previous }) };
      const lookup = await prefetch(kept, body);
      const translated = toChatRequest(body, lookup);
      const answer = [...translated.conversation, { role: "assistant" as const, content: id }];
      const pointing = keptChainTurn(answer, lookup.previousTurn);
      const chain = translated.chain === undefined ? {} : { chain: translated.chain };
      assert.equal(await kept.put({ response: completedAnswer(id, id), ...pointing, ...chain }), true);
      previous = id;
    }
    assert.ok(JSON.parse((await rows.get("resp_brought")) ?? "{}").chainHistory, "kept as a pointer");
    const counted = countingReads(rows);
    const body = { model: "m", previous_response_id: previous, input: itemsOf(IDS.slice(0, 200)) };
    const lookup = await prefetch(counted.kept, body);
    assert.throws(
      () => toChatRequest(body, lookup),
      (error) => error instanceof InvalidRequestError,
    );
    // resp_last, resp_brought, resp_root: 3 rows, however many ids name resp_brought's turn.
    assert.ok(counted.rowsRead <= 3, `${counted.rowsRead} rows read`);
  });
}

/** `rows` as kept responses that count the rows read from the store (by id or by item). */
function countingReads(rows: KeptResponseRows): { kept: KeptResponses; rowsRead: number } {
  const counted = { kept: inRows(rows, () => {}), rowsRead: 0 };
  const count = (json: string | undefined): string | undefined => {
    if (json !== undefined) counted.rowsRead++;
    return json;
  };
  const counting: KeptResponseRows = {
    put: (row) => rows.put(row),
    get: async (id) => count(await rows.get(id)),
    getByItem: async (id) => count(await rows.getByItem(id)),
    delete: (id) => rows.delete(id),
  };
  if (rows.getIdsByItems !== undefined) counting.getIdsByItems = rows.getIdsByItems.bind(rows);
  counted.kept = inRows(counting, () => assert.fail("no put error expected"));
  return counted;
}

for (const [name, backend] of Object.entries(BACKENDS)) {
  test(`${name}: an id two branches of one chain both brought is refused in each branch, turns later`, async (t) => {
    if (name === "redis" && !isRedisInstalled()) return t.skip(REDIS_MISSING);
    const kept = inRows(await backend(t), () => assert.fail("no put error expected"));
    const turn = async (previous: string | undefined, ids: string[], id: string) => {
      const body = {
        model: "m",
        input: itemsOf(ids),
        ...(previous === undefined ? {} : { previous_response_id: previous }),
      };
      const translated = toChatRequest(body, await prefetch(kept, body));
      const conversation = [...translated.conversation, { role: "assistant" as const, content: id }];
      const chain = translated.chain === undefined ? {} : { chain: translated.chain };
      assert.equal(await kept.put({ response: completedAnswer(id, id), conversation, ...chain }), true);
    };
    await turn(undefined, ["msg_client_0"], "resp_root");
    for (const branch of ["a", "b"]) {
      await turn("resp_root", ["msg_client_x"], `resp_${branch}1`);
      await turn(`resp_${branch}1`, [`msg_client_${branch}`], `resp_${branch}2`);
    }
    for (const branch of ["a", "b"]) {
      await assert.rejects(turn(`resp_${branch}2`, ["msg_client_x"], "resp_never"), InvalidRequestError, branch);
    }
  });
}
