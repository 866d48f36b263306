// EarlyCommit.fail (stream-keepalive.ts) on a real HTTP response over loopback: the one way a stream whose head went
// out early ends after a failure. Called a second time (a door's later error path, a failure racing another), it
// must not write after the end: Node emits that as an `error` event on the response, which nothing listens to on a
// hijacked reply, and the process would exit.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { test } from "node:test";
import type { FastifyRequest } from "fastify";
import { InternalError } from "../errors/gateway-error.ts";
import { EarlyCommit, SSE_KEEP_ALIVE } from "./stream-keepalive.ts";

const quiet = { log: { error() {}, info() {}, warn() {} } } as unknown as FastifyRequest;

test("EarlyCommit.fail twice: the stream ends once with the first failure, nothing written after its end", async (t) => {
  const uncaught: unknown[] = [];
  const onUncaught = (error: unknown): void => {
    uncaught.push(error);
  };
  // node:test reports an uncaught exception as a failure of the test; caught here to assert on it plainly.
  process.on("uncaughtException", onUncaught);
  t.after(() => process.off("uncaughtException", onUncaught));
  const server = createServer((_request, response) => {
    const early = new EarlyCommit(response, 20, SSE_KEEP_ALIVE);
    const pending = new Promise((_resolve, reject) => setTimeout(() => reject(new Error("boom")), 80));
    early
      .wait(
        pending,
        (headers) => response.writeHead(200, { "content-type": "text/event-stream", ...headers }),
        Date.now,
      )
      .catch((error: unknown) => {
        assert.ok(early.isCommitted);
        early.fail(quiet, error, (failure) => `data: first ${failure.code}\n\n`);
        early.fail(quiet, new InternalError("again"), () => "data: second\n\n");
      });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => server.close());
  const address = server.address();
  assert.ok(address !== null && typeof address === "object");
  const answer = await fetch(`http://127.0.0.1:${address.port}/`);
  const text = await answer.text();
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.deepEqual(uncaught, [], "nothing thrown after the end");
  assert.match(text, /data: first internal_error\n\n$/);
  assert.doesNotMatch(text, /second/);
});
