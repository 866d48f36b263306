// What the Messages stream translator (stream-mapping.ts) is told of the request.
import type { IdSource } from "../ids.ts";
import type { LongToolNames } from "../long-tool-names.ts";

export interface MessagesStreamOptions {
  readonly ids: IdSource;
  readonly stopSequences: readonly string[];
  /** The request enabled `thinking`: reasoning text is streamed as a `thinking` block (else it is dropped). */
  readonly isThinkingShown?: boolean;
  /** `thinking.display: "omitted"`: a thinking block opens and stops without `thinking_delta`s (request-mapping.ts). */
  readonly isThinkingOmitted?: boolean;
  /** The model the gateway sent the request to; used until (and unless) a chunk names the upstream's model. */
  readonly fallbackModel?: string;
  /** Estimated prompt tokens for `message_start` (the real count comes with the last chunk). */
  readonly promptTokensEstimate?: number;
  /** The request's tool names: a call comes back named as the client named the tool. */
  readonly toolNames?: LongToolNames;
  /** `max_tokens: 0`: the token the provider was asked for is not shown (request-mapping.ts). */
  readonly isOutputDropped?: boolean;
}
