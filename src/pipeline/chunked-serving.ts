// What an answer says of who served it beyond its last deployment, for an embeddings batch sent in chunks
// (embeddings-chunks.ts forwardInChunks): its headers, its cost and its count of chunks.
import type { ForwardOutcome } from "../upstream/forward-types.ts";
import type { ChunkedOutcome } from "./embeddings-chunks.ts";

/**
 * What an answer says of who served it beyond its last deployment: for a chunked batch, how many chunks (the record's
 * `chunks`), the headers naming each chunk's provider and upstream model in order (`x-gateway-provider` and `-model`
 * name the last chunk's alone), and a cost that is `paid` when any chunk's deployment was. Before 2026-12-07 a chunked
 * answer named the last chunk's deployment only, as if it had answered the whole batch.
 */
/** An answer sent whole has no chunk headers: one object for all of them, not one per request. */
const NONE: Readonly<Record<string, string>> = Object.freeze({});

export function chunkedServing(outcome: ForwardOutcome | ChunkedOutcome): {
  readonly cost: "free" | "paid";
  readonly chunks: number | undefined;
  readonly chunkHeaders: Readonly<Record<string, string>>;
} {
  if (!("chunks" in outcome)) return { cost: outcome.result.deployment.cost, chunks: undefined, chunkHeaders: NONE };
  const { chunks, partial } = outcome;
  const chunkHeaders = {
    ...(partial === undefined ? {} : { "x-gateway-partial": `${partial.answered}/${partial.inputs}` }),
    // When the rest may be sent, as the error alone would have said (before 2026-12-07 the 200 did not say it).
    ...(partial?.retryAfterMs === undefined ? {} : retryAfterHeaders(partial.retryAfterMs)),
    "x-gateway-chunks": String(chunks.length),
    "x-gateway-chunk-providers": namesListed(chunks.map((deployment) => deployment.provider.settings.name)),
    "x-gateway-chunk-models": namesListed(chunks.map((deployment) => deployment.model.id)),
  };
  const cost = chunks.some((deployment) => deployment.cost === "paid") ? "paid" : "free";
  return { cost, chunks: chunks.length, chunkHeaders };
}

/**
 * A wait as the error says it (render-error.ts errorHeaders): `retry-after` in whole seconds, rounded up, and
 * `retry-after-ms` exact, each at least 1. Before 2026-12-07 the 200 had no `retry-after-ms` (the error had).
 */
function retryAfterHeaders(waitMs: number): Record<string, string> {
  return {
    "retry-after": String(Math.max(1, Math.ceil(waitMs / 1000))),
    "retry-after-ms": String(Math.max(1, Math.ceil(waitMs))),
  };
}

/** Characters of a list of chunks' names: within the 1,024 a response header value is cut at (server/header-value.ts). */
const MAX_NAMES_CHARS = 1_000;

/**
 * Names joined with `, `; when they would not fit MAX_NAMES_CHARS, the first ones that do and then `... (N more)`.
 * Before 2026-12-07 a list of a batch of many chunks (200 of one input) was cut at 1,024 characters wherever that fell,
 * its last name cut in two (`alpha, al`).
 */
function namesListed(names: readonly string[]): string {
  const joined = names.join(", ");
  if (joined.length <= MAX_NAMES_CHARS) return joined;
  let listed = "";
  for (const [index, name] of names.entries()) {
    const next = `${listed}${name}, `;
    if (`${next}... (${names.length - index - 1} more)`.length > MAX_NAMES_CHARS) {
      return `${listed}... (${names.length - index} more)`;
    }
    listed = next;
  }
  return joined;
}
