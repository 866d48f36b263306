// The Chat Completions shapes the protocol adapters produce (request bodies) and read (answers and stream
// chunks). Upstream JSON is `unknown`: it is narrowed here once, so the mappings read plain typed views.
import { firstChoice } from "../chat-choice.ts";
import { reasoningOf } from "../chat-reasoning.ts";
import { type GatewayError, UpstreamUnavailableError } from "../errors/gateway-error.ts";
import { inBandErrorStatus, inBandUpstreamError } from "../errors/in-band-error.ts";
import { isRecord } from "../is-record.ts";

export interface ChatToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

export type ChatContentPart =
  | { type: "text"; text: string }
  | { type: "image_url"; image_url: { url: string; detail?: string } }
  | { type: "file"; file: { file_data: string; filename?: string } };

export type ChatMessage =
  | { role: "system"; content: string }
  /**
   * Only in a Responses conversation the gateway keeps (input_items lists it back as the client sent it): sent
   * upstream as `system` (request-mapping.ts withSentRoles), as most chat providers know no `developer`.
   */
  | { role: "developer"; content: string }
  | { role: "user"; content: string | ChatContentPart[] }
  | {
      role: "assistant";
      content: string | null;
      tool_calls?: ChatToolCall[];
      /**
       * The reasoning that led to this answer, sent back as DeepSeek names it: its thinking mode answers a 400 when
       * a tool-calling turn's reasoning is missing from later requests (Kimi K2 Thinking and GLM read it too).
       */
      reasoning_content?: string;
    }
  | { role: "tool"; tool_call_id: string; content: string };

export interface ChatTool {
  type: "function";
  function: { name: string; description?: string; parameters: Record<string, unknown>; strict?: boolean };
}

export type ChatToolChoice = "none" | "auto" | "required" | { type: "function"; function: { name: string } };

export type ChatResponseFormat =
  | { type: "json_object" }
  | {
      type: "json_schema";
      json_schema: { name: string; schema: Record<string, unknown>; description?: string; strict?: boolean };
    };

/** A Chat Completions request body as the adapters build it; the pipeline sends it as it is. */
export interface ChatRequestBody {
  model: string;
  models?: string[];
  messages: ChatMessage[];
  tools?: ChatTool[];
  tool_choice?: ChatToolChoice;
  parallel_tool_calls?: boolean;
  response_format?: ChatResponseFormat;
  max_tokens?: number;
  temperature?: number;
  top_p?: number;
  stop?: string[];
  user?: string;
  /** Token log probabilities on the answer's text (`choices[].logprobs.content`). */
  logprobs?: boolean;
  /** Alternatives per token (0-20); only sent with `logprobs: true`, which OpenAI requires for it. */
  top_logprobs?: number;
  stream?: boolean;
  stream_options?: { include_usage: boolean };
  /**
   * Gateway-only: the reasoning effort the client asked for, sent upstream as `reasoning_effort` only to
   * candidates known to take it (upstream/upstream-request.ts `REASONING_EFFORT_FIELD`).
   */
  x_gateway_reasoning_effort?: string;
}

export interface ChatUsage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  /** Prompt tokens read from the provider's cache, part of `promptTokens` (see `cachedPromptTokens`). */
  cachedTokens: number;
  /**
   * Prompt tokens written to the provider's prompt cache, part of `promptTokens` (OpenRouter's
   * `prompt_tokens_details.cache_write_tokens`, as the AI SDK reads it too); 0 when the provider does not say.
   */
  cacheWriteTokens: number;
  reasoningTokens: number;
  /**
   * The gateway's estimate (the answer's `x_gateway.usage_estimated`): the upstream reported no usage
   * (streaming/estimated-usage.ts). The doors' answers say so in their own `x_gateway`.
   */
  isEstimated?: true;
}

/** One alternative at a token's position, as both Chat Completions and the Responses API write it. */
export interface TokenAlternative {
  token: string;
  logprob: number;
  /** The token's UTF-8 bytes; the Responses API requires them, chat may send `null`: then made from `token`. */
  bytes: number[];
}

