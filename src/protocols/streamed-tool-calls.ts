// Which call a streamed tool-call delta belongs to, for the stream translators. OpenAI numbers calls with
// `tool_calls[].index` and names the id only in a call's first delta, so the index alone would do; but Gemini's
// OpenAI-compatible endpoint sends each call whole in its own chunk with no index at all, and some providers
// reuse index 0 for every call. An id that differs from the call's own is therefore always a new call.
import type { ToolCallDelta } from "./chat-completions.ts";

export interface StreamedCall {
  id: string | undefined;
  name: string | undefined;
}

function startsNewCall(current: StreamedCall, delta: ToolCallDelta): boolean {
  if (delta.id !== undefined && current.id !== undefined) return delta.id !== current.id;
  // Without ids to compare, an indexless delta that names a function while the latest call already has a name
  // can only be the next call (a continuation carries arguments only).
  return delta.index === undefined && delta.name !== undefined && current.name !== undefined;
}

/** The calls of one streamed answer, in the order they started. */
export class StreamedToolCalls<Call extends StreamedCall> {
  readonly #calls: Call[] = [];
  readonly #byIndex = new Map<number, Call>();
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
    if (call === undefined || startsNewCall(call, delta)) {
      call = create();
      this.#calls.push(call);
      this.#latest = call;
    }
    if (delta.index !== undefined) this.#byIndex.set(delta.index, call);
    call.id ??= delta.id;
    call.name ??= delta.name;
    return call;
  }
}
