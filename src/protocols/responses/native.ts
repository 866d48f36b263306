// Responses API pass-through, for providers marked `responses_api: native` (docs/protocols.md "Native Responses
// providers"): the client's body goes upstream nearly as it is, and the provider's answer comes back with the
// gateway's own response id, so that kept responses (GET / DELETE, `previous_response_id`) keep working.
//
// The provider knows none of the gateway's ids: `previous_response_id` and `item_reference` items are expanded into
// full input from the kept responses, and `store` is sent as false (the gateway keeps the answer itself).

import type { GatewayError } from "../../errors/gateway-error.ts";
import { UpstreamUnavailableError } from "../../errors/gateway-error.ts";
import { isRecord } from "../../is-record.ts";
import { HOSTED_ITEMS_WITH_IDS, hostedItemSchema } from "../../responses-items.ts";
import type { ChatContentPart, ChatMessage } from "../chat-completions.ts";
import type { LongToolNames } from "../long-tool-names.ts";
import { namedEvent } from "../sse.ts";
import { clientNamedEvent, clientNamedResponse } from "./native-tool-names.ts";
import { isGatewayEncryptedContent } from "./reasoning-text.ts";
import type { ResponseLookup } from "./request-mapping.ts";
import { outputToChatMessages } from "./response-mapping.ts";
import {
  buildResponse,
  errorEventOf,
  type OutputItem,
  outputText,
  type ResponseEcho,
  type ResponseObject,
  responseErrorOf,
} from "./response-object.ts";
import type { StoredResponse } from "./response-store.ts";
import { asClientCalls, ToolNames } from "./tool-names.ts";
import { loadedTools } from "./tool-search.ts";

type JsonObject = Record<string, unknown>;

function asObject(value: unknown): JsonObject | undefined {
  return isRecord(value) ? value : undefined;
}

/**
 * The body for a native provider: the client's (already validated and translatable) body without the gateway's
 * `models`, `previous_response_id` and `conversation`, its input preceded by the kept conversation, references resolved, and
 * `store: false`. The `model` is replaced per candidate when it is sent.
 */
export function toNativeBody(body: unknown, lookup: ResponseLookup): JsonObject {
  const {
    models: _fallbacks,
    // The gateway runs a background request itself: the provider is called while it waits, as for any other.
    background: _background,
    previous_response_id: previousId,
    conversation,
    input,
    ...rest
  }: JsonObject = asObject(body) ?? {};
  const previous = typeof previousId === "string" ? lookup.get(previousId) : undefined;
  const conversationId = typeof conversation === "string" ? conversation : asObject(conversation)?.id;
  const conversationItems = typeof conversationId === "string" ? lookup.conversationItems?.(conversationId) : undefined;
  // Kept as chat messages (upstream names): its calls go back as the client made them (custom, namespaced).
  const history =
    previous !== undefined
      ? previousItems(previous)
      : // The conversation's items as they were added, without the gateway's ids and reasoning (the provider knows
        // neither).
        (conversationItems ?? []).filter((item) => item.type !== "reasoning").map(withoutKeptId);
  const items =
    typeof input === "string"
      ? [{ type: "message", role: "user", content: input }]
      : Array.isArray(input)
        ? input.flatMap((item) => resolveItem(item, lookup))
        : [];
  return {
    ...rest,
    ...withEarlierLoadedTools(rest.tools, previous?.loadedTools),
    input: [...history, ...items],
    store: false,
  };
}

/**
 * A previous response's kept conversation as input items. Kept as chat messages, it has no hosted tools' items: when
 * its own output holds some (a native provider's `web_search_call`, `mcp_call`, ...), that output goes as it was
 * answered instead of its chat messages, so the provider sees the calls it made. Earlier turns' hosted items are not
 * kept (docs/protocols.md "Native Responses providers").
 */
function previousItems(previous: StoredResponse): JsonObject[] {
  const names = ToolNames.of(previous.response.tools);
  // Read defensively: a kept row is whatever an earlier version (or a test's fake store) wrote.
  const output = (Array.isArray(previous.response.output) ? previous.response.output : []) as unknown as JsonObject[];
  if (!output.some((item) => hostedItemSchema(String(item.type)) !== undefined)) {
    return asClientCalls(chatToInputItems(previous.conversation), names);
  }
  const ownMessages = outputToChatMessages(previous.response.output, names).length;
  const earlier = previous.conversation.slice(0, previous.conversation.length - ownMessages);
  return [
    ...asClientCalls(chatToInputItems(earlier), names),
    ...output.filter((item) => item.type !== "reasoning").map(withoutKeptId),
  ];
}

/**
 * The tools a previous response's conversation loaded (StoredResponse.loadedTools), added to the request's own: its
 * kept history holds the `tool_search_output` items only as the text the model read, so without them a continuation
 * by `previous_response_id` lost the loaded tools on a native provider, as on a chat one before they were kept.
 */
