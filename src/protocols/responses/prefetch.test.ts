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
import type { KeptResponseRows } from "./kept-response-rows.ts";
import { inRows } from "./kept-responses.ts";
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
    let rowsRead = 0;
    const counting: KeptResponseRows = {
      put: (row) => rows.put(row),
      get: async (id) => {
        const json = await rows.get(id);
        if (json !== undefined) rowsRead++;
        return json;
      },
      getByItem: async (id) => {
        const json = await rows.getByItem(id);
        if (json !== undefined) rowsRead++;
        return json;
      },
      delete: (id) => rows.delete(id),
    };
    if (rows.getIdsByItems !== undefined) counting.getIdsByItems = rows.getIdsByItems.bind(rows);
    const counted = inRows(counting, () => assert.fail("no put error expected"));
    // Its ids, and the ids `input_items` lists for its items (msg_<response id less resp_>_<index>).
    const listed = IDS.map((_, index) => `msg_turn0_${index}`);
    for (const ids of [IDS, listed]) {
      rowsRead = 0;
      const body = { model: "m", previous_response_id: previous, input: itemsOf(ids) };
      const lookup = await prefetch(counted, body);
      assert.throws(
        () => toChatRequest(body, lookup),
        (error) => error instanceof InvalidRequestError,
      );
      // The previous response and the one that brought the ids: each read once.
      assert.ok(rowsRead <= 2, `${ids[0]}: ${rowsRead} rows read`);
    }
  });
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
