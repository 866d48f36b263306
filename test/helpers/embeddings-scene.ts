// The embeddings door's scenes: one or two mock providers of an embedding model `embed`, answering one vector per
// input as the provider writes it.
import type { TestContext } from "node:test";
import { send, twoProviderScene, useGateway, useMock } from "./e2e.ts";
import type { TestGateway } from "./gateway.ts";
import { MODEL, startScene, windowOf } from "./limits-scene.ts";
import type { MockUpstream } from "./mock-upstream.ts";

export const EMBEDDINGS_ROUTE = "POST /v1/embeddings";
/** Eighths: exact as float32, so a float32 round trip gives them back as they were. */
export const VECTOR = [0.125, -0.25, 0.375, 0.5, -0.625, 0.75];

/** One provider `alpha` of `embed`; `extra`: top-level YAML after it (e.g. `cache:\n  enabled: true\n`). */
export async function embeddingScene(t: TestContext, extra = "") {
  const mock = await useMock(t);
  const gateway = await useGateway(
    t,
    `providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha
    models:
      embed: { kind: embedding }
${extra}`,
  );
  return { mock, gateway };
}

/** Two providers of `embed`, the second answering floats; `firstKeys`: the first's extra settings. */
export async function embeddingPair(t: TestContext, firstKeys: string) {
  const scene = await twoProviderScene(t, {
    model: "embed",
    firstModel: "{ id: embed-first, kind: embedding }",
    secondModel: "{ id: embed-second, kind: embedding }",
    firstKeys,
    keepsRequestLog: false,
  });
  answerWith(scene.second, (vector) => vector);
  return scene;
}

/** An answer of one `embedding` per input, as the provider writes it (floats, or whatever `encode` makes of them). */
export function answerWith(mock: MockUpstream, encode: (vector: number[]) => unknown): void {
  mock.setDefault(EMBEDDINGS_ROUTE, (request) => {
    const input = (request.body as { input: unknown }).input;
    const count = Array.isArray(input) ? input.length : 1;
    return {
      kind: "json",
      body: {
        object: "list",
        data: Array.from({ length: count }, (_, index) => ({ object: "embedding", index, embedding: encode(VECTOR) })),
        model: "embed",
        usage: { prompt_tokens: count, total_tokens: count },
      },
    };
  });
}

/** The embeddings calls a mock provider got. */
export function embeddingsCalls(mock: MockUpstream): number {
  return mock.requests.filter((request) => request.path === "/v1/embeddings").length;
}

/**
 * Text `t<N>`'s vector (`t<N>` and any words after it): [N, N / 8] (exact as float32), so each vector says which
 * input it was made of.
 */
export const vectorOf = (text: string) => [Number.parseInt(text.slice(1), 10), Number.parseInt(text.slice(1), 10) / 8];
/** `t0`, `t1`, ...; `words`: that many more words after each (a word is a token by the gateway's estimate). */
export const texts = (count: number, words = 0) =>
  Array.from({ length: count }, (_, index) => `t${index}${" word".repeat(words)}`);

/** A chunk holding `text` is answered 500 this many more times. */
export interface Failing {
  text: string;
  times: number;
}

/** 3 tokens an input, as the mock providers report them. */
export const reportedUsage = (input: readonly string[]) => ({
  usage: { prompt_tokens: 3 * input.length, total_tokens: 3 * input.length },
});

/**
 * Answers every embeddings call with each input's own vector, listed backwards (the gateway sorts by index), but a
 * 500 to a call holding `failing.text` while `failing.times` lasts. `usageOf`: the answer's `usage` (and any other
 * top-level fields) for a call's inputs.
 */
export function answerEachInput(
  mock: MockUpstream,
  failing: Failing = { text: "", times: 0 },
  usageOf: (input: readonly string[]) => Record<string, unknown> = reportedUsage,
): void {
  mock.setDefault(EMBEDDINGS_ROUTE, (request) => {
    const input = (request.body as { input: string[] }).input;
    if (failing.times > 0 && input.includes(failing.text)) {
      failing.times -= 1;
      return { kind: "json", status: 500, body: { error: { message: "overloaded" } } };
    }
    const data = input.map((text, index) => ({ object: "embedding", index, embedding: vectorOf(text) })).reverse();
    return { kind: "json", body: { object: "list", data, model: "m-up", ...usageOf(input) } };
  });
}