function withEarlierLoadedTools(
  tools: unknown,
  earlier: readonly Record<string, unknown>[] | undefined,
): { tools?: unknown } {
  if (earlier === undefined || earlier.length === 0) return {};
  const own = Array.isArray(tools) ? tools.filter(isRecord) : [];
  const added = loadedTools([], own, [], earlier);
  return added.length === 0 ? {} : { tools: [...(Array.isArray(tools) ? tools : []), ...added] };
}

/**
 * An `item_reference` becomes the kept item without its id (the provider never saw it); reasoning is dropped, as is a
 * reasoning item a translated answer gave (its `encrypted_content` is the gateway's, which the provider would refuse).
 */
function resolveItem(item: unknown, lookup: ResponseLookup): unknown[] {
  const object = asObject(item);
  if (object?.type === "reasoning" && isGatewayEncryptedContent(object.encrypted_content)) return [];
  if (object?.type !== "item_reference" || typeof object.id !== "string") return [item];
  const found = lookup.findItem(object.id);
  if (found === undefined || found.type === "reasoning") return [];
  return [withoutKeptId(found as unknown as JsonObject)];
}

/**
 * A kept item without its id, which the provider never saw (it is asked with `store: false`); a hosted tool's item
 * keeps it, as OpenAI's reference requires of its input (responses-items.ts HOSTED_ITEMS_WITH_IDS).
 */
function withoutKeptId(item: Readonly<JsonObject>): JsonObject {
  if (HOSTED_ITEMS_WITH_IDS.has(String(item.type))) return { ...item };
  const { id: _id, ...rest } = item;
  return rest;
}

/** Kept chat messages as Responses input items. */
export function chatToInputItems(messages: readonly ChatMessage[]): JsonObject[] {
  const items: JsonObject[] = [];
  for (const message of messages) {
    switch (message.role) {
      case "system":
      case "developer":
        items.push({ type: "message", role: message.role, content: message.content });
        break;
      case "user":
        items.push({
          type: "message",
          role: "user",
          content: typeof message.content === "string" ? message.content : message.content.map(toInputPart),
        });
        break;
      case "assistant":
        if (message.content !== null && message.content !== "") {
          items.push({ type: "message", role: "assistant", content: message.content });
        }
        for (const call of message.tool_calls ?? []) {
          items.push({
            type: "function_call",
            call_id: call.id,
            name: call.function.name,
            arguments: call.function.arguments,
          });
        }
        break;
      case "tool":
        items.push({ type: "function_call_output", call_id: message.tool_call_id, output: message.content });
        break;
    }
  }
  return items;
}

function toInputPart(part: ChatContentPart): JsonObject {
  switch (part.type) {
    case "text":
      return { type: "input_text", text: part.text };
    case "image_url":
      return { type: "input_image", image_url: part.image_url.url, detail: part.image_url.detail ?? "auto" };
    case "file":
      return {
        type: "input_file",
        file_data: part.file.file_data,
        ...(part.file.filename ? { filename: part.file.filename } : {}),
      };
  }
}

export interface NativeContext {
  /** The gateway's own id for this response (`resp_...`). */
  readonly id: string;
  readonly echo: ResponseEcho;
  /** Unix seconds, for a response the provider never described (it failed before `response.created`). */
  readonly createdAtSeconds: number;
  /** The model the gateway sent the request to; used when the provider's answer names none. */
  readonly fallbackModel: string;
  /** The tool names the body went upstream with renamed (native-tool-names.ts); absent when none was. */
  readonly toolNames?: LongToolNames;
}

/**
 * The provider's response object as the client gets it: the gateway's id, the client's `store` and
 * `previous_response_id` (the provider was sent neither), `output_text` as the SDKs expect.
 */
function rewrite(upstream: JsonObject, context: NativeContext): ResponseObject {
  const response = context.toolNames === undefined ? upstream : clientNamedResponse(upstream, context.toolNames);
  const output = Array.isArray(response.output) ? withItemIds(response.output, context.id) : [];
  return {
    ...response,
    id: context.id,
    model: typeof response.model === "string" && response.model !== "" ? response.model : context.fallbackModel,
    store: context.echo.store,
    previous_response_id: context.echo.previous_response_id,
    // The provider never saw the conversation (its items went in `input`): the client's is shown.
    ...(context.echo.conversation === undefined ? {} : { conversation: context.echo.conversation }),
    output,
    output_text: typeof response.output_text === "string" ? response.output_text : outputText(output),
  } as ResponseObject;
}

/** Item id prefixes as OpenAI's (msg_, fc_, rs_, ctc_); other types' items get item_. */
const ITEM_ID_PREFIXES: Readonly<Record<string, string>> = {
  message: "msg",
  function_call: "fc",
  reasoning: "rs",
  custom_tool_call: "ctc",
};

