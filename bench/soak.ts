// Soak benchmark (not a test): the real gateway (`src/main.ts serve` in a child process) under mixed load for a
// long time (default 10 minutes) while two upstreams fail at random: 5xx, 429s, resets, hangs, cut and stalled
// streams, bad JSON, errors in 200s. Reports errors by kind, the gateway's RSS over time, event-loop delay p99,
// open sockets, and at the end whether concurrency slots, attempts in flight, the queue and sockets are back to zero.
// With `--replicas N` (N >= 2) N gateways share their state through a redis-server the soak starts, the clients
// spread over them, and at the end no concurrency lease may be left in Redis either.
// Clients speak Chat Completions, the Responses API and Anthropic Messages (`--protocols`, each request one of them
// at random): every error body must be in the caller's protocol's shape, every 200 answer too, and every stream
// must end with its protocol's end or an in-band error, never just stop (each a failure, exit code 1).
//
//   node bench/soak.ts                      # 10 minutes
//   node bench/soak.ts --duration 30        # a smoke run
//   node bench/soak.ts --clients 64 --json  # more load; machine-readable report on stdout
//   node bench/soak.ts --replicas 2         # two gateways sharing state through Redis
//   node bench/soak.ts --protocols chat     # Chat Completions clients only (as before 2026-12-05)
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import { Agent, request } from "undici";
import { stringify } from "yaml";
import { scanKeys } from "../src/state/redis-client.ts";
import { isRedisInstalled, type RedisServer, startRedisServer } from "../test/helpers/redis-server.ts";
import type { ProbeSample } from "./soak-probe.ts";

