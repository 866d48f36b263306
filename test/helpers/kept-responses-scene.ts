// What the e2e tests of kept responses' rows share (conversations-kept-responses, chain-kept-responses): numbered
// answers from the mock, the texts GET input_items lists in pages, a row's size as the state file or Redis keeps it,
// and rows an earlier version wrote (a fixture) put into either store.
import { DatabaseSync } from "node:sqlite";
import type OpenAI from "openai";
import { ManualClock } from "../../src/clock.ts";
import { indexedItemKeys } from "../../src/protocols/responses/chain-items.ts";
import type { StoredResponse } from "../../src/protocols/responses/response-store.ts";
import { EmbeddedKeptResponses } from "../../src/state/embedded-kept-responses.ts";
import { RedisKeptResponses } from "../../src/state/redis-kept-responses.ts";
import { CHAT_ROUTE, words } from "./e2e.ts";
import { chatCompletion, type MockUpstream } from "./mock-upstream.ts";

const LIMITS = { maxEntries: 10_000, maxBytes: 64 * 1024 * 1024, maxAgeMs: 24 * 3_600_000 };

/** Each chat request answered `Answer <n>.` plus filler, n counting from 1. */
export function answerNumbered(mock: MockUpstream): void {
  let count = 0;
  mock.setDefault(CHAT_ROUTE, (recorded) => {
    count += 1;
    const model = (recorded.body as { model: string }).model;
    return { kind: "json", body: chatCompletion(`Answer ${count}. ${words("filler", 40)}`, model) };
  });
}

/** The text of each input item GET input_items lists, in pages of `limit`, without the filler. */
export async function listedTexts(client: OpenAI, id: string, order: "asc" | "desc", limit = 2): Promise<string[]> {
  const texts: string[] = [];
  for await (const item of client.responses.inputItems.list(id, { order, limit })) {
    const content = (item as { content?: { text?: string }[] }).content ?? [];
    texts.push(
      content
        .map((part) => part.text ?? "")
        .join("")
        .split(" filler")[0] ?? "",
    );
  }
  return texts;
}

/** Rows as an earlier version wrote them (a fixture's `rows`), with the item ids a store indexes them by. */
function rowsOf(fixture: readonly { id: string; json: string }[]): { id: string; json: string; itemIds: string[] }[] {
  return fixture.map((row) => ({ ...row, itemIds: indexedItemKeys(JSON.parse(row.json) as StoredResponse) }));
}

/** The state file at `path`: a kept response's row size, and a fixture's rows put in it. */
export function stateFileRows(path: string): {
  rowBytes: (id: string) => Promise<number>;
  putRows: (fixture: readonly { id: string; json: string }[]) => Promise<void>;
} {
  return {
    rowBytes: async (id) => {
      const reader = new DatabaseSync(path, { readOnly: true });
      try {
        const row = reader.prepare("SELECT json FROM kept_responses WHERE id = ?").get(id) as { json: string };
        return Buffer.byteLength(row.json);
      } finally {
        reader.close();
      }
    },
    putRows: async (fixture) => {
      const rows = new EmbeddedKeptResponses(path, LIMITS, new ManualClock(Date.now()));
      for (const row of rowsOf(fixture)) await rows.put(row);
      await rows.close();
    },
  };
}

/** Redis at `url` under `prefix`: a kept response's row size, and a fixture's rows put in it. */
export function redisRows(
  url: string,
  prefix: string,
): {
  rowBytes: (id: string) => Promise<number>;
  putRows: (fixture: readonly { id: string; json: string }[]) => Promise<void>;
} {
  const withRows = async <T>(use: (rows: RedisKeptResponses) => Promise<T>): Promise<T> => {
    const rows = new RedisKeptResponses(url, prefix, false, LIMITS, new ManualClock(Date.now()));
    await rows.connect();
    try {
      return await use(rows);
    } finally {
      await rows.close();
    }
  };
  return {
    rowBytes: (id) => withRows(async (rows) => Buffer.byteLength((await rows.get(id)) ?? "")),
    putRows: (fixture) =>
      withRows(async (rows) => {
        for (const row of rowsOf(fixture)) await rows.put(row);
      }),
  };
}
