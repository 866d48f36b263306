// What a client asks of the answer cache in its request's headers. `Cache-Control` (RFC 9111 §5.2.1): `no-store`
// leaves the cache out, `no-cache` (or `max-age=0`) asks for a fresh answer and keeps it, `max-age=N` takes a kept
// answer only when it was kept at most N seconds ago, `only-if-cached` takes a kept answer or none (a 504, never an
// upstream call). Everything else there (other directives, a malformed value) is ignored, as an HTTP cache ignores
// what it does not understand. The gateway's own headers, `x-gateway-cache-ttl` (how long this answer is kept) and
// `x-gateway-cache-namespace` (a partition of the caller's cache), are refused when malformed (a 400): a caller that
// names them means them, and a misread TTL would keep an answer longer than asked, a misread namespace would mix
// answers the caller meant to keep apart.

export interface CacheDirective {
  /** `default`: look up and keep; `no-cache`: keep the fresh answer without looking up; `no-store`: neither. */
  readonly mode: "default" | "no-cache" | "no-store";
  /** `max-age=N` (N > 0), in ms: an older kept answer is a miss, and the fresh one replaces it. */
  readonly maxAgeMs?: number;
  /** `only-if-cached`: a kept answer or a 504 `not_cached`, never an upstream call. */
  readonly isOnlyIfCached?: boolean;
  /** `x-gateway-cache-ttl`, in ms: this answer is kept at most this long (bounded by `cache.ttl_ms`); 0 keeps none. */
  readonly storeTtlMs?: number;
  /** `x-gateway-cache-namespace`: part of the key besides the named client, so a namespace only narrows. */
  readonly namespace?: string;
  /** Why the door left the cache out whatever the headers said (withoutAnswerCache), for a 504 `not_cached`. */
  readonly skippedBecause?: string;
  /** Why one of the gateway's own cache headers was refused: the request is answered with a 400 naming it. */
  readonly problem?: { readonly message: string; readonly header: string };
}

const DEFAULT: CacheDirective = Object.freeze({ mode: "default" });
const NO_CACHE: CacheDirective = Object.freeze({ mode: "no-cache" });
const NO_STORE: CacheDirective = Object.freeze({ mode: "no-store" });

/**
 * RFC 9111's delta-seconds: digits only, also in the quoted form a recipient should accept (`max-age="60"`). A
 * value too large for any kept answer's age is as good as none (the cache's `ttl_ms` bounds the age anyway).
 */
const MAX_AGE = /^max-age\s*=\s*(?:(\d{1,12})|"(\d{1,12})")$/;

export const CACHE_TTL_HEADER = "x-gateway-cache-ttl";
export const CACHE_NAMESPACE_HEADER = "x-gateway-cache-namespace";

/** Whole seconds, digits only (as `max-age`); larger than any `cache.ttl_ms` is as good as it. */
const TTL_SECONDS = /^\d{1,12}$/;
/** Visible ASCII without a comma (which would read as two header values joined), at most 128 characters. */
const NAMESPACE = /^[\x21-\x2b\x2d-\x7e]{1,128}$/;

type HeaderValue = string | readonly string[] | undefined;

/** The request's headers that steer the answer cache (the HTTP layer passes them as Node reads them). */
export interface CacheHeaders {
  readonly "cache-control"?: HeaderValue;
  readonly [CACHE_TTL_HEADER]?: HeaderValue;
  readonly [CACHE_NAMESPACE_HEADER]?: HeaderValue;
}

/** Every cache header of a request as one directive; a malformed gateway header leaves `problem` set. */
export function cacheRequest(headers: CacheHeaders): CacheDirective {
  const directive = cacheDirective(headers["cache-control"]);
  const ttl = headerText(headers[CACHE_TTL_HEADER]);
  const namespace = headerText(headers[CACHE_NAMESPACE_HEADER]);
  if (ttl === undefined && namespace === undefined) return directive;
  if (ttl !== undefined && !TTL_SECONDS.test(ttl)) {
    return {
      ...directive,
      problem: { header: CACHE_TTL_HEADER, message: `${CACHE_TTL_HEADER} must be whole seconds (0 keeps nothing).` },
    };
  }
  if (namespace !== undefined && !NAMESPACE.test(namespace)) {
    return {
      ...directive,
      problem: {
        header: CACHE_NAMESPACE_HEADER,
        message: `${CACHE_NAMESPACE_HEADER} must be 1 to 128 visible ASCII characters, without a comma.`,
      },
    };
  }
  return {
    ...directive,
    ...(ttl === undefined ? {} : { storeTtlMs: Number(ttl) * 1000 }),
    ...(namespace === undefined ? {} : { namespace }),
  };
}

/**
 * The directive of a request whose answer the cache must neither give nor keep whatever its headers say (a Messages
 * `max_tokens: 0` pre-warm: its point is to reach the provider). `only-if-cached` stays: such a request is a 504,
 * never an upstream call it did not ask for; a malformed gateway header is still refused.
 */
export function withoutAnswerCache(directive: CacheDirective, skippedBecause: string): CacheDirective {
  return { ...directive, mode: "no-store", skippedBecause };
}

/** A header as one string; absent or empty (as a proxy may forward it) is none. Node joins repeats with ", ". */
function headerText(value: HeaderValue): string | undefined {
  const text = typeof value === "string" ? value : value?.join(", ");
  const trimmed = text?.trim();
  return trimmed === undefined || trimmed === "" ? undefined : trimmed;
}

/**
 * `Cache-Control` of a request: `no-store` wins over `no-cache`, which wins over `max-age`; of several `max-age`
 * the smallest counts (the most restrictive, as RFC 9111 asks of conflicting directives). `only-if-cached` goes
 * with any of them: with `no-store` or `no-cache` no kept answer may be given, so it is always a 504.
 */
export function cacheDirective(header: string | readonly string[] | undefined): CacheDirective {
  if (header === undefined) return DEFAULT;
  const value = (typeof header === "string" ? header : header.join(",")).toLowerCase();
  if (value === "") return DEFAULT;
  let maxAgeS: number | undefined;
  let isNoCache = false;
  let isNoStore = false;
  let isOnlyIfCached = false;
  for (const raw of value.split(",")) {
    const part = raw.trim();
    if (part === "no-store") isNoStore = true;
    else if (part === "no-cache") isNoCache = true;
    else if (part === "only-if-cached") isOnlyIfCached = true;
    const digits = MAX_AGE.exec(part);
    if (digits === null) continue;
    const seconds = Number(digits[1] ?? digits[2]);
    maxAgeS = maxAgeS === undefined ? seconds : Math.min(maxAgeS, seconds);
  }
  const directive = isNoStore
    ? NO_STORE
    : isNoCache || maxAgeS === 0
      ? NO_CACHE
      : maxAgeS === undefined
        ? DEFAULT
        : { mode: "default" as const, maxAgeMs: maxAgeS * 1000 };
  return isOnlyIfCached ? { ...directive, isOnlyIfCached: true } : directive;
}
