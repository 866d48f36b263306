// Chat Completions stream chunks -> Anthropic Messages stream events, each with its `event:` line (the SDK skips
// unnamed ones): message_start, ping, then per block content_block_start -> content_block_delta* ->
// content_block_stop, then message_delta (stop_reason, usage) and message_stop; `event: error` when it fails.
//
// Blocks are sent one at a time, as Anthropic does: a new block (text after a tool call, the next tool call)
// stops the open one. A provider that interleaves the argument deltas of parallel calls still gets each delta to
// its own block index; the SDK accumulates by index.
import type { GatewayError } from "../../errors/gateway-error.ts";
import { type ChatUsage, readChatChunk, type ToolCallDelta } from "../chat-completions.ts";
import type { IdSource } from "../ids.ts";
import { namedEvent } from "../sse.ts";
import { StreamedToolCalls } from "../streamed-tool-calls.ts";
import {
  type ContentBlock,
  type MessageObject,
  parseToolInput,
  toMessageUsage,
  toStopReason,
} from "./message-object.ts";
import { anthropicErrorType } from "./render-error.ts";

export interface MessagesStreamOptions {
  readonly ids: IdSource;
  readonly stopSequences: readonly string[];
  /** The request enabled `thinking`: reasoning text is streamed as a `thinking` block (else it is dropped). */
  readonly isThinkingShown?: boolean;
  /** The model the gateway sent the request to; used until (and unless) a chunk names the upstream's model. */
  readonly fallbackModel?: string;
  /** Estimated prompt tokens for `message_start` (the real count comes with the last chunk). */
  readonly promptTokensEstimate?: number;
}

interface ToolBlock {
  /** Undefined until the call's name is known (some providers send the id first). */
  index: number | undefined;
  id: string | undefined;
  name: string | undefined;
  argumentsText: string;
  bufferedArguments: string;
}

export class MessagesStreamTranslator {
  readonly #options: MessagesStreamOptions;
  readonly #messageId: string;
  readonly #content: (ContentBlock | ToolBlock)[] = [];
  readonly #toolCalls = new StreamedToolCalls<ToolBlock>();
  /** The model named by the first chunk that names one (the upstream's own name for it). */
  #model: string | undefined;
  #isStarted = false;
  #isEnded = false;
  /** Index of the block that is open (started, not stopped), if any. */
  #openIndex: number | undefined;
  #openText: { type: "text"; text: string } | undefined;
  #openThinking: { type: "thinking"; thinking: string; signature: string } | undefined;
  #finishReason: string | undefined;
  #matchedStop: string | undefined;
  #usage: ChatUsage | undefined;
  #final: MessageObject | undefined;

  constructor(options: MessagesStreamOptions) {
    this.#options = options;
    this.#messageId = options.ids("msg_");
  }

  /** The whole message once `finish()` ran. */
  get result(): MessageObject | undefined {
    return this.#final;
  }

