// Responses API request -> Chat Completions request body. What is translated, passed on, ignored and refused is
// listed in docs/protocols.md; this file (with tool-mapping.ts for tools and input-messages.ts for input items) is
// the source of truth for it.
import { InvalidRequestError, ResourceNotFoundError } from "../../errors/gateway-error.ts";
import type { ChatMessage, ChatRequestBody, ChatTool } from "../chat-completions.ts";
import { validateBody } from "../validate.ts";
import type { KeptChain } from "./chain-items.ts";
import { chatBodyOf, toResponseFormat } from "./chat-body.ts";
import { checkConversationId, isConversationId } from "./conversations.ts";
import { chainAfter, conversationIdsOf, refuseDuplicateItems } from "./duplicate-items.ts";
import { calledIdsOf, inputMessages, type ResponseLookup, withoutOrphanOutputs } from "./input-messages.ts";
import { NOT_STORED } from "./not-kept-answers.ts";
import { inputTokensRequestSchema, type ResponsesRequest, responsesRequestSchema } from "./request-schema.ts";
import type { ResponseEcho } from "./response-object.ts";
import { toolCallLimitOf } from "./tool-call-limit.ts";
import { toChatTools } from "./tool-mapping.ts";
import { ToolNames } from "./tool-names.ts";
import { loadedTools } from "./tool-search.ts";

export type { ResponseLookup } from "./input-messages.ts";

export interface TranslatedResponsesRequest {
  readonly chatBody: ChatRequestBody;
  /** The request fields the response object repeats back. */
  readonly echo: ResponseEcho;
  readonly isStream: boolean;
  /** `store` (default true): keep the answer for `previous_response_id` and GET /v1/responses/{id}. */
  readonly shouldStore: boolean;
  /** `background: true`: answered at once (queued), served in the gateway, read back by GET /v1/responses/{id}. */
  readonly isBackground: boolean;
  /** The conversation sent, without `instructions` (not carried over, as OpenAI does); kept with the answer. */
  readonly conversation: ChatMessage[];
  /** How many of `conversation`'s messages are the named conversation's earlier items (0 without one). */
  readonly historyLength: number;
  /** Types of the hosted tools (`web_search`, ...) left out: nothing behind a chat provider can run them. */
  readonly droppedTools: readonly string[];
  /** The upstream names of the request's tools (a namespace's members are renamed), to name calls kept for later. */
  readonly toolNames: ToolNames;
  /** The conversation (`conversation`) the request continues, whose items its input and output are added to. */
  readonly conversationId: string | undefined;
  /** Every tool the conversation's tool searches loaded so far (earlier turns' too): kept with the answer. */
  readonly loadedTools: readonly Record<string, unknown>[];
  /** `include: ["reasoning.encrypted_content"]`: reasoning items carry one (reasoning-text.ts). */
  readonly includesEncryptedReasoning: boolean;
  /** The most tool calls the answer may hold (`parallel_tool_calls: false`, `max_tool_calls`): tool-call-limit.ts. */
  readonly toolCallLimit: number | undefined;
  /**
   * StoredResponse.chain of its answer, less where a conversation it started in ends (known once answered);
   * undefined: the response it continues was kept without chain ids (duplicate-items.ts chainAfter).
   */
  readonly chain: KeptChain | undefined;
}

function unsupportedField(message: string, field: string): InvalidRequestError {
  return new InvalidRequestError(message, { param: field, code: "unsupported_parameter" });
}

