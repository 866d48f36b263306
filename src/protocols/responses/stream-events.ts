// What the Responses stream translator's item writers share (stream-mapping.ts): the events' increasing
// `sequence_number`, the response's output items in output-index order, and the ids for new items.
import type { IdSource } from "../ids.ts";
import { namedEvent } from "../sse.ts";
import type { OutputItem } from "./response-object.ts";

export class ResponseEvents {
  readonly ids: IdSource;
  /** Every item opened so far; the writers mutate them as deltas come, a snapshot copies them. */
  readonly output: OutputItem[] = [];
  #sequence = 0;

  constructor(ids: IdSource) {
    this.ids = ids;
  }

  /** Adds an output item; returns its output index. */
  addItem(item: OutputItem): number {
    return this.output.push(item) - 1;
  }

  /** One event: its `event:` line and its data with the type and the next sequence number. */
  event(type: string, fields: Record<string, unknown>): string {
    return namedEvent(type, { type, sequence_number: this.#sequence++, ...fields });
  }
}