/** The log probability of one text token of the answer, with its most likely alternatives. */
export interface TokenLogprob extends TokenAlternative {
  top_logprobs: TokenAlternative[];
}

/** The first choice of a Chat Completions answer. */
export interface ChatCompletionView {
  model: string;
  text: string;
  /** Reasoning text (`reasoning_content`, or `reasoning` as some providers name it); "" when there is none. */
  reasoning: string;
  refusal: string | undefined;
  toolCalls: ChatToolCall[];
  finishReason: string | undefined;
  /** The stop string that ended the answer, where the provider says so (vLLM-style `stop_reason`). */
  matchedStop: string | undefined;
  usage: ChatUsage | undefined;
  /** The text's token log probabilities (`choices[0].logprobs.content`); empty when not asked for or not sent. */
  logprobs: TokenLogprob[];
}

export interface ToolCallDelta {
  /** Undefined when the provider leaves it out (Gemini): streamed-tool-calls.ts tells the calls apart by id. */
  index: number | undefined;
  id: string | undefined;
  name: string | undefined;
  arguments: string;
}

/** What one stream chunk adds to the first choice. */
export interface ChatChunkView {
  model: string | undefined;
  text: string;
  reasoning: string;
  refusal: string;
  toolCalls: ToolCallDelta[];
  finishReason: string | undefined;
  matchedStop: string | undefined;
  usage: ChatUsage | undefined;
  /** The log probabilities of this chunk's text tokens. */
  logprobs: TokenLogprob[];
  /**
   * Why the upstream failed the answer inside this chunk, if it did: an `error` object next to `choices`, or
   * `finish_reason: "error"` (OpenRouter's documented mid-stream failure, after which the stream ends normally).
   * The relay passes such a chunk on for chat clients, whose SDKs raise it; a translated stream must fail instead.
   */
  failure: string | undefined;
  /** The HTTP status that error names (a 429 `code`, `overloaded_error`, ...: errors/in-band-error.ts), if any. */
  failureStatus: number | undefined;
}

type JsonObject = Record<string, unknown>;

function asObject(value: unknown): JsonObject | undefined {
  return isRecord(value) ? value : undefined;
}

function asString(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

/**
 * A token count as the upstream stated it, or 0: only a whole number from 0 to 2^53 - 1 (a fraction or 1e308 is
 * not a count a client's SDK should be handed). streaming/stream-event.ts `tokenCount` is the same rule for what
 * the gateway records.
 */
function asCount(value: unknown): number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0 ? value : 0;
}

/**
 * The mark of a `usage` the gateway estimated, as on a chat answer: an extra top-level `x_gateway` on a Responses
 * object and on a Messages message and `message_delta`, which the SDKs' types and schemas (openai, @anthropic-ai/sdk,
 * the AI SDK's zod objects, the Agents SDK) leave alone.
 */
export interface EstimatedUsageMark {
  usage_estimated: true;
}

/** `{ x_gateway: { usage_estimated: true } }` for an estimated usage, else nothing to spread. */
export function estimatedUsageMark(usage: ChatUsage | undefined): { x_gateway?: EstimatedUsageMark } {
  return usage?.isEstimated === true ? { x_gateway: { usage_estimated: true } } : {};
}

/** An answer's (or chunk's) `usage`; `body` is the answer, for the gateway's `x_gateway.usage_estimated` beside it. */
function readUsage(body: JsonObject): ChatUsage | undefined {
  const usage = asObject(body.usage);
  if (usage === undefined) return undefined;
  const promptTokens = asCount(usage.prompt_tokens);
  const completionTokens = asCount(usage.completion_tokens);
  return {
    promptTokens,
    completionTokens,
    totalTokens: asCount(usage.total_tokens) || promptTokens + completionTokens,
    cachedTokens: cachedPromptTokens(usage),
    cacheWriteTokens: asCount(asObject(usage.prompt_tokens_details)?.cache_write_tokens),
    reasoningTokens: asCount(asObject(usage.completion_tokens_details)?.reasoning_tokens),
    ...(asObject(body.x_gateway)?.usage_estimated === true ? { isEstimated: true as const } : {}),
  };
}

