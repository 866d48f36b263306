// The kept responses of a chain by `previous_response_id` hold their own turn and the ids of the rows before it back
// to the last one kept whole (every 16th turn): a row no longer grows with the chain (src/protocols/responses/
// kept-chain-history.ts). Through the real gateway and the openai SDK on each store (memory, state file, Redis): a
// 40-turn chain still sends its whole history upstream, each request the previous one's messages exactly plus the
// turn; input_items pages across the pointers; eviction takes a chain's rows together (a continuation stamps the rows
// it reads as written now); a link deleted or evicted is the 400 naming it, never a shorter history; rows the
// previous version kept whole (test/fixtures/kept-chain-turns-before.json) still list and continue.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, type TestContext, test } from "node:test";
import type OpenAI from "openai";
import type { ResponseInputItem } from "openai/resources/responses/responses";
import { toolCallCompletion } from "../helpers/chat-tool-calls.ts";
import { badRequest, CHAT_ROUTE, oneProviderYaml, openAiClient, useGateway, useMock, words } from "../helpers/e2e.ts";
import { answerNumbered, listedTexts, redisRows, stateFileRows } from "../helpers/kept-responses-scene.ts";
import { chatCompletion, type MockUpstream } from "../helpers/mock-upstream.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../helpers/redis-server.ts";

const FIXTURE = JSON.parse(
  readFileSync(new URL("../fixtures/kept-chain-turns-before.json", import.meta.url), "utf8"),
) as { rows: { id: string; json: string }[] };

function sentMessages(mock: MockUpstream, index: number): unknown[] {
  return (mock.requests[index]?.body as { messages?: unknown[] } | undefined)?.messages ?? [];
}

/** The text of each message a request sent, without the filler. */
function textsOf(messages: readonly unknown[]): string[] {
  return messages.map((message) => String((message as { content: unknown }).content).split(" filler")[0] ?? "");
}

/** The texts a chain's turn `n` (from 1) sends: every turn before with its answer, then its own. */
function historyThrough(turn: number): string[] {
  const texts: string[] = [];
  for (let earlier = 1; earlier < turn; earlier += 1) texts.push(`Turn ${earlier}.`, `Answer ${earlier}.`);
  return [...texts, `Turn ${turn}.`];
}

async function chain(client: OpenAI, turns: number, from?: string): Promise<string[]> {
  const ids: string[] = [];
  let previous = from;
  for (let turn = 1; turn <= turns; turn += 1) {
    const input = `Turn ${turn}. ${words("filler", 40)}`;
    const created = await client.responses.create({
      model: "m",
      input,
      ...(previous === undefined ? {} : { previous_response_id: previous }),
    });
    ids.push(created.id);
    previous = created.id;
  }
  return ids;
}

type Scene = (
  t: TestContext,
  mock: MockUpstream,
  store?: string,
) => Promise<{ yaml: string; rowBytes?: (id: string) => Promise<number>; putRows?: () => Promise<void> }>;

const SCENES: Record<string, { skip: string | false; state: Scene }> = {
  memory: {
    skip: false,
    state: async (_t, mock, store = "") => ({ yaml: `${oneProviderYaml(mock)}${store}state:\n  path: ":memory:"\n` }),
  },
  "state file": {
    skip: false,
    state: async (_t, mock, store = "") => {
      const path = join(mkdtempSync(join(tmpdir(), "kept-chain-")), "state.db");
      const { rowBytes, putRows } = stateFileRows(path);
      return {
        yaml: `${oneProviderYaml(mock)}${store}state:\n  path: ${JSON.stringify(path)}\n`,
        rowBytes,
        putRows: () => putRows(FIXTURE.rows),
      };
    },
  },
  redis: {
    skip: isRedisInstalled() ? false : REDIS_MISSING,
    state: async (t, mock, store = "") => {
      const redis = await useRedisServer(t);
      const { rowBytes, putRows } = redisRows(redis.url, "kept-chain:");
      return {
        yaml: `${oneProviderYaml(mock)}${store}state:\n  path: ":memory:"\n  redis_url: ${redis.url}\n  redis_key_prefix: "kept-chain:"\n`,
        rowBytes,
        putRows: () => putRows(FIXTURE.rows),
      };
    },
  },
};

