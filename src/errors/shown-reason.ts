// How long a reason may be where clients and operators read it: the final 429/503, /health, /stats and route
// explanations. One cut, so every place shows the same text.

/**
 * Characters of one shown reason (the size classify-response.ts clips an upstream's message to). A cooldown's reason
 * can quote the provider (a Gemini 429's quota id, an `x-ratelimit-type` value) at any length: four of them must not
 * make every refusal while they cool a message of tens of KB, nor /health a page of them. The log record keeps it whole.
 */
export const MAX_SHOWN_REASON_CHARS = 300;

/** The reason as shown: cut at MAX_SHOWN_REASON_CHARS, the cut marked with `…`. */
export function shownReason(reason: string): string {
  return reason.length > MAX_SHOWN_REASON_CHARS ? `${reason.slice(0, MAX_SHOWN_REASON_CHARS - 1)}…` : reason;
}
