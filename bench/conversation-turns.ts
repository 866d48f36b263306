// How a long conversation (`conversation` on POST /v1/responses) costs its store: N turns on one conversation through
// the real gateway against the mock upstream, with conversations in the embedded state file (and in Redis when
// `redis-server` is installed). Reports the bytes each store write carried (the row's JSON plus any appended items),
// in total and per turn, and how long the last turn's write took. Until 2026-12-07 every turn rewrote the whole
// conversation (O(n²) bytes over n turns); now a turn appends its items (docs/protocols.md "Conversations").
//
// With --chain, the turns are a chain by `previous_response_id` instead (no conversation): what counts is then the
// kept responses' rows, each the whole chain until 2026-12-07, now a turn and a pointer (docs/protocols.md "Kept
// responses").
//
//   ./node_modules/.bin/node bench/conversation-turns.ts [--turns 200] [--item-bytes 600] [--no-redis] [--chain]
//
// Not a test: it patches the stores' write methods to count (the counting is this script's, the writes are real).
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { EmbeddedKeptResponses } from "../src/state/embedded-kept-responses.ts";
import { RedisKeptResponses } from "../src/state/redis-kept-responses.ts";
import { oneProviderYaml, serveEveryChat } from "../test/helpers/e2e.ts";
import { startTestGateway } from "../test/helpers/gateway.ts";
import { startMockUpstream } from "../test/helpers/mock-upstream.ts";
import { isRedisInstalled, startRedisServer } from "../test/helpers/redis-server.ts";

interface WriteTally {
  bytes: number;
  /** The bytes of the kept responses' rows (`store` defaults to true: each turn's answer is kept too). */
  responseBytes: number;
  writes: number;
  /** How long each conversation write took (ms), in order. */
  readonly writeMs: number[];
}

type Writable = Record<"put" | "putIfUnchanged" | "appendEvents", (...args: unknown[]) => Promise<unknown>>;

/**
 * Wraps a store class's writes of conversation rows (ids `conv_...`): bytes carried and the time of each; the kept
 * responses' rows (the other ids) are counted apart.
 */
function countWrites(prototype: object, tally: WriteTally): void {
  const target = prototype as Writable;
  for (const name of ["put", "putIfUnchanged", "appendEvents"] as const) {
    const original = target[name];
    target[name] = async function (this: unknown, ...args: unknown[]) {
      const [first, , third] = args;
      const id = typeof first === "string" ? first : (first as { id: string }).id;
      if (!id.startsWith("conv_")) {
        if (typeof first !== "string") tally.responseBytes += Buffer.byteLength((first as { json: string }).json);
        return original.apply(this, args);
      }
      let bytes = typeof first === "string" ? 0 : Buffer.byteLength((first as { json: string }).json);
      const events =
        name === "appendEvents"
          ? (third as string[])
          : name === "putIfUnchanged"
            ? ((third as { events?: { events: string[] } } | undefined)?.events?.events ?? [])
            : [];
      for (const event of events) bytes += Buffer.byteLength(event);
      const startedMs = performance.now();
      try {
        return await original.apply(this, args);
      } finally {
        tally.writeMs.push(performance.now() - startedMs);
        tally.bytes += bytes;
        tally.writes++;
      }
    };
  }
}

const { values } = parseArgs({
  options: {
    turns: { type: "string", default: "200" },
    "item-bytes": { type: "string", default: "600" },
    "no-redis": { type: "boolean", default: false },
    chain: { type: "boolean", default: false },
  },
});
const turns = Number(values.turns);
const itemBytes = Number(values["item-bytes"]);

async function run(label: string, stateYaml: string, tally: WriteTally): Promise<void> {
  const mock = await startMockUpstream();
  serveEveryChat(mock, "a".repeat(itemBytes));
  const gateway = await startTestGateway(`${oneProviderYaml(mock)}${stateYaml}`);
  try {
    const post = async (path: string, body: unknown): Promise<Record<string, unknown>> => {
      const response = await fetch(`${gateway.baseUrl}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: "Bearer x" },
        body: JSON.stringify(body),
      });
      const json = (await response.json()) as Record<string, unknown>;
      if (!response.ok) throw new Error(`${path}: ${response.status} ${JSON.stringify(json).slice(0, 300)}`);
      return json;
    };
    const { id } = values.chain ? { id: undefined } : ((await post("/conversations", {})) as { id: string });
    const marks: string[] = [];
    let previous: unknown;
    for (let turn = 1; turn <= turns; turn++) {
      const input = `turn ${turn}: ${"q".repeat(itemBytes)}`;
      const history = id === undefined ? { previous_response_id: previous } : { conversation: id };
      previous = (await post("/responses", { model: "m", ...history, input })).id;
      const bytes = id === undefined ? tally.responseBytes : tally.bytes;
      if (turn % 50 === 0 || turn === turns) marks.push(`${turn}: ${(bytes / 1024).toFixed(0)} KiB`);
    }
    const shape = id === undefined ? "turns chained by previous_response_id" : "turns on one conversation";
    console.log(`${label}: ${turns} ${shape}, ~${itemBytes} B per input and per answer`);
    console.log(`  bytes written to the store, cumulative: ${marks.join(", ")}`);
    // The machine may be busy: the last write alone is one sample, the median of the last 20 steadier.
    const last = tally.writeMs.slice(-20).sort((a, b) => a - b);
    const median = last[Math.floor(last.length / 2)] ?? 0;
    console.log(`  the kept responses of those turns (store: true): ${tally.responseBytes} bytes`);
    if (id === undefined) return;
    console.log(
      `  total ${tally.bytes} bytes in ${tally.writes} writes; last turn's write ${(tally.writeMs.at(-1) ?? 0).toFixed(2)} ms, median of the last 20 ${median.toFixed(2)} ms`,
    );
  } finally {
    await gateway.close();
    await mock.close();
  }
}

const embedded: WriteTally = { bytes: 0, responseBytes: 0, writes: 0, writeMs: [] };
countWrites(EmbeddedKeptResponses.prototype, embedded);
const dir = mkdtempSync(join(tmpdir(), "conversation-turns-"));
await run("embedded state file", `state:\n  path: ${JSON.stringify(join(dir, "state.db"))}\n`, embedded);

if (!values["no-redis"] && isRedisInstalled()) {
  const redis = await startRedisServer();
  const tally: WriteTally = { bytes: 0, responseBytes: 0, writes: 0, writeMs: [] };
  countWrites(RedisKeptResponses.prototype, tally);
  try {
    await run("redis", `state:\n  redis_url: ${redis.url}\n`, tally);
  } finally {
    await redis.stop();
  }
}