/**
 * Prompt tokens read from the provider's cache: `prompt_tokens_details.cached_tokens` (OpenAI's field), else
 * DeepSeek's `prompt_cache_hit_tokens` (its OpenAI-compatible API reports cache hits there, beside
 * `prompt_cache_miss_tokens`, not in `prompt_tokens_details`).
 */
function cachedPromptTokens(usage: JsonObject): number {
  const cached = asObject(usage.prompt_tokens_details)?.cached_tokens;
  return asCount(typeof cached === "number" ? cached : usage.prompt_cache_hit_tokens);
}

/** Message content may be a string or (some providers) an array of text parts. */
function readText(value: unknown): string {
  if (typeof value === "string") return value;
  if (!Array.isArray(value)) return "";
  return value.map((part) => asString(asObject(part)?.text) ?? "").join("");
}

export function readChatCompletion(json: unknown): ChatCompletionView {
  const body = asObject(json);
  const choice = firstChoice(body?.choices);
  const message = asObject(choice?.message);
  if (body === undefined || message === undefined) {
    throw new UpstreamUnavailableError("The upstream answer is not a chat completion (no choices[0].message).");
  }
  const toolCalls: ChatToolCall[] = [];
  for (const [position, value] of (Array.isArray(message.tool_calls) ? message.tool_calls : []).entries()) {
    const call = asObject(value);
    const fn = asObject(call?.function);
    if (fn === undefined) continue;
    toolCalls.push({
      id: asString(call?.id) || `call_${position}`,
      type: "function",
      function: { name: asString(fn.name) ?? "", arguments: readArguments(fn.arguments) },
    });
  }
  return {
    model: asString(body.model) ?? "",
    text: readText(message.content),
    reasoning: reasoningOf(message),
    refusal: asString(message.refusal) || undefined,
    toolCalls,
    finishReason: asString(choice?.finish_reason),
    matchedStop: asString(choice?.stop_reason),
    usage: readUsage(body),
    logprobs: readLogprobs(choice?.logprobs),
  };
}

/**
 * `choices[].logprobs.content` (the text's tokens; `refusal` tokens are left out, as the Responses API has no place
 * for them). An entry without a string token and a finite logprob is dropped rather than passed on half-formed.
 */
function readLogprobs(value: unknown): TokenLogprob[] {
  const content = asObject(value)?.content;
  if (!Array.isArray(content)) return [];
  const logprobs: TokenLogprob[] = [];
  for (const entry of content) {
    const token = readAlternative(entry);
    if (token === undefined) continue;
    const alternatives = asObject(entry)?.top_logprobs;
    const top: TokenAlternative[] = [];
    for (const alternative of Array.isArray(alternatives) ? alternatives : []) {
      const read = readAlternative(alternative);
      if (read !== undefined) top.push(read);
    }
    logprobs.push({ ...token, top_logprobs: top });
  }
  return logprobs;
}

const UTF8 = new TextEncoder();

function readAlternative(value: unknown): TokenAlternative | undefined {
  const entry = asObject(value);
  const token = asString(entry?.token);
  const logprob = entry?.logprob;
  if (token === undefined || typeof logprob !== "number" || !Number.isFinite(logprob)) return undefined;
  const bytes = entry?.bytes;
  const isByteList = Array.isArray(bytes) && bytes.every((byte) => Number.isInteger(byte) && byte >= 0 && byte <= 255);
  return { token, logprob, bytes: isByteList ? (bytes as number[]) : [...UTF8.encode(token)] };
}

