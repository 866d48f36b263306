// The Responses API `response` object and its output items, as the gateway returns them (JSON answer, stream
// snapshots, kept responses). Only what a chat provider's answer can fill is modelled.
import { type ChatUsage, type EstimatedUsageMark, estimatedUsageMark, type TokenLogprob } from "../chat-completions.ts";

export interface OutputTextPart {
  type: "output_text";
  text: string;
  annotations: never[];
  /** Filled when the request included `message.output_text.logprobs` and the provider sent them. */
  logprobs: TokenLogprob[];
}

export interface RefusalPart {
  type: "refusal";
  refusal: string;
}

export type ItemStatus = "in_progress" | "completed" | "incomplete";

export interface OutputMessageItem {
  id: string;
  type: "message";
  status: ItemStatus;
  role: "assistant";
  content: (OutputTextPart | RefusalPart)[];
}

export interface FunctionCallItem {
  id: string;
  type: "function_call";
  status: ItemStatus;
  call_id: string;
  name: string;
  /** The `namespace` tool the function belongs to (tool-names.ts); absent for a top-level function. */
  namespace?: string;
  arguments: string;
}

/**
 * A call of a `custom` tool (free-form text input, e.g. Codex's `apply_patch`). Chat providers know only function
 * tools: the gateway sends a custom tool as a function taking one string, `input`, and turns the call back into this.
 */
export interface CustomToolCallItem {
  id: string;
  type: "custom_tool_call";
  status: ItemStatus;
  call_id: string;
  name: string;
  namespace?: string;
  input: string;
}

/** A call of the client-run `tool_search` (tool-search.ts): the client searches, with the arguments the model wrote. */
export interface ToolSearchCallItem {
  id: string;
  type: "tool_search_call";
  status: ItemStatus;
  call_id: string;
  execution: "client";
  /** The JSON the model wrote (`{query, limit}` for Codex), or its text when that was not JSON. */
  arguments: unknown;
}

export interface SummaryTextPart {
  type: "summary_text";
  text: string;
}

/** The reasoning text a chat provider returned (`reasoning_content`), as a reasoning summary. */
export interface ReasoningItem {
  id: string;
  type: "reasoning";
  status: ItemStatus;
  summary: SummaryTextPart[];
  /** Only when the request included `reasoning.encrypted_content`: the gateway's own (reasoning-text.ts). */
  encrypted_content?: string;
}

export type OutputItem = OutputMessageItem | FunctionCallItem | CustomToolCallItem | ToolSearchCallItem | ReasoningItem;

export interface ResponseUsage {
  input_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
}

export type ResponseStatus = "queued" | "in_progress" | "completed" | "incomplete" | "failed" | "cancelled";

/** The request fields a response object repeats back, fixed when the request is translated. */
export interface ResponseEcho {
  instructions: string | null;
  max_output_tokens: number | null;
  metadata: Record<string, string>;
  parallel_tool_calls: boolean;
  previous_response_id: string | null;
  /** The conversation the response's items were added to (`conversation`); absent without one. */
  conversation?: { id: string };
  reasoning: { effort: string | null; summary: string | null };
  store: boolean;
  temperature: number | null;
  /** `verbosity` is repeated, not sent: chat providers have no such field (`medium` when the request names none). */
  text: { format: Record<string, unknown>; verbosity?: string };
  tool_choice: unknown;
  tools: unknown[];
  top_p: number | null;
  truncation: "auto" | "disabled";
  user: string | null;
  /** Optional: responses kept by an earlier version have none. Repeated as the request said them. */
  safety_identifier?: string | null;
  prompt_cache_key?: string | null;
  service_tier?: string | null;
  top_logprobs?: number;
  max_tool_calls?: number | null;
}

export interface ResponseObject extends ResponseEcho {
  id: string;
  object: "response";
  created_at: number;
  status: ResponseStatus;
  /** True for a response created with `background: true` (then read back by its id, and cancellable). */
  background: boolean;
  error: { code: string; message: string } | null;
  incomplete_details: { reason: string } | null;
  model: string;
  output: OutputItem[];
  /** Not in the HTTP API itself; the SDKs compute it, and clients that read raw JSON expect it. */
  output_text: string;
  usage: ResponseUsage | null;
  /** Only when `usage` is the gateway's estimate: the upstream reported none (docs/protocols.md "Estimated usage"). */
  x_gateway?: EstimatedUsageMark;
}

