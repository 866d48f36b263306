// The row stores a conversation can live in (memory, the embedded state file, Redis), each opened for one test and
// closed when it ends: the conversation unit tests run every case over each of them.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import type { ManualClock } from "../../src/clock.ts";
import { ConversationRowsInMemory } from "../../src/protocols/responses/conversation-rows-memory.ts";
import type { ConversationRows } from "../../src/protocols/responses/conversations.ts";
import { EmbeddedKeptResponses, KEPT_CONVERSATIONS } from "../../src/state/embedded-kept-responses.ts";
import { RedisKeptResponses } from "../../src/state/redis-kept-responses.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "./redis-server.ts";

export interface RowLimits {
  readonly maxEntries: number;
  readonly maxBytes: number;
  readonly maxAgeMs: number;
}

type OpenRows = (t: TestContext, clock: ManualClock, limits: RowLimits) => Promise<ConversationRows>;

let prefixCounter = 0;

export const CONVERSATION_ROW_STORES: Readonly<Record<string, OpenRows>> = {
  memory: async (_t, clock, limits) => new ConversationRowsInMemory(limits, clock),
  embedded: async (t, clock, limits) => {
    const path = join(mkdtempSync(join(tmpdir(), "conv-")), "state.db");
    const rows = new EmbeddedKeptResponses(path, limits, clock, undefined, KEPT_CONVERSATIONS);
    t.after(() => rows.close());
    return rows;
  },
  redis: async (t, clock, limits) => {
    const server = await useRedisServer(t);
    const prefix = `conv${prefixCounter++}:`;
    const rows = new RedisKeptResponses(server.url, prefix, false, limits, clock, "conversations");
    await rows.connect();
    t.after(() => rows.close());
    return rows;
  },
};

/** The skip reason of a store's tests: Redis's when redis-server is not installed. */
export function skipOf(store: string): string | false {
  return store === "redis" && !isRedisInstalled() ? REDIS_MISSING : false;
}
