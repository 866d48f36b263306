import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { attempt, record } from "../../test/helpers/records.ts";
import { isRedisClusterAvailable, REDIS_CLUSTER_MISSING, useRedisCluster } from "../../test/helpers/redis-cluster.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../../test/helpers/redis-server.ts";
import { InvalidRequestError } from "../errors/gateway-error.ts";
import { RedisRequestLogBackend } from "../state/redis-request-log.ts";
import { FileRequestLogBackend } from "./file-request-log.ts";
import { MemoryRequestLogBackend, RequestLog, type RequestLogBackend, WRITE_BATCH_ROWS } from "./request-log.ts";
import { parseRequestLogQuery } from "./request-log-query.ts";

function manualClock(startMs: number) {
  let nowMs = startMs;
  return { now: () => nowMs, advance: (ms: number) => (nowMs += ms) };
}

const BACKENDS: Record<string, (t: import("node:test").TestContext) => RequestLogBackend | Promise<RequestLogBackend>> =
  {
    memory: () => new MemoryRequestLogBackend(),
    redis: (t) => redisBackend(t),
    embedded: (t) => {
      const dir = mkdtempSync(join(tmpdir(), "request-log-"));
      t.after(() => rmSync(dir, { recursive: true, force: true }));
      return new FileRequestLogBackend(join(dir, "state.db"));
    },
  };

/** Redis: a real redis-server per test; a fresh key prefix anyway. */
const redisBackends = new WeakMap<import("node:test").TestContext, Promise<string>>();
async function redisBackend(t: import("node:test").TestContext): Promise<RequestLogBackend> {
  let url = redisBackends.get(t);
  if (url === undefined) {
    url = useRedisServer(t).then((server) => server.url);
    redisBackends.set(t, url);
  }
  const backend = new RedisRequestLogBackend(await url, `test:${Math.random().toString(36).slice(2)}:`);
  await backend.connect();
  return backend;
}

