// Chat Completions stream chunks -> Responses API stream events, with `event:` lines and an increasing
// `sequence_number`, in the order the SDKs' accumulators expect: created, in_progress, then per output item
// added -> (content_part.added -> output_text.delta* (or refusal.delta*) -> output_text.done (refusal.done) ->
// content_part.done |
// function_call_arguments.delta* -> .done | custom_tool_call_input.delta -> .done) -> output_item.done, and last
// completed / incomplete / failed.
//
// Items: reasoning text (`reasoning_content`) opens a reasoning item with one summary part, which text or a tool
// call closes (reasoning_summary_part.added -> reasoning_summary_text.delta* -> .done -> summary_part.done).
// Text opens a message item, which a tool call closes (text after a tool call opens a new message item).
// Function call items stay open until the end, because some providers interleave the argument deltas of
// parallel calls; each delta goes to its call's own output index. A call of a `custom` tool (custom-tools.ts) is
// a `custom_tool_call` item: its input is the `input` string inside the function arguments streamed upstream, read
// once they are whole, so it comes as one delta when the call closes. A call of the client-run `tool_search`
// (tool-search.ts) is a `tool_search_call` item whose `arguments` object is read from the whole arguments at
// `output_item.done`. A call of a `namespace` tool's member names the member and its `namespace` (tool-names.ts).
// The translator stays whole (about 490 lines): its items close one another (a tool call closes the message, text
// reopens one) in the order the SDKs' accumulators check, so every part reads and writes the same open state.
import type { GatewayError } from "../../errors/gateway-error.ts";
import {
  argumentsOrEmptyObject,
  type ChatUsage,
  chunkFailureError,
  readChatChunk,
  type TokenLogprob,
  type ToolCallDelta,
} from "../chat-completions.ts";
import type { IdSource } from "../ids.ts";
import { namedEvent } from "../sse.ts";
import { StreamedToolCalls } from "../streamed-tool-calls.ts";
import { inputOfArguments } from "./custom-tools.ts";
import { gatewayEncryptedContent } from "./reasoning-text.ts";
import {
  buildResponse,
  type CustomToolCallItem,
  errorEventOf,
  type FunctionCallItem,
  finishToStatus,
  type OutputItem,
  type OutputMessageItem,
  type OutputTextPart,
  type ReasoningItem,
  type RefusalPart,
  type ResponseEcho,
  type ResponseObject,
  type ResponseStatus,
  responseErrorOf,
  type SummaryTextPart,
  type ToolSearchCallItem,
} from "./response-object.ts";
import { namedAs, ToolNames } from "./tool-names.ts";
import { searchArgumentsOf } from "./tool-search.ts";

export interface ResponsesStreamOptions {
  readonly echo: ResponseEcho;
  readonly ids: IdSource;
  /** Unix seconds. */
  readonly createdAtSeconds: number;
  /** The model the gateway sent the request to; used until (and unless) a chunk names the upstream's model. */
  readonly fallbackModel?: string;
  /** The request included `reasoning.encrypted_content`: a closed reasoning item carries the gateway's. */
  readonly includesEncryptedReasoning?: boolean;
}

interface OpenMessage {
  readonly item: OutputMessageItem;
  readonly outputIndex: number;
  /** The message's text and refusal parts, each opened when its first delta comes. */
  text: { readonly part: OutputTextPart; readonly contentIndex: number } | undefined;
  refusal: { readonly part: RefusalPart; readonly contentIndex: number } | undefined;
}

interface OpenReasoning {
  readonly item: ReasoningItem;
  readonly part: SummaryTextPart;
  readonly outputIndex: number;
}

interface ToolCallState {
  /** Undefined until the call's name is known (some providers send the id first). */
  item: FunctionCallItem | CustomToolCallItem | ToolSearchCallItem | undefined;
  outputIndex: number;
  id: string | undefined;
  name: string | undefined;
  /** Arguments that came before the item opened; for a custom or tool search call, all of its arguments so far. */
  bufferedArguments: string;
}

