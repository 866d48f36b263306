// Which call a streamed tool-call delta belongs to, for the stream translators. OpenAI numbers calls with
// `tool_calls[].index` and names the id only in a call's first delta, so the index alone would do; but Gemini's
// OpenAI-compatible endpoint sends each call whole in its own chunk with no index at all, and some providers
// number every call 0 (with ids, or without). The rule that tells them apart is shared with the chat door's
// renumbering (streaming/tool-call-deltas.ts): tool-call-boundary.ts.
import { StreamedJsonValue, startsNewCall } from "../tool-call-boundary.ts";
import type { ToolCallDelta } from "./chat-completions.ts";

export interface StreamedCall {
  id: string | undefined;
  name: string | undefined;
}

/** The calls of one streamed answer, in the order they started. */
export class StreamedToolCalls<Call extends StreamedCall> {
  readonly #calls: Call[] = [];
  readonly #byIndex = new Map<number, Call>();
  /** Each call's arguments so far, scanned as they come: a name repeated at its index is a new call once whole. */
  readonly #arguments = new Map<Call, StreamedJsonValue>();
  #latest: Call | undefined;

  /** Every call so far, in the order they started. */
  get all(): readonly Call[] {
    return this.#calls;
  }

  /**
   * The call `delta` continues, or a new one from `create` when it starts one; its id and name are filled in from
   * the delta when still unknown (some providers send the id first, the name in a later delta).
   */
  callFor(delta: ToolCallDelta, create: () => Call): Call {
    let call = delta.index === undefined ? this.#latest : this.#byIndex.get(delta.index);
    let scanned = call === undefined ? undefined : this.#arguments.get(call);
    if (
      call === undefined ||
      scanned === undefined ||
      startsNewCall({ id: call.id, name: call.name, arguments: scanned }, delta)
    ) {
      call = create();
      scanned = new StreamedJsonValue();
      this.#calls.push(call);
      this.#arguments.set(call, scanned);
      this.#latest = call;
    }
    scanned.append(delta.arguments);
    if (delta.index !== undefined) this.#byIndex.set(delta.index, call);
    call.id ??= delta.id;
    call.name ??= delta.name;
    return call;
  }
}
