// Abandoned streams release everything: 200 clients hang up mid-stream (in the first upstream's stream, in a
// continuation, or while the continuation is still being opened), and afterwards no upstream call is left
// running, no concurrency slot is held and no socket is left open on either side of the gateway.
import assert from "node:assert/strict";
import { type ClientRequest, request as httpRequest, type IncomingMessage } from "node:http";
import { type TestContext, test } from "node:test";
import { Agent, request } from "undici";
import { stringify } from "yaml";
import { startTestGateway } from "../helpers/gateway.ts";
import { chatStream, type MockStep, type RecordedRequest, startMockUpstream } from "../helpers/mock-upstream.ts";
import { waitUntil } from "../helpers/sse-client.ts";

const CHAT_ROUTE = "POST /v1/chat/completions";
const MODEL = "m";

const STREAMS = 200;
const AT_ONCE = 20;
const WORDS = Array.from({ length: 60 }, (_, index) => (index === 0 ? "Word0" : ` word${index}`));

/** Where the client hangs up. */
type AbandonPoint = "first_stream" | "continuation" | "continuation_opening";
const POINTS: readonly AbandonPoint[] = ["first_stream", "continuation", "continuation_opening"];

function pointOf(recorded: RecordedRequest): AbandonPoint {
  const messages = (recorded.body as { messages?: { content?: unknown }[] } | undefined)?.messages;
  const point = messages?.[0]?.content;
  assert.ok(typeof point === "string" && (POINTS as readonly string[]).includes(point), `unexpected request`);
  return point as AbandonPoint;
}

/** alpha: a slow whole answer, or 5 words and a cut (the continuation cases). */
function primaryStep(recorded: RecordedRequest): MockStep {
  if (pointOf(recorded) === "first_stream") {
    return { kind: "sse", events: chatStream(WORDS, MODEL, { delayMs: 20 }) };
  }
  return { kind: "sse", events: chatStream(WORDS.slice(0, 5), MODEL).slice(0, 6), end: "destroy" };
}

/** beta, asked to continue: slowly, or only after a long wait for its first content. */
function backupStep(recorded: RecordedRequest): MockStep {
  const rest = chatStream(WORDS.slice(5), MODEL, { delayMs: 20 });
  if (pointOf(recorded) === "continuation") return { kind: "sse", events: rest };
  // Its first content would come long after every wait below: only an abort can end this call in time.
  return { kind: "sse", events: [rest[0] ?? { delayMs: 0 }, { delayMs: 30_000 }, ...rest.slice(1)] };
}

interface Abandoned {
  /** What the client had received when it hung up. */
  readonly text: string;
}

/**
 * Streams a chat request over its own socket and destroys that socket at `point`: once " word3" of the first
 * stream arrived, once the first spliced (marked) chunk arrived, or 150 ms after the first stream's last word
 * (" word4", just before alpha cuts and beta is asked to continue).
 */
function openAndAbandon(port: number, point: AbandonPoint): Promise<Abandoned> {
  return new Promise((resolve, reject) => {
    let text = "";
    let isAbandoned = false;
    let timer: NodeJS.Timeout | undefined;
    const abandon = (request: ClientRequest, response: IncomingMessage): void => {
      if (isAbandoned) return;
      isAbandoned = true;
      clearTimeout(timer);
      response.socket.destroy();
      request.destroy();
      resolve({ text });
    };
    const request = httpRequest(
      {
        host: "127.0.0.1",
        port,
        path: "/v1/chat/completions",
        method: "POST",
        agent: false,
        headers: { "content-type": "application/json", authorization: "Bearer x" },
      },
      (response) => {
        if (response.statusCode !== 200) {
          reject(new Error(`HTTP ${response.statusCode}`));
          response.resume();
          return;
        }
        response.setEncoding("utf8");
        response.on("data", (data: string) => {
          text += data;
          if (point === "first_stream" && text.includes('" word3"')) abandon(request, response);
          if (point === "continuation" && text.includes('"x_gateway"')) abandon(request, response);
          if (point === "continuation_opening" && text.includes('" word4"') && timer === undefined) {
            timer = setTimeout(() => abandon(request, response), 150);
          }
        });
        response.on("end", () => {
          if (!isAbandoned) reject(new Error(`the stream ended before the client left: ${text.slice(-200)}`));
        });
        response.on("error", () => {});
      },
    );
    request.on("error", (error) => {
      if (!isAbandoned) reject(error);
    });
    request.end(JSON.stringify({ model: MODEL, stream: true, messages: [{ role: "user", content: point }] }));
  });
}

/** Concurrency slots a provider's deployment holds, from /stats (over `agent`, so its socket can be closed). */
async function inFlight(gatewayUrl: string, agent: Agent, provider: string): Promise<number> {
  const response = await request(`${gatewayUrl}/stats`, { dispatcher: agent });
  const rows = (
    (await response.body.json()) as { deployments: { provider: string; budgets: { in_flight: number }[] }[] }
  ).deployments;
  const row = rows.find((candidate) => candidate.provider === provider);
  assert.ok(row !== undefined);
  return row.budgets.reduce((sum, budget) => sum + budget.in_flight, 0);
}

