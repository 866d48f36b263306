// How much memory one large transcription upload costs while it fails over: a 20 MB file, three providers (the
// first two answer 500, the third 200), the gateway in this process. The upstreams measure what is still alive when
// each attempt's body has arrived (after a full GC); the sampled peaks include garbage not yet collected (the
// received chunks too), so they vary from run to run. Not a test: run by hand, `node --expose-gc bench/upload-failover-memory.ts`. The figures are in docs/protocols.md.
import { createServer, type Server } from "node:http";
import { request } from "undici";
import { startTestGateway } from "../test/helpers/gateway.ts";

const FILE_BYTES = 20 * 1024 * 1024;
const RUNS = 3;

/** An upstream that reads the body without keeping it (its memory is not the gateway's) and answers `status`. */
async function upstream(status: number, received: number[], live: number[]): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    let bytes = 0;
    req.on("data", (chunk: Buffer) => {
      bytes += chunk.length;
    });
    req.on("end", () => {
      received.push(bytes);
      // What the gateway still holds while this attempt is under way (garbage collected first).
      globalThis.gc?.();
      live.push(process.memoryUsage().arrayBuffers);
      res.writeHead(status, { "content-type": "application/json" });
      res.end(status === 200 ? '{"text":"ok"}' : '{"error":{"message":"boom"}}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  return { server, url: `http://127.0.0.1:${address.port}/v1` };
}

const form = new FormData();
form.set("model", "whisper-1");
form.set("file", new Blob([Buffer.alloc(FILE_BYTES, 7)], { type: "audio/wav" }), "a.wav");
const encoder = new Request("http://localhost/", { method: "POST", body: form });
const body = Buffer.from(await encoder.arrayBuffer());
const contentType = encoder.headers.get("content-type") ?? "";
const mb = (bytes: number): string => (bytes / 1048576).toFixed(0);

for (let run = 0; run < RUNS; run++) {
  const received: number[] = [];
  const live: number[] = [];
  const upstreams = [
    await upstream(500, received, live),
    await upstream(500, received, live),
    await upstream(200, received, live),
  ];
  // A fresh gateway per run: a failed provider is cooled down and would not be tried by the next run.
  const gateway = await startTestGateway(`server:
  port: 0
  host: 127.0.0.1
  body_limit_bytes: 33554432
providers:
${upstreams
  .map(
    (mock, index) => `  - name: p${index}
    base_url: ${mock.url}
    api_key: sk-${index}
    retries: 0
    models:
      whisper-1: { id: whisper-${index} }
`,
  )
  .join("")}`);
  globalThis.gc?.();
  const base = process.memoryUsage();
  let peakArrayBuffers = base.arrayBuffers;
  let peakRss = base.rss;
  const sample = (): void => {
    const now = process.memoryUsage();
    peakArrayBuffers = Math.max(peakArrayBuffers, now.arrayBuffers);
    peakRss = Math.max(peakRss, now.rss);
  };
  const timer = setInterval(sample, 1);
  const response = await request(`${gateway.baseUrl}/audio/transcriptions`, {
    method: "POST",
    body,
    headers: { "content-type": contentType },
  });
  await response.body.text();
  clearInterval(timer);
  sample();
  console.log(
    `run ${run + 1}: ${response.statusCode}, ${response.headers["x-gateway-attempts"]} attempts, upstream bodies ${received.map(mb).join("/")} MB | ` +
      `live arrayBuffers at each attempt +${live.map((bytes) => mb(bytes - base.arrayBuffers)).join("/")} MB | ` +
      `sampled peaks: arrayBuffers +${mb(peakArrayBuffers - base.arrayBuffers)} MB, rss +${mb(peakRss - base.rss)} MB`,
  );
  await gateway.close();
  for (const mock of upstreams) mock.server.close();
}
