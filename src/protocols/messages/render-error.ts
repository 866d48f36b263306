// Gateway errors in the Anthropic error shape, `{"type":"error","error":{"type","message"}}`, with Anthropic's
// error type names; the HTTP status stays the gateway's own, but for an overload's 529 (anthropicStatus).
import type { GatewayError } from "../../errors/gateway-error.ts";

export interface AnthropicErrorBody {
  type: "error";
  error: { type: string; message: string };
  request_id?: string;
}

export function anthropicErrorType(status: number): string {
  switch (status) {
    case 400:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_error";
    case 503:
    case 529:
      return "overloaded_error";
    case 504:
      return "timeout_error";
    default:
      return status >= 500 ? "api_error" : "invalid_request_error";
  }
}

/** The HTTP status an error is sent with on the Messages door: an overload is Anthropic's 529, not the OpenAI doors' 503. */
export function anthropicStatus(error: GatewayError): number {
  return anthropicStatusOf(error.status, error.code);
}

/**
 * anthropicStatus from an error's status and code, for the request record (pipeline/record-builder.ts), which keeps
 * the status the client got: a Messages client told 529 is not a 503 in the request log, metrics and dashboard. Only
 * the overload's own 503: a started stream that ended overloaded is recorded 502 with that code (stream-answer.ts),
 * as on the OpenAI doors; its client got a 200 and an in-band error, never a 529. So did a stream whose head went out
 * early (record-builder.ts: 503 then).
 */
export function anthropicStatusOf(status: number, code: string | undefined): number {
  return code === "upstream_overloaded" && status === 503 ? 529 : status;
}

export function renderAnthropicError(error: GatewayError, requestId?: string): AnthropicErrorBody {
  const body: AnthropicErrorBody = {
    type: "error",
    error: { type: anthropicErrorType(error.status), message: error.message },
  };
  if (requestId !== undefined) body.request_id = requestId;
  return body;
}