export function toChatRequest(body: unknown, lookup: ResponseLookup): TranslatedResponsesRequest {
  const request = validateBody(responsesRequestSchema, body);
  checkOutputLimit(request.max_output_tokens);
  const isBackground = request.background === true;
  // As OpenAI: a background response is read back by its id, so it must be kept.
  if (isBackground && request.store === false) {
    throw new InvalidRequestError(
      "`background: true` requires `store` to be true (or left out): a background response is read back by its id.",
      { param: "store", code: "invalid_value" },
    );
  }
  refuseStatefulFields(request);
  const { offered, loaded } = withLoadedTools(request, lookup);
  const toolNames = ToolNames.of(offered.tools ?? []);
  const { messages: conversation, historyLength } = conversationOf(request, lookup, toolNames);
  if (conversation.length === 0) {
    throw new InvalidRequestError("`input` is required: a string or a non-empty array of items.", {
      param: "input",
      code: "invalid_value",
    });
  }
  // What is sent: an output of rebuilt history whose call was deleted since is left out (withoutOrphanOutputs); the
  // kept conversation stays as read.
  const messages = withoutOrphanOutputs(withInstructions(request.instructions, conversation));
  const { tools, toolChoice, dropped } = toChatTools(offered, toolNames, request.tools?.length ?? 0);
  const isStream = request.stream === true;
  const previous =
    typeof request.previous_response_id === "string" ? lookup.get(request.previous_response_id) : undefined;

  const chatBody = chatBodyOf(request, request.model, messages, tools, toolChoice);
  if (isStream) {
    chatBody.stream = true;
    // Usage is needed for `response.completed`; asking for it explicitly also keeps the usage chunk from
    // being stripped as one the gateway injected.
    chatBody.stream_options = { include_usage: true };
  }

  return {
    chatBody,
    echo: echoOf(offered),
    isStream,
    shouldStore: request.store !== false,
    isBackground,
    conversation,
    historyLength: conversationIdOf(request.conversation) === undefined ? 0 : historyLength,
    droppedTools: dropped,
    toolNames,
    conversationId: conversationIdOf(request.conversation),
    loadedTools: loaded,
    includesEncryptedReasoning: (request.include ?? []).includes(ENCRYPTED_REASONING_INCLUDE),
    toolCallLimit: toolCallLimitOf(request),
    chain: chainAfter(previous, request.input, lookup),
  };
}

/** OpenAI's least `max_output_tokens`, refused below with its own code and message (as its SDKs' users see it). */
const MIN_OUTPUT_TOKENS = 16;

function checkOutputLimit(maxOutputTokens: number | null | undefined): void {
  if (typeof maxOutputTokens !== "number" || maxOutputTokens >= MIN_OUTPUT_TOKENS) return;
  throw new InvalidRequestError(
    `Invalid 'max_output_tokens': integer below minimum value. Expected a value >= ${MIN_OUTPUT_TOKENS}, but got ${maxOutputTokens} instead.`,
    { param: "max_output_tokens", code: "integer_below_min_value" },
  );
}

/**
 * The request with the tools its `tool_search_output` items loaded added to its own (tool-search.ts), and those of
 * the conversation it continues (a kept conversation's items, or what the previous response kept): the model may
 * call them, and its calls of them are named back by them. The response repeats them in its `tools`, as the tools
 * the model had. `loaded`: every tool loaded so far, the request's own ones too, for the answer to keep (the next
 * request may not offer them itself).
 */
function withLoadedTools<T extends Pick<ResponsesRequest, "tools" | "input" | "conversation" | "previous_response_id">>(
  request: T,
  lookup: ResponseLookup,
): { offered: T; loaded: Record<string, unknown>[] } {
  const keptItems = keptItemsOf(request.conversation, lookup);
  const earlier = earlierLoadedTools(request.previous_response_id, lookup);
  const added = loadedTools(request.input, request.tools ?? [], keptItems, earlier);
  const loaded = loadedTools(request.input, [], keptItems, earlier);
  return {
    offered: added.length === 0 ? request : { ...request, tools: [...(request.tools ?? []), ...added] },
    loaded,
  };
}

/**
 * The tools a previous response's conversation loaded. None for a response not found or still running
 * (previousConversation refuses both) or kept by a version that did not keep them.
 */
function earlierLoadedTools(id: string | null | undefined, lookup: ResponseLookup): readonly Record<string, unknown>[] {
  if (typeof id !== "string") return [];
  return lookup.get(id)?.loadedTools ?? [];
}

/**
 * A kept conversation's items, for the tools its `tool_search_output` items loaded: the model reads those tools as
 * callable (input-messages.ts), so they are offered as they are when the output is in this request's input. None
 * for an id that is no conversation's (conversationOf refuses it) or a conversation not found (conversationOf says so).
 */
function keptItemsOf(conversation: ResponsesRequest["conversation"], lookup: ResponseLookup): readonly unknown[] {
  const id = conversationIdOf(conversation);
  if (id === undefined || !isConversationId(id)) return [];
  return lookup.conversationItems?.(id) ?? [];
}

