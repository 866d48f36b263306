// A loopback TCP proxy in front of a real redis-server, for tests that need a command to reach Redis late (after
// its sender timed out, as on a slow network), or its reply lost (the connection dropped after Redis ran it),
// without mocking the client.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { connect, createServer } from "node:net";
import type { TestContext } from "node:test";
import { closeWhenTestEnds } from "./late-start.ts";

export interface RedisProxyOptions {
  /**
   * A chunk a client sends for which this is true (given the chunk as lower-case text) reaches Redis, which runs it;
   * its reply does not come back: the connection is closed instead (a blip right after the command ran).
   */
  readonly loseReplyTo?: (text: string) => boolean;
  /** ms after a reply was lost during which a new connection is closed at once (Redis unreachable for that long). */
  readonly downAfterLostReplyMs?: number;
}

/**
 * A loopback TCP proxy to Redis. Each chunk a client sends goes on once `delay` (given the chunk as lower-case
 * text) settles, in order per connection; `dropConnections` closes every connection through it, as a blip would.
 * `muteReplies`: Redis's answers are dropped until the next `dropConnections` (a command that landed, its answer lost).
 * `lostReplies`: how many replies `options.loseReplyTo` lost so far.
 */
export async function useRedisProxy(
  t: TestContext,
  redisPort: number,
  delay: (text: string) => Promise<void> | undefined,
  options: RedisProxyOptions = {},
): Promise<{ readonly url: string; dropConnections(): void; muteReplies(): void; readonly lostReplies: number }> {
  const connections = new Set<() => void>();
  let isMuted = false;
  let lostReplies = 0;
  let downUntilMs = 0;
  const proxy = createServer((client) => {
    if (Date.now() < downUntilMs) {
      client.destroy();
      return;
    }
    const upstream = connect(redisPort, "127.0.0.1");
    let sending = Promise.resolve();
    let isLosingReply = false;
    const closeBoth = () => {
      connections.delete(closeBoth);
      client.destroy();
      upstream.destroy();
    };
    client.on("data", (chunk: Buffer) => {
      const text = chunk.toString("latin1").toLowerCase();
      const held = delay(text);
      sending = sending.then(async () => {
        await held;
        if (options.loseReplyTo?.(text) === true) isLosingReply = true;
        upstream.write(chunk);
      });
    });
    upstream.on("data", (chunk: Buffer) => {
      if (!isLosingReply) {
        if (!isMuted) client.write(chunk);
        return;
      }
      // The reply (and whatever came with it) is dropped with the connection.
      lostReplies += 1;
      downUntilMs = Date.now() + (options.downAfterLostReplyMs ?? 0);
      closeBoth();
    });
    connections.add(closeBoth);
    client.on("close", closeBoth).on("error", closeBoth);
    upstream.on("close", closeBoth).on("error", closeBoth);
  });
  proxy.listen(0, "127.0.0.1");
  await once(proxy, "listening");
  await closeWhenTestEnds(t, () => new Promise<void>((resolve) => proxy.close(() => resolve())));
  const address = proxy.address();
  assert.ok(address !== null && typeof address === "object");
  return {
    url: `redis://127.0.0.1:${address.port}`,
    dropConnections: () => {
      for (const close of [...connections]) close();
      isMuted = false;
    },
    muteReplies: () => {
      isMuted = true;
    },
    get lostReplies() {
      return lostReplies;
    },
  };
}

/**
 * Whether a chunk a client sent (lower-case, as `delay` gets it) calls the script `lua`: by EVAL (its text, sent on a
 * connection's first call and after a NOSCRIPT) or by EVALSHA (its digest, every other call).
 */
export function callsScript(text: string, lua: string): boolean {
  return text.includes(createHash("sha1").update(lua).digest("hex")) || text.includes(lua.toLowerCase());
}