for (const [name, makeBackend] of Object.entries(BACKENDS)) {
  const skip = name === "redis" && !isRedisInstalled() ? REDIS_MISSING : false;
  describe(`request log (${name})`, { skip }, () => {
    test("filters by model, provider, status and since; newest first; limit", async (t) => {
      const clock = manualClock(10_000);
      const log = new RequestLog(await makeBackend(t), {
        clock,
        maxEntries: 100,
        maxAgeMs: 60_000,
        isContentKept: false,
      });
      t.after(() => log.close());
      log.observe(record({ id: "a", startedAtMs: 1_000 }));
      log.observe(
        record({
          id: "b",
          startedAtMs: 2_000,
          requestedModel: "best",
          attempts: [
            attempt({ provider: "alpha", status: 429, outcome: "rate_limited" }),
            attempt({ provider: "beta", model: "model-b" }),
          ],
          candidates: [
            { deploymentKey: "beta/model-b", provider: "beta", model: "model-b", publicName: "b", score: 1 },
          ],
        }),
      );
      log.observe(record({ id: "c", startedAtMs: 3_000, status: 429, attempts: [] }));
      const ids = async (filter: Partial<Parameters<RequestLog["query"]>[0]>) =>
        (await log.query({ limit: 50, ...filter })).map((found) => found.id);
      assert.deepEqual(await ids({}), ["c", "b", "a"]);
      assert.deepEqual(await ids({ limit: 2 }), ["c", "b"]);
      assert.deepEqual(await ids({ model: "best" }), ["b"]);
      assert.deepEqual(await ids({ model: "model-b" }), ["b"], "the answering upstream model matches");
      assert.deepEqual(await ids({ model: "b" }), ["b"], "the answering public name matches");
      assert.deepEqual(await ids({ model: "m" }), ["c", "a"]);
      assert.deepEqual(await ids({ provider: "alpha" }), ["b", "a"], "a provider that was only tried matches");
      assert.deepEqual(await ids({ provider: "alph" }), [], "whole names only");
      assert.deepEqual(await ids({ status: 429 }), ["c"]);
      assert.deepEqual(await ids({ sinceMs: 2_000 }), ["c", "b"]);
      const found = await log.get("b");
      assert.equal(found?.attempts.length, 2);
      assert.equal(found?.attempts[0]?.outcome, "rate_limited");
      assert.equal(await log.get("nope"), undefined);
    });

    test("a long request that finished after later ones: limit returns the latest starts, not the last finished", async (t) => {
      const clock = manualClock(10_000);
      const log = new RequestLog(await makeBackend(t), {
        clock,
        maxEntries: 100,
        maxAgeMs: 60_000,
        isContentKept: false,
      });
      t.after(() => log.close());
      // Finish order: three quick requests, then the stream that started before them.
      log.observe(record({ id: "quick2", startedAtMs: 2_000 }));
      log.observe(record({ id: "quick3", startedAtMs: 3_000 }));
      log.observe(record({ id: "quick4", startedAtMs: 4_000 }));
      log.observe(record({ id: "long1", startedAtMs: 1_000, durationMs: 3_500, isStream: true }));
      const ids = async (filter: Partial<Parameters<RequestLog["query"]>[0]>) =>
        (await log.query({ limit: 50, ...filter })).map((found) => found.id);
      assert.deepEqual(await ids({ limit: 1 }), ["quick4"]);
      assert.deepEqual(await ids({ limit: 2 }), ["quick4", "quick3"]);
      assert.deepEqual(await ids({ limit: 4 }), ["quick4", "quick3", "quick2", "long1"]);
      assert.deepEqual(await ids({ limit: 2, sinceMs: 3_500 }), ["quick4"]);
      // A later stream that started between two of them is found among the newest.
      log.observe(record({ id: "quick5", startedAtMs: 5_000 }));
      log.observe(record({ id: "long45", startedAtMs: 4_500, isStream: true }));
      assert.deepEqual(await ids({ limit: 3 }), ["quick5", "long45", "quick4"]);
    });

    test("a large batch (several multi-row statements and a remainder) is stored whole, retention applied", async (t) => {
      const clock = manualClock(100_000);
      const log = new RequestLog(await makeBackend(t), {
        clock,
        maxEntries: 60,
        maxAgeMs: 50_000,
        isContentKept: false,
      });
      t.after(() => log.close());
      for (let index = 0; index < 75; index++) {
        log.observe(record({ id: `big${index}`, startedAtMs: 60_000 + index, status: index === 70 ? 503 : 200 }));
      }
      const found = (await log.query({ limit: 100 })).map((item) => item.id);
      assert.equal(found.length, 60);
      assert.equal(found[0], "big74");
      assert.equal(found.at(-1), "big15");
      assert.deepEqual(
        (await log.query({ limit: 100, status: 503 })).map((item) => item.id),
        ["big70"],
      );
    });

    test("retention drops the oldest beyond max_entries and anything older than max_age_ms", async (t) => {
      const clock = manualClock(100_000);
      const log = new RequestLog(await makeBackend(t), {
        clock,
        maxEntries: 3,
        maxAgeMs: 50_000,
        isContentKept: false,
      });
      t.after(() => log.close());
      for (let index = 0; index < 5; index++) log.observe(record({ id: `r${index}`, startedAtMs: 60_000 + index }));
      assert.deepEqual(
        (await log.query({ limit: 50 })).map((found) => found.id),
        ["r4", "r3", "r2"],
      );
      clock.advance(15_000); // r2..r4 are now older than 50 s
      log.observe(record({ id: "fresh", startedAtMs: clock.now() }));
      assert.deepEqual(
        (await log.query({ limit: 50 })).map((found) => found.id),
        ["fresh"],
      );
      assert.equal(await log.get("r4"), undefined);
    });

    test("message content only with log.content; provider keys never", async (t) => {
      const clock = manualClock(10_000);
      const secret = "sk-very-secret-key";
      const withContent = record({
        id: "x",
        content: { request: [{ role: "user", content: "hello there" }], responseText: "hi" },
        attempts: [attempt({ provider: "alpha", status: 401, outcome: "invalid_key", reason: `bad key ${secret}` })],
      });
      const plain = new RequestLog(await makeBackend(t), {
        clock,
        maxEntries: 10,
        maxAgeMs: 60_000,
        isContentKept: false,
        secrets: () => [secret],
      });
      t.after(() => plain.close());
      plain.observe(withContent);
      const stored = await plain.get("x");
      assert.equal(stored?.content, undefined);
      assert.ok(!JSON.stringify(stored).includes(secret));
      assert.match(stored?.attempts[0]?.reason ?? "", /\[redacted\]/);

      const keeping = new RequestLog(await makeBackend(t), {
        clock,
        maxEntries: 10,
        maxAgeMs: 60_000,
        isContentKept: true,
      });
      t.after(() => keeping.close());
      keeping.observe(withContent);
      assert.equal((await keeping.get("x"))?.content?.responseText, "hi");
    });
  });
}

