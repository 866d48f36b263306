// A loopback TCP proxy in front of a real redis-server, for tests that need a command to reach Redis late (after
// its sender timed out, as on a slow network) without mocking the client.
import assert from "node:assert/strict";
import { once } from "node:events";
import { connect, createServer } from "node:net";
import type { TestContext } from "node:test";

/**
 * A loopback TCP proxy to Redis. Each chunk a client sends goes on once `delay` (given the chunk as lower-case
 * text) settles, in order per connection; `dropConnections` closes every connection through it, as a blip would.
 * `muteReplies`: Redis's answers are dropped until the next `dropConnections` (a command that landed, its answer lost).
 */
export async function useRedisProxy(
  t: TestContext,
  redisPort: number,
  delay: (text: string) => Promise<void> | undefined,
): Promise<{ readonly url: string; dropConnections(): void; muteReplies(): void }> {
  const connections = new Set<() => void>();
  let isMuted = false;
  const proxy = createServer((client) => {
    const upstream = connect(redisPort, "127.0.0.1");
    let sending = Promise.resolve();
    client.on("data", (chunk: Buffer) => {
      const held = delay(chunk.toString("latin1").toLowerCase());
      sending = sending.then(async () => {
        await held;
        upstream.write(chunk);
      });
    });
    upstream.on("data", (chunk: Buffer) => {
      if (!isMuted) client.write(chunk);
    });
    const closeBoth = () => {
      connections.delete(closeBoth);
      client.destroy();
      upstream.destroy();
    };
    connections.add(closeBoth);
    client.on("close", closeBoth).on("error", closeBoth);
    upstream.on("close", closeBoth).on("error", closeBoth);
  });
  proxy.listen(0, "127.0.0.1");
  await once(proxy, "listening");
  t.after(() => new Promise<void>((resolve) => proxy.close(() => resolve())));
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
  };
}