const { values: options } = parseArgs({
  options: {
    duration: { type: "string", default: "600" },
    clients: { type: "string", default: "32" },
    "fault-rate": { type: "string", default: "0.3" },
    "sample-every": { type: "string", default: "10" },
    replicas: { type: "string", default: "1" },
    protocols: { type: "string", default: "chat,responses,messages" },
    json: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});
if (options.help) {
  process.stdout.write(
    "node bench/soak.ts [--duration S=600] [--clients N=32] [--fault-rate 0..1=0.3] [--sample-every S=10] [--replicas N=1]\n" +
      "                   [--protocols chat,responses,messages] [--json]\n",
  );
  process.exit(0);
}
const durationMs = Number(options.duration) * 1000;
const clientCount = Number(options.clients);
const faultRate = Number(options["fault-rate"]);
const sampleEveryMs = Number(options["sample-every"]) * 1000;
const replicaCount = Number(options.replicas);
if (!Number.isInteger(replicaCount) || replicaCount < 1) throw new Error("--replicas must be a whole number >= 1");
const CLIENT_KEY = "soak-client-key";
const CONCURRENCY_PER_DEPLOYMENT = 24;

const benchDir = fileURLToPath(new URL(".", import.meta.url));
const repoRoot = join(benchDir, "..");

// ---- faulty upstreams ----------------------------------------------------------------------------------------

const FAULTS = [
  "server_error",
  "rate_limited",
  "reset",
  "hang",
  "stream_cut",
  "stream_stall",
  "bad_json",
  "error_in_200",
  "slow",
] as const;
type Fault = (typeof FAULTS)[number] | "none";

const faultsServed = new Map<string, number>();
const hanging = new Set<ServerResponse>();

/** A streamed answer is these words, `w0 w1 … w11 `; JSON answers are COMPLETION_TEXT. */
const STREAM_WORDS = 12;
const STREAM_TEXT = Array.from({ length: STREAM_WORDS }, (_, index) => `w${index} `).join("");
const COMPLETION_TEXT = "soak test answer";

/**
 * Where a stream starts: after the words of a trailing assistant message (the gateway's prefill continuation of a
 * cut stream), as a model extends the text it is given; 0 for a fresh request. So a stream continued after any
 * fault must still reach its client as exactly STREAM_TEXT.
 */
function prefilledWords(body: string): number {
  try {
    const messages = (JSON.parse(body) as { messages?: { role?: unknown; content?: unknown }[] }).messages ?? [];
    const last = messages.at(-1);
    if (last?.role !== "assistant" || typeof last.content !== "string") return 0;
    return STREAM_TEXT.startsWith(last.content) ? last.content.split(" ").length - 1 : 0;
  } catch {
    return 0;
  }
}

function chunk(content: string): string {
  return `data: ${JSON.stringify({ id: "s", object: "chat.completion.chunk", created: 1, model: "soak", choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;
}

const completion = JSON.stringify({
  id: "s",
  object: "chat.completion",
  created: 1,
  model: "soak",
  choices: [{ index: 0, message: { role: "assistant", content: COMPLETION_TEXT }, finish_reason: "stop" }],
  usage: { prompt_tokens: 10, completion_tokens: 4, total_tokens: 14 },
});

async function answer(name: string, incoming: IncomingMessage, response: ServerResponse): Promise<void> {
  let body = "";
  for await (const piece of incoming) body += piece;
  if (incoming.url?.endsWith("/models")) {
    response.writeHead(200, { "content-type": "application/json" });
    response.end(JSON.stringify({ object: "list", data: [{ id: "soak-model" }] }));
    return;
  }
  const isStream = body.includes('"stream":true');
  const firstWord = prefilledWords(body);
  const fault: Fault =
    Math.random() < faultRate ? (FAULTS[Math.floor(Math.random() * FAULTS.length)] ?? "none") : "none";
  faultsServed.set(`${name}:${fault}`, (faultsServed.get(`${name}:${fault}`) ?? 0) + 1);
  switch (fault) {
    case "server_error":
      response.writeHead(500, { "content-type": "application/json" });
      response.end('{"error":{"message":"internal error"}}');
      return;
    case "rate_limited":
      response.writeHead(429, { "content-type": "application/json", "retry-after-ms": "300" });
      response.end('{"error":{"message":"rate limited"}}');
      return;
    case "reset":
      incoming.socket.destroy();
      return;
    case "hang":
      hanging.add(response);
      response.on("close", () => hanging.delete(response));
      return;
    case "bad_json":
      response.writeHead(200, { "content-type": "application/json" });
      response.end('{"choices": [');
      return;
    case "error_in_200":
      response.writeHead(200, { "content-type": "application/json" });
      response.end('{"error":{"message":"upstream overloaded","code":503}}');
      return;
    default:
      break;
  }
  if (fault === "slow") await sleep(300 + Math.random() * 700);
  if (!isStream) {
    response.writeHead(200, { "content-type": "application/json" });
    response.end(completion);
    return;
  }
  response.writeHead(200, { "content-type": "text/event-stream" });
  for (let index = firstWord; index < STREAM_WORDS; index++) {
    if (response.destroyed) return;
    response.write(chunk(`w${index} `));
    if (fault === "stream_cut" && index === 5) {
      response.destroy();
      return;
    }
    if (fault === "stream_stall" && index === 5) {
      hanging.add(response);
      response.on("close", () => hanging.delete(response));
      return;
    }
    await sleep(10);
  }
  response.end(
    `data: ${JSON.stringify({ id: "s", object: "chat.completion.chunk", created: 1, model: "soak", choices: [{ index: 0, delta: {}, finish_reason: "stop" }] })}\n\ndata: [DONE]\n\n`,
  );
}

async function startUpstream(name: string): Promise<{ server: Server; url: string }> {
  const server = createServer((incoming, response) => {
    answer(name, incoming, response).catch(() => response.destroy());
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1` };
}

// ---- the gateway ---------------------------------------------------------------------------------------------

/** Every replica's concurrency leases live under this prefix in Redis (src/state/redis-keys.ts). */
const REDIS_KEY_PREFIX = "llm-gateway-soak:";

