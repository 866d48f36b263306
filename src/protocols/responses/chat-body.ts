// The Chat Completions body a Responses request is sent as, less its messages and tools (request-mapping.ts makes
// those): what the plan reads of it too (fallbacks, schema, output bound, features).
import type { ChatMessage, ChatRequestBody, ChatResponseFormat, ChatTool } from "../chat-completions.ts";
import { upstreamUser } from "../messages/upstream-user.ts";
import { validateAt } from "../validate.ts";
import { type ResponsesRequest, textFormatSchema } from "./request-schema.ts";

/** The request's fields its chat body carries beside the model, messages and tools. */
type PlannedField =
  | "models"
  | "parallel_tool_calls"
  | "text"
  | "max_output_tokens"
  | "temperature"
  | "top_p"
  | "user"
  | "safety_identifier"
  | "reasoning"
  | "include"
  | "top_logprobs";

/**
 * The chat body a Responses request is sent as (less `stream`), which the plan reads too: its fallbacks (`models`),
 * tools, schema, output bound and features. `POST /v1/responses/input_tokens` plans this same body when it
 * truncates, so its count goes by the candidates the request would have.
 */
export function chatBodyOf(
  request: Pick<ResponsesRequest, PlannedField>,
  model: string,
  messages: ChatMessage[],
  tools: ChatTool[],
  toolChoice: ChatRequestBody["tool_choice"],
): ChatRequestBody {
  const chatBody: ChatRequestBody = { model, messages };
  if (request.models !== undefined) chatBody.models = request.models;
  if (tools.length > 0) chatBody.tools = tools;
  if (toolChoice !== undefined) chatBody.tool_choice = toolChoice;
  if (typeof request.parallel_tool_calls === "boolean" && tools.length > 0) {
    chatBody.parallel_tool_calls = request.parallel_tool_calls;
  }
  const responseFormat = toResponseFormat(request.text?.format);
  if (responseFormat !== undefined) chatBody.response_format = responseFormat;
  if (typeof request.max_output_tokens === "number") chatBody.max_tokens = request.max_output_tokens;
  if (typeof request.temperature === "number") chatBody.temperature = request.temperature;
  if (typeof request.top_p === "number") chatBody.top_p = request.top_p;
  // `safety_identifier` is OpenAI's newer name for what `user` was for (the end user, for abuse detection); chat
  // providers know `user`, which the gateway already sends them all. `prompt_cache_key` has no such old name: not sent.
  // A longer one than OpenAI's `user` takes goes as its SHA-256, as the Messages door's `metadata.user_id`.
  if (typeof request.user === "string") chatBody.user = request.user;
  else if (typeof request.safety_identifier === "string") chatBody.user = upstreamUser(request.safety_identifier);
  if (asksForLogprobs(request)) {
    chatBody.logprobs = true;
    if (typeof request.top_logprobs === "number") chatBody.top_logprobs = request.top_logprobs;
  }
  // Sent as `reasoning_effort` only to candidates that take it (a provider that does not may reject it).
  const effort = request.reasoning?.effort;
  if (typeof effort === "string" && effort !== "") chatBody.x_gateway_reasoning_effort = effort;
  return chatBody;
}

/** Where the Responses API returns token log probabilities: on each `output_text` part, when included. */
const LOGPROBS_INCLUDE = "message.output_text.logprobs";

/**
 * Log probabilities are asked for by `include` (as OpenAI documents it), or by a positive `top_logprobs`, which
 * asks for alternatives to them: either way the client wants them, and without `logprobs: true` a chat provider
 * would refuse `top_logprobs` (OpenAI does).
 */
function asksForLogprobs(request: Pick<ResponsesRequest, "include" | "top_logprobs">): boolean {
  return (request.include ?? []).includes(LOGPROBS_INCLUDE) || (request.top_logprobs ?? 0) > 0;
}

export function toResponseFormat(format: unknown): ChatResponseFormat | undefined {
  if (format === undefined || format === null) return undefined;
  const parsed = validateAt(textFormatSchema, format, ["text", "format"]);
  if (parsed.type === "text") return undefined;
  if (parsed.type === "json_object") return { type: "json_object" };
  const jsonSchema: Extract<ChatResponseFormat, { type: "json_schema" }>["json_schema"] = {
    name: parsed.name,
    schema: parsed.schema,
  };
  if (typeof parsed.description === "string") jsonSchema.description = parsed.description;
  if (typeof parsed.strict === "boolean") jsonSchema.strict = parsed.strict;
  return { type: "json_schema", json_schema: jsonSchema };
}
