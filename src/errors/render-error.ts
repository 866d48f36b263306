import { GatewayError, InternalError } from "./gateway-error.ts";

export interface OpenAiErrorBody {
  error: {
    message: string;
    type: string;
    code: string;
    param: string | null;
    attempts?: GatewayError["attempts"];
    metadata?: GatewayError["metadata"];
    problems?: GatewayError["problems"];
  };
}

/** Any thrown value -> a GatewayError. Unknown errors become a 500 whose message hides the internals. */
export function toGatewayError(error: unknown): GatewayError {
  if (error instanceof GatewayError) return error;
  return new InternalError("The gateway failed to handle this request.", { cause: error });
}

export function renderError(error: GatewayError): OpenAiErrorBody {
  const body: OpenAiErrorBody = {
    error: { message: error.message, type: error.type, code: error.code, param: error.param },
  };
  if (error.attempts.length > 0) body.error.attempts = error.attempts;
  if (error.metadata !== undefined) body.error.metadata = error.metadata;
  if (error.problems.length > 0) body.error.problems = error.problems;
  return body;
}

/** The longest `retry-after` an SDK client is left to wait out by itself. */
const LONGEST_SDK_RETRY_MS = 60_000;

/**
 * Headers that go with an error response: `retry-after` in whole seconds, rounded up, the same wait to the
 * millisecond in `retry-after-ms`, and `x-should-retry: false` when it is longer than a minute. The openai SDK,
 * @anthropic-ai/sdk and the AI SDK read `retry-after-ms` before `retry-after`: without it a 300 ms wait (OpenAI's
 * token windows) made them sleep a whole second before each retry. The OpenAI and Anthropic SDKs (openai 6,
 * @anthropic-ai/sdk 1) sleep for the whole `retry-after` before retrying, however long: a spent daily budget held
 * the caller's request open for hours. They honour `x-should-retry: false` and throw the 429 at once, with
 * `retry-after` for the caller to act on. For an upstream's own error, which provider and model sent it (as on a
 * success).
 */
export function errorHeaders(error: GatewayError): Record<string, string> {
  const headers: Record<string, string> = {};
  if (error.retryAfterMs !== undefined) {
    headers["retry-after"] = String(Math.max(1, Math.ceil(error.retryAfterMs / 1000)));
    // At least 1: the SDKs take `retry-after-ms: 0` as no advice and fall back to their own backoff.
    headers["retry-after-ms"] = String(Math.max(1, Math.ceil(error.retryAfterMs)));
    if (error.retryAfterMs > LONGEST_SDK_RETRY_MS) headers["x-should-retry"] = "false";
  }
  // A 5xx the same request gets again (`not_cached`): the SDKs retry every 5xx unless told not to.
  if (error.status >= 500 && !error.isRetryable) headers["x-should-retry"] = "false";
  const metadata = error.metadata;
  if (metadata !== undefined && isHeaderSafe(metadata.provider) && isHeaderSafe(metadata.model)) {
    headers["x-gateway-provider"] = metadata.provider;
    headers["x-gateway-model"] = metadata.model;
  }
  return headers;
}

function isHeaderSafe(value: string): boolean {
  return value.length > 0 && value.length <= 512 && /^[\x21-\x7e]+$/.test(value);
}
