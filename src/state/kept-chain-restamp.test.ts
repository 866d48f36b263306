// A continuation's row stamps the rows it reads its history from as kept now, in the same write (KeptResponseRow
// touchIds; protocols/responses/kept-chain-history.ts): on the state file and on Redis, max_age_ms and oldest-first
// eviction then take a chain's rows with its newest, not its first while a later one is kept.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, type TestContext, test } from "node:test";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../../test/helpers/redis-server.ts";
import { ManualClock } from "../clock.ts";
import { EmbeddedKeptResponses, type KeptResponseLimits, type KeptResponseRow } from "./embedded-kept-responses.ts";
import { RedisKeptResponses } from "./redis-kept-responses.ts";

interface Rows {
  put(row: KeptResponseRow): Promise<unknown>;
  get(id: string): Promise<string | undefined>;
  close(): Promise<void>;
}

/** A store's backing (a file, a Redis) for one test: `open` gives a process's rows on it, by its own clock. */
type Place = (limits: KeptResponseLimits, clock: ManualClock) => Promise<Rows>;

const STORES: Record<string, { skip: string | false; place: (t: TestContext) => Promise<Place> }> = {
  "state file": {
    skip: false,
    place: async (t) => {
      const path = join(mkdtempSync(join(tmpdir(), "chain-restamp-")), "state.db");
      return async (limits, clock) => {
        const rows = new EmbeddedKeptResponses(path, limits, clock);
        t.after(() => rows.close());
        return rows;
      };
    },
  },
  redis: {
    skip: isRedisInstalled() ? false : REDIS_MISSING,
    place: async (t) => {
      const redis = await useRedisServer(t);
      return async (limits, clock) => {
        const rows = new RedisKeptResponses(redis.url, "restamp:", false, limits, clock);
        t.after(() => rows.close());
        await rows.connect();
        return rows;
      };
    },
  },
};

const row = (id: string, touchIds?: string[]): KeptResponseRow => ({
  id,
  json: JSON.stringify({ id, text: "x".repeat(200) }),
  itemIds: [],
  ...(touchIds === undefined ? {} : { touchIds }),
});

for (const [name, store] of Object.entries(STORES)) {
  describe(`a chain's rows re-stamped: ${name}`, { skip: store.skip }, () => {
    test("max_age_ms: the rows a later row reads stay as long as it does", async (t) => {
      const clock = new ManualClock(Date.now());
      const rows = await (await store.place(t))({ maxEntries: 100, maxBytes: 1 << 20, maxAgeMs: 3_000 }, clock);
      try {
        await rows.put(row("resp_first"));
        clock.advance(2_000);
        await rows.put(row("resp_second", ["resp_first"]));
        clock.advance(2_000);
        assert.ok(await rows.get("resp_first"), "the first row expired while the second, reading it, is kept");
        clock.advance(1_500);
        assert.equal(await rows.get("resp_first"), undefined);
        assert.equal(await rows.get("resp_second"), undefined);
      } finally {
        await rows.close();
      }
    });

    test("max_entries: an older unrelated row goes before the rows a later row reads", async (t) => {
      const clock = new ManualClock(Date.now());
      const rows = await (await store.place(t))({ maxEntries: 4, maxBytes: 1 << 20, maxAgeMs: 60_000 }, clock);
      try {
        await rows.put(row("resp_a1"));
        clock.advance(10);
        await rows.put(row("resp_a2", ["resp_a1"]));
        clock.advance(10);
        await rows.put(row("resp_other"));
        clock.advance(10);
        await rows.put(row("resp_a3", ["resp_a1", "resp_a2"]));
        clock.advance(10);
        await rows.put(row("resp_more"));
        assert.equal(await rows.get("resp_other"), undefined, "the unrelated row, now the oldest, went first");
        for (const id of ["resp_a1", "resp_a2", "resp_a3", "resp_more"]) assert.ok(await rows.get(id), `${id} kept`);
      } finally {
        await rows.close();
      }
    });

    test("a re-stamp never lowers a stamp: a slower writer's older time leaves a newer one", async (t) => {
      const limits = { maxEntries: 100, maxBytes: 1 << 20, maxAgeMs: 3_000 };
      const place = await store.place(t);
      const clock = new ManualClock(Date.now());
      // Another process whose write is older (its clock behind, or its write held): it stamps with its own time.
      const slowClock = new ManualClock(clock.now());
      const rows = await place(limits, clock);
      const slow = await place(limits, slowClock);
      await rows.put(row("resp_first"));
      clock.advance(2_000);
      await rows.put(row("resp_second", ["resp_first"]));
      slowClock.advance(500);
      await slow.put(row("resp_branch", ["resp_first"]));
      clock.advance(1_600);
      // resp_second (kept 2,000 ms in, within max_age_ms) still reads resp_first: stamped 2,000 ms in, not 500.
      assert.ok(await rows.get("resp_second"));
      assert.ok(await rows.get("resp_first"), "the first row's stamp went down to the slower writer's");
      clock.advance(1_500);
      assert.equal(await rows.get("resp_first"), undefined, "expired with the second row");
    });
  });
}
