// The open reasoning item of a Responses stream: reasoning text (`reasoning_content`) opens it with one summary part
// (reasoning_summary_part.added -> reasoning_summary_text.delta* -> .done -> summary_part.done -> output_item.done).
// Text or a tool call closes it; the translator (stream-mapping.ts) decides when.
import { gatewayEncryptedContent } from "./reasoning-text.ts";
import type { ReasoningItem, SummaryTextPart } from "./response-object.ts";
import type { ResponseEvents } from "./stream-events.ts";

interface OpenReasoning {
  readonly item: ReasoningItem;
  readonly part: SummaryTextPart;
  readonly outputIndex: number;
}

export class ReasoningItemWriter {
  readonly #events: ResponseEvents;
  /** The request included `reasoning.encrypted_content`: a closed reasoning item carries the gateway's. */
  readonly #includesEncrypted: boolean;
  #open: OpenReasoning | undefined;

  constructor(events: ResponseEvents, includesEncrypted: boolean) {
    this.#events = events;
    this.#includesEncrypted = includesEncrypted;
  }

  get isOpen(): boolean {
    return this.#open !== undefined;
  }

  /** Appends a reasoning delta, opening the item first if none is open. */
  append(delta: string): string {
    const events = this.#events;
    let text = "";
    if (this.#open === undefined) {
      const item: ReasoningItem = { id: events.ids("rs_"), type: "reasoning", status: "in_progress", summary: [] };
      const part: SummaryTextPart = { type: "summary_text", text: "" };
      const outputIndex = events.addItem(item);
      this.#open = { item, part, outputIndex };
      text += events.event("response.output_item.added", { output_index: outputIndex, item });
      item.summary.push(part);
      text += events.event("response.reasoning_summary_part.added", {
        item_id: item.id,
        output_index: outputIndex,
        summary_index: 0,
        part,
      });
    }
    const { item, part, outputIndex } = this.#open;
    part.text += delta;
    return (
      text +
      events.event("response.reasoning_summary_text.delta", {
        item_id: item.id,
        output_index: outputIndex,
        summary_index: 0,
        delta,
      })
    );
  }

  /** Closes the open item, if any, with `status`. */
  close(status: "completed" | "incomplete"): string {
    const reasoning = this.#open;
    if (reasoning === undefined) return "";
    this.#open = undefined;
    const { item, part, outputIndex } = reasoning;
    item.status = status;
    // Known once the text is whole, as OpenAI's is: it comes with output_item.done.
    if (this.#includesEncrypted) item.encrypted_content = gatewayEncryptedContent(part.text);
    const at = { item_id: item.id, output_index: outputIndex, summary_index: 0 };
    return (
      this.#events.event("response.reasoning_summary_text.done", { ...at, text: part.text }) +
      this.#events.event("response.reasoning_summary_part.done", { ...at, part }) +
      this.#events.event("response.output_item.done", { output_index: outputIndex, item })
    );
  }
}