describe("request log (Redis Cluster)", { skip: isRedisClusterAvailable() ? false : REDIS_CLUSTER_MISSING }, () => {
  test("both keys share one slot: appends, filters and retention work on a cluster", async (t) => {
    const cluster = await useRedisCluster(t);
    const backend = new RedisRequestLogBackend(cluster.url, "cluster-test:", true);
    await backend.connect();
    const clock = manualClock(10_000);
    const log = new RequestLog(backend, { clock, maxEntries: 2, maxAgeMs: 60_000, isContentKept: false });
    t.after(() => log.close());
    log.observe(record({ id: "a", startedAtMs: 1_000 }));
    log.observe(record({ id: "b", startedAtMs: 2_000, status: 429, attempts: [] }));
    log.observe(record({ id: "c", startedAtMs: 3_000 }));
    assert.deepEqual(
      (await log.query({ limit: 10 })).map((found) => found.id),
      ["c", "b"],
    );
    assert.deepEqual(
      (await log.query({ limit: 10, status: 429 })).map((found) => found.id),
      ["b"],
    );
    assert.equal((await log.get("c"))?.id, "c");
  });
});

describe("request log writes", () => {
  test("a batch of pending rows is written without waiting for the timer, without retention; the rest on flush", async (t) => {
    const appended: number[] = [];
    let prunes = 0;
    const memory = new MemoryRequestLogBackend();
    const backend: RequestLogBackend = {
      kind: "memory",
      append: async (rows) => {
        appended.push(rows.length);
        await memory.append(rows);
      },
      query: (filter) => memory.query(filter),
      get: (id) => memory.get(id),
      prune: async (maxEntries, oldest) => {
        prunes++;
        await memory.prune(maxEntries, oldest);
      },
      close: () => memory.close(),
    };
    // No timer (start() is not called): only the batch size can start a write.
    const log = new RequestLog(backend, {
      clock: manualClock(10_000),
      maxEntries: 1_000,
      maxAgeMs: 60_000,
      isContentKept: false,
    });
    t.after(() => log.close());
    const total = WRITE_BATCH_ROWS + 44;
    for (let index = 0; index < WRITE_BATCH_ROWS - 1; index++) {
      log.observe(record({ id: `r${index}`, startedAtMs: 1_000 + index }));
    }
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(appended, [], "below the batch size rows wait for the timer");
    for (let index = WRITE_BATCH_ROWS - 1; index < total; index++) {
      log.observe(record({ id: `r${index}`, startedAtMs: 1_000 + index }));
    }
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(appended, [total], "one write of everything pending once the batch size is reached");
    assert.equal(prunes, 0, "retention is the timer's (and a query's) job");
    assert.equal((await log.query({ limit: 1_000 })).length, total);
    assert.equal(prunes, 1);
  });
});

describe("request log query parameters", () => {
  test("valid values", () => {
    assert.deepEqual(parseRequestLogQuery({}), {
      model: undefined,
      provider: undefined,
      client: undefined,
      status: undefined,
      sinceMs: undefined,
      limit: 50,
    });
    const parsed = parseRequestLogQuery({
      model: "best",
      provider: "groq",
      client: "team-a",
      status: "429",
      since: "2026-01-31T12:00:00Z",
      limit: "10",
    });
    assert.equal(parsed.sinceMs, Date.UTC(2026, 0, 31, 12));
    assert.equal(parsed.status, 429);
    assert.equal(parsed.limit, 10);
    assert.equal(parsed.client, "team-a");
    assert.equal(parseRequestLogQuery({ since: "1700000000000" }).sinceMs, 1_700_000_000_000);
  });

  test("bad values are 400s naming the parameter", () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ status: "abc" }, "status"],
      [{ status: "99" }, "status"],
      [{ status: "4290" }, "status"],
      [{ since: "yesterday" }, "since"],
      [{ since: "March 7" }, "since"],
      [{ limit: "0" }, "limit"],
      [{ limit: "5000" }, "limit"],
      [{ limit: "1.5" }, "limit"],
      [{ model: "" }, "model"],
      [{ model: ["a", "b"] }, "model"],
      [{ model: "x".repeat(300) }, "model"],
      [{ colour: "red" }, "colour"],
    ];
    for (const [query, param] of cases) {
      assert.throws(
        () => parseRequestLogQuery(query),
        (error: unknown) => error instanceof InvalidRequestError && error.status === 400 && error.param === param,
        JSON.stringify(query).slice(0, 60),
      );
    }
  });
});