/** The inputs each embeddings call carried. */
export function sentInputs(mock: MockUpstream): unknown[] {
  return mock.requests
    .filter((request) => request.path === "/v1/embeddings")
    .map((request) => (request.body as { input: unknown }).input);
}

/** The named client of `chargedScene` (its own tpm budget) and the unnamed key that reads /stats. */
export const GREEDY = { authorization: "Bearer sk-client" };
export const OPS = { authorization: "Bearer sk-ops" };

/**
 * The limits scene (`m` on alpha alone) as an embedding model taking at most 2 inputs a call, so a longer batch is
 * sent in chunks, with a tpm budget; the client `greedy` (GREEDY) has a tpm budget of its own, so /stats shows what
 * a chunked batch charged it beside what it charged the deployment.
 */
export function chargedScene(t: TestContext) {
  return startScene(t, {
    beta: false,
    alphaModel: { kind: "embedding", max_inputs: 2, limits: { tpm: 1_000_000 } },
    config: {
      server: {
        port: 0,
        host: "127.0.0.1",
        api_keys: [{ key: "sk-client", name: "greedy", limits: { tpm: 1_000_000 } }, "sk-ops"],
      },
    },
  });
}

/**
 * The tokens /stats says `chargedScene`'s client and alpha's `m` were charged this minute. A request's charges land
 * after its answer is written, so they are read again (for about a second) until both are `expected`; then, or once
 * the time is up, the last ones read are returned for the test to assert.
 */
export async function chargedTokens(
  gateway: TestGateway,
  expected: number,
): Promise<{ client: number | undefined; deployment: number | undefined }> {
  let charged: { client: number | undefined; deployment: number | undefined } = {
    client: undefined,
    deployment: undefined,
  };
  for (let tries = 0; tries < 50 && (charged.client !== expected || charged.deployment !== expected); tries++) {
    if (tries > 0) await new Promise((resolve) => setTimeout(resolve, 20));
    const stats = (await send(gateway, "GET", "/stats", { headers: OPS })).json as {
      deployments: Parameters<typeof windowOf>[0][];
      clients?: Record<string, { budgets: { unit: string; used: number }[] }>;
    };
    const row = stats.deployments[0];
    charged = {
      client: stats.clients?.greedy?.budgets.find((window) => window.unit === "tokens")?.used,
      deployment: row === undefined ? undefined : windowOf(row, `deployment:alpha/${MODEL}`, "tokens", "minute").used,
    };
  }
  return charged;
}

/**
 * A named client's used requests and tokens in its minute windows, from /stats (read with `sk-ops`, a key without a
 * name), polled until `isSettled(tokens)`: its charge is settled when the request's record is published, just after
 * the answer.
 */
export async function clientMinuteUsed(
  gateway: TestGateway,
  client: string,
  isSettled: (tokens: number | undefined) => boolean,
): Promise<{ requests: number | undefined; tokens: number | undefined }> {
  let used: { requests: number | undefined; tokens: number | undefined } = { requests: undefined, tokens: undefined };
  for (let tries = 0; tries < 100; tries++) {
    const response = await send(gateway, "GET", "/stats", { headers: { authorization: "Bearer sk-ops" } });
    const stats = response.json as { clients?: Record<string, { budgets: ClientWindow[] }> };
    const windows = stats.clients?.[client]?.budgets ?? [];
    const usedOf = (unit: string) => windows.find((window) => window.unit === unit && window.window === "minute")?.used;
    used = { requests: usedOf("requests"), tokens: usedOf("tokens") };
    if (isSettled(used.tokens)) return used;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return used;
}

interface ClientWindow {
  readonly unit: string;
  readonly window: string;
  readonly used: number;
}
