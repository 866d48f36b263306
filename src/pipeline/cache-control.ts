// What a client asks of the answer cache in its request's `Cache-Control` header (RFC 9111 §5.2.1): `no-store`
// leaves the cache out, `no-cache` (or `max-age=0`) asks for a fresh answer and keeps it, `max-age=N` takes a kept
// answer only when it was kept at most N seconds ago. Everything else (other directives, a malformed value) is
// ignored, as an HTTP cache ignores what it does not understand: a header never fails a request.

export interface CacheDirective {
  /** `default`: look up and keep; `no-cache`: keep the fresh answer without looking up; `no-store`: neither. */
  readonly mode: "default" | "no-cache" | "no-store";
  /** `max-age=N` (N > 0), in ms: an older kept answer is a miss, and the fresh one replaces it. */
  readonly maxAgeMs?: number;
}

const DEFAULT: CacheDirective = Object.freeze({ mode: "default" });
const NO_CACHE: CacheDirective = Object.freeze({ mode: "no-cache" });
const NO_STORE: CacheDirective = Object.freeze({ mode: "no-store" });

/**
 * RFC 9111's delta-seconds: digits only, also in the quoted form a recipient should accept (`max-age="60"`). A
 * value too large for any kept answer's age is as good as none (the cache's `ttl_ms` bounds the age anyway).
 */
const MAX_AGE = /^max-age\s*=\s*(?:(\d{1,12})|"(\d{1,12})")$/;

/**
 * `Cache-Control` of a request: `no-store` wins over `no-cache`, which wins over `max-age`; of several `max-age`
 * the smallest counts (the most restrictive, as RFC 9111 asks of conflicting directives).
 */
export function cacheDirective(header: string | readonly string[] | undefined): CacheDirective {
  if (header === undefined) return DEFAULT;
  const value = (typeof header === "string" ? header : header.join(",")).toLowerCase();
  if (value === "") return DEFAULT;
  let maxAgeS: number | undefined;
  let isNoCache = false;
  for (const raw of value.split(",")) {
    const part = raw.trim();
    if (part === "no-store") return NO_STORE;
    if (part === "no-cache") isNoCache = true;
    const digits = MAX_AGE.exec(part);
    if (digits === null) continue;
    const seconds = Number(digits[1] ?? digits[2]);
    maxAgeS = maxAgeS === undefined ? seconds : Math.min(maxAgeS, seconds);
  }
  if (isNoCache || maxAgeS === 0) return NO_CACHE;
  return maxAgeS === undefined ? DEFAULT : { mode: "default", maxAgeMs: maxAgeS * 1000 };
}
