// A reader settling a background run it found stopped (background-stopped.ts) over each store (memory, the state
// file, Redis), with the moments that race it made to happen at once: the run's own final write landing just after
// the reader read it (a run alive on another replica whose clock is behind the reader's: the reader's "15 s" is not
// the run's), a conversation store that fails while the reader takes the items out, and a cancel from another
// replica that landed while the run was adding them.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, type TestContext, test } from "node:test";
import type { FastifyBaseLogger } from "fastify";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../../test/helpers/redis-server.ts";
import { ManualClock } from "../clock.ts";
import { ServiceUnavailableError } from "../errors/gateway-error.ts";
import { BackgroundRuns } from "../pipeline/background-runs.ts";
import type { GatewayRuntime } from "../pipeline/gateway-runtime.ts";
import { DEFAULT_ECHO } from "../protocols/__fixtures__/fixtures.ts";
import { sequentialIds } from "../protocols/ids.ts";
import { BACKGROUND_STALE_MS } from "../protocols/responses/background.ts";
import { itemsFromRequest } from "../protocols/responses/conversation-items.ts";
import { ConversationRowsInMemory } from "../protocols/responses/conversation-rows-memory.ts";
import { type ConversationRows, Conversations } from "../protocols/responses/conversations.ts";
import { inMemory, inRows, type KeptResponses, keptToken, NO_EVENTS } from "../protocols/responses/kept-responses.ts";
import { buildResponse, type ResponseObject, type ResponseStatus } from "../protocols/responses/response-object.ts";
import { ResponseStore, type StoredResponse } from "../protocols/responses/response-store.ts";
import { EmbeddedKeptResponses, KEPT_CONVERSATIONS } from "../state/embedded-kept-responses.ts";
import { KeptResponsesFile } from "../state/kept-responses-file.ts";
import { RedisKeptResponses } from "../state/redis-kept-responses.ts";
import { cancelBackground } from "./background-readers.ts";
import { settledRun } from "./background-stopped.ts";

const LIMITS = { maxEntries: 100, maxBytes: 5_000_000, maxAgeMs: 3_600_000 };
const ID = "resp_stopped";

function response(status: ResponseStatus): ResponseObject {
  const built = buildResponse(DEFAULT_ECHO, {
    id: ID,
    createdAtSeconds: 1,
    status,
    model: "m",
    output: [],
    usage: undefined,
  });
  return { ...built, background: true };
}

/** The reader's side: no run of it here, its clock `clock`; its warnings counted. */
function readerOf(clock: ManualClock): { runtime: GatewayRuntime; log: FastifyBaseLogger; warnings: string[] } {
  const warnings: string[] = [];
  // settledRun uses the runtime's run registry and clock only.
  const runtime = { backgroundRuns: new BackgroundRuns(), clock } as unknown as GatewayRuntime;
  const log = { warn: (_object: unknown, message: string) => warnings.push(message) } as unknown as FastifyBaseLogger;
  return { runtime, log, warnings };
}

/**
 * A conversation with one item before, then a background run's answer joined it (three items: before, the question,
 * the answer), the run's last heartbeat naming the two it added. Returns the stores and the run's last token.
 */
async function joinedRun(
  clock: ManualClock,
  conversations: Conversations,
  kept: KeptResponses,
  events?: readonly string[],
) {
  const ids = sequentialIds();
  const conversation = await conversations.create(
    null,
    {},
    itemsFromRequest([{ role: "user", content: "Before." }], ids),
  );
  const added = itemsFromRequest(
    [
      { role: "user", content: "The question." },
      { role: "assistant", content: "The answer." },
    ],
    ids,
  );
  assert.equal(await conversations.appendAfterAnswer(conversation.id, null, added, {}), "added");
  // Its first write (a streamed one's events from there on appended), then the heartbeat naming the items.
  const queued: StoredResponse = {
    response: response("queued"),
    conversation: [],
    heartbeatAtMs: clock.now(),
    ...(events === undefined ? {} : { events: [] }),
  };
  const first = await kept.putIfUnchanged(queued, undefined);
  const running: StoredResponse = {
    response: response("in_progress"),
    conversation: [],
    heartbeatAtMs: clock.now(),
    joining: { conversationId: conversation.id, itemIds: added.map((item) => item.id) },
    ...(events === undefined ? {} : { events }),
  };
  const token = await kept.putIfUnchanged(running, first);
  assert.ok(token !== undefined);
  return { conversationId: conversation.id, token };
}

