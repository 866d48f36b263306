// The floor: the least a Node proxy can do per request. node:http in, undici out (the same client and agent
// settings as the gateway's dispatcher), body buffered and forwarded, answer piped back unparsed. No routing, no
// validation, no stream inspection. Child process of bench/gateway.ts: prints `{"port":N}`, exits with the benchmark.
//
// The answer goes back with `Readable.pipe`, not `stream/promises`' `pipeline`: pipeline aborts an AbortController
// of its own when it finishes, and that builds a DOMException (with its stack) per request: ~35 µs of CPU per JSON
// request and ~37 µs per stream on the bench VM (profiled: 13.6 µs self in DOMException alone), a third of the
// whole JSON request. Runs up to 2026-12-04 used pipeline, so their "bare proxy" was that much slower than the
// floor; `BENCH_BARE_PIPELINE=1` (`--bare-proxy node-pipeline`) keeps it, to compare with them.
import { createServer } from "node:http";
import { pipeline } from "node:stream/promises";
import { Agent } from "undici";

const upstreamOrigin = process.env.BENCH_UPSTREAM_ORIGIN ?? "";
const isPipeline = process.env.BENCH_BARE_PIPELINE === "1";
if (upstreamOrigin === "") throw new Error("BENCH_UPSTREAM_ORIGIN is required");

const agent = new Agent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 600_000, connections: 256 });

const server = createServer({ keepAliveTimeout: 60_000 }, (request, response) => {
  const parts: Buffer[] = [];
  request.on("data", (part: Buffer) => parts.push(part));
  request.on("end", () => {
    agent
      .request({
        origin: upstreamOrigin,
        path: request.url ?? "/",
        method: "POST",
        headers: {
          "content-type": "application/json",
          accept: request.headers.accept ?? "application/json",
          authorization: "Bearer bench-upstream-key",
        },
        body: Buffer.concat(parts),
      })
      .then(async (upstream) => {
        const headers: Record<string, string> = {
          "content-type": String(upstream.headers["content-type"] ?? "application/json"),
        };
        const length = upstream.headers["content-length"];
        if (typeof length === "string") headers["content-length"] = length;
        response.writeHead(upstream.statusCode, headers);
        if (isPipeline) {
          await pipeline(upstream.body, response);
          return;
        }
        upstream.body.on("error", () => response.destroy());
        response.on("close", () => {
          if (!upstream.body.readableEnded) upstream.body.destroy();
        });
        upstream.body.pipe(response);
      })
      .catch(() => {
        if (!response.headersSent) response.writeHead(502);
        response.end();
      });
  });
});

server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  process.stdout.write(`${JSON.stringify({ port })}\n`);
});
