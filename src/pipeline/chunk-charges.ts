// What the chunks of an embeddings batch answered before a later one failed cost (pipeline/embeddings-chunks.ts), kept
// with the error the batch ended with, for the batch runner (batch-runner.ts), which must not send such a line again
// whole. A module of its own: the runner loads it without the pipeline's per-request modules.
import type { TokenUsage } from "../streaming/relay-types.ts";

/** The tokens of the chunks answered before the one an error ended the batch at (embeddings-chunks.ts failedChunk). */
const chargedBefore = new WeakMap<Error, TokenUsage>();

export const chargedBeforeFailure = {
  set(error: Error, tokens: TokenUsage): void {
    chargedBefore.set(error, tokens);
  },
  /**
   * What the chunks answered before `error` ended an embeddings batch cost (charged to their deployments and to the
   * client), else undefined: the error of a batch paid for in part, which a batch runner must not send again whole
   * (each try paid for those chunks again; a 429 past the deadline ended every try alike for as long as the batch ran).
   */
  of(error: unknown): TokenUsage | undefined {
    return error instanceof Error ? chargedBefore.get(error) : undefined;
  },
};