/** The ids a named conversation holds (duplicate-items.ts conversationIdsOf); undefined without one. */
function keptIdsOf(
  conversation: ResponsesRequest["conversation"],
  lookup: ResponseLookup,
): readonly string[] | undefined {
  const id = conversationIdOf(conversation);
  if (id === undefined) return undefined;
  return conversationIdsOf(lookup.conversationItems?.(id), lookup.conversationClientIds?.(id));
}

/** What stateless clients ask for to send reasoning back with `store: false` (reasoning-text.ts). */
const ENCRYPTED_REASONING_INCLUDE = "reasoning.encrypted_content";

/** The prompt a Responses request would send, as `POST /v1/responses/input_tokens` counts it. */
export interface CountedPrompt {
  /** Undefined when the request names none (the count's `model` is optional): the estimate is not calibrated. */
  readonly model: string | undefined;
  readonly messages: ChatMessage[];
  readonly tools: ChatTool[];
  /** `truncation: "auto"`: counted as it would be sent, its oldest items left out to fit (context-truncation.ts). */
  readonly isTruncated: boolean;
  /**
   * The chat body `POST /v1/responses` would plan (chatBodyOf: its fallbacks, tools, schema, output bound and
   * features), which truncation plans to see which candidates hold it; undefined without a `model`.
   */
  readonly plannedBody: ChatRequestBody | undefined;
}

/**
 * `POST /v1/responses/input_tokens`: the body is validated and translated as `POST /v1/responses`'s, less what a
 * count does not need: `model` and `input` are optional (as in OpenAI's count), fields that only shape the answer
 * (`stream`, `store`, `background`, ...) are not looked at beyond their types.
 */
export function toCountedPrompt(body: unknown, lookup: ResponseLookup): CountedPrompt {
  const request = validateBody(inputTokensRequestSchema, body);
  checkOutputLimit(request.max_output_tokens);
  refuseStatefulFields(request);
  const { offered } = withLoadedTools(request, lookup);
  const toolNames = ToolNames.of(offered.tools ?? []);
  const messages = withoutOrphanOutputs(
    withInstructions(request.instructions, conversationOf(request, lookup, toolNames).messages),
  );
  const { tools, toolChoice } = toChatTools(offered, toolNames, request.tools?.length ?? 0);
  // Refused here as it would be on /v1/responses (a bad `text.format`), whether or not a body is planned.
  toResponseFormat(request.text?.format);
  const model = request.model ?? undefined;
  return {
    model,
    messages,
    tools,
    isTruncated: request.truncation === "auto",
    plannedBody: model === undefined ? undefined : chatBodyOf(request, model, messages, tools, toolChoice),
  };
}

function conversationOf(
  request: Pick<ResponsesRequest, "previous_response_id" | "input" | "conversation">,
  lookup: ResponseLookup,
  toolNames: ToolNames,
): { messages: ChatMessage[]; historyLength: number } {
  const conversationId = conversationIdOf(request.conversation);
  if (conversationId !== undefined && typeof request.previous_response_id === "string") {
    // As OpenAI: each names the history the input follows; both at once would be two histories.
    throw new InvalidRequestError(
      "`conversation` and `previous_response_id` cannot be used together: send one of them.",
      { param: "conversation", code: "invalid_value" },
    );
  }
  if (conversationId !== undefined) checkConversationId(conversationId, "conversation");
  const history =
    conversationId === undefined
      ? previousConversation(request.previous_response_id, lookup)
      : conversationMessages(conversationId, lookup, toolNames);
  const previousId = request.previous_response_id;
  refuseDuplicateItems(
    request.input,
    {
      previous: typeof previousId === "string" ? lookup.get(previousId) : undefined,
      conversationIds: keptIdsOf(request.conversation, lookup),
    },
    lookup,
  );
  // Each output answers a call of the history or of the input before it (OpenAI's 400 otherwise: input-messages.ts).
  const input = inputMessages(request.input, lookup, toolNames, "input", calledIdsOf(history));
  return { messages: [...history, ...input], historyLength: history.length };
}

/** `conversation` as a string or as `{id}`. */
export function conversationIdOf(conversation: ResponsesRequest["conversation"]): string | undefined {
  if (conversation === undefined || conversation === null) return undefined;
  return typeof conversation === "string" ? conversation : conversation.id;
}

