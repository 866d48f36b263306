// The benchmark's upstream: as cheap as a node:http server can be, so that it is never what limits the figures.
// Every answer is prebuilt; a body containing `"stream":true` gets a fixed number of SSE chunks, anything else one
// small chat completion. Run as a child process by bench/gateway.ts: prints `{"port":N}` once listening, exits
// with the benchmark (bench/child-watchdog.ts stops it).
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";

const chunkCount = Number(process.env.BENCH_STREAM_CHUNKS ?? "16");

const created = Math.floor(Date.now() / 1000);
const jsonBody = Buffer.from(
  JSON.stringify({
    id: "chatcmpl-bench",
    object: "chat.completion",
    created,
    model: "bench-model",
    choices: [
      {
        index: 0,
        message: { role: "assistant", content: "Hello! I am a fast mock upstream answering a benchmark." },
        finish_reason: "stop",
      },
    ],
    usage: { prompt_tokens: 12, completion_tokens: 12, total_tokens: 24 },
  }),
);
const jsonHeaders = { "content-type": "application/json", "content-length": String(jsonBody.length) };

/** Chunk 0 already carries content (role + first token), so a gateway that waits for content adds no wait. */
const streamChunks: Buffer[] = [];
for (let index = 0; index < chunkCount; index++) {
  const isLast = index === chunkCount - 1;
  const delta = index === 0 ? { role: "assistant", content: "Hello" } : isLast ? {} : { content: ` token${index}` };
  const chunk = {
    id: "chatcmpl-bench",
    object: "chat.completion.chunk",
    created,
    model: "bench-model",
    choices: [{ index: 0, delta, finish_reason: isLast ? "stop" : null }],
  };
  streamChunks.push(Buffer.from(`data: ${JSON.stringify(chunk)}\n\n`));
}
const streamEnd = Buffer.from("data: [DONE]\n\n");
const streamHeaders = { "content-type": "text/event-stream", "cache-control": "no-cache" };
const STREAM_MARKER = '"stream":true';

function answer(request: IncomingMessage, response: ServerResponse, body: string): void {
  if (request.method !== "POST" || !body.includes(STREAM_MARKER)) {
    response.writeHead(200, jsonHeaders);
    response.end(jsonBody);
    return;
  }
  response.writeHead(200, streamHeaders);
  // One write per chunk, each in its own turn of the event loop, as tokens arrive from a real model: the proxy
  // under test then pays its per-chunk cost instead of receiving the whole stream in one read.
  let index = 0;
  const writeNext = (): void => {
    if (response.destroyed) return;
    const chunk = streamChunks[index++];
    if (chunk === undefined) {
      response.end(streamEnd);
      return;
    }
    response.write(chunk);
    setImmediate(writeNext);
  };
  writeNext();
}

const server = createServer({ keepAliveTimeout: 60_000 }, (request, response) => {
  let body = "";
  request.setEncoding("utf8");
  request.on("data", (part: string) => {
    body += part;
  });
  request.on("end", () => answer(request, response, body));
});

server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  process.stdout.write(`${JSON.stringify({ port })}\n`);
});
