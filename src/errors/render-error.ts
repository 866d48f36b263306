import { GatewayError, InternalError } from "./gateway-error.ts";

export interface OpenAiErrorBody {
  error: {
    message: string;
    type: string;
    code: string;
    param: string | null;
    attempts?: GatewayError["attempts"];
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
  return body;
}

/** Headers that go with an error response (`retry-after` in whole seconds, rounded up). */
export function errorHeaders(error: GatewayError): Record<string, string> {
  if (error.retryAfterMs === undefined) return {};
  return { "retry-after": String(Math.max(1, Math.ceil(error.retryAfterMs / 1000))) };
}
