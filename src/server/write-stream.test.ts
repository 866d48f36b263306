// flushWrites (write-stream.ts) on a real HTTP response over loopback: what a stream's door wrote reaches its socket
// when the relay is about to wait for its upstream, not at the next tick, after every promise job queued before it.
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer } from "node:http";
import { connect } from "node:net";
import { test } from "node:test";
import { flushWrites } from "./write-stream.ts";

test("flushWrites sends a stream's head and first event at once, in one write, and holds nothing when nothing was written", async (t) => {
  const seen: { heldBefore: number; heldAfter: number; heldAfterNoop: number }[] = [];
  const server = createServer((_request, response) => {
    response.writeHead(200, { "content-type": "text/event-stream" });
    response.write("data: first\n\n");
    // Held by Node's cork until the next tick: the relay's promise jobs would run before it went out.
    const heldBefore = response.socket?.writableLength ?? -1;
    flushWrites(response);
    const heldAfter = response.socket?.writableLength ?? -1;
    flushWrites(response);
    seen.push({ heldBefore, heldAfter, heldAfterNoop: response.socket?.writableLength ?? -1 });
    setTimeout(() => response.end("data: last\n\n"), 20);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  t.after(() => server.close());
  const address = server.address();
  assert.ok(address !== null && typeof address === "object");
  const socket = connect(address.port, "127.0.0.1");
  const reads: string[] = [];
  socket.on("data", (part: Buffer) => reads.push(part.toString()));
  socket.write("GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
  await once(socket, "close");
  // The first read holds the head and the first event together (one syscall), before the last event was written.
  assert.match(reads[0] ?? "", /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nd\r\ndata: first\n\n\r\n$/);
  assert.match(reads.slice(1).join(""), /data: last\n\n/);
  assert.ok((seen[0]?.heldBefore ?? 0) > 0, "the write was held (corked) before the flush");
  assert.deepEqual(seen, [{ heldBefore: seen[0]?.heldBefore, heldAfter: 0, heldAfterNoop: 0 }]);
});
