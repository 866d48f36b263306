// The answer-cache e2e tests' scene (test/e2e/answer-cache*.test.ts): a gateway with an admin key, a plain client
// key and two named clients in front of one mock provider `alpha` whose chat answers are numbered, so that a kept
// answer is told apart from a fresh one.
import { type CachedAnswer, cacheKey } from "../../src/pipeline/answer-cache.ts";
import { answerFingerprint } from "../../src/pipeline/answer-fingerprint.ts";
import { CHAT_ROUTE, type RawResponse } from "./e2e.ts";
import type { TestGateway } from "./gateway.ts";
import { chatCompletion, chatStream, type MockUpstream } from "./mock-upstream.ts";

/** The chat request the cache tests repeat. */
export const HELLO_CHAT = { model: "m", messages: [{ role: "user", content: "Say hello" }] };

export interface CacheClientKeys {
  readonly admin: string;
  /** A client without a name. */
  readonly plain: string;
  /** Clients `team-a` and `team-b`. */
  readonly teamA: string;
  readonly teamB: string;
}

export interface CacheConfigOptions {
  readonly keys: CacheClientKeys;
  /** Provider alpha's upstream key. */
  readonly providerKey: string;
  /** More model entries of alpha besides chat `m` and embeddings `e`, one a line (e.g. `r: { id: reranker }`). */
  readonly moreModels?: readonly string[];
  /** The `cache:` section (and any other top-level YAML after the provider). */
  readonly cache: string;
}

/** The gateway's config: the keys, provider alpha serving chat `m` and embeddings `e` (and `moreModels`), then `cache`. */
export function cacheClientsConfig(mock: MockUpstream, options: CacheConfigOptions): string {
  const moreModels = (options.moreModels ?? []).map((entry) => `      ${entry}\n`).join("");
  return `server:
  port: 0
  host: 127.0.0.1
  admin_keys: [${options.keys.admin}]
  api_keys:
    - ${options.keys.plain}
    - { key: ${options.keys.teamA}, name: team-a }
    - { key: ${options.keys.teamB}, name: team-b }
providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: ${options.providerKey}
    models:
      m: { id: alpha-m }
      e: { id: alpha-embed, kind: embedding }
${moreModels}${options.cache}`;
}

/**
 * Every chat answer of the mock is numbered (`answer N`; a stream says `streamPieces(N)`), so a kept answer is
 * told apart from a fresh one.
 */
export function numberedChatAnswers(
  mock: MockUpstream,
  streamPieces: (served: number) => string[] = (served) => ["fresh ", `stream ${served}`],
): void {
  let served = 0;
  mock.setDefault(CHAT_ROUTE, (request) => {
    served += 1;
    if ((request.body as { stream?: unknown }).stream === true) {
      return { kind: "sse", events: chatStream(streamPieces(served), "alpha-m") };
    }
    return { kind: "json", body: chatCompletion(`answer ${served}`, "alpha-m") };
  });
}

/** The text of a chat answer's first choice. */
export function contentOf(response: RawResponse): unknown {
  return (response.json as { choices?: { message?: { content?: unknown } }[] }).choices?.[0]?.message?.content;
}

/** Polls `condition` every 20 ms; throws after `timeoutMs`. */
export async function waitUntil(condition: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Keeps `answer` as the answer to `body` at `endpoint` (a door's name: `chat`, `embeddings`), under the key a gateway
 * of `formatVersion` (this one's when undefined) on this config computes for it: what another replica sharing the
 * Redis, or an older gateway, would have written. Put again until it is read back: a shared store's Redis connection
 * opens at the first lookup, and a put before is dropped.
 */
export async function keepAnswerFor(
  gateway: TestGateway,
  endpoint: string,
  body: unknown,
  answer: Omit<CachedAnswer, "bytes" | "storedAtMs">,
  formatVersion?: number,
): Promise<void> {
  const { runtime } = gateway;
  const key = cacheKey(answerFingerprint(runtime.snapshot, formatVersion), endpoint, undefined, body);
  const settings = runtime.snapshot.config.cache;
  await waitUntil(async () => {
    const nowMs = runtime.clock.now();
    runtime.answers.put(key, { ...answer, storedAtMs: nowMs }, settings, nowMs);
    return (await runtime.answers.get(key, settings, nowMs)) !== undefined;
  });
}

/**
 * keepAnswerFor's row, for one this gateway does not give back (a damaged row another writer left): its Redis
 * connection opened by a lookup of another key (which finds nothing, so it refuses no row), then put again until
 * Redis holds it (the store's figures, as of its latest put, count it).
 */
export async function keepRowFor(
  gateway: TestGateway,
  endpoint: string,
  body: unknown,
  answer: Omit<CachedAnswer, "bytes" | "storedAtMs">,
): Promise<void> {
  const { runtime } = gateway;
  const key = cacheKey(answerFingerprint(runtime.snapshot), endpoint, undefined, body);
  const settings = runtime.snapshot.config.cache;
  const before = runtime.answers.summary.entries;
  await runtime.answers.get(`${key}-opens-the-connection`, settings, runtime.clock.now());
  await waitUntil(async () => {
    const nowMs = runtime.clock.now();
    runtime.answers.put(key, { ...answer, storedAtMs: nowMs }, settings, nowMs);
    return runtime.answers.summary.entries > before;
  });
}
