// The kept responses of turns on a conversation (`conversation` with `store: true`, the default) hold only what each
// turn brought (its input and output) and where the rest lives (the conversation, up to the item before the turn):
// a row no longer grows with the conversation. Through the real gateway and the openai SDK: a continuation by
// `previous_response_id` from a turn still sends everything before it, GET input_items still lists it (in pages, in
// both orders), an item deleted from the conversation later no longer shows; and turns kept before the change (the
// whole conversation in the row: test/fixtures/kept-conversation-turns-before.json) still read. State file and Redis.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, type TestContext, test } from "node:test";
import { oneProviderYaml, openAiClient, stateFileYaml, useGateway, useMock, words } from "../helpers/e2e.ts";
import { answerNumbered, listedTexts, redisRows, stateFileRows } from "../helpers/kept-responses-scene.ts";
import type { MockUpstream } from "../helpers/mock-upstream.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../helpers/redis-server.ts";

const FIXTURE = JSON.parse(
  readFileSync(new URL("../fixtures/kept-conversation-turns-before.json", import.meta.url), "utf8"),
) as { rows: { id: string; json: string }[] };

/** The text of each message the mock's last request sent. */
function lastSentTexts(mock: MockUpstream): string[] {
  const messages = (mock.requests.at(-1)?.body as { messages?: { content: unknown }[] } | undefined)?.messages ?? [];
  return messages.map((message) => String(message.content).split(" filler")[0] ?? "");
}

/** The gateway's state settings, and how many bytes the store keeps for a response's row. */
type Scene = (
  t: TestContext,
  mock: MockUpstream,
) => Promise<{ yaml: string; rowBytes: (id: string) => Promise<number> }>;

const SCENES: Record<string, { skip: string | false; state: Scene; putRows: (yaml: string) => Promise<void> }> = {
  "state file": {
    skip: false,
    state: async (_t, mock) => {
      const path = join(mkdtempSync(join(tmpdir(), "kept-turns-")), "state.db");
      return { yaml: stateFileYaml(mock, path), rowBytes: stateFileRows(path).rowBytes };
    },
    putRows: async (yaml) => {
      const path = JSON.parse(/path: (".*")/.exec(yaml)?.[1] ?? '""') as string;
      await stateFileRows(path).putRows(FIXTURE.rows);
    },
  },
  redis: {
    skip: isRedisInstalled() ? false : REDIS_MISSING,
    state: async (t, mock) => {
      const redis = await useRedisServer(t);
      return {
        yaml: `${oneProviderYaml(mock)}state:\n  path: ":memory:"\n  redis_url: ${redis.url}\n  redis_key_prefix: "kept-turns:"\n`,
        rowBytes: redisRows(redis.url, "kept-turns:").rowBytes,
      };
    },
    putRows: async (yaml) => {
      const url = /redis_url: (\S+)/.exec(yaml)?.[1] ?? "";
      await redisRows(url, "kept-turns:").putRows(FIXTURE.rows);
    },
  },
};

for (const [name, scene] of Object.entries(SCENES)) {
  describe(`kept responses of conversation turns: ${name}`, { skip: scene.skip }, () => {
    test("a turn's row holds its own items; continuation, input_items and a deleted item read the conversation", async (t) => {
      const mock = await useMock(t);
      answerNumbered(mock);
      const { yaml, rowBytes } = await scene.state(t, mock);
      const client = openAiClient(await useGateway(t, yaml));
      const conversation = await client.conversations.create({
        items: [{ type: "message", role: "user", content: "Opening" }],
      });
      const ids: string[] = [];
      for (let turn = 1; turn <= 12; turn += 1) {
        const input = `Turn ${turn}. ${words("filler", 40)}`;
        ids.push((await client.responses.create({ model: "m", conversation: conversation.id, input })).id);
      }
      // Each turn brings about 700 bytes: a row holding the whole conversation grows by that much per turn.
      const first = await rowBytes(ids[1] ?? "");
      const last = await rowBytes(ids[11] ?? "");
      assert.ok(
        first > 0 && last < first + 200,
        `turn 12's row ${last} bytes, turn 2's ${first}: it grows with the turn`,
      );
      const fifth = ids[4] ?? "";
      const before = ["Opening", "Turn 1.", "Answer 1.", "Turn 2.", "Answer 2.", "Turn 3.", "Answer 3.", "Turn 4."];
      const through = [...before, "Answer 4.", "Turn 5."];
      assert.deepEqual(await listedTexts(client, fifth, "asc"), through);
      assert.deepEqual(await listedTexts(client, fifth, "desc"), [...through].reverse());

      await client.responses.create({ model: "m", previous_response_id: fifth, input: "Branch" });
      assert.deepEqual(lastSentTexts(mock), [...through, "Answer 5.", "Branch"]);

      // An item deleted from the conversation later is gone from what the turn lists and what a continuation sends.
      const items = [];
      for await (const item of client.conversations.items.list(conversation.id, { order: "asc" })) items.push(item);
      await client.conversations.items.delete(items[0]?.id ?? "", { conversation_id: conversation.id });
      assert.deepEqual(await listedTexts(client, fifth, "asc"), through.slice(1));
      await client.responses.create({ model: "m", previous_response_id: fifth, input: "Again" });
      assert.deepEqual(lastSentTexts(mock), [...through.slice(1), "Answer 5.", "Again"]);
    });

    test("the item before a turn and the turn's first item both deleted: the earlier items still read", async (t) => {
      const mock = await useMock(t);
      answerNumbered(mock);
      const { yaml } = await scene.state(t, mock);
      const client = openAiClient(await useGateway(t, yaml));
      const conversation = await client.conversations.create({
        items: [{ type: "message", role: "user", content: "Opening" }],
      });
      const ids: string[] = [];
      for (let turn = 1; turn <= 3; turn += 1) {
        ids.push(
          (await client.responses.create({ model: "m", conversation: conversation.id, input: `Turn ${turn}.` })).id,
        );
      }
      // Turn 3 read the conversation through "Answer 2."; its own first item is "Turn 3.". Both deleted (a client
      // dropping the last exchange): the items before them are still what turn 3 followed.
      const items = [];
      for await (const item of client.conversations.items.list(conversation.id, { order: "asc" })) items.push(item);
      for (const index of [4, 5]) {
        await client.conversations.items.delete(items[index]?.id ?? "", { conversation_id: conversation.id });
      }
      const third = ids[2] ?? "";
      const kept = ["Opening", "Turn 1.", "Answer 1.", "Turn 2.", "Turn 3."];
      assert.deepEqual(await listedTexts(client, third, "asc"), kept);
      await client.responses.create({ model: "m", previous_response_id: third, input: "Again" });
      assert.deepEqual(lastSentTexts(mock), [...kept, "Answer 3.", "Again"]);
    });

    test("turns kept before the change (the whole conversation in the row) still list and continue", async (t) => {
      const mock = await useMock(t);
      answerNumbered(mock);
      const { yaml } = await scene.state(t, mock);
      await scene.putRows(yaml);
      const client = openAiClient(await useGateway(t, yaml));
      const second = FIXTURE.rows[1]?.id ?? "";
      const kept = ["Kept before: first", "Kept before: second", "Answered before.", "Kept before: third"];
      assert.deepEqual(await listedTexts(client, second, "asc"), kept);
      assert.deepEqual(await listedTexts(client, second, "desc"), [...kept].reverse());
      await client.responses.create({ model: "m", previous_response_id: second, input: "After the upgrade" });
      assert.deepEqual(lastSentTexts(mock), [...kept, "Answered before.", "After the upgrade"]);
    });
  });
}
