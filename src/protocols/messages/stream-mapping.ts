// Chat Completions stream chunks -> Anthropic Messages stream events, each with its `event:` line (the SDK skips
// unnamed ones): message_start, ping, then per block content_block_start -> content_block_delta* ->
// content_block_stop, then message_delta (stop_reason, usage) and message_stop; `event: error` when it fails.
// A model's refusal (chat's `delta.refusal`) is streamed as text, in a text block of its own (see response-mapping.ts).
//
// Blocks are sent one at a time and whole, as Anthropic does: a block gets no delta after its content_block_stop,
// and clients (the SDK's MessageStream `contentBlock` event) take a tool_use block's input as final at its stop.
// Some providers (OpenAI among them) interleave the argument deltas of parallel calls: call 0 opens, call 1
// opens, then more arguments for call 0, then for call 1. So while a tool_use block is open, the other calls are
// held back (id, name, arguments) and each becomes its own block once the open one ends: when its arguments are
// a complete JSON object, when text or thinking follows, or at the end of the stream. Deltas for the open call
// go straight out, so calls sent one after another (the common case) stream without delay. Text or thinking that
// comes while the open call's arguments are still incomplete is held back instead (closing the block there would
// lose the rest of its arguments) and follows once they are complete, or at the end. For the same reason a held
// back call whose own arguments are still incomplete when the text's block opens does not get a block before it:
// it keeps waiting and follows the text.

import type { GatewayError } from "../../errors/gateway-error.ts";
import {
  type ChatUsage,
  chunkFailureError,
  estimatedUsageMark,
  readChatChunk,
  type ToolCallDelta,
} from "../chat-completions.ts";
import { namedEvent } from "../sse.ts";
import { StreamedToolCalls } from "../streamed-tool-calls.ts";
import {
  type ContentBlock,
  type MessageObject,
  parseToolInput,
  toMessageDeltaUsage,
  toMessageUsage,
  toStopReason,
} from "./message-object.ts";
import { anthropicErrorType } from "./render-error.ts";
import { StopSequenceMatcher, UPSTREAM_STOP_MAX } from "./stop-sequences.ts";
import type { MessagesStreamOptions } from "./stream-options.ts";
import { hasName, isCompleteObject, newToolBlock, type ToolBlock } from "./tool-blocks.ts";

export class MessagesStreamTranslator {
  readonly #options: MessagesStreamOptions;
  readonly #messageId: string;
  readonly #content: (ContentBlock | ToolBlock)[] = [];
  readonly #toolCalls = new StreamedToolCalls<ToolBlock>();
  /** Calls with no block yet (unnamed, or held back while another tool block is open), in the order they began. */
  readonly #waitingCalls: ToolBlock[] = [];
  /** The model named by the first chunk that names one (the upstream's own name for it). */
  #model: string | undefined;
  #isStarted = false;
  #isEnded = false;
  /** Index of the block that is open (started, not stopped), if any. */
  #openIndex: number | undefined;
  #openText: { type: "text"; text: string; citations: null } | undefined;
  /** The open text block holds a refusal: other text gets a block of its own, and the other way round. */
  #isRefusalOpen = false;
  #openThinking: { type: "thinking"; thinking: string; signature: string } | undefined;
  #openCall: ToolBlock | undefined;
  /** Text and thinking held back while the open call's arguments are incomplete (`#isArgumentsOpen`). */
  #heldText = "";
  #heldRefusal = "";
  #heldThinking = "";
  #finishReason: string | undefined;
  #matchedStop: string | undefined;
  #usage: ChatUsage | undefined;
  #final: MessageObject | undefined;
  /** Stop sequences beyond those sent upstream, matched here: after a match the answer has ended for the client. */
  readonly #stops: StopSequenceMatcher | undefined;

  constructor(options: MessagesStreamOptions) {
    this.#options = options;
    this.#messageId = options.ids("msg_");
    const hasUnsentStops = options.stopSequences.length > UPSTREAM_STOP_MAX;
    this.#stops = hasUnsentStops ? new StopSequenceMatcher(options.stopSequences) : undefined;
  }