async function itemCount(conversations: Conversations, conversationId: string): Promise<number> {
  return (await conversations.get(conversationId, null))?.items.length ?? -1;
}

/** Conversations whose removals fail while `isFailing` (the store down). */
class FailingConversations extends Conversations {
  isFailing = false;
  override async deleteItems(
    id: string,
    client: string | null,
    itemIds: readonly string[],
  ): ReturnType<Conversations["deleteItems"]> {
    if (this.isFailing) throw new ServiceUnavailableError("The store is down.");
    return super.deleteItems(id, client, itemIds);
  }
}

let redisPrefixes = 0;

/** Each store a reader settles a run on: the kept responses and the conversations (removals can be made to fail). */
const STORES: Record<
  string,
  (t: TestContext, clock: ManualClock) => Promise<{ kept: KeptResponses; conversations: FailingConversations }>
> = {
  memory: async (_t, clock) => ({
    kept: inMemory(new ResponseStore(LIMITS, clock)),
    conversations: conversationsOver(new ConversationRowsInMemory(LIMITS, clock), clock),
  }),
  "state file": async (t, clock) => {
    const path = join(mkdtempSync(join(tmpdir(), "bg-stopped-")), "state.db");
    const file = new KeptResponsesFile(path, LIMITS, clock);
    const rows = new EmbeddedKeptResponses(path, LIMITS, clock, undefined, KEPT_CONVERSATIONS);
    t.after(() => Promise.all([file.close(), rows.close()]));
    return { kept: inRows(file, throwing), conversations: conversationsOver(rows, clock) };
  },
  redis: async (t, clock) => {
    const server = await useRedisServer(t);
    const prefix = `bg-stopped${redisPrefixes++}:`;
    const responses = new RedisKeptResponses(server.url, prefix, false, LIMITS, clock);
    const rows = new RedisKeptResponses(server.url, prefix, false, LIMITS, clock, "conversations");
    await Promise.all([responses.connect(), rows.connect()]);
    t.after(() => Promise.all([responses.close(), rows.close()]));
    return { kept: inRows(responses, throwing), conversations: conversationsOver(rows, clock) };
  },
};

function throwing(error: unknown): never {
  throw error;
}

function conversationsOver(rows: ConversationRows, clock: ManualClock): FailingConversations {
  return new FailingConversations(rows, LIMITS.maxBytes, clock, sequentialIds(), () => {});
}

