// Conversations kept by the gateway before they had a log (test/fixtures/conversations-before-log.json: the whole
// conversation in one row, as a88e9525 wrote it to the state file and to Redis) keep working after the upgrade,
// through the real gateway and the openai SDK: listed in pages in both orders, continued by `conversation` (their
// items go upstream, the turn is added), refused for an id the client gave one of their items (duplicate check),
// an item deleted, the conversation deleted. With the state file and with Redis.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, type TestContext, test } from "node:test";
import type OpenAI from "openai";
import { ManualClock } from "../../src/clock.ts";
import type { KeptResponseRow } from "../../src/protocols/responses/conversation-shapes.ts";
import { EmbeddedKeptResponses, KEPT_CONVERSATIONS } from "../../src/state/embedded-kept-responses.ts";
import { RedisKeptResponses } from "../../src/state/redis-kept-responses.ts";
import { badRequest, oneProviderYaml, openAiClient, serveEveryChat, useGateway, useMock } from "../helpers/e2e.ts";
import type { MockUpstream } from "../helpers/mock-upstream.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../helpers/redis-server.ts";

const FIXTURE = JSON.parse(
  readFileSync(new URL("../fixtures/conversations-before-log.json", import.meta.url), "utf8"),
) as { rows: { id: string; owner: string; json: string }[] };

/** The fixture's rows, as the earlier version put them (its clock: the rows are fresh now). */
const ROWS: KeptResponseRow[] = FIXTURE.rows.map((row) => ({
  id: row.id,
  json: row.json,
  itemIds: [],
  ...(row.owner === "" ? {} : { owner: row.owner }),
}));
type InputItem = OpenAI.Responses.ResponseInputItem;

const LIMITS = { maxEntries: 10_000, maxBytes: 64 * 1024 * 1024, maxAgeMs: 24 * 3_600_000 };

async function allItemIds(client: OpenAI, id: string, order: "asc" | "desc"): Promise<string[]> {
  const ids: string[] = [];
  for await (const item of client.conversations.items.list(id, { order, limit: 2 })) ids.push(item.id ?? "");
  return ids;
}

/** The state a gateway starts on, with the fixture's rows already in it. */
type Scene = (t: TestContext, mock: MockUpstream) => Promise<string>;

const SCENES: Record<string, { skip: string | false; state: Scene }> = {
  "state file": {
    skip: false,
    state: async (_t, mock) => {
      const path = join(mkdtempSync(join(tmpdir(), "conv-before-")), "state.db");
      const rows = new EmbeddedKeptResponses(path, LIMITS, new ManualClock(Date.now()), undefined, KEPT_CONVERSATIONS);
      for (const row of ROWS) await rows.put(row);
      await rows.close();
      return `${oneProviderYaml(mock)}state:\n  path: ${JSON.stringify(path)}\n`;
    },
  },
  redis: {
    skip: isRedisInstalled() ? false : REDIS_MISSING,
    state: async (t, mock) => {
      const redis = await useRedisServer(t);
      const prefix = "conv-before:";
      const rows = new RedisKeptResponses(
        redis.url,
        prefix,
        false,
        LIMITS,
        new ManualClock(Date.now()),
        "conversations",
      );
      await rows.connect();
      for (const row of ROWS) await rows.put(row);
      await rows.close();
      return `${oneProviderYaml(mock)}state:\n  path: ":memory:"\n  redis_url: ${redis.url}\n  redis_key_prefix: "${prefix}"\n`;
    },
  },
};

for (const [name, scene] of Object.entries(SCENES)) {
  describe(`conversations kept before the log: ${name}`, { skip: scene.skip }, () => {
    test("list, continue with `conversation`, duplicate check, delete an item, delete", async (t) => {
      const mock = await useMock(t);
      serveEveryChat(mock, "Answered.");
      const gateway = await useGateway(t, await scene.state(t, mock));
      const client = openAiClient(gateway);
      assert.deepEqual((await client.conversations.retrieve("conv_1")).metadata, { topic: "before the log" });
      assert.deepEqual(await allItemIds(client, "conv_1", "asc"), ["msg_1", "msg_2", "fc_1", "fco_1"]);
      assert.deepEqual(await allItemIds(client, "conv_1", "desc"), ["fco_1", "fc_1", "msg_2", "msg_1"]);

      // The id the client gave msg_2 when it was added is still one the conversation holds.
      const refused = await badRequest(
        client.responses.create({
          model: "m",
          conversation: "conv_1",
          // The SDK types input messages without an id; the API takes one.
          input: [{ id: "msg_given_by_client", type: "message", role: "user", content: "again" } as InputItem],
        }),
      );
      assert.equal(refused.code, "duplicate_item");

      const answer = await client.responses.create({ model: "m", conversation: "conv_1", input: "Next" });
      assert.equal(answer.output_text, "Answered.");
      const sent = (mock.requests.at(-1)?.body as { messages?: { role: string }[] } | undefined)?.messages ?? [];
      assert.deepEqual(
        sent.map((message) => message.role),
        ["user", "assistant", "tool", "user"],
        "the earlier items went upstream before the input",
      );
      const listed = await allItemIds(client, "conv_1", "asc");
      assert.equal(listed.length, 6);
      assert.deepEqual(listed.slice(0, 4), ["msg_1", "msg_2", "fc_1", "fco_1"]);

      await client.conversations.items.delete("msg_1", { conversation_id: "conv_1" });
      assert.deepEqual((await allItemIds(client, "conv_1", "asc")).slice(0, 3), ["msg_2", "fc_1", "fco_1"]);
      assert.equal((await client.conversations.delete("conv_1")).deleted, true);
      await assert.rejects(client.conversations.retrieve("conv_1"), { status: 404 });
      assert.deepEqual(await allItemIds(client, "conv_2", "asc"), ["msg_4"]);
    });
  });
}