function gatewayConnections(server: { getConnections(callback: (error: Error | null, count: number) => void): void }) {
  return new Promise<number>((resolve, reject) =>
    server.getConnections((error, count) => (error === null ? resolve(count) : reject(error))),
  );
}

/**
 * alpha (preferred) and beta, both with a concurrency limit. The breaker is turned off (no circuit, no
 * one-at-a-time after a failure): this test is about releasing resources, and 130 cut streams would otherwise
 * open alpha's circuit and reshuffle the routing.
 */
async function startScene(t: TestContext) {
  const primary = await startMockUpstream();
  const backup = await startMockUpstream();
  const provider = (name: string, baseUrl: string, priority: number) => ({
    name,
    base_url: baseUrl,
    api_key: `sk-${name}`,
    retries: 0,
    timeout_ms: 5000,
    first_token_timeout_ms: 20_000,
    stream_idle_timeout_ms: 5000,
    models: { [MODEL]: { priority, limits: { concurrency: AT_ONCE * 2 } } },
  });
  const gateway = await startTestGateway(
    stringify({
      providers: [provider("alpha", primary.baseUrl, 100), provider("beta", backup.baseUrl, 1)],
      cooldowns: { failure_threshold: 1_000_000, suspect_single_flight: false },
    }),
  );
  t.after(async () => {
    await primary.close();
    await backup.close();
    await gateway.close();
  });
  primary.setDefault(CHAT_ROUTE, primaryStep);
  backup.setDefault(CHAT_ROUTE, backupStep);
  return { primary, backup, gateway };
}

test(`${STREAMS} streams abandoned mid-stream (${AT_ONCE} at a time) release every upstream call, slot and socket`, async (t) => {
  const scene = await startScene(t);
  const statuses: number[] = [];
  scene.gateway.runtime.onRecord((decision) => statuses.push(decision.status));
  const startedAtMs = performance.now();

  let next = 0;
  const received: { point: AbandonPoint; text: string }[] = [];
  const worker = async (): Promise<void> => {
    for (let index = next++; index < STREAMS; index = next++) {
      const point = POINTS[index % POINTS.length] as AbandonPoint;
      const { text } = await openAndAbandon(scene.gateway.port, point);
      received.push({ point, text });
    }
  };
  await Promise.all(Array.from({ length: AT_ONCE }, worker));
  assert.equal(received.length, STREAMS);
  for (const { point, text } of received) {
    assert.ok(!text.includes("[DONE]") && !text.includes('"error"'), `${point}: abandoned before the end`);
  }
  // Every continuation case reached the backup.
  const continued = received.filter(({ point }) => point !== "first_stream").length;
  await waitUntil(() => scene.backup.requests.length === continued, "every continuation request", 20_000);

  await waitUntil(
    () => scene.primary.activeRequests() === 0 && scene.backup.activeRequests() === 0,
    "every upstream call to be closed",
    20_000,
  );
  const statsAgent = new Agent();
  for (const provider of ["alpha", "beta"]) {
    // Polled generously: a leak never frees, a loaded machine only frees late.
    const deadline = performance.now() + 20_000;
    let slots = await inFlight(scene.gateway.url, statsAgent, provider);
    while (slots !== 0) {
      assert.ok(performance.now() < deadline, `${provider} still holds ${slots} concurrency slots`);
      await new Promise((resolve) => setTimeout(resolve, 20));
      slots = await inFlight(scene.gateway.url, statsAgent, provider);
    }
  }
  // Client side: every client socket is gone (the /stats requests' one too, once closed): the gateway holds none.
  await statsAgent.close();
  const deadline = performance.now() + 20_000;
  while ((await gatewayConnections(scene.gateway.app.server)) !== 0) {
    assert.ok(performance.now() < deadline, "the gateway still holds client connections");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  // Upstream side: nothing running or queued in the gateway's pool; connections left are idle keep-alives.
  const pools = Object.values((scene.gateway.runtime.dispatcher as Agent).stats);
  assert.ok(pools.length > 0);
  for (const pool of pools) {
    assert.equal(pool.running, 0, "no upstream request still running");
    assert.equal(pool.pending, 0, "no upstream request waiting for a connection");
  }
  // Each one is logged as the client's doing (499), also when it left during a continuation.
  await waitUntil(() => statuses.length === STREAMS, "every routing decision");
  assert.deepEqual(new Set(statuses), new Set([499]));
  // A bound against hangs (a leaked slot makes later streams wait for ever), not a speed target: about 3 s on a
  // quiet machine, 16 s seen on a heavily loaded one, so a bound far above both.
  const elapsedMs = performance.now() - startedAtMs;
  assert.ok(elapsedMs < 120_000, `took ${Math.round(elapsedMs)} ms`);
});