  /** A stop sequence matched here ended the answer: what the upstream sends (or fails with) after it is dropped. */
  get hasEndedAnswer(): boolean {
    return this.#stops?.matched !== undefined;
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
    // `max_tokens: 0`: no content; the usage and a failure are still told. Past a stop sequence, none either.
    if (this.#options.isOutputDropped !== true && this.#stops?.matched === undefined) {
      if (view.reasoning !== "" && this.#options.isThinkingShown === true) text += this.#appendThinking(view.reasoning);
      const visible = this.#stops === undefined ? view.text : this.#stops.push(view.text);
      if (visible !== "") text += this.#appendText(visible, false);
      // A call or a refusal ends the text before it: what was held back for a sequence goes first, in its block.
      const held = view.toolCalls.length > 0 || view.refusal !== "" ? (this.#stops?.flush() ?? "") : "";
      if (held !== "") text += this.#appendText(held, false);
      if (view.refusal !== "") text += this.#appendText(view.refusal, true);
      const toolNames = this.#options.toolNames;
      for (const call of view.toolCalls) {
        text += this.#appendToolCall(
          call.name === undefined || toolNames === undefined ? call : { ...call, name: toolNames.client(call.name) },
        );
      }
    }
    if (view.finishReason !== undefined) this.#finishReason = view.finishReason;
    if (view.matchedStop !== undefined) this.#matchedStop = view.matchedStop;
    if (view.usage !== undefined) this.#usage = view.usage;
    // What came with the error is delivered first; ending as a normal turn would pass half an answer for a whole one.
    if (view.failure !== undefined) text += this.fail(chunkFailureError(view.failure, view.failureStatus));
    return text;
  }

  /** The upstream stream ended normally. */
  finish(): string {
    if (this.#isEnded) return "";
    // Ended first: the held text is released with every waiting call ready for its block (`#isReadyBeforeText`).
    this.#isEnded = true;
    this.#heldText += this.#stops?.flush() ?? "";
    // A call still unnamed at the end gets a block with an empty name rather than being lost.
    const text = this.#start() + this.#releaseHeld() + this.#stopBlocks(() => true);
    // `max_tokens: 0` ends at its limit, however the one token the provider generated ended.
    const stopped = this.#stops?.matched;
    const { stopReason, stopSequence, stopDetails } = toStopReason(
      this.#options.isOutputDropped === true ? "length" : stopped !== undefined ? "stop" : this.#finishReason,
      stopped ?? this.#matchedStop,
      this.#options.stopSequences,
      this.#toolCalls.all.length > 0 && stopped === undefined,
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
              caller: { type: "direct" },
            },
      ),
      stop_reason: stopReason,
      stop_sequence: stopSequence,
      stop_details: stopDetails,
      usage,
      ...estimatedUsageMark(this.#usage),
    };
    return (
      text +
      namedEvent("message_delta", {
        type: "message_delta",
        // The SDK's MessageStream copies `stop_details` from here onto the message, so it is always sent.
        delta: { stop_reason: stopReason, stop_sequence: stopSequence, stop_details: stopDetails, container: null },
        usage: toMessageDeltaUsage(this.#usage, this.#options.promptTokensEstimate),
        ...estimatedUsageMark(this.#usage),
      }) +
      namedEvent("message_stop", { type: "message_stop" })
    );
  }

  /** The stream broke and could not be continued: Anthropic's in-band `event: error`. */
  fail(error: GatewayError): string {
    if (this.#isEnded) return "";
    // Past a stop sequence matched here the answer had ended for the client: what failed is text it was never to see.
    if (this.#stops?.matched !== undefined) return this.finish();
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
      stop_details: null,
      container: null,
      diagnostics: null,
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

  /** Whether a tool block is open whose arguments are not yet a whole object: its block must not stop yet. */
  #isArgumentsOpen(): boolean {
    // The call's scanner knows (json-object-prefix.ts): parsing its arguments at every delta cost a 300 KB call
    // in 4-character pieces minutes of the event loop.
    return this.#openCall !== undefined && !this.#openCall.sendable.isClosed;
  }

  #appendText(delta: string, isRefusal: boolean): string {
    if (this.#isArgumentsOpen()) {
      if (isRefusal) this.#heldRefusal += delta;
      else this.#heldText += delta;
      return "";
    }
    return this.#releaseHeld() + this.#writeText(delta, isRefusal);
  }

  #appendThinking(delta: string): string {
    if (this.#isArgumentsOpen()) {
      this.#heldThinking += delta;
      return "";
    }
    return this.#releaseHeld() + this.#writeThinking(delta);
  }

  /** Writes what was held back (thinking first, as it precedes text in an answer; a refusal last). */
  #releaseHeld(): string {
    let text = "";
    if (this.#heldThinking !== "") {
      const thinking = this.#heldThinking;
      this.#heldThinking = "";
      text += this.#writeThinking(thinking);
    }
    if (this.#heldText !== "") {
      const held = this.#heldText;
      this.#heldText = "";
      text += this.#writeText(held, false);
    }
    if (this.#heldRefusal !== "") {
      const held = this.#heldRefusal;
      this.#heldRefusal = "";
      text += this.#writeText(held, true);
    }
    return text;
  }

  #writeText(delta: string, isRefusal: boolean): string {
    let text = "";
    if (this.#openText === undefined || this.#isRefusalOpen !== isRefusal) {
      text += this.#stopBlocks(this.#isReadyBeforeText);
      const block = { type: "text" as const, text: "", citations: null };
      const index = this.#content.push(block) - 1;
      this.#openText = block;
      this.#isRefusalOpen = isRefusal;
      this.#openIndex = index;
      text += namedEvent("content_block_start", {
        type: "content_block_start",
        index,
        content_block: { type: "text", text: "", citations: null },
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

  #writeThinking(delta: string): string {
    let text = "";
    if (this.#openThinking === undefined) {
      text += this.#stopBlocks(this.#isReadyBeforeText);
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
    if (this.#options.isThinkingOmitted === true) return text;
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
    const call = this.#toolCalls.callFor(delta, newToolBlock);
    let text = "";
    if (call === this.#openCall) {
      text += this.#appendArguments(call, delta.arguments);
    } else if (call.index === undefined) {
      if (!this.#waitingCalls.includes(call)) this.#waitingCalls.push(call);
      call.bufferedArguments += delta.arguments;
    } else {
      // Its block has stopped: only after its arguments were a whole object (so this can only be whitespace), or
      // at text or thinking that came when they were (or a call that never completes them, at the end). A delta
      // now would break the contract; the client has its input.
      return "";
    }
    if (!this.#isArgumentsOpen()) text += this.#releaseHeld();
    return text + this.#startWaitingCalls();
  }

  /**
   * Starts the calls that wait for a block while the way is clear: no tool block is open, or the open call's
   * arguments are complete. Otherwise they keep waiting, for the open call to complete, for text, or for the end.
   */
  #startWaitingCalls(): string {
    let text = "";
    for (;;) {
      const next = this.#waitingCalls.find(hasName);
      if (next === undefined) return text;
      if (this.#openCall !== undefined && !this.#openCall.sendable.isClosed) return text;
      text += this.#startToolBlock(next);
    }
  }

  /**
   * Whether a waiting call gets its block before the text or thinking block that opens now. Its block stops right
   * away and a stopped block takes no more deltas, so mid-stream only a call whose arguments are already a whole
   * object does (stopped any earlier, the rest of its arguments would be lost); the others keep waiting and start
   * after the text. Once the stream has ended nothing more can come: every named call does.
   */
  readonly #isReadyBeforeText = (call: ToolBlock): boolean =>
    hasName(call) && (this.#isEnded || isCompleteObject(call.bufferedArguments));

  /** Stops the open block after giving each waiting call that `isReady` its own whole block. */
  #stopBlocks(isReady: (call: ToolBlock) => boolean): string {
    let text = "";
    for (const call of this.#waitingCalls.filter(isReady)) text += this.#startToolBlock(call);
    return text + this.#stopOpenBlock();
  }

  #startToolBlock(call: ToolBlock): string {
    let text = this.#stopOpenBlock();
    this.#waitingCalls.splice(this.#waitingCalls.indexOf(call), 1);
    call.id ??= this.#options.ids("toolu_");
    call.index = this.#content.push(call) - 1;
    this.#openIndex = call.index;
    this.#openCall = call;
    text += namedEvent("content_block_start", {
      type: "content_block_start",
      index: call.index,
      content_block: { type: "tool_use", id: call.id, name: call.name ?? "", input: {}, caller: { type: "direct" } },
    });
    const buffered = call.bufferedArguments;
    call.bufferedArguments = "";
    return text + this.#appendArguments(call, buffered);
  }

  #appendArguments(call: ToolBlock, received: string): string {
    // The SDK's MessageStream parses the pieces as they come and throws at any that breaks the object.
    const partialJson = call.sendable.accept(received);
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
    this.#openCall = undefined;
    return signature + namedEvent("content_block_stop", { type: "content_block_stop", index });
  }
}
