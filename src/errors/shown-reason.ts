// How long a reason may be where clients and operators read it: the final 429/503, /health, /stats and route
// explanations. One cut, so every place shows the same text; cutText is also the cut of every other quoted text a
// client or upstream reads (upstream messages, error.metadata.raw, a model id in a 404, a namespace name).

/**
 * Characters of one shown reason (the size classify-response.ts clips an upstream's message to). A cooldown's reason
 * can quote the provider (a Gemini 429's quota id, an `x-ratelimit-type` value) at any length: four of them must not
 * make every refusal while they cool a message of tens of KB, nor /health a page of them. The log record keeps it whole.
 */
export const MAX_SHOWN_REASON_CHARS = 300;

/** The reason as shown: cut at MAX_SHOWN_REASON_CHARS, the cut marked with `…`. */
export function shownReason(reason: string): string {
  return cutText(reason, MAX_SHOWN_REASON_CHARS);
}

/**
 * `text` in at most `maxChars` UTF-16 units, the cut marked with `…`. A cut between the two halves of a character
 * outside the BMP (an emoji, a rare CJK ideograph) drops that character whole: half of it is no text, JSON.stringify
 * writes it as an escaped lone surrogate (`\ud83d`), which strict JSON readers (serde_json) refuse, so a client could
 * not read the error at all, and a terminal prints it as U+FFFD.
 */
export function cutText(text: string, maxChars: number): string {
  if (text.length <= maxChars) return text;
  let end = maxChars - 1;
  if (end > 0 && isHighSurrogate(text.charCodeAt(end - 1))) end--;
  return `${text.slice(0, end)}…`;
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}