  /** Feeds one parsed Chat Completions chunk; returns the SSE text to write (possibly empty). */
  push(chunk: unknown): string {
    if (this.#isEnded) return "";
    const view = readChatChunk(chunk);
    if (this.#model === undefined && view.model !== undefined) this.#model = view.model;
    let text = this.#start();
    if (view.reasoning !== "" && this.#options.isThinkingShown === true) text += this.#appendThinking(view.reasoning);
    const delta = view.text !== "" ? view.text : view.refusal;
    if (delta !== "") text += this.#appendText(delta);
    for (const call of view.toolCalls) text += this.#appendToolCall(call);
    if (view.finishReason !== undefined) this.#finishReason = view.finishReason;
    if (view.matchedStop !== undefined) this.#matchedStop = view.matchedStop;
    if (view.usage !== undefined) this.#usage = view.usage;
    return text;
  }

  /** The upstream stream ended normally. */
  finish(): string {
    if (this.#isEnded) return "";
    let text = this.#start();
    for (const call of this.#toolCalls.all) if (call.index === undefined) text += this.#startToolBlock(call);
    text += this.#stopOpenBlock();
    this.#isEnded = true;
    const { stopReason, stopSequence } = toStopReason(
      this.#finishReason,
      this.#matchedStop,
      this.#options.stopSequences,
      this.#toolCalls.all.length > 0,
    );
    const usage = toMessageUsage(this.#usage, this.#options.promptTokensEstimate);
    this.#final = {
      ...this.#message(),
      content: this.#content.map((block) =>
        "type" in block
          ? { ...block }
          : {
              type: "tool_use",
              id: block.id ?? "",
              name: block.name ?? "",
              input: parseToolInput(block.argumentsText),
            },
      ),
      stop_reason: stopReason,
      stop_sequence: stopSequence,
      usage,
    };
    return (
      text +
      namedEvent("message_delta", {
        type: "message_delta",
        delta: { stop_reason: stopReason, stop_sequence: stopSequence },
        usage,
      }) +
      namedEvent("message_stop", { type: "message_stop" })
    );
  }

  /** The stream broke and could not be continued: Anthropic's in-band `event: error`. */
  fail(error: GatewayError): string {
    if (this.#isEnded) return "";
    this.#isEnded = true;
    return namedEvent("error", {
      type: "error",
      error: { type: anthropicErrorType(error.status), message: error.message },
    });
  }

  #message(): MessageObject {
    return {
      id: this.#messageId,
      type: "message",
      role: "assistant",
      model: this.#model ?? this.#options.fallbackModel ?? "",
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: toMessageUsage(undefined, this.#options.promptTokensEstimate),
    };
  }

  #start(): string {
    if (this.#isStarted) return "";
    this.#isStarted = true;
    return (
      namedEvent("message_start", { type: "message_start", message: this.#message() }) +
      namedEvent("ping", { type: "ping" })
    );
  }

  #appendText(delta: string): string {
    let text = "";
    if (this.#openText === undefined) {
      text += this.#stopOpenBlock();
      const block = { type: "text" as const, text: "" };
      const index = this.#content.push(block) - 1;
      this.#openText = block;
      this.#openIndex = index;
      text += namedEvent("content_block_start", {
        type: "content_block_start",
        index,
        content_block: { type: "text", text: "" },
      });
    }
    this.#openText.text += delta;
    return (
      text +
      namedEvent("content_block_delta", {
        type: "content_block_delta",
        index: this.#openIndex,
        delta: { type: "text_delta", text: delta },
      })
    );
  }

  #appendThinking(delta: string): string {
    let text = "";
    if (this.#openThinking === undefined) {
      text += this.#stopOpenBlock();
      const block = { type: "thinking" as const, thinking: "", signature: "" };
      const index = this.#content.push(block) - 1;
      this.#openThinking = block;
      this.#openIndex = index;
      text += namedEvent("content_block_start", {
        type: "content_block_start",
        index,
        content_block: { type: "thinking", thinking: "", signature: "" },
      });
    }
    this.#openThinking.thinking += delta;
    return (
      text +
      namedEvent("content_block_delta", {
        type: "content_block_delta",
        index: this.#openIndex,
        delta: { type: "thinking_delta", thinking: delta },
      })
    );
  }

  #appendToolCall(delta: ToolCallDelta): string {
    const call = this.#toolCalls.callFor(delta, () => ({
      index: undefined,
      id: undefined,
      name: undefined,
      argumentsText: "",
      bufferedArguments: "",
    }));
    if (call.index === undefined) {
      call.bufferedArguments += delta.arguments;
      return call.name === undefined ? "" : this.#startToolBlock(call);
    }
    return this.#appendArguments(call, delta.arguments);
  }

  #startToolBlock(call: ToolBlock): string {
    let text = this.#stopOpenBlock();
    call.id ??= this.#options.ids("toolu_");
    call.index = this.#content.push(call) - 1;
    this.#openIndex = call.index;
    text += namedEvent("content_block_start", {
      type: "content_block_start",
      index: call.index,
      content_block: { type: "tool_use", id: call.id, name: call.name ?? "", input: {} },
    });
    const buffered = call.bufferedArguments;
    call.bufferedArguments = "";
    return text + this.#appendArguments(call, buffered);
  }

  #appendArguments(call: ToolBlock, partialJson: string): string {
    if (partialJson === "") return "";
    call.argumentsText += partialJson;
    return namedEvent("content_block_delta", {
      type: "content_block_delta",
      index: call.index,
      delta: { type: "input_json_delta", partial_json: partialJson },
    });
  }

  #stopOpenBlock(): string {
    const index = this.#openIndex;
    if (index === undefined) return "";
    // Anthropic ends a thinking block with its signature; the gateway has none to give (an empty one).
    const signature =
      this.#openThinking === undefined
        ? ""
        : namedEvent("content_block_delta", {
            type: "content_block_delta",
            index,
            delta: { type: "signature_delta", signature: "" },
          });
    this.#openIndex = undefined;
    this.#openText = undefined;
    this.#openThinking = undefined;
    return signature + namedEvent("content_block_stop", { type: "content_block_stop", index });
  }
}
