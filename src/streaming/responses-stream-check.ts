// A native Responses stream held to what its client and the kept answer need (upstream/attempt.ts inspects every
// event of one with `responsesEventInspector`): each event JSON with a `type`, `response.created` first, an output
// item's events after its `response.output_item.added`, each finished item and the final `output` as the next turn's
// input takes them (responses-items.ts, the rule a JSON answer is held to), and `response.completed` (or
// `response.incomplete`) before any `[DONE]`. Relayed and kept as it came, such a stream made every later turn of its
// conversation a 400, and the openai SDK's stream helper throws on events before `response.created` or on an item
// index it was never told of.
import { isRecord } from "../is-record.ts";
import { keptItemFault, outputFault } from "../responses-items.ts";
import type { SseEvent } from "./sse-parser.ts";
import { type EventInspector, inspectResponsesEvent, type StreamEventInfo } from "./stream-event.ts";

/** Events whose `response` is the Response object so far (or the final one). */
const SNAPSHOT_EVENTS: ReadonlySet<string> = new Set([
  "response.created",
  "response.in_progress",
  "response.queued",
  "response.completed",
  "response.incomplete",
]);

/**
 * One stream's inspector: inspectResponsesEvent, with `fault` set on the first event that breaks the stream's shape.
 * Stateful: every event of the stream must go through it once, in order (openStream, then the relay, do so).
 */
export function responsesEventInspector(): EventInspector {
  const check = new ResponsesStreamCheck();
  return (event: SseEvent): StreamEventInfo => {
    const info = inspectResponsesEvent(event);
    const fault = check.faultOf(info);
    return fault === undefined ? info : { ...info, isDone: false, isMalformed: true, fault };
  };
}

export class ResponsesStreamCheck {
  #isCreated = false;
  #isFinal = false;
  readonly #addedItems = new Set<number>();

  faultOf(info: StreamEventInfo): string | undefined {
    if (info.isDone) return this.#isFinal ? undefined : "the stream ended ([DONE]) before `response.completed`";
    const json = info.json;
    if (json === undefined) return "an event whose data is not a JSON object";
    const type = json.type;
    if (typeof type !== "string" || type === "") return "an event with no `type`";
    // Failures are read as the upstream's error (failover before the first byte, the in-stream error after). Such a
    // stream is over: a `[DONE]` after its `response.failed` (servers that end every stream so) is its end, not a
    // fault, which made the upstream's failure a `bad_response` of the gateway's words whenever both came buffered.
    if (info.isError) {
      this.#isFinal = true;
      return undefined;
    }
    if (type === "response.created") {
      if (this.#isCreated) return "a second `response.created`";
      this.#isCreated = true;
    } else if (!this.#isCreated) {
      return `\`${type.slice(0, 64)}\` before \`response.created\``;
    }
    if (SNAPSHOT_EVENTS.has(type) && !isRecord(json.response)) return `a \`${type}\` without a \`response\` object`;
    if (info.isFinal) {
      this.#isFinal = true;
      const fault = outputFault((json.response as Record<string, unknown>).output);
      return fault === undefined ? undefined : `\`${type}\` with ${fault}`;
    }
    return this.#itemFault(type, json);
  }

  #itemFault(type: string, json: Record<string, unknown>): string | undefined {
    const index = json.output_index;
    if (index === undefined) return undefined;
    if (typeof index !== "number") return `a \`${type.slice(0, 64)}\` whose \`output_index\` is not a number`;
    if (type === "response.output_item.added") {
      if (!isRecord(json.item) || typeof json.item.type !== "string") {
        return "a `response.output_item.added` whose `item` is not an item with a `type`";
      }
      this.#addedItems.add(index);
      return undefined;
    }
    if (!this.#addedItems.has(index)) {
      return `a \`${type.slice(0, 64)}\` for output ${index} before its \`response.output_item.added\``;
    }
    if (type !== "response.output_item.done") return undefined;
    const fault = keptItemFault(json.item);
    return fault === undefined ? undefined : `\`response.output_item.done\` with ${fault}`;
  }
}
