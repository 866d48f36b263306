// The open message item of a Responses stream: text and refusal deltas go to its `output_text` and `refusal` parts,
// each opened at its first delta (content_part.added -> output_text.delta* (refusal.delta*) -> output_text.done
// (refusal.done) -> content_part.done), and output_item.done closes it. A tool call or reasoning closes it, and text
// after that opens a new one; the translator (stream-mapping.ts) decides when.
import type { TokenLogprob } from "../chat-completions.ts";
import type { OutputMessageItem, OutputTextPart, RefusalPart } from "./response-object.ts";
import type { ResponseEvents } from "./stream-events.ts";

interface OpenMessage {
  readonly item: OutputMessageItem;
  readonly outputIndex: number;
  /** The message's text and refusal parts, each opened when its first delta comes. */
  text: { readonly part: OutputTextPart; readonly contentIndex: number } | undefined;
  refusal: { readonly part: RefusalPart; readonly contentIndex: number } | undefined;
}

export class MessageItemWriter {
  readonly #events: ResponseEvents;
  #open: OpenMessage | undefined;

  constructor(events: ResponseEvents) {
    this.#events = events;
  }

  get isOpen(): boolean {
    return this.#open !== undefined;
  }

  /** `logprobs`: the delta's tokens' (chat sends them in the chunk that carries the text). */
  appendText(delta: string, logprobs: readonly TokenLogprob[]): string {
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
      this.#events.event("response.output_text.delta", {
        item_id: message.item.id,
        output_index: message.outputIndex,
        content_index: message.text.contentIndex,
        delta,
        logprobs,
      })
    );
  }

  /** A streamed refusal (`delta.refusal`) is a `refusal` part of the message item, as OpenAI streams it. */
  appendRefusal(delta: string): string {
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
      this.#events.event("response.refusal.delta", {
        item_id: message.item.id,
        output_index: message.outputIndex,
        content_index: message.refusal.contentIndex,
        delta,
      })
    );
  }

  /** Closes the open message, if any: its parts in content order, then the item, all with `status`. */
  close(status: "completed" | "incomplete"): string {
    const message = this.#open;
    if (message === undefined) return "";
    this.#open = undefined;
    const { item, outputIndex } = message;
    item.status = status;
    const events = this.#events;
    const at = (contentIndex: number) => ({ item_id: item.id, output_index: outputIndex, content_index: contentIndex });
    const parts: { contentIndex: number; text: string }[] = [];
    if (message.text !== undefined) {
      const { part, contentIndex } = message.text;
      parts.push({
        contentIndex,
        text:
          events.event("response.output_text.done", { ...at(contentIndex), text: part.text, logprobs: part.logprobs }) +
          events.event("response.content_part.done", { ...at(contentIndex), part }),
      });
    }
    if (message.refusal !== undefined) {
      const { part, contentIndex } = message.refusal;
      parts.push({
        contentIndex,
        text:
          events.event("response.refusal.done", { ...at(contentIndex), refusal: part.refusal }) +
          events.event("response.content_part.done", { ...at(contentIndex), part }),
      });
    }
    parts.sort((left, right) => left.contentIndex - right.contentIndex);
    return (
      parts.map((part) => part.text).join("") +
      events.event("response.output_item.done", { output_index: outputIndex, item })
    );
  }

  /** The open message item, or a new one (the translator closed any reasoning item before). */
  #openMessage(): { text: string; message: OpenMessage } {
    if (this.#open !== undefined) return { text: "", message: this.#open };
    const item: OutputMessageItem = {
      id: this.#events.ids("msg_"),
      type: "message",
      status: "in_progress",
      role: "assistant",
      content: [],
    };
    const outputIndex = this.#events.addItem(item);
    const message: OpenMessage = { item, outputIndex, text: undefined, refusal: undefined };
    this.#open = message;
    return { text: this.#events.event("response.output_item.added", { output_index: outputIndex, item }), message };
  }

  /** Adds a content part to the open message item; returns its content index. */
  #addPart(message: OpenMessage, part: OutputTextPart | RefusalPart): { text: string; contentIndex: number } {
    const contentIndex = message.item.content.push(part) - 1;
    const text = this.#events.event("response.content_part.added", {
      item_id: message.item.id,
      output_index: message.outputIndex,
      content_index: contentIndex,
      part,
    });
    return { text, contentIndex };
  }
}
