// A long `previous_response_id` chain in the stores that outlive the process (the embedded state file, Redis): what
// a kept response holds beyond its conversation (the ids its duplicate-item check reads, duplicate-items.ts) stays
// the same size turn after turn, so the store grows with the turns, not with their square (each response kept every
// id of its chain until 2026-12-07: turn n held n ids, 1,000 turns half a million), and an item of the chain's first
// turn sent again 300 turns on is still refused as OpenAI refuses it. The conversation itself is kept whole in each
// row (response-store.ts says why), so it is measured apart.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { describe, type TestContext, test } from "node:test";
import { Redis } from "ioredis";
import type OpenAI from "openai";
import {
  badRequest,
  chatRequests,
  oneProviderYaml,
  openAiClient,
  serveEveryChat,
  stateFileYaml,
  useGateway,
  useMock,
} from "../helpers/e2e.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../helpers/redis-server.ts";

const TURNS = 300;

/** A user message carrying the client's own id (the SDK types input messages without one; the API takes it). */
function userMessage(id: string, text: string): OpenAI.Responses.ResponseInputItem {
  return {
    type: "message",
    id,
    role: "user",
    content: [{ type: "input_text", text }],
  } as OpenAI.Responses.ResponseInputItem;
}

/** The bytes of a kept row beyond its conversation: the chain's bookkeeping. */
function bookkeepingBytes(json: string): number {
  const row = JSON.parse(json) as { conversation: unknown };
  return Buffer.byteLength(json) - Buffer.byteLength(JSON.stringify(row.conversation));
}

/**
 * TURNS turns, each continuing the last by `previous_response_id` with an input item carrying an id of the client's;
 * then the rows at turns 150 and 300 compared, the whole store's bookkeeping at 150 and 300 turns compared, and the
 * chain's first items sent again from its last turn.
 */
async function longChain(client: OpenAI, readRow: (id: string) => Promise<string | undefined>): Promise<void> {
  const ids: string[] = [];
  let previous: string | undefined;
  let first: OpenAI.Responses.Response | undefined;
  for (let turn = 1; turn <= TURNS; turn++) {
    const response = await client.responses.create({
      model: "m",
      input: [userMessage(`msg_client_${turn}`, `turn ${turn}`)],
      ...(previous === undefined ? {} : { previous_response_id: previous }),
    });
    first ??= response;
    previous = response.id;
    ids.push(response.id);
  }
  const sizes: number[] = [];
  for (const id of ids) {
    const json = await readRow(id);
    assert.ok(json !== undefined, `turn ${ids.indexOf(id) + 1} is kept`);
    sizes.push(bookkeepingBytes(json));
  }
  const half = TURNS / 2;
  const at150 = sizes[half - 1] ?? 0;
  const at300 = sizes[TURNS - 1] ?? 0;
  // Quadratic: turn 300's row held twice turn 150's ids (ratio ~2); linear: the same few ids (ratio ~1).
  assert.ok(at300 < at150 * 1.25, `bookkeeping bytes of one row: turn ${half} ${at150}, turn ${TURNS} ${at300}`);
  // The complexity guard: the store's bookkeeping after 300 turns against after 150 (linear ~2, quadratic ~4).
  const total = (count: number): number => sizes.slice(0, count).reduce((sum, size) => sum + size, 0);
  const ratio = total(TURNS) / total(half);
  assert.ok(
    ratio < 2.5,
    `bookkeeping bytes of the store: ${half} turns ${total(half)}, ${TURNS} turns ${total(TURNS)}`,
  );

  const last = previous ?? "";
  const firstAnswer = first?.output[0];
  assert.ok(first !== undefined && firstAnswer !== undefined);
  // The first turn's input, by the id the client gave it, by the id input_items lists it under, its answer inline
  // and by reference: each is in the chain 300 turns on.
  const listed = (await client.responses.inputItems.list(first.id, { order: "asc" })).data[0]?.id ?? "";
  const resent = [
    [userMessage("msg_client_1", "turn 1")],
    [userMessage(listed, "turn 1")],
    [firstAnswer as OpenAI.Responses.ResponseInputItem],
    [{ type: "item_reference" as const, id: firstAnswer.id ?? "" }],
  ];
  for (const input of resent) {
    const refused = await badRequest(client.responses.create({ model: "m", previous_response_id: last, input }));
    assert.equal(refused.code, "duplicate_item");
    assert.equal(refused.param, "input[0].id");
  }
  // An id the chain does not hold goes on.
  const next = await client.responses.create({
    model: "m",
    previous_response_id: last,
    input: [userMessage("msg_client_new", "new")],
  });
  assert.equal(next.status, "completed");
}

async function chainScene(t: TestContext, stateYaml: (yaml: string) => string): Promise<OpenAI> {
  const mock = await useMock(t);
  serveEveryChat(mock, "Fine.");
  const gateway = await useGateway(t, stateYaml(oneProviderYaml(mock)));
  t.after(() => assert.equal(chatRequests(mock).length, TURNS + 1));
  return openAiClient(gateway);
}

describe("responses API: a long previous_response_id chain", () => {
  test("embedded state file: each row's bookkeeping stays the same size; a turn-1 item is still a duplicate at turn 300", async (t) => {
    const statePath = join(mkdtempSync(join(tmpdir(), "long-chain-")), "state.db");
    const mock = await useMock(t);
    serveEveryChat(mock, "Fine.");
    const gateway = await useGateway(t, stateFileYaml(mock, statePath));
    const db = new DatabaseSync(statePath, { readOnly: true });
    t.after(() => db.close());
    const select = db.prepare("SELECT json FROM kept_responses WHERE id = ?");
    await longChain(openAiClient(gateway), async (id) => {
      const row = select.get(id);
      return row === undefined ? undefined : String(row.json);
    });
    assert.equal(chatRequests(mock).length, TURNS + 1);
  });

  test("redis: each row's bookkeeping stays the same size; a turn-1 item is still a duplicate at turn 300", {
    skip: isRedisInstalled() ? false : REDIS_MISSING,
  }, async (t) => {
    const redis = await useRedisServer(t);
    const client = await chainScene(
      t,
      (yaml) => `${yaml}state:\n  path: ":memory:"\n  redis_url: ${redis.url}\n  redis_key_prefix: "chain:"\n`,
    );
    const admin = new Redis(redis.url, { maxRetriesPerRequest: 0 });
    try {
      await longChain(client, async (id) => (await admin.hget("chain:{responses}:rows", id)) ?? undefined);
    } finally {
      admin.disconnect();
    }
  });
});
