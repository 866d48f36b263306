// The store of kept responses and conversations is shared by every client of a gateway; one named client writing
// past its bounds (conversation creates cost no upstream call) must evict its own oldest rows, not another client's
// (docs/protocols.md "Kept responses"). Driven with the openai SDK over loopback against each store: the state file,
// Redis (a real redis-server) and memory. Also: creates and added items count against a named client's own `rpm`.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, type TestContext, test } from "node:test";
import OpenAI from "openai";
import { CHAT_ROUTE, chatRequests, openAiClient, useGateway, useMock, VENDOR_MODEL_ID } from "../helpers/e2e.ts";
import { chatCompletion, type MockUpstream } from "../helpers/mock-upstream.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../helpers/redis-server.ts";

const MAX_ENTRIES = 5;

function yamlFor(mock: MockUpstream, state: string, aliceLimits = ""): string {
  return `server:
  port: 0
  host: 127.0.0.1
  api_keys:
    - { key: alice-key-0123456789, name: alice${aliceLimits} }
    - { key: bob-key-0123456789, name: bob }
responses:
  store:
    max_entries: ${MAX_ENTRIES}
providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha
    models:
      m: { id: ${VENDOR_MODEL_ID} }
state:
${state}
`;
}

const STATES: Record<string, { skip: string | false; state: (t: TestContext) => Promise<string> }> = {
  "state file": {
    skip: false,
    state: async () => `  path: ${JSON.stringify(join(mkdtempSync(join(tmpdir(), "fair-")), "state.db"))}`,
  },
  redis: {
    skip: isRedisInstalled() ? false : REDIS_MISSING,
    state: async (t) =>
      `  path: ":memory:"\n  redis_url: ${(await useRedisServer(t)).url}\n  redis_key_prefix: "fair:"`,
  },
  memory: { skip: false, state: async () => `  path: ":memory:"` },
};

for (const [name, { skip, state }] of Object.entries(STATES)) {
  describe(`store fairness: ${name}`, { skip }, () => {
    test("one client flooding conversation creates and kept responses past the bounds leaves another client's readable", async (t) => {
      const mock = await useMock(t);
      mock.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("ok", VENDOR_MODEL_ID) });
      const gateway = await useGateway(t, yamlFor(mock, await state(t)));
      const alice = openAiClient(gateway, "alice-key-0123456789");
      const bob = openAiClient(gateway, "bob-key-0123456789");
      const bobsConversation = await bob.conversations.create({ items: [{ role: "user", content: "bob's note" }] });
      const bobsAnswer = await bob.responses.create({ model: "m", input: "bob asks" });

      const alicesConversations: string[] = [];
      for (let i = 0; i < 3 * MAX_ENTRIES; i++) alicesConversations.push((await alice.conversations.create({})).id);
      const alicesAnswers: string[] = [];
      for (let i = 0; i < 3 * MAX_ENTRIES; i++) {
        alicesAnswers.push((await alice.responses.create({ model: "m", input: `alice ${i}` })).id);
      }

      // Bob's conversation and kept response are still there, and usable.
      const items = await bob.conversations.items.list(bobsConversation.id);
      assert.equal(items.data.length, 1, "alice's creates evicted bob's conversation");
      assert.equal((await bob.responses.retrieve(bobsAnswer.id)).id, bobsAnswer.id, "alice evicted bob's answer");
      const before = chatRequests(mock).length;
      await bob.responses.create({ model: "m", previous_response_id: bobsAnswer.id, input: "and then?" });
      const sent = (chatRequests(mock)[before]?.body ?? {}) as { messages?: { content: unknown }[] };
      assert.deepEqual(
        sent.messages?.map((message) => message.content),
        ["bob asks", "ok", "and then?"],
        "bob's continuation lost its history",
      );
      // Alice lost her own oldest, kept her newest.
      const notFound = (error: unknown) => error instanceof OpenAI.NotFoundError;
      await assert.rejects(alice.conversations.retrieve(alicesConversations[0] ?? ""), notFound);
      assert.equal((await alice.conversations.retrieve(alicesConversations.at(-1) ?? "")).object, "conversation");
      await assert.rejects(alice.responses.retrieve(alicesAnswers[0] ?? ""), notFound);
      assert.equal((await alice.responses.retrieve(alicesAnswers.at(-1) ?? "")).status, "completed");
    });
  });
}

test("a named client's `rpm` counts conversation creates and added items; over it, a 429 and nothing is kept; another client is not held back", async (t) => {
  const mock = await useMock(t);
  const gateway = await useGateway(t, yamlFor(mock, `  path: ":memory:"`, ", limits: { rpm: 3 }"));
  const alice = openAiClient(gateway, "alice-key-0123456789");
  const bob = openAiClient(gateway, "bob-key-0123456789");
  const first = await alice.conversations.create({});
  await alice.conversations.create({});
  await alice.conversations.items.create(first.id, { items: [{ role: "user", content: "one" }] });
  const refused = await alice.conversations.create({}).then(
    () => undefined,
    (error: unknown) => error,
  );
  assert.ok(refused instanceof OpenAI.RateLimitError, `expected a 429, got ${String(refused)}`);
  assert.match(refused.message, /Client `alice` is over its rpm budget/);
  assert.ok(Number(refused.headers?.get("retry-after")) > 0, "no retry-after");
  await assert.rejects(
    alice.conversations.items.create(first.id, { items: [{ role: "user", content: "two" }] }),
    OpenAI.RateLimitError,
  );
  assert.equal((await alice.conversations.items.list(first.id)).data.length, 1, "a refused add was kept");
  // Reads are not counted; another client has its own budget (none here).
  assert.equal((await alice.conversations.retrieve(first.id)).id, first.id);
  for (let i = 0; i < 5; i++) await bob.conversations.create({});
  assert.equal(chatRequests(mock).length, 0);
});
