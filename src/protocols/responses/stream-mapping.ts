// Chat Completions stream chunks -> Responses API stream events, with `event:` lines and an increasing
// `sequence_number`, in the order the SDKs' accumulators expect: created, in_progress, then per output item
// added -> (content_part.added -> output_text.delta* (or refusal.delta*) -> output_text.done (refusal.done) ->
// content_part.done |
// function_call_arguments.delta* -> .done | custom_tool_call_input.delta -> .done) -> output_item.done, and last
// completed / incomplete / failed.
//
// Items close one another in the order the SDKs' accumulators check, and this translator says when: reasoning text
// opens a reasoning item (stream-reasoning-item.ts), which text or a tool call closes; text opens a message item
// (stream-message-item.ts), which reasoning or a tool call closes (text after a tool call opens a new message item);
// tool call items (stream-tool-call-items.ts) stay open until the end. At most one reasoning or message item is
// open at a time.
import type { GatewayError } from "../../errors/gateway-error.ts";
import { type ChatUsage, chunkFailureError, readChatChunk, type TokenLogprob } from "../chat-completions.ts";
import type { IdSource } from "../ids.ts";
import {
  buildResponse,
  errorEventOf,
  finishToStatus,
  type ResponseEcho,
  type ResponseObject,
  type ResponseStatus,
  responseErrorOf,
} from "./response-object.ts";
import { ResponseEvents } from "./stream-events.ts";
import { MessageItemWriter } from "./stream-message-item.ts";
import { ReasoningItemWriter } from "./stream-reasoning-item.ts";
import { ToolCallItemsWriter } from "./stream-tool-call-items.ts";
import { ToolNames } from "./tool-names.ts";

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

export class ResponsesStreamTranslator {
  readonly hasEndedAnswer = false; // No stop sequences of the gateway's: the answer ends when the upstream's does.
  readonly #options: ResponsesStreamOptions;
  readonly #responseId: string;
  readonly #events: ResponseEvents;
  readonly #reasoning: ReasoningItemWriter;
  readonly #message: MessageItemWriter;
  readonly #toolCalls: ToolCallItemsWriter;
  /** The model named by the first chunk that names one (the upstream's own name for it). */
  #model: string | undefined;
  #isStarted = false;
  #isEnded = false;
  #finishReason: string | undefined;
  #usage: ChatUsage | undefined;
  #final: ResponseObject | undefined;

  constructor(options: ResponsesStreamOptions) {
    this.#options = options;
    this.#responseId = options.ids("resp_");
    this.#events = new ResponseEvents(options.ids);
    this.#reasoning = new ReasoningItemWriter(this.#events, options.includesEncryptedReasoning === true);
    this.#message = new MessageItemWriter(this.#events);
    this.#toolCalls = new ToolCallItemsWriter(
      this.#events,
      ToolNames.of(options.echo.tools),
      () => this.#reasoning.close("completed") + this.#message.close("completed"),
    );
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
    for (const delta of view.toolCalls) text += this.#toolCalls.append(delta);
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
    text += this.#toolCalls.openUnnamed();
    const { status, incompleteReason } = finishToStatus(this.#finishReason);
    text += this.#closeAll(status === "incomplete" ? "incomplete" : "completed");
    this.#isEnded = true;
    const response = this.#snapshot(status, incompleteReason);
    this.#final = response;
    return (
      text +
      this.#events.event(status === "incomplete" ? "response.incomplete" : "response.completed", {
        response,
      })
    );
  }

  /** The stream broke and could not be continued: the in-band `error` event, then `response.failed`. */
  fail(error: GatewayError): string {
    if (this.#isEnded) return "";
    let text = this.#start();
    this.#isEnded = true;
    this.#toolCalls.showPartialInputs();
    text += this.#events.event("error", errorEventOf(error));
    const response = this.#snapshot("failed", undefined, responseErrorOf(error));
    this.#final = response;
    return text + this.#events.event("response.failed", { response });
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
    text += this.#closeAll("incomplete");
    this.#isEnded = true;
    const response = this.#snapshot("cancelled", undefined);
    this.#final = response;
    return text + this.#events.event("response.incomplete", { response });
  }

  #start(): string {
    if (this.#isStarted) return "";
    this.#isStarted = true;
    const response = this.#snapshot("in_progress", undefined);
    return (
      this.#events.event("response.created", { response }) + this.#events.event("response.in_progress", { response })
    );
  }

  /** Reasoning opens its item after closing the message (a no-op while reasoning is open: only one is). */
  #appendReasoning(delta: string): string {
    const closed = this.#reasoning.isOpen ? "" : this.#message.close("completed");
    return closed + this.#reasoning.append(delta);
  }

  #appendText(delta: string, logprobs: readonly TokenLogprob[]): string {
    const closed = this.#message.isOpen ? "" : this.#reasoning.close("completed");
    return closed + this.#message.appendText(delta, logprobs);
  }

  #appendRefusal(delta: string): string {
    const closed = this.#message.isOpen ? "" : this.#reasoning.close("completed");
    return closed + this.#message.appendRefusal(delta);
  }

  #closeAll(status: "completed" | "incomplete"): string {
    return this.#reasoning.close(status) + this.#message.close(status) + this.#toolCalls.closeAll(status);
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
        output: status === "in_progress" ? [] : this.#events.output,
        usage: status === "in_progress" ? undefined : this.#usage,
        incompleteReason,
        error,
      }),
    );
  }
}