async function startGateway(
  upstreams: readonly string[],
  redisUrl: string | undefined,
): Promise<{ child: ChildProcess; url: string }> {
  const dir = mkdtempSync(join(tmpdir(), "llm-gateway-soak-"));
  const configPath = join(dir, "config.yaml");
  writeFileSync(
    configPath,
    stringify({
      server: { port: 0, host: "127.0.0.1", api_keys: [CLIENT_KEY], log_level: "info" },
      providers: upstreams.map((url, index) => ({
        name: `up${index}`,
        base_url: url,
        api_key: `sk-soak-${index}`,
        retries: 1,
        timeout_ms: 2_000,
        first_token_timeout_ms: 1_500,
        stream_idle_timeout_ms: 1_000,
        models: { m: { id: "soak-model", limits: { concurrency: CONCURRENCY_PER_DEPLOYMENT } } },
      })),
      routing: { queue_timeout_ms: 1_000, total_timeout_ms: 6_000 },
      cooldowns: { circuit_first_probe_ms: 500, circuit_open_ms: 4_000 },
      discovery: { cache_dir: join(dir, "cache") },
      state:
        redisUrl === undefined
          ? { path: ":memory:" }
          : { path: ":memory:", redis_url: redisUrl, redis_key_prefix: REDIS_KEY_PREFIX },
    }),
  );
  const child = spawn(
    process.execPath,
    [
      "--import",
      pathToFileURL(join(benchDir, "exit-with-parent.ts")).href,
      "--import",
      pathToFileURL(join(benchDir, "soak-probe.ts")).href,
      join(repoRoot, "src", "main.ts"),
      "serve",
      "--config",
      configPath,
    ],
    { cwd: dir, stdio: ["pipe", "pipe", "pipe", "ipc"], env: { PATH: process.env.PATH ?? "", NODE_NO_WARNINGS: "1" } },
  );
  child.stderr?.setEncoding("utf8").on("data", (text: string) => process.stderr.write(`[gateway] ${text}`));
  const url = await new Promise<string>((resolve, reject) => {
    let pending = "";
    child.stdout?.setEncoding("utf8").on("data", (text: string) => {
      pending += text;
      const match = /listening on (http:\/\/[^\s"]+?)\/v1/.exec(pending);
      if (match?.[1] !== undefined) resolve(match[1]);
      if (pending.length > 100_000) pending = pending.slice(-10_000);
    });
    child.once("exit", (code) => reject(new Error(`gateway exited with ${code}`)));
  });
  return { child, url };
}

// ---- load ----------------------------------------------------------------------------------------------------

const outcomes = new Map<string, number>();
const count = (key: string): void => {
  outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
};
/** Error bodies not in the caller's protocol's shape, and 200 answers not in it: each one fails the soak. */
let malformedErrors = 0;
let malformedAnswers = 0;
/** Streams that ended with neither their protocol's end nor an in-band error (the client did not abort): fail it. */
let cutStreams = 0;
/** Streams that ended well but delivered other text than the upstream's answer (a continuation spliced wrong). */
let wrongTexts = 0;

/** The front doors a soak client speaks; each request picks one of `--protocols` at random. */
const CLIENT_PROTOCOLS = ["chat", "responses", "messages"] as const;
type ClientProtocol = (typeof CLIENT_PROTOCOLS)[number];
const protocols = options.protocols.split(",").map((name) => name.trim()) as ClientProtocol[];
for (const name of protocols) {
  if (!CLIENT_PROTOCOLS.includes(name)) throw new Error(`--protocols: ${name} is not one of ${CLIENT_PROTOCOLS}`);
}

const PATHS: Readonly<Record<ClientProtocol, string>> = {
  chat: "/v1/chat/completions",
  responses: "/v1/responses",
  messages: "/v1/messages",
};

function requestBody(protocol: ClientProtocol, isStream: boolean): string {
  switch (protocol) {
    case "chat":
      return JSON.stringify({ model: "m", stream: isStream, messages: [{ role: "user", content: "soak" }] });
    case "responses":
      // Not kept: a soak of failover, not of the kept-responses store growing for minutes.
      return JSON.stringify({ model: "m", stream: isStream, input: "soak", store: false });
    case "messages":
      return JSON.stringify({
        model: "m",
        stream: isStream,
        max_tokens: 64,
        messages: [{ role: "user", content: "soak" }],
      });
  }
}

/** The error code or type of an error body in `protocol`'s shape, or undefined when the body is not in it. */
function errorCodeOf(protocol: ClientProtocol, text: string): string | undefined {
  let body: { type?: unknown; error?: { code?: unknown; type?: unknown; message?: unknown } | null };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    return undefined;
  }
  const error = body.error;
  if (error === undefined || error === null || typeof error.message !== "string") return undefined;
  // Anthropic's shape: {"type":"error","error":{"type","message"}}; OpenAI's: {"error":{"message","type","code"}}.
  if (protocol === "messages") return body.type === "error" && typeof error.type === "string" ? error.type : undefined;
  return String(error.code ?? error.type);
}

/** Whether a 200 JSON answer is what `protocol`'s client expects, with the upstream's text. */
function isAnswerShaped(protocol: ClientProtocol, text: string): boolean {
  try {
    const body = JSON.parse(text) as {
      object?: unknown;
      type?: unknown;
      status?: unknown;
      choices?: { message?: { content?: unknown } }[];
      output?: { content?: { text?: unknown }[] }[];
      content?: { text?: unknown }[];
    };
    if (protocol === "chat") {
      return body.object === "chat.completion" && body.choices?.[0]?.message?.content === COMPLETION_TEXT;
    }
    if (protocol === "responses") {
      return (
        body.object === "response" &&
        body.status === "completed" &&
        body.output?.at(-1)?.content?.[0]?.text === COMPLETION_TEXT
      );
    }
    return body.type === "message" && body.content?.[0]?.text === COMPLETION_TEXT;
  } catch {
    return false;
  }
}

/** The text a stream delivered, from its protocol's text events. */
function streamedText(protocol: ClientProtocol, text: string): string {
  let delivered = "";
  for (const line of text.split("\n")) {
    if (!line.startsWith("data: {")) continue;
    const event = JSON.parse(line.slice("data: ".length)) as {
      type?: string;
      delta?: string | { type?: string; text?: string };
      choices?: { delta?: { content?: unknown } }[];
    };
    if (protocol === "chat") {
      const content = event.choices?.[0]?.delta?.content;
      if (typeof content === "string") delivered += content;
    } else if (protocol === "responses") {
      if (event.type === "response.output_text.delta" && typeof event.delta === "string") delivered += event.delta;
    } else if (event.type === "content_block_delta" && typeof event.delta === "object") {
      if (event.delta.type === "text_delta" && typeof event.delta.text === "string") delivered += event.delta.text;
    }
  }
  return delivered;
}

/** How a stream ended, from its last event: its protocol's end, an in-band error, or neither (cut). */
function streamEnding(protocol: ClientProtocol, text: string): "end" | "in-band error" | "cut" {
  const lines = text.trimEnd().split("\n");
  const last = lines.at(-1) ?? "";
  if (protocol === "chat") return last === "data: [DONE]" ? "end" : last.includes('"error"') ? "in-band error" : "cut";
  if (protocol === "messages") {
    const event = lines.findLast((line) => line.startsWith("event: "))?.slice("event: ".length);
    return event === "message_stop" ? "end" : event === "error" ? "in-band error" : "cut";
  }
  // Responses: the last event's type; `response.failed` follows the gateway's `error` event.
  let type: unknown;
  try {
    type = (JSON.parse(last.replace(/^data: /, "")) as { type?: unknown }).type;
  } catch {
    return "cut";
  }
  return type === "response.completed" ? "end" : type === "response.failed" ? "in-band error" : "cut";
}

async function oneRequest(agent: Agent, url: string): Promise<void> {
  const protocol = protocols[Math.floor(Math.random() * protocols.length)] as ClientProtocol;
  const isStream = Math.random() < 0.5;
  const isInvalid = Math.random() < 0.03;
  const abortAfterMs = Math.random() < 0.05 ? Math.random() * 300 : undefined;
  const controller = new AbortController();
  const timer = abortAfterMs === undefined ? undefined : setTimeout(() => controller.abort(), abortAfterMs);
  try {
    const response = await request(`${url}${PATHS[protocol]}`, {
      method: "POST",
      dispatcher: agent,
      signal: controller.signal,
      headers: { "content-type": "application/json", authorization: `Bearer ${CLIENT_KEY}` },
      body: isInvalid ? '{"model": "m", "messages": 7' : requestBody(protocol, isStream),
    });
    const text = await response.body.text();
    if (response.statusCode >= 400) {
      const code = errorCodeOf(protocol, text);
      if (code === undefined) malformedErrors++;
      count(`${protocol} ${response.statusCode} ${code ?? "not in the protocol's shape"}`);
    } else if (isStream) {
      const ending = streamEnding(protocol, text);
      if (ending === "cut") cutStreams++;
      // A whole answer, continued or not, is exactly the upstream's text: nothing lost, repeated or out of order.
      const isWhole = ending !== "end" || streamedText(protocol, text) === STREAM_TEXT;
      if (!isWhole) wrongTexts++;
      count(`${protocol} 200 stream ${ending}${isWhole ? "" : " with the wrong text"}`);
    } else {
      const isShaped = isAnswerShaped(protocol, text);
      if (!isShaped) malformedAnswers++;
      count(`${protocol} 200 json${isShaped ? "" : " not in the protocol's shape"}`);
    }
  } catch (error) {
    count(
      controller.signal.aborted
        ? "client aborted (by the soak)"
        : `${protocol} client error ${(error as { code?: string }).code ?? "?"}`,
    );
  } finally {
    clearTimeout(timer);
  }
}

// ---- run -----------------------------------------------------------------------------------------------------

interface Row {
  readonly elapsedS: number;
  readonly rssMb: number;
  readonly heapMb: number;
  readonly loopP99Ms: number;
  readonly tcpHandles: number;
  readonly inFlight: number;
  readonly queued: number;
  readonly requests: number;
}

/** Concurrency slots held, requests queued, and attempts without a verdict yet (the suspects' one-at-a-time count). */
async function slotsAndQueue(
  agent: Agent,
  url: string,
): Promise<{ inFlight: number; queued: number; attemptsInFlight: number }> {
  const response = await request(`${url}/stats`, {
    dispatcher: agent,
    headers: { authorization: `Bearer ${CLIENT_KEY}` },
  });
  const stats = (await response.body.json()) as {
    queued_requests: number;
    deployments: { budgets: { in_flight: number }[]; attempts_in_flight: number }[];
  };
  let inFlight = 0;
  let attemptsInFlight = 0;
  for (const deployment of stats.deployments) {
    for (const budget of deployment.budgets) inFlight += budget.in_flight;
    attemptsInFlight += deployment.attempts_in_flight;
  }
  return { inFlight, queued: stats.queued_requests, attemptsInFlight };
}

/** Concurrency leases left in Redis (members of every scope's lease set): each one holds a slot fleet-wide. */
/** Streams the gateway continued on another upstream after a fault (its metrics): what the text check covered. */
async function continuationsOf(agent: Agent, url: string): Promise<number> {
  const response = await request(`${url}/metrics`, {
    dispatcher: agent,
    headers: { authorization: `Bearer ${CLIENT_KEY}` },
  });
  let total = 0;
  for (const line of (await response.body.text()).split("\n")) {
    if (line.startsWith("llm_gateway_stream_continuations_total{"))
      total += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return total;
}

async function leasesLeftInRedis(redisUrl: string): Promise<number> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    let left = 0;
    for await (const keys of scanKeys(redis, `${REDIS_KEY_PREFIX}budget:*:leases`)) {
      for (const key of keys) left += await redis.zcard(key);
    }
    return left;
  } finally {
    redis.disconnect();
  }
}

