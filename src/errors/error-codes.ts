// Every error code the gateway answers with, in one registry: status, OpenAI error `type`, and when it happens.
// docs/errors.md lists exactly these (error-codes.test.ts checks both ways); error classes and call sites can
// only name a code from here (the `ErrorCode` type).

export interface ErrorCodeInfo {
  /** HTTP status (or the statuses it may have); `upstream` for codes whose status is the upstream's. */
  readonly status: number | readonly number[] | "upstream";
  readonly type: string;
}

export const ERROR_CODES = Object.freeze({
  invalid_request: { status: 400, type: "invalid_request_error" },
  invalid_body: { status: 400, type: "invalid_request_error" },
  invalid_json: { status: 400, type: "invalid_request_error" },
  invalid_content_type: { status: 400, type: "invalid_request_error" },
  invalid_value: { status: 400, type: "invalid_request_error" },
  integer_below_min_value: { status: 400, type: "invalid_request_error" },
  duplicate_item: { status: 400, type: "invalid_request_error" },
  invalid_model: { status: 400, type: "invalid_request_error" },
  unsupported_parameter: { status: 400, type: "invalid_request_error" },
  unsupported_value: { status: 400, type: "invalid_request_error" },
  model_not_supported: { status: 400, type: "invalid_request_error" },
  no_capable_model: { status: 400, type: "invalid_request_error" },
  context_length_exceeded: { status: 400, type: "invalid_request_error" },
  previous_response_not_found: { status: 400, type: "invalid_request_error" },
  config_invalid: { status: 400, type: "invalid_request_error" },
  invalid_api_key: { status: 401, type: "authentication_error" },
  permission_denied: { status: 403, type: "permission_error" },
  host_not_allowed: { status: 403, type: "permission_error" },
  model_not_found: { status: 404, type: "invalid_request_error" },
  unknown_url: { status: 404, type: "invalid_request_error" },
  item_not_found: { status: [404, 400], type: "invalid_request_error" },
  response_not_found: { status: 404, type: "invalid_request_error" },
  conversation_not_found: { status: 404, type: "invalid_request_error" },
  file_not_found: { status: 404, type: "invalid_request_error" },
  batch_not_found: { status: 404, type: "invalid_request_error" },
  request_timeout: { status: 408, type: "invalid_request_error" },
  request_not_found: { status: 404, type: "invalid_request_error" },
  payload_too_large: { status: 413, type: "invalid_request_error" },
  request_too_large: { status: 413, type: "invalid_request_error" },
  unsupported_media_type: { status: 415, type: "invalid_request_error" },
  expectation_failed: { status: 417, type: "invalid_request_error" },
  headers_too_large: { status: 431, type: "invalid_request_error" },
  rate_limit_exceeded: { status: 429, type: "rate_limit_error" },
  client_closed_request: { status: 499, type: "client_error" },
  upstream_rejected_request: { status: "upstream", type: "invalid_request_error" },
  internal_error: { status: 500, type: "server_error" },
  upstream_unavailable: { status: [502, 503], type: "upstream_error" },
  upstream_overloaded: { status: [503, 529], type: "upstream_error" },
  stream_interrupted: { status: 502, type: "upstream_error" },
  service_unavailable: { status: 503, type: "server_error" },
  upstream_timeout: { status: 504, type: "upstream_error" },
  not_cached: { status: 504, type: "invalid_request_error" },
} satisfies Record<string, ErrorCodeInfo>);

export type ErrorCode = keyof typeof ERROR_CODES;
