// The one place errors become HTTP responses. Routes throw GatewayErrors; Fastify's own errors (bad JSON,
// body too large, wrong content type) are mapped to the matching GatewayError first.
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import {
  type GatewayError,
  InvalidRequestError,
  PayloadTooLargeError,
  RouteNotFoundError,
} from "../errors/gateway-error.ts";
import { errorHeaders, renderError, toGatewayError } from "../errors/render-error.ts";
import { renderAnthropicError } from "../protocols/messages/render-error.ts";
import { isMessagesRoute } from "./protocol-paths.ts";

export function fromFastifyError(error: FastifyError | Error, bodyLimitBytes: number): GatewayError {
  const code = (error as FastifyError).code;
  const statusCode = (error as FastifyError).statusCode;
  switch (code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new PayloadTooLargeError(`The request body is larger than the limit of ${bodyLimitBytes} bytes.`);
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return new InvalidRequestError(
        "Unsupported Content-Type: send the body as JSON with `Content-Type: application/json`.",
        {
          code: "invalid_content_type",
        },
      );
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return new InvalidRequestError("The request body is empty; a JSON object is required.", { code: "invalid_body" });
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return new InvalidRequestError("The Content-Length header does not match the body.", { code: "invalid_body" });
    default:
      break;
  }
  if (error instanceof SyntaxError || code === "FST_ERR_CTP_INVALID_JSON_BODY") {
    return new InvalidRequestError(`The request body is not valid JSON: ${error.message}`, { code: "invalid_json" });
  }
  if (statusCode === 404) return new RouteNotFoundError("Unknown route.");
  if (statusCode !== undefined && statusCode >= 400 && statusCode < 500 && code?.startsWith("FST_")) {
    return new InvalidRequestError(error.message, { code: "invalid_request" });
  }
  return toGatewayError(error);
}

export function sendError(reply: FastifyReply, error: GatewayError): void {
  // Anthropic clients parse errors in Anthropic's shape (their SDK reads `error.type`).
  const body = isMessagesRoute(reply.request.url) ? renderAnthropicError(error, reply.request.id) : renderError(error);
  reply.code(error.status).headers(errorHeaders(error)).type("application/json").send(body);
}

export function errorHandler(bodyLimitBytes: number) {
  return function handleError(error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): void {
    const gatewayError = fromFastifyError(error, bodyLimitBytes);
    if (gatewayError.status >= 500) {
      // Internal details go to the log (with the request id), never to the client.
      request.log.error({ err: gatewayError.cause ?? gatewayError, code: gatewayError.code }, gatewayError.message);
    } else {
      request.log.info({ status: gatewayError.status, code: gatewayError.code }, gatewayError.message);
    }
    sendError(reply, gatewayError);
  };
}
