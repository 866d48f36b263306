// What a started stream's failure is called, in-band, when the upstream said why: an error chunk mid-stream
// (`{"choices":[],"error":{"code":429,...}}`, OpenRouter's shape) names a rate limit or an overload as plainly as a
// 429 or 529 status would, and each door's in-band error says so in its own dialect, as its HTTP errors do.
import {
  type GatewayError,
  RateLimitedError,
  StreamInterruptedError,
  UpstreamOverloadedError,
} from "./gateway-error.ts";

/** The `type` or `code` names providers give a rate limit and an overload in an error object. */
const STATUS_OF_NAME: Readonly<Record<string, number>> = {
  rate_limit_exceeded: 429,
  rate_limit_error: 429,
  too_many_requests: 429,
  overloaded_error: 529,
  overloaded: 529,
  service_unavailable: 503,
};

/**
 * The HTTP status an in-band error object stands for: its numeric `code` or `status` (OpenRouter sends the status as
 * `code`), else a name in its `code` or `type` (`rate_limit_exceeded`, Anthropic's `overloaded_error`); undefined when
 * it says none. `error` is the object itself (the value of a chunk's `error`).
 */
export function inBandErrorStatus(error: unknown): number | undefined {
  if (error === null || typeof error !== "object" || Array.isArray(error)) return undefined;
  const { code, status, type } = error as { code?: unknown; status?: unknown; type?: unknown };
  for (const value of [code, status]) {
    const number = typeof value === "string" && /^\d{3}$/.test(value) ? Number(value) : value;
    if (typeof number === "number" && Number.isInteger(number) && number >= 400 && number <= 599) return number;
  }
  for (const value of [code, type]) {
    if (typeof value === "string" && Object.hasOwn(STATUS_OF_NAME, value)) return STATUS_OF_NAME[value];
  }
  return undefined;
}

/**
 * The in-band error for a stream that failed after it started, by the status the upstream's error named: a rate limit
 * is `RateLimitedError` (429: `rate_limit_exceeded` on the OpenAI doors, Anthropic's `rate_limit_error`), an overload
 * (503, Anthropic's 529) `UpstreamOverloadedError` (`upstream_overloaded`, Anthropic's `overloaded_error`), the code
 * the same overload gets before content (classify-response.ts): until 2026-12-07 it was `upstream_unavailable` after
 * content, so a client read the same answer as two causes by when it came. Anything else, or none, the stream's
 * interruption (502, `api_error`).
 */
export function inBandUpstreamError(message: string, status: number | undefined): GatewayError {
  if (status === 429) return new RateLimitedError(message);
  if (status === 503 || status === 529) return new UpstreamOverloadedError(message);
  return new StreamInterruptedError(message);
}
