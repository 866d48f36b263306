// Any string -> a value Node will put in a response header without throwing (`ERR_INVALID_CHAR`), for model ids,
// provider names and request ids that come from clients, upstreams or discovery. A model id such as `模型-unicode`
// or one with a control character once turned an answered request into a 500, and a stream into no response
// with its concurrency slot never released (issue 13).

/** Longest header value written (after encoding): clients refuse response headers over ~16 KB in total. */
export const MAX_HEADER_VALUE_CHARS = 1024;

/** Printable ASCII: written as it is. */
const PLAIN = /^[\x20-\x7e]*$/;

/** Whether a value is written as it is (printable ASCII within the length limit). */
export function isPlainHeaderValue(value: string, maxChars: number = MAX_HEADER_VALUE_CHARS): boolean {
  return value.length <= maxChars && PLAIN.test(value);
}

/**
 * The value itself when it is printable ASCII (the usual case, one regular expression test); otherwise every
 * character outside printable ASCII, and then `%` too, is percent-encoded as UTF-8 (`模型` ->
 * `%E6%A8%A1%E5%9E%8B`, a lone surrogate -> `%EF%BF%BD`), so `decodeURIComponent` gives such a value back.
 * Cut at `maxChars`, never inside an escape. Linear in the input, and stops reading once the value is full.
 */
export function toHeaderValue(value: string, maxChars: number = MAX_HEADER_VALUE_CHARS): string {
  if (isPlainHeaderValue(value, maxChars)) return value;
  let out = "";
  for (const char of value) {
    const code = char.codePointAt(0) ?? 0;
    const piece = code >= 0x20 && code <= 0x7e && code !== 0x25 ? char : percentEncoded(char);
    if (out.length + piece.length > maxChars) break;
    out += piece;
  }
  return out;
}

function percentEncoded(char: string): string {
  let out = "";
  for (const byte of Buffer.from(char, "utf8")) out += `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  return out;
}
