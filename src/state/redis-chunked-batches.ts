// A named client's embeddings batches under way, shared by the replicas through Redis (docs/limits.md "Client
// budgets"): a batch's arrival check and its admission are one script (redis-chunked-batches-lua.ts) in the slot of the
// client's budget keys, so two batches arriving at two replicas together cannot both pass it. A batch ending removes
// its entry; one whose end never reached Redis (a crashed replica, Redis away then) lapses at its deadline.

import { CHUNKED_BATCHES_KEEP_MS, MOST_CHUNKED_BATCHES } from "./redis-chunked-batches-lua.ts";
import type { SharedStateRedis } from "./redis-client.ts";
import { chunkedBatchesKeys } from "./redis-keys.ts";
import type { RedisLink } from "./redis-link.ts";
import type { BatchesOwing, ChunkedBatch, SharedChunkedBatches, WindowTerms } from "./state-types.ts";

export class RedisChunkedBatches implements SharedChunkedBatches {
  readonly #redis: SharedStateRedis;
  readonly #link: RedisLink;
  readonly #prefix: string;

  constructor(redis: SharedStateRedis, link: RedisLink, prefix: string) {
    this.#redis = redis;
    this.#link = link;
    this.#prefix = prefix;
  }

  isSharedFor(scopeId: string): boolean {
    return this.#link.isUpFor(scopeId);
  }

  async admit(
    scopeId: string,
    batch: ChunkedBatch,
    windows: readonly WindowTerms[],
    unshared: BatchesOwing,
    own: readonly ChunkedBatch[],
    nowMs: number,
  ): Promise<true | BatchesOwing | undefined> {
    const args: (string | number)[] = [nowMs, batch.id, batch.tokens, batch.deadlineMs, MOST_CHUNKED_BATCHES];
    args.push(CHUNKED_BATCHES_KEEP_MS, unshared.tokens, unshared.earliestMs, unshared.latestMs, windows.length);
    for (const window of windows) {
      args.push(window.kind, window.windowMs, window.limit, window.remaining);
      args.push(window.resetsAtMs ?? "", window.lapsesAtMs ?? "");
    }
    args.push(own.length);
    for (const each of own) args.push(each.id, each.tokens, each.deadlineMs);
    let reply: unknown;
    try {
      reply = await this.#redis.chunkedBatchAdmit(2, ...chunkedBatchesKeys(this.#prefix, scopeId), ...args);
    } catch (error) {
      this.#link.recordFailure(error, scopeId);
      return undefined;
    }
    this.#link.recordSuccess(scopeId);
    if (!Array.isArray(reply)) return undefined;
    if (Number(reply[0]) === 1) return true;
    const [tokens, earliestMs, latestMs] = reply.slice(1).map(Number);
    if (tokens === undefined || earliestMs === undefined || latestMs === undefined) return undefined;
    return { tokens, earliestMs, latestMs };
  }

  setRest(scopeId: string, id: string, tokens: number): void {
    if (!this.#link.isUpFor(scopeId)) return;
    const keys = chunkedBatchesKeys(this.#prefix, scopeId);
    void this.#link.track(this.#redis.chunkedBatchRest(2, ...keys, id, tokens), scopeId);
  }

  end(scopeId: string, id: string): void {
    if (!this.#link.isUpFor(scopeId)) return;
    const keys = chunkedBatchesKeys(this.#prefix, scopeId);
    void this.#link.track(this.#redis.chunkedBatchEnd(2, ...keys, id), scopeId);
  }
}
