// The bare proxy with the gateway's front door: Fastify in (its JSON body parser, as the gateway uses it), undici
// out with the same agent settings, the answer piped back unparsed. `--bare-proxy fastify` measures the gateway
// against this instead of bench/bare-proxy.ts, to tell what Fastify itself costs from what the gateway does per
// request. Child process of bench/gateway.ts: prints `{"port":N}`, exits with the benchmark.
import Fastify from "fastify";
import { Agent } from "undici";

const upstreamOrigin = process.env.BENCH_UPSTREAM_ORIGIN ?? "";
if (upstreamOrigin === "") throw new Error("BENCH_UPSTREAM_ORIGIN is required");

const agent = new Agent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 600_000, connections: 256 });
const app = Fastify({ logger: false, keepAliveTimeout: 60_000 });

app.post("/v1/chat/completions", async (request, reply) => {
  const upstream = await agent.request({
    origin: upstreamOrigin,
    path: request.url,
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: request.headers.accept ?? "application/json",
      authorization: "Bearer bench-upstream-key",
    },
    body: JSON.stringify(request.body),
  });
  reply
    .code(upstream.statusCode)
    .header("content-type", String(upstream.headers["content-type"] ?? "application/json"));
  return reply.send(upstream.body);
});

const address = await app.listen({ port: 0, host: "127.0.0.1" });
process.stdout.write(`${JSON.stringify({ port: Number(new URL(address).port) })}\n`);