for (const [name, open] of Object.entries(STORES)) {
  describe(`a stopped run settled by a reader: ${name}`, {
    skip: name === "redis" && !isRedisInstalled() ? REDIS_MISSING : false,
  }, () => {
    test("a reader that loses its compare and set to the run's own final write (completed) leaves the answer's items in the conversation", async (t) => {
      const clock = new ManualClock();
      const { kept, conversations } = await open(t, clock);
      const { conversationId, token } = await joinedRun(clock, conversations, kept);
      // The reader's clock is past the lease; the run (alive on a replica whose clock is behind) writes its answer right
      // after the reader read the row whole, within its own deadline.
      clock.advance(BACKGROUND_STALE_MS + 1);
      let hasLanded = false;
      const racing: KeptResponses = {
        ...kept,
        get: async (id, from, options) => {
          const read = await kept.get(id, from, options);
          if (options?.isBeforeWrite === true && !hasLanded) {
            hasLanded = true;
            const completed: StoredResponse = { response: response("completed"), conversation: [] };
            assert.ok((await kept.putIfUnchanged(completed, token)) !== undefined, "the run's final write lands");
          }
          return read;
        },
      };
      const { runtime, log, warnings } = readerOf(clock);
      const read = await kept.get(ID, NO_EVENTS);
      assert.ok(read !== undefined);
      const settled = await settledRun(runtime, racing, conversations, read, log);
      assert.ok(hasLanded);
      assert.equal(settled.response.status, "completed", "the run's answer stands");
      assert.equal((await kept.get(ID))?.response.status, "completed");
      assert.equal(await itemCount(conversations, conversationId), 3, "a completed answer keeps its items");
      assert.deepEqual(warnings, []);
    });

    test("coverage: a reader whose removal fails leaves the items named; the next reader takes them out, and then writes no more", async (t) => {
      const clock = new ManualClock();
      const { kept, conversations } = await open(t, clock);
      const { conversationId } = await joinedRun(clock, conversations, kept);
      clock.advance(BACKGROUND_STALE_MS + 1);
      // The conversation store fails for the first reader's removal only.
      conversations.isFailing = true;
      const first = readerOf(clock);
      const read = await kept.get(ID, NO_EVENTS);
      assert.ok(read !== undefined);
      await settledRun(first.runtime, kept, conversations, read, first.log);
      assert.equal(await itemCount(conversations, conversationId), 3, "the store failed: the items are still in");
      conversations.isFailing = false;
      const second = readerOf(clock);
      const again = await kept.get(ID, NO_EVENTS);
      assert.ok(again !== undefined);
      assert.equal(
        (await settledRun(second.runtime, kept, conversations, again, second.log)).response.status,
        "failed",
      );
      assert.equal(await itemCount(conversations, conversationId), 1, "the next reader took them out");
      const settled = await kept.get(ID);
      assert.ok(settled !== undefined);
      assert.equal(settled.response.status, "failed", "kept failed, not only shown so");
      assert.equal(settled.joining, undefined, "named no more once taken out");
      // Once out, a read writes nothing more.
      await settledRun(second.runtime, kept, conversations, settled, second.log);
      assert.equal(keptToken((await kept.get(ID)) ?? settled), keptToken(settled));
    });

    test("a cancel from another replica that landed while the run was adding its items, then the run's process died: the next reader takes them out", async (t) => {
      const clock = new ManualClock();
      const { kept, conversations } = await open(t, clock);
      const { conversationId } = await joinedRun(clock, conversations, kept);
      // Its lease fresh: cancelled as a run elsewhere is (marked so in the store, its fields as they were).
      const reader = readerOf(clock);
      const running = await kept.get(ID, undefined);
      assert.ok(running !== undefined);
      assert.equal((await cancelBackground(reader.runtime, kept, running)).status, "cancelled");
      // Its process died before its final write (which would have seen the cancel and taken the items out itself).
      clock.advance(BACKGROUND_STALE_MS + 1);
      const read = await kept.get(ID, NO_EVENTS);
      assert.ok(read !== undefined);
      assert.equal(
        (await settledRun(reader.runtime, kept, conversations, read, reader.log)).response.status,
        "cancelled",
      );
      assert.equal(await itemCount(conversations, conversationId), 1, "a cancelled response's answer joins nothing");
      assert.equal((await kept.get(ID))?.joining, undefined);
    });

    test("coverage: a streamed run's kept events end as a failed run's stream does, read by a follower from the middle too", async (t) => {
      const clock = new ManualClock();
      const { kept, conversations } = await open(t, clock);
      const events = [0, 1].map(
        (index) =>
          `event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":${index},"delta":"w"}\n\n`,
      );
      const { conversationId } = await joinedRun(clock, conversations, kept, events);
      clock.advance(BACKGROUND_STALE_MS + 1);
      const reader = readerOf(clock);
      const read = await kept.get(ID, NO_EVENTS);
      assert.ok(read !== undefined);
      await settledRun(reader.runtime, kept, conversations, read, reader.log);
      assert.equal(await itemCount(conversations, conversationId), 1);
      const settled = await kept.get(ID);
      assert.equal(settled?.joining, undefined);
      const types = (settled?.events ?? []).map((event) => /^event: (.*)$/m.exec(event)?.[1]);
      assert.deepEqual(types, ["response.output_text.delta", "response.output_text.delta", "error", "response.failed"]);
      const sequences = (settled?.events ?? []).map((event) => /"sequence_number":(\d+)/.exec(event)?.[1]);
      assert.deepEqual(sequences, ["0", "1", "2", "3"]);
      assert.equal((await kept.get(ID, 3))?.events?.length, 1, "a follower from the middle reads the end once");
    });
  });
}