/**
 * A call's whole arguments as a client's JSON.parse reads them: `{}` for none. Some providers send a call of a
 * function without parameters with `arguments: ""` (or none at all); OpenAI sends `"{}"`, and the Agents SDK, given
 * `""`, did not run the tool but told the model "An error occurred while parsing tool arguments".
 */
export function argumentsOrEmptyObject(argumentsText: string): string {
  return argumentsText.trim() === "" ? "{}" : argumentsText;
}

/** Arguments are a JSON string; a few providers send the object itself. */
function readArguments(value: unknown): string {
  if (typeof value === "string") return value;
  if (value === undefined || value === null) return "";
  return JSON.stringify(value);
}

export function readChatChunk(json: unknown): ChatChunkView {
  const body = asObject(json) ?? {};
  const choice = firstChoice(body.choices);
  const delta = asObject(choice?.delta) ?? {};
  const toolCalls: ToolCallDelta[] = [];
  for (const value of Array.isArray(delta.tool_calls) ? delta.tool_calls : []) {
    const call = asObject(value);
    if (call === undefined) continue;
    const fn = asObject(call.function);
    toolCalls.push({
      // Not the position in the chunk: an indexless provider sends each call in its own chunk, all at position 0.
      index: typeof call.index === "number" ? call.index : undefined,
      id: asString(call.id) || undefined,
      name: asString(fn?.name) || undefined,
      arguments: readArguments(fn?.arguments),
    });
  }
  return {
    model: asString(body.model) || undefined,
    text: readText(delta.content),
    reasoning: reasoningOf(delta),
    refusal: asString(delta.refusal) ?? "",
    toolCalls,
    finishReason: asString(choice?.finish_reason),
    matchedStop: asString(choice?.stop_reason),
    usage: readUsage(body),
    logprobs: readLogprobs(choice?.logprobs),
    failure: readFailure(body.error, asString(choice?.finish_reason)),
    failureStatus: inBandErrorStatus(body.error),
  };
}

/** An upstream error message is its own text (already redacted by the relay): bounded like the relay's own. */
const FAILURE_MESSAGE_MAX_CHARS = 300;

function readFailure(error: unknown, finishReason: string | undefined): string | undefined {
  if (error !== undefined && error !== null) {
    const message = asString(asObject(error)?.message) ?? asString(error) ?? "";
    return message === ""
      ? "the upstream sent an error"
      : `the upstream sent an error: ${message.slice(0, FAILURE_MESSAGE_MAX_CHARS)}`;
  }
  return finishReason === "error" ? "the upstream ended the answer with finish_reason `error`" : undefined;
}

/**
 * The in-band error a translated stream ends with when a chunk says the upstream failed (`failure`): a rate limit or
 * an overload when its error names one (`status`), as the relay's own ending is (streaming/relay-stream.ts).
 */
export function chunkFailureError(failure: string, status: number | undefined): GatewayError {
  return inBandUpstreamError(`The upstream stream failed after it had started: ${failure}.`, status);
}

/** The reasoning of assistant pieces joined into one message, one piece a line, as within a turn. */
export function joinedReasoning(first: string | undefined, second: string | undefined): string | undefined {
  if (first === undefined) return second;
  return second === undefined ? first : `${first}\n${second}`;
}

/**
 * The translated history with `reasoning_content` on the assistant turns that called tools only (in place), as
 * `previous_response_id` sends it: DeepSeek needs a tool turn's and ignores the rest, while clients keep every
 * turn's (Claude Code its thinking blocks, which Anthropic drops from earlier turns itself), so a long session sent
 * all of it on each request, counted as prompt for budgets and the context fit and billed by hosts that read it.
 */
export function withToolTurnReasoningOnly(messages: ChatMessage[]): ChatMessage[] {
  for (const [index, message] of messages.entries()) {
    if (message.role !== "assistant" || message.reasoning_content === undefined) continue;
    if ((message.tool_calls?.length ?? 0) > 0) continue;
    const { reasoning_content: _dropped, ...rest } = message;
    messages[index] = rest;
  }
  return messages;
}
