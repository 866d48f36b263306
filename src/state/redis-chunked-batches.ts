// A named client's embeddings batches under way, shared by the replicas through Redis (docs/limits.md "Client
// budgets"): a batch's arrival check and its admission are one script (redis-chunked-batches-lua.ts) in the slot of the
// client's budget keys, so two batches arriving at two replicas together cannot both pass it. A batch ending removes
// its entry; one whose end never reached Redis (a crashed replica, Redis away then) lapses at its deadline. This
// process's own entries are kept here too and listed again whenever Redis is reachable again (it may have restarted
// empty or failed over to a replica they had not reached): until 2026-12-08 a lost entry counted nowhere until its
// replica's next batch, and another replica admitted a batch over it.

import type { Clock } from "../clock.ts";
import { CHUNKED_BATCHES_KEEP_MS, MOST_CHUNKED_BATCHES } from "./redis-chunked-batches-lua.ts";
import type { SharedStateRedis } from "./redis-client.ts";
import { chunkedBatchesKeys } from "./redis-keys.ts";
import type { RedisLink } from "./redis-link.ts";
import type { BatchesOwing, ChunkedBatch, SharedChunkedBatches, WindowTerms } from "./state-types.ts";

export class RedisChunkedBatches implements SharedChunkedBatches {
  readonly #redis: SharedStateRedis;
  readonly #link: RedisLink;
  readonly #prefix: string;
  readonly #clock: Clock;
  /** This process's batches admitted here (or past a timeout: the script may have run) and not yet ended, by id. */
  readonly #live = new Map<string, ChunkedBatch & { readonly scopeId: string }>();

  constructor(redis: SharedStateRedis, link: RedisLink, prefix: string, clock: Clock) {
    this.#redis = redis;
    this.#link = link;
    this.#prefix = prefix;
    this.#clock = clock;
    link.onUp(() => this.#listAgain());
    link.onGroupUp(() => this.#listAgain());
  }

  /** Each live entry told again: listed if Redis lost it (until its deadline), its rest set if not. */
  #listAgain(): void {
    const nowMs = this.#clock.now();
    for (const [id, batch] of this.#live) {
      if (batch.deadlineMs <= nowMs) {
        this.#live.delete(id);
        continue;
      }
      const keys = chunkedBatchesKeys(this.#prefix, batch.scopeId);
      const args = [id, batch.tokens, batch.deadlineMs, nowMs, CHUNKED_BATCHES_KEEP_MS];
      void this.#link.track(this.#redis.chunkedBatchRest(2, ...keys, ...args), batch.scopeId);
    }
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
      // The script may have run all the same: the caller still ends the batch by its id.
      this.#live.set(batch.id, { ...batch, scopeId });
      return undefined;
    }
    this.#link.recordSuccess(scopeId);
    const isAdmitted = Array.isArray(reply) && Number(reply[0]) === 1;
    if (!Array.isArray(reply) || isAdmitted) this.#live.set(batch.id, { ...batch, scopeId });
    for (const [id, each] of this.#live) if (each.deadlineMs <= nowMs) this.#live.delete(id);
    if (!Array.isArray(reply)) return undefined;
    if (isAdmitted) return true;
    const [tokens, earliestMs, latestMs] = reply.slice(1).map(Number);
    if (tokens === undefined || earliestMs === undefined || latestMs === undefined) return undefined;
    return { tokens, earliestMs, latestMs };
  }

  setRest(scopeId: string, id: string, tokens: number): void {
    const live = this.#live.get(id);
    if (live !== undefined) this.#live.set(id, { ...live, tokens });
    if (!this.#link.isUpFor(scopeId)) return;
    const keys = chunkedBatchesKeys(this.#prefix, scopeId);
    void this.#link.track(this.#redis.chunkedBatchRest(2, ...keys, id, tokens), scopeId);
  }

  end(scopeId: string, id: string): void {
    this.#live.delete(id);
    if (!this.#link.isUpFor(scopeId)) return;
    const keys = chunkedBatchesKeys(this.#prefix, scopeId);
    void this.#link.track(this.#redis.chunkedBatchEnd(2, ...keys, id), scopeId);
  }
}