function conversationMessages(id: string, lookup: ResponseLookup, toolNames: ToolNames): ChatMessage[] {
  const items = lookup.conversationItems?.(id);
  if (items === undefined) throw conversationNotFound(id, "conversation");
  // Kept items were checked as input when they were added, so they translate as they did then.
  return inputMessages([...items], lookup, toolNames, "conversation");
}

export function conversationNotFound(id: string, param: string): ResourceNotFoundError {
  return new ResourceNotFoundError(
    `Conversation with id '${id}' not found: it was never created, has expired or was deleted.`,
    { param, code: "conversation_not_found" },
  );
}

/** The messages sent upstream: `instructions` first, and the conversation with the roles chat providers know. */
function withInstructions(instructions: string | null | undefined, conversation: ChatMessage[]): ChatMessage[] {
  const sent = withSentRoles(conversation);
  return typeof instructions === "string" && instructions !== ""
    ? [{ role: "system", content: instructions }, ...sent]
    : sent;
}

/**
 * `developer` messages as `system`: most chat providers know no `developer` (OpenAI's newer name for it). The kept
 * conversation keeps `developer`, for input_items and a native provider (native.ts chatToInputItems).
 */
function withSentRoles(conversation: ChatMessage[]): ChatMessage[] {
  if (!conversation.some((message) => message.role === "developer")) return conversation;
  return conversation.map((message) =>
    message.role === "developer" ? { role: "system", content: message.content } : message,
  );
}

function refuseStatefulFields(request: Readonly<Record<string, unknown>>): void {
  if (request.prompt !== undefined && request.prompt !== null) {
    throw unsupportedField(
      "`prompt` is not supported: the gateway keeps no prompt templates; send `input` (and `instructions`) instead.",
      "prompt",
    );
  }
}

function previousConversation(id: string | null | undefined, lookup: ResponseLookup): ChatMessage[] {
  if (typeof id !== "string") return [];
  const stored = lookup.get(id);
  if (stored === undefined) {
    // A 400, as OpenAI answers it (clients catch it as a bad request, e.g. the openai SDK's BadRequestError), where a
    // GET of the same id is a 404.
    throw new InvalidRequestError(
      lookup.isNotKept?.(id) === true
        ? `Previous response with id '${id}' ${NOT_STORED}; send its conversation in \`input\` instead.`
        : `Previous response with id '${id}' not found: it was never kept (\`store: false\`), has expired or was deleted.`,
      { param: "previous_response_id", code: "previous_response_not_found" },
    );
  }
  // A background response still running has no answer yet: continuing from it would send its input alone, and the
  // model would answer that turn again. Refused, as OpenAI refuses a previous response that is not finished.
  const { status } = stored.response;
  if (status === "queued" || status === "in_progress") {
    throw new InvalidRequestError(
      `Previous response with id '${id}' is still ${status}: continue from it once it has finished (poll GET /v1/responses/${id}).`,
      { param: "previous_response_id", code: "invalid_value" },
    );
  }
  return [...stored.conversation];
}

function echoOf(request: ResponsesRequest): ResponseEcho {
  const format = request.text?.format;
  return {
    instructions: request.instructions ?? null,
    max_output_tokens: request.max_output_tokens ?? null,
    metadata: request.metadata ?? {},
    parallel_tool_calls: request.parallel_tool_calls ?? true,
    previous_response_id: request.previous_response_id ?? null,
    ...(request.conversation === undefined || request.conversation === null
      ? {}
      : { conversation: { id: conversationIdOf(request.conversation) ?? "" } }),
    reasoning: { effort: request.reasoning?.effort ?? null, summary: request.reasoning?.summary ?? null },
    store: request.store !== false,
    temperature: request.temperature ?? null,
    text: {
      format: format !== null && typeof format === "object" ? (format as Record<string, unknown>) : { type: "text" },
      verbosity: request.text?.verbosity ?? "medium",
    },
    tool_choice: request.tool_choice ?? "auto",
    tools: request.tools ?? [],
    top_p: request.top_p ?? null,
    truncation: request.truncation ?? "disabled",
    user: request.user ?? null,
    safety_identifier: request.safety_identifier ?? null,
    prompt_cache_key: request.prompt_cache_key ?? null,
    service_tier: request.service_tier ?? null,
    top_logprobs: request.top_logprobs ?? 0,
    max_tool_calls: request.max_tool_calls ?? null,
  };
}