/** A `responses.store` section with these bounds. */
function storeYaml(maxBytes: number): string {
  return `responses:\n  store:\n    max_bytes: ${maxBytes}\n`;
}

for (const [name, scene] of Object.entries(SCENES)) {
  describe(`kept responses of a chain: ${name}`, { skip: scene.skip }, () => {
    test("a 40-turn chain sends its whole history each turn; rows stay small; input_items pages across pointers", async (t) => {
      const mock = await useMock(t);
      answerNumbered(mock);
      const { yaml, rowBytes } = await scene.state(t, mock);
      const client = openAiClient(await useGateway(t, yaml));
      const ids = await chain(client, 40);
      for (let turn = 1; turn <= 40; turn += 1) {
        const sent = sentMessages(mock, turn - 1);
        assert.deepEqual(textsOf(sent), historyThrough(turn), `turn ${turn}'s history`);
        // The same request as when every row held the whole chain: the previous turn's messages, as they were sent,
        // then its answer and the new input.
        if (turn > 1) assert.deepEqual(sent.slice(0, -2), sentMessages(mock, turn - 2), `turn ${turn}'s prefix`);
      }
      if (rowBytes !== undefined) {
        // Each turn brings ~600 bytes: a whole row at turn 30 holds ~18 KB; its own turn and 13 ids under 3 KB.
        const second = await rowBytes(ids[1] ?? "");
        const thirtieth = await rowBytes(ids[29] ?? "");
        assert.ok(thirtieth < second + 1_000, `turn 30's row ${thirtieth} bytes, turn 2's ${second}`);
      }
      const twentieth = ids[19] ?? "";
      const listed = [...historyThrough(20)];
      assert.deepEqual(await listedTexts(client, twentieth, "asc", 7), listed);
      assert.deepEqual(await listedTexts(client, twentieth, "desc", 7), [...listed].reverse());
    });

    test("an agent's tool loop of 20 calls: each turn sends the previous request's messages exactly, then the call and its output", async (t) => {
      const mock = await useMock(t);
      let count = 0;
      mock.setDefault(CHAT_ROUTE, (recorded) => {
        count += 1;
        const model = (recorded.body as { model: string }).model;
        const call = { id: `call_${count}`, name: "read_file", arguments: JSON.stringify({ path: `f${count}` }) };
        return { kind: "json", body: toolCallCompletion(model, [call]) };
      });
      const { yaml } = await scene.state(t, mock);
      const client = openAiClient(await useGateway(t, yaml));
      const tools = [
        {
          type: "function" as const,
          name: "read_file",
          parameters: { type: "object", properties: { path: { type: "string" } } },
          strict: false,
        },
      ];
      let response = await client.responses.create({ model: "m", tools, input: "Read the files." });
      for (let turn = 2; turn <= 20; turn += 1) {
        const call = response.output.find((item) => item.type === "function_call");
        assert.ok(call?.type === "function_call");
        response = await client.responses.create({
          model: "m",
          tools,
          previous_response_id: response.id,
          input: [
            { type: "function_call_output", call_id: call.call_id, output: `contents ${turn} ${words("x", 30)}` },
          ],
        });
        const sent = sentMessages(mock, turn - 1);
        assert.deepEqual(sent.slice(0, -2), sentMessages(mock, turn - 2), `turn ${turn}'s prefix`);
        assert.equal((sent.at(-1) as { role: string }).role, "tool");
        assert.equal((sent.at(-2) as { tool_calls?: { id: string }[] }).tool_calls?.[0]?.id, `call_${turn - 1}`);
      }
      assert.equal(sentMessages(mock, 19).length, 1 + 2 * 19);
    });

    test("a link deleted mid-chain: the turns reading it are the 400 naming it; a whole row after it is not", async (t) => {
      const mock = await useMock(t);
      answerNumbered(mock);
      const { yaml } = await scene.state(t, mock);
      const client = openAiClient(await useGateway(t, yaml));
      const ids = await chain(client, 18);
      const fifth = ids[4] ?? "";
      await client.responses.delete(fifth);
      const sentBefore = mock.requests.length;
      const error = await badRequest(
        client.responses.create({ model: "m", previous_response_id: ids[9] ?? "", input: "More." }),
      );
      assert.equal(error.code, "previous_response_not_found");
      assert.match(error.message, new RegExp(`'${fifth}' not found: response '${ids[9]}' continues it`));
      assert.equal(mock.requests.length, sentBefore, "nothing sent upstream without its history");
      const listing = await badRequest(client.responses.inputItems.list(ids[9] ?? "").then((page) => page.data));
      assert.equal(listing.code, "previous_response_not_found");
      // Turn 17 holds the whole chain again (every 16th), and turn 18 reads from it alone.
      await client.responses.create({ model: "m", previous_response_id: ids[17] ?? "", input: "Turn 19." });
      assert.deepEqual(textsOf(sentMessages(mock, mock.requests.length - 1)), historyThrough(19));
    });

    test("eviction under max_bytes takes a chain's rows together, and an evicted link is the 400 naming it", async (t) => {
      const mock = await useMock(t);
      answerNumbered(mock);
      // About 2.5 KB per row: 16 KB hold six or so.
      const { yaml } = await scene.state(t, mock, storeYaml(16_000));
      const client = openAiClient(await useGateway(t, yaml));
      const [first, second, third] = await chain(client, 3);
      const other = (await client.responses.create({ model: "m", input: `Other. ${words("filler", 40)}` })).id;
      // The chain's fourth turn stamps the three rows it reads as written now: they are newer than `other`.
      const fourth = (
        await client.responses.create({
          model: "m",
          previous_response_id: third ?? "",
          input: `Turn 4. ${words("filler", 40)}`,
        })
      ).id;
      const isKept = async (id: string): Promise<boolean> =>
        client.responses.retrieve(id).then(
          () => true,
          () => false,
        );
      let count = 0;
      while (await isKept(other)) {
        await client.responses.create({ model: "m", input: `Filler ${count}. ${words("filler", 40)}` });
        count += 1;
        assert.ok(count < 20, "never evicted");
      }
      // `other`, the oldest after the stamp, went first: the chain's rows are all there, and it continues whole.
      for (const id of [first, second, third, fourth]) assert.ok(await isKept(id ?? ""), `${id} evicted before other`);
      await client.responses.create({ model: "m", previous_response_id: fourth, input: "Turn 5." });
      assert.deepEqual(textsOf(sentMessages(mock, mock.requests.length - 1)).slice(0, 3), [
        "Turn 1.",
        "Answer 1.",
        "Turn 2.",
      ]);
      // Evicted further, the chain's first row goes: a continuation from its fourth is the 400 naming it.
      while (await isKept(first ?? "")) {
        await client.responses.create({ model: "m", input: `Filler ${count}. ${words("filler", 40)}` });
        count += 1;
        assert.ok(count < 40, "never evicted");
      }
      const error = await badRequest(client.responses.create({ model: "m", previous_response_id: fourth, input: "x" }));
      assert.equal(error.code, "previous_response_not_found");
      assert.match(error.message, new RegExp(`'${first}' not found`));
    });

    test("links evicted while the continuation's upstream call runs: its answer is kept whole, and continues", async (t) => {
      const mock = await useMock(t);
      let count = 0;
      let release: () => void = () => {};
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      mock.setDefault(CHAT_ROUTE, (recorded) => {
        count += 1;
        const body = chatCompletion(
          `Answer ${count}. ${words("filler", 40)}`,
          (recorded.body as { model: string }).model,
        );
        const last = (recorded.body as { messages: { content: unknown }[] }).messages.at(-1);
        if (!String(last?.content).startsWith("Turn 4.")) return { kind: "json", body };
        return {
          kind: "handler",
          handle: async (_request, response) => {
            await held;
            response.writeHead(200, { "content-type": "application/json" });
            response.end(JSON.stringify(body));
          },
        };
      });
      const { yaml } = await scene.state(t, mock, storeYaml(16_000));
      const client = openAiClient(await useGateway(t, yaml));
      const [first, , third] = await chain(client, 3);
      const isKept = async (id: string): Promise<boolean> =>
        client.responses.retrieve(id).then(
          () => true,
          () => false,
        );
      const sentBefore = mock.requests.length;
      const fourth = client.responses.create({
        model: "m",
        previous_response_id: third ?? "",
        input: `Turn 4. ${words("filler", 40)}`,
      });
      while (mock.requests.length === sentBefore) await new Promise((resolve) => setTimeout(resolve, 5));
      // Meanwhile other answers evict the chain's rows (the oldest): the fourth turn read them before they went.
      for (let filler = 0; await isKept(first ?? ""); filler += 1) {
        assert.ok(filler < 40, "never evicted");
        await client.responses.create({ model: "m", input: `Filler ${filler}. ${words("filler", 40)}` });
      }
      release();
      const fourthId = (await fourth).id;
      // Its answer was made from the whole chain: kept pointing to rows gone, the next turn could not continue.
      await client.responses.create({ model: "m", previous_response_id: fourthId, input: "Turn 5." });
      assert.deepEqual(textsOf(sentMessages(mock, mock.requests.length - 1)), historyThrough(5));
    });

    test("an item of a turn whose own link is deleted, sent again after a later whole row: still a duplicate", async (t) => {
      const mock = await useMock(t);
      answerNumbered(mock);
      const { yaml } = await scene.state(t, mock);
      const client = openAiClient(await useGateway(t, yaml));
      const ids = await chain(client, 20);
      const fifth = await client.responses.retrieve(ids[4] ?? "");
      await client.responses.delete(ids[0] ?? "");
      const error = await badRequest(
        client.responses.create({
          model: "m",
          previous_response_id: ids[19] ?? "",
          input: [{ type: "item_reference", id: fifth.output[0]?.id ?? "" }],
        }),
      );
      assert.equal(error.code, "duplicate_item");
      // An id input_items gave a turn before the whole row (listed before its link went), sent inline: the same.
      const fifthListed = `msg_${(ids[4] ?? "").replace(/^resp_/, "")}_0`;
      const inline = await badRequest(
        client.responses.create({
          model: "m",
          previous_response_id: ids[19] ?? "",
          // The SDK types an input message without an id; input_items lists them with one.
          input: [{ type: "message", role: "user", id: fifthListed, content: "Turn 1." } as ResponseInputItem],
        }),
      );
      assert.equal(inline.code, "duplicate_item");
    });

    test("rows kept whole by the previous version still list and continue, and a chain goes on from them", {
      skip: scene.state === SCENES.memory?.state ? "a process's memory holds no earlier version's rows" : false,
    }, async (t) => {
      const mock = await useMock(t);
      answerNumbered(mock);
      const { yaml, putRows } = await scene.state(t, mock);
      await putRows?.();
      const client = openAiClient(await useGateway(t, yaml));
      const third = FIXTURE.rows[2]?.id ?? "";
      const before = ["Chained before: first", "Answered before.", "Chained before: second", "Answered before."];
      assert.deepEqual(await listedTexts(client, third, "asc", 2), [...before, "Chained before: third"]);
      const [next, after] = await chain(client, 2, third);
      const whole = [...before, "Chained before: third", "Answered before."];
      assert.deepEqual(textsOf(sentMessages(mock, 0)), [...whole, "Turn 1."]);
      assert.deepEqual(textsOf(sentMessages(mock, 1)), [...whole, "Turn 1.", "Answer 1.", "Turn 2."]);
      assert.deepEqual(
        await listedTexts(client, after ?? "", "desc", 3),
        [...whole, "Turn 1.", "Answer 1.", "Turn 2."].reverse(),
      );
      assert.ok(next);
    });
  });
}