export interface ResponseState {
  id: string;
  createdAtSeconds: number;
  status: ResponseStatus;
  model: string;
  output: OutputItem[];
  usage: ChatUsage | undefined;
  incompleteReason?: string | undefined;
  error?: { code: string; message: string } | undefined;
}

export function buildResponse(echo: ResponseEcho, state: ResponseState): ResponseObject {
  return {
    id: state.id,
    object: "response",
    created_at: state.createdAtSeconds,
    status: state.status,
    background: false,
    error: state.error ?? null,
    incomplete_details: state.incompleteReason === undefined ? null : { reason: state.incompleteReason },
    model: state.model,
    output: state.output,
    output_text: outputText(state.output),
    usage: state.usage === undefined ? null : toResponseUsage(state.usage),
    ...estimatedUsageMark(state.usage),
    ...echo,
  };
}

export function toResponseUsage(usage: ChatUsage): ResponseUsage {
  return {
    input_tokens: usage.promptTokens,
    input_tokens_details: { cached_tokens: usage.cachedTokens },
    output_tokens: usage.completionTokens,
    output_tokens_details: { reasoning_tokens: usage.reasoningTokens },
    total_tokens: usage.totalTokens,
  };
}

export function outputText(output: readonly OutputItem[]): string {
  let text = "";
  for (const item of output) {
    if (item.type !== "message") continue;
    for (const part of item.content) if (part.type === "output_text") text += part.text;
  }
  return text;
}

/**
 * How a chat `finish_reason` ends a response: `length` is `incomplete` with reason `max_output_tokens`,
 * `content_filter` is `incomplete` with reason `content_filter`; anything else (stop, tool_calls) completes it.
 */
export function finishToStatus(finishReason: string | undefined): {
  status: "completed" | "incomplete";
  incompleteReason: string | undefined;
} {
  if (finishReason === "length") return { status: "incomplete", incompleteReason: "max_output_tokens" };
  if (finishReason === "content_filter") return { status: "incomplete", incompleteReason: "content_filter" };
  return { status: "completed", incompleteReason: undefined };
}

/**
 * A failed response's `error`: OpenAI's ResponseError `code` is a closed list (the SDKs type it so), where the
 * gateway's own codes are not: a rate limit is `rate_limit_exceeded`, everything else `server_error`. An overload
 * (`upstream_overloaded`, every candidate answered 529 or cools down after it) is `server_error` as well: the list
 * has no overload code, and OpenAI reports its own overload as a 5xx server error, as the foreground answer is (503);
 * `rate_limit_exceeded` would tell a background client the opposite of what a foreground one is told. The in-band
 * `error` event before `response.failed` carries the gateway's own code (`stream_interrupted`, `upstream_overloaded`).
 */
export function responseErrorOf(error: { readonly code: string; readonly status: number; readonly message: string }): {
  code: string;
  message: string;
} {
  const isRateLimit =
    error.code !== "upstream_overloaded" && (error.status === 429 || error.code === "rate_limit_exceeded");
  return { code: isRateLimit ? "rate_limit_exceeded" : "server_error", message: error.message };
}

/**
 * The in-band `error` event's fields: the gateway's code, message and param at the top, as OpenAI's reference
 * documents the event, and again nested under `error` with the type, as OpenAI's API sends it in practice
 * (openai/openai-dotnet#881). The `openai` SDK for Node raises an event with a nested `error` as an APIError with
 * its message, and (before v7) reads no other shape: the OpenAI Agents SDK on such a client turned the flat event
 * into a ModelBehaviorError without the message. Readers of the flat fields (the AI SDK) still find them.
 */
export function errorEventOf(error: {
  readonly type: string;
  readonly code: string;
  readonly message: string;
  readonly param: string | null;
}): Record<string, unknown> {
  const { type, code, message, param } = error;
  return { code, message, param, error: { type, code, message, param } };
}