interface Replica {
  readonly child: ChildProcess;
  readonly url: string;
  latest: ProbeSample | undefined;
  /** TCP handles once started, before any load: the listening socket and its Redis connections. */
  idleTcpHandles: number;
}

async function main(): Promise<void> {
  const upstreams = [await startUpstream("up0"), await startUpstream("up1")];
  let redis: RedisServer | undefined;
  if (replicaCount > 1) {
    if (!isRedisInstalled()) throw new Error("--replicas above 1 shares state through Redis: install redis-server");
    redis = await startRedisServer();
  }
  const replicas: Replica[] = [];
  let worstLoopP99Ms = 0;
  for (let index = 0; index < replicaCount; index++) {
    const started = await startGateway(
      upstreams.map((upstream) => upstream.url),
      redis?.url,
    );
    const replica: Replica = { ...started, latest: undefined, idleTcpHandles: 0 };
    started.child.on("message", (message: ProbeSample) => {
      if (message.kind !== "probe") return;
      replica.latest = message;
      worstLoopP99Ms = Math.max(worstLoopP99Ms, message.eventLoopDelayP99Ms);
    });
    replicas.push(replica);
  }
  // The first second of a fresh process (module compilation) is not what a soak measures.
  await sleep(1_500);
  worstLoopP99Ms = 0;
  for (const replica of replicas) replica.idleTcpHandles = replica.latest?.tcpHandles ?? 1;
  const loadAgent = new Agent({ connections: clientCount, keepAliveTimeout: 2_000 });
  const statsAgent = new Agent({ connections: 1 });
  const startedAtMs = Date.now();
  const rows: Row[] = [];
  let requests = 0;
  let isRunning = true;
  const clients = Array.from({ length: clientCount }, async (_, index) => {
    const url = (replicas[index % replicas.length] as Replica).url;
    while (isRunning) {
      await oneRequest(loadAgent, url);
      requests++;
    }
  });
  const sample = async (): Promise<void> => {
    let inFlight = 0;
    let queued = 0;
    for (const replica of replicas) {
      const counts = await slotsAndQueue(statsAgent, replica.url);
      inFlight += counts.inFlight;
      queued += counts.queued;
    }
    // Memory and sockets: the largest replica's.
    const largest = (pick: (probe: ProbeSample) => number): number =>
      Math.max(...replicas.map((replica) => (replica.latest === undefined ? 0 : pick(replica.latest))));
    const row: Row = {
      elapsedS: Math.round((Date.now() - startedAtMs) / 1000),
      rssMb: Math.round(largest((probe) => probe.rssBytes) / 1e5) / 10,
      heapMb: Math.round(largest((probe) => probe.heapUsedBytes) / 1e5) / 10,
      loopP99Ms: Math.round(largest((probe) => probe.eventLoopDelayP99Ms) * 10) / 10,
      tcpHandles: largest((probe) => probe.tcpHandles),
      inFlight,
      queued,
      requests,
    };
    rows.push(row);
    if (!options.json) {
      process.stderr.write(
        `t=${row.elapsedS}s rss=${row.rssMb}MB heap=${row.heapMb}MB loop-p99=${row.loopP99Ms}ms tcp=${row.tcpHandles} slots=${row.inFlight} queued=${row.queued} requests=${row.requests}\n`,
      );
    }
  };
  while (Date.now() - startedAtMs < durationMs) {
    await sleep(Math.min(sampleEveryMs, durationMs - (Date.now() - startedAtMs)));
    await sample();
  }
  isRunning = false;
  await Promise.all(clients);
  await loadAgent.close();
  // Hanging upstream answers end when the gateway gives up on them; give it its timeouts to drain.
  await sleep(3_000);
  await sleep(1_100); // one more probe sample after the drain
  const ends = [];
  for (const replica of replicas) ends.push(await slotsAndQueue(statsAgent, replica.url));
  let continuations = 0;
  for (const replica of replicas) continuations += await continuationsOf(statsAgent, replica.url);
  await statsAgent.close();
  const end = {
    inFlight: ends.reduce((sum, counts) => sum + counts.inFlight, 0),
    queued: ends.reduce((sum, counts) => sum + counts.queued, 0),
    attemptsInFlight: ends.reduce((sum, counts) => sum + counts.attemptsInFlight, 0),
  };
  const redisLeasesLeft = redis === undefined ? 0 : await leasesLeftInRedis(redis.url);
  // Left open at the end: what each replica had open before the load (its listening socket and Redis
  // connections) and the one /stats connection, which is closed by now.
  const tcpLeftOver = replicas.map((replica) => (replica.latest?.tcpHandles ?? -1) - replica.idleTcpHandles);
  const tcpAtEnd = replicas.map((replica) => replica.latest?.tcpHandles ?? -1);
  const isBackToZero =
    end.inFlight === 0 &&
    end.queued === 0 &&
    end.attemptsInFlight === 0 &&
    redisLeasesLeft === 0 &&
    tcpLeftOver.every((extra) => extra <= 1);
  const report = {
    duration_s: Math.round((Date.now() - startedAtMs) / 1000),
    clients: clientCount,
    replicas: replicaCount,
    fault_rate: faultRate,
    requests,
    outcomes: Object.fromEntries([...outcomes].sort((a, b) => b[1] - a[1])),
    protocols,
    error_bodies_not_in_protocol_shape: malformedErrors,
    answers_not_in_protocol_shape: malformedAnswers,
    streams_cut: cutStreams,
    streams_with_wrong_text: wrongTexts,
    streams_continued: continuations,
    upstream_faults: Object.fromEntries([...faultsServed].sort()),
    rss_mb_over_time: rows.map((row) => [row.elapsedS, row.rssMb]),
    event_loop_delay_p99_ms_worst: Math.round(worstLoopP99Ms * 10) / 10,
    at_end: {
      concurrency_slots_in_flight: end.inFlight,
      attempts_in_flight: end.attemptsInFlight,
      queued_requests: end.queued,
      redis_concurrency_leases: redis === undefined ? null : redisLeasesLeft,
      gateway_tcp_handles: replicaCount === 1 ? tcpAtEnd[0] : tcpAtEnd,
      back_to_zero: isBackToZero,
    },
    samples: rows,
  };
  if (options.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else {
    const lines = [
      "",
      `soak: ${report.duration_s} s, ${clientCount} clients (${protocols.join(", ")}), ${replicaCount === 1 ? "one gateway" : `${replicaCount} gateways sharing Redis`}, fault rate ${faultRate}, ${requests} requests`,
      "outcomes:",
      ...Object.entries(report.outcomes).map(([key, value]) => `  ${String(value).padStart(8)}  ${key}`),
      `error bodies not in the caller's protocol's shape: ${malformedErrors}; 200 answers not in it: ${malformedAnswers}; streams that just stopped: ${cutStreams}; streams with the wrong text: ${wrongTexts} (${continuations} streams continued after a fault)`,
      `RSS over time (s, MB${replicaCount === 1 ? "" : ", the largest replica"}): ${report.rss_mb_over_time.map(([s, mb]) => `${s}:${mb}`).join(" ")}`,
      `event-loop delay p99, worst 1 s window: ${report.event_loop_delay_p99_ms_worst} ms`,
      `at the end: concurrency slots in flight ${end.inFlight}, attempts in flight ${end.attemptsInFlight}, queued ${end.queued}${redis === undefined ? "" : `, concurrency leases in Redis ${redisLeasesLeft}`}, gateway TCP handles ${tcpAtEnd.join(" / ")} (${replicas.map((replica) => replica.idleTcpHandles).join(" / ")} before the load: listening socket${redis === undefined ? "" : " and Redis connections"})`,
      `back to zero: ${isBackToZero ? "yes" : "NO"}`,
    ];
    process.stdout.write(`${lines.join("\n")}\n`);
  }
  for (const replica of replicas) replica.child.kill("SIGTERM");
  for (const response of hanging) response.destroy();
  for (const upstream of upstreams) upstream.server.close();
  for (const upstream of upstreams) upstream.server.closeAllConnections();
  await Promise.all(
    replicas.map((replica) =>
      replica.child.exitCode !== null || replica.child.signalCode !== null ? undefined : once(replica.child, "exit"),
    ),
  );
  await redis?.stop();
  const isClean = malformedErrors === 0 && malformedAnswers === 0 && cutStreams === 0 && wrongTexts === 0;
  process.exitCode = isBackToZero && isClean ? 0 : 1;
}

await main();