export class ResponsesStreamTranslator {
  readonly hasEndedAnswer = false; // No stop sequences of the gateway's: the answer ends when the upstream's does.
  readonly #options: ResponsesStreamOptions;
  readonly #responseId: string;
  readonly #output: OutputItem[] = [];
  readonly #toolCalls = new StreamedToolCalls<ToolCallState>();
  readonly #toolNames: ToolNames;
  #sequence = 0;
  /** The model named by the first chunk that names one (the upstream's own name for it). */
  #model: string | undefined;
  #isStarted = false;
  #isEnded = false;
  #message: OpenMessage | undefined;
  #reasoning: OpenReasoning | undefined;
  #finishReason: string | undefined;
  #usage: ChatUsage | undefined;
  #final: ResponseObject | undefined;

  constructor(options: ResponsesStreamOptions) {
    this.#options = options;
    this.#responseId = options.ids("resp_");
    this.#toolNames = ToolNames.of(options.echo.tools);
  }

  /** The finished response (after `finish()` or `fail()`), for keeping it. */
  get result(): ResponseObject | undefined {
    return this.#final;
  }

  /** Feeds one parsed Chat Completions chunk; returns the SSE text to write (possibly empty). */
  push(chunk: unknown): string {
    if (this.#isEnded) return "";
    const view = readChatChunk(chunk);
    if (this.#model === undefined && view.model !== undefined) this.#model = view.model;
    let text = this.#start();
    if (view.reasoning !== "") text += this.#appendReasoning(view.reasoning);
    if (view.text !== "") text += this.#appendText(view.text, view.logprobs);
    if (view.refusal !== "") text += this.#appendRefusal(view.refusal);
    for (const delta of view.toolCalls) text += this.#appendToolCall(delta);
    if (view.finishReason !== undefined) this.#finishReason = view.finishReason;
    if (view.usage !== undefined) this.#usage = view.usage;
    // What came with the error is delivered first; completing would pass half an answer for a whole one.
    if (view.failure !== undefined) text += this.fail(chunkFailureError(view.failure, view.failureStatus));
    return text;
  }

  /** The upstream stream ended normally: closes every item and sends completed (or incomplete). */
  finish(): string {
    if (this.#isEnded) return "";
    let text = this.#start();
    // Calls whose name never came are still calls: send them with what is known.
    for (const state of this.#toolCalls.all) if (state.item === undefined) text += this.#openToolCall(state);
    const { status, incompleteReason } = finishToStatus(this.#finishReason);
    const itemStatus = status === "incomplete" ? "incomplete" : "completed";
    text += this.#closeReasoning(itemStatus);
    text += this.#closeMessage(itemStatus);
    for (const state of [...this.#toolCalls.all].sort((a, b) => a.outputIndex - b.outputIndex)) {
      text += this.#closeToolCall(state, itemStatus);
    }
    this.#isEnded = true;
    const response = this.#snapshot(status, incompleteReason);
    this.#final = response;
    return text + this.#event(status === "incomplete" ? "response.incomplete" : "response.completed", { response });
  }

  /** The stream broke and could not be continued: the in-band `error` event, then `response.failed`. */
  fail(error: GatewayError): string {
    if (this.#isEnded) return "";
    let text = this.#start();
    this.#isEnded = true;
    // The failed response shows a custom call's input as far as it came, as a function call's arguments are.
    for (const state of this.#toolCalls.all) {
      if (state.item?.type === "custom_tool_call") state.item.input = inputOfArguments(state.bufferedArguments);
      if (state.item?.type === "tool_search_call") state.item.arguments = searchArgumentsOf(state.bufferedArguments);
    }
    text += this.#event("error", errorEventOf(error));
    const response = this.#snapshot("failed", undefined, responseErrorOf(error));
    this.#final = response;
    return text + this.#event("response.failed", { response });
  }

  /**
   * A background response cancelled mid-stream: its open items end `incomplete` with what came, and the stream ends
   * with `response.incomplete` carrying the response as `status: "cancelled"` with that output (OpenAI documents no
   * `response.cancelled` event; `response.incomplete` is the documented last event of a response ended before its
   * answer was complete, and the SDKs' accumulators take its response as the final one).
   */
  cancel(): string {
    if (this.#isEnded) return "";
    let text = this.#start();
    text += this.#closeReasoning("incomplete");
    text += this.#closeMessage("incomplete");
    for (const state of [...this.#toolCalls.all].sort((a, b) => a.outputIndex - b.outputIndex)) {
      text += this.#closeToolCall(state, "incomplete");
    }
    this.#isEnded = true;
    const response = this.#snapshot("cancelled", undefined);
    this.#final = response;
    return text + this.#event("response.incomplete", { response });
  }

  #start(): string {
    if (this.#isStarted) return "";
    this.#isStarted = true;
    const response = this.#snapshot("in_progress", undefined);
    return this.#event("response.created", { response }) + this.#event("response.in_progress", { response });
  }

  #appendReasoning(delta: string): string {
    let text = "";
    if (this.#reasoning === undefined) {
      text += this.#closeMessage("completed");
      const item: ReasoningItem = {
        id: this.#options.ids("rs_"),
        type: "reasoning",
        status: "in_progress",
        summary: [],
      };
      const part: SummaryTextPart = { type: "summary_text", text: "" };
      const outputIndex = this.#output.push(item) - 1;
      this.#reasoning = { item, part, outputIndex };
      text += this.#event("response.output_item.added", { output_index: outputIndex, item });
      item.summary.push(part);
      text += this.#event("response.reasoning_summary_part.added", {
        item_id: item.id,
        output_index: outputIndex,
        summary_index: 0,
        part,
      });
    }
    const { item, part, outputIndex } = this.#reasoning;
    part.text += delta;
    return (
      text +
      this.#event("response.reasoning_summary_text.delta", {
        item_id: item.id,
        output_index: outputIndex,
        summary_index: 0,
        delta,
      })
    );
  }

  #closeReasoning(status: "completed" | "incomplete"): string {
    const reasoning = this.#reasoning;
    if (reasoning === undefined) return "";
    this.#reasoning = undefined;
    const { item, part, outputIndex } = reasoning;
    item.status = status;
    // Known once the text is whole, as OpenAI's is: it comes with output_item.done.
    if (this.#options.includesEncryptedReasoning === true) item.encrypted_content = gatewayEncryptedContent(part.text);
    const at = { item_id: item.id, output_index: outputIndex, summary_index: 0 };
    return (
      this.#event("response.reasoning_summary_text.done", { ...at, text: part.text }) +
      this.#event("response.reasoning_summary_part.done", { ...at, part }) +
      this.#event("response.output_item.done", { output_index: outputIndex, item })
    );
  }

  /** Opens the message item if none is open (closing a reasoning item before it). */
  #openMessage(): { text: string; message: OpenMessage } {
    if (this.#message !== undefined) return { text: "", message: this.#message };
    let text = this.#closeReasoning("completed");
    const item: OutputMessageItem = {
      id: this.#options.ids("msg_"),
      type: "message",
      status: "in_progress",
      role: "assistant",
      content: [],
    };
    const outputIndex = this.#output.push(item) - 1;
    const message: OpenMessage = { item, outputIndex, text: undefined, refusal: undefined };
    this.#message = message;
    text += this.#event("response.output_item.added", { output_index: outputIndex, item });
    return { text, message };
  }

  /** Adds a content part to the open message item; returns its content index. */
  #addPart(message: OpenMessage, part: OutputTextPart | RefusalPart): { text: string; contentIndex: number } {
    const contentIndex = message.item.content.push(part) - 1;
    const text = this.#event("response.content_part.added", {
      item_id: message.item.id,
      output_index: message.outputIndex,
      content_index: contentIndex,
      part,
    });
    return { text, contentIndex };
  }

  /** `logprobs`: the delta's tokens' (chat sends them in the chunk that carries the text). */
  #appendText(delta: string, logprobs: readonly TokenLogprob[]): string {
    const opened = this.#openMessage();
    let text = opened.text;
    const message = opened.message;
    if (message.text === undefined) {
      const part: OutputTextPart = { type: "output_text", text: "", annotations: [], logprobs: [] };
      const added = this.#addPart(message, part);
      text += added.text;
      message.text = { part, contentIndex: added.contentIndex };
    }
    message.text.part.text += delta;
    // One by one: a spread of a hostile upstream's 200,000-entry chunk would overflow the call stack.
    for (const logprob of logprobs) message.text.part.logprobs.push(logprob);
    return (
      text +
      this.#event("response.output_text.delta", {
        item_id: message.item.id,
        output_index: message.outputIndex,
        content_index: message.text.contentIndex,
        delta,
        logprobs,
      })
    );
  }

  /** A streamed refusal (`delta.refusal`) is a `refusal` part of the message item, as OpenAI streams it. */
  #appendRefusal(delta: string): string {
    const opened = this.#openMessage();
    let text = opened.text;
    const message = opened.message;
    if (message.refusal === undefined) {
      const part: RefusalPart = { type: "refusal", refusal: "" };
      const added = this.#addPart(message, part);
      text += added.text;
      message.refusal = { part, contentIndex: added.contentIndex };
    }
    message.refusal.part.refusal += delta;
    return (
      text +
      this.#event("response.refusal.delta", {
        item_id: message.item.id,
        output_index: message.outputIndex,
        content_index: message.refusal.contentIndex,
        delta,
      })
    );
  }

  #closeMessage(status: "completed" | "incomplete"): string {
    const message = this.#message;
    if (message === undefined) return "";
    this.#message = undefined;
    const { item, outputIndex } = message;
    item.status = status;
    const at = (contentIndex: number) => ({ item_id: item.id, output_index: outputIndex, content_index: contentIndex });
    const parts: { contentIndex: number; text: string }[] = [];
    if (message.text !== undefined) {
      const { part, contentIndex } = message.text;
      parts.push({
        contentIndex,
        text:
          this.#event("response.output_text.done", { ...at(contentIndex), text: part.text, logprobs: part.logprobs }) +
          this.#event("response.content_part.done", { ...at(contentIndex), part }),
      });
    }
    if (message.refusal !== undefined) {
      const { part, contentIndex } = message.refusal;
      parts.push({
        contentIndex,
        text:
          this.#event("response.refusal.done", { ...at(contentIndex), refusal: part.refusal }) +
          this.#event("response.content_part.done", { ...at(contentIndex), part }),
      });
    }
    parts.sort((left, right) => left.contentIndex - right.contentIndex);
    return (
      parts.map((part) => part.text).join("") +
      this.#event("response.output_item.done", { output_index: outputIndex, item })
    );
  }

  #appendToolCall(delta: ToolCallDelta): string {
    const state = this.#toolCalls.callFor(delta, () => ({
      item: undefined,
      outputIndex: -1,
      id: undefined,
      name: undefined,
      bufferedArguments: "",
    }));
    if (state.item === undefined) {
      state.bufferedArguments += delta.arguments;
      return state.name === undefined ? "" : this.#openToolCall(state);
    }
    if (state.item.type !== "function_call") {
      state.bufferedArguments += delta.arguments;
      return "";
    }
    return delta.arguments === "" ? "" : this.#appendArguments(state.item, state.outputIndex, delta.arguments);
  }

  #openToolCall(state: ToolCallState): string {
    let text = this.#closeReasoning("completed") + this.#closeMessage("completed");
    const client = this.#toolNames.clientName(state.name ?? "");
    if (client.type === "tool_search") {
      // No argument delta event is documented for a tool search: the item comes whole at output_item.done.
      const search: ToolSearchCallItem = {
        id: this.#options.ids("tsc_"),
        type: "tool_search_call",
        status: "in_progress",
        call_id: state.id ?? this.#options.ids("call_"),
        execution: "client",
        arguments: {},
      };
      state.item = search;
      state.outputIndex = this.#output.push(search) - 1;
      return text + this.#event("response.output_item.added", { output_index: state.outputIndex, item: search });
    }
    if (client.type === "custom") {
      const custom: CustomToolCallItem = {
        id: this.#options.ids("ctc_"),
        type: "custom_tool_call",
        status: "in_progress",
        call_id: state.id ?? this.#options.ids("call_"),
        ...namedAs(client),
        input: "",
      };
      state.item = custom;
      state.outputIndex = this.#output.push(custom) - 1;
      // Its arguments stay in bufferedArguments until the call closes.
      return text + this.#event("response.output_item.added", { output_index: state.outputIndex, item: custom });
    }
    const item: FunctionCallItem = {
      id: this.#options.ids("fc_"),
      type: "function_call",
      status: "in_progress",
      call_id: state.id ?? this.#options.ids("call_"),
      ...namedAs(client),
      arguments: "",
    };
    state.item = item;
    state.outputIndex = this.#output.push(item) - 1;
    text += this.#event("response.output_item.added", { output_index: state.outputIndex, item });
    if (state.bufferedArguments !== "") text += this.#appendArguments(item, state.outputIndex, state.bufferedArguments);
    state.bufferedArguments = "";
    return text;
  }

  #appendArguments(item: FunctionCallItem, outputIndex: number, delta: string): string {
    item.arguments += delta;
    return this.#event("response.function_call_arguments.delta", {
      item_id: item.id,
      output_index: outputIndex,
      delta,
    });
  }

  #closeToolCall(state: ToolCallState, status: "completed" | "incomplete"): string {
    const item = state.item;
    if (item === undefined || item.status !== "in_progress") return "";
    item.status = status;
    if (item.type === "tool_search_call") {
      item.arguments = searchArgumentsOf(state.bufferedArguments);
      return this.#event("response.output_item.done", { output_index: state.outputIndex, item });
    }
    if (item.type === "custom_tool_call") {
      item.input = inputOfArguments(state.bufferedArguments);
      const at = { item_id: item.id, output_index: state.outputIndex };
      return (
        (item.input === "" ? "" : this.#event("response.custom_tool_call_input.delta", { ...at, delta: item.input })) +
        this.#event("response.custom_tool_call_input.done", { ...at, input: item.input }) +
        this.#event("response.output_item.done", { output_index: state.outputIndex, item })
      );
    }
    // A whole call that came without arguments gets `{}` as its last delta, so the deltas, `.done` and the item agree.
    const emptyObject =
      status === "completed" && argumentsOrEmptyObject(item.arguments) !== item.arguments
        ? this.#appendArguments(item, state.outputIndex, "{}")
        : "";
    return (
      emptyObject +
      this.#event("response.function_call_arguments.done", {
        item_id: item.id,
        output_index: state.outputIndex,
        name: item.name,
        arguments: item.arguments,
      }) +
      this.#event("response.output_item.done", { output_index: state.outputIndex, item })
    );
  }

  #snapshot(
    status: ResponseStatus,
    incompleteReason: string | undefined,
    error?: { code: string; message: string },
  ): ResponseObject {
    // A deep copy: later deltas mutate the items, and a snapshot already handed out must not change.
    return structuredClone(
      buildResponse(this.#options.echo, {
        id: this.#responseId,
        createdAtSeconds: this.#options.createdAtSeconds,
        status,
        model: this.#model ?? this.#options.fallbackModel ?? "",
        output: status === "in_progress" ? [] : this.#output,
        usage: status === "in_progress" ? undefined : this.#usage,
        incompleteReason,
        error,
      }),
    );
  }

  #event(type: string, fields: Record<string, unknown>): string {
    return namedEvent(type, { type, sequence_number: this.#sequence++, ...fields });
  }
}