/**
 * The output with an id on each item that has none (OpenAI always gives one; a compatible provider may not). Kept, an
 * answer is indexed by its items' ids: without, the store refused it and a `previous_response_id` naming it was a
 * 400 "could not be stored". Made from the response's own id and the item's place, so that every snapshot of one
 * stream names an item alike, and no other response's item is named so.
 */
function withItemIds(output: unknown[], responseId: string): OutputItem[] {
  return output.map((item, index) =>
    isRecord(item) && (typeof item.id !== "string" || item.id === "")
      ? { ...item, id: `${ITEM_ID_PREFIXES[String(item.type)] ?? "item"}_${responseId.replace(/^resp_/, "")}_${index}` }
      : item,
  ) as OutputItem[];
}

/** A native provider's JSON answer -> the client's response object. */
export function fromNativeResponse(json: unknown, context: NativeContext): ResponseObject {
  const response = asObject(json);
  if (response === undefined || !Array.isArray(response.output)) {
    throw new UpstreamUnavailableError("The upstream answer is not a Responses API response (no `output`).");
  }
  return rewrite(response, context);
}

/**
 * Relays a native provider's Responses events to the client: response snapshots rewritten (`rewrite`), sequence
 * numbers the gateway's own (it may add `error` / `response.failed`). The final `response.completed` /
 * `response.incomplete` is held back until `finish()`, so the answer can be kept before the client reads its end.
 */
export class NativeResponsesRelay {
  /** A relayed answer is ended by its upstream only (StreamTranslator.hasEndedAnswer). */
  readonly hasEndedAnswer = false;
  readonly #context: NativeContext;
  #sequence = 0;
  #latest: JsonObject | undefined;
  readonly #doneItems: unknown[] = [];
  #held = "";
  #final: ResponseObject | undefined;
  #isEnded = false;

  constructor(context: NativeContext) {
    this.#context = context;
  }

  /** The finished response (after `finish()`), for keeping it. */
  get result(): ResponseObject | undefined {
    return this.#final;
  }

  push(chunk: unknown): string {
    const upstream = asObject(chunk);
    if (this.#isEnded || upstream === undefined || typeof upstream.type !== "string") return "";
    const toolNames = this.#context.toolNames;
    const event = toolNames === undefined ? upstream : clientNamedEvent(upstream, toolNames);
    const type = upstream.type;
    const response = asObject(event.response);
    const fields: JsonObject =
      response === undefined ? event : { ...event, response: rewrite(response, this.#context) };
    if (response !== undefined) this.#latest = fields.response as JsonObject;
    if (type === "response.output_item.done") this.#doneItems.push(event.item);
    const text = this.#event(type, fields);
    if (type === "response.completed" || type === "response.incomplete") {
      this.#final = fields.response as ResponseObject;
      this.#held = text;
      return "";
    }
    return text;
  }

  /** The stream ended normally: the held final event (or, if the provider sent none, one made from what came). */
  finish(): string {
    if (this.#isEnded) return "";
    this.#isEnded = true;
    if (this.#final !== undefined) return this.#held;
    const response = { ...this.#snapshot(), status: "completed" } as ResponseObject;
    this.#final = response;
    return this.#event("response.completed", { type: "response.completed", response });
  }

  /** The stream broke (a native stream is not continued): `error`, then `response.failed` with the output so far. */
  fail(error: GatewayError): string {
    if (this.#isEnded) return "";
    this.#isEnded = true;
    const response = {
      ...this.#snapshot(),
      status: "failed",
      error: responseErrorOf(error),
    };
    return (
      this.#event("error", { type: "error", ...errorEventOf(error) }) +
      this.#event("response.failed", { type: "response.failed", response })
    );
  }

  /** A background response cancelled mid-stream: as ResponsesStreamTranslator.cancel, with the items done so far. */
  cancel(): string {
    if (this.#isEnded) return "";
    this.#isEnded = true;
    const response = { ...this.#snapshot(), status: "cancelled" } as ResponseObject;
    this.#final = response;
    return this.#event("response.incomplete", { type: "response.incomplete", response });
  }

  #snapshot(): JsonObject {
    const base =
      this.#latest ??
      buildResponse(this.#context.echo, {
        id: this.#context.id,
        createdAtSeconds: this.#context.createdAtSeconds,
        status: "in_progress",
        model: this.#context.fallbackModel,
        output: [],
        usage: undefined,
      });
    const output = this.#doneItems as OutputItem[];
    return { ...base, output, output_text: outputText(output) };
  }

  #event(type: string, fields: JsonObject): string {
    return namedEvent(type, { ...fields, type, sequence_number: this.#sequence++ });
  }
}
