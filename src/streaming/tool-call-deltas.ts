// Makes streamed tool-call deltas what OpenAI's stream contract promises and the SDKs' accumulators rely on: one
// `index` per call, and a call's first delta with `type: "function"` and `function.arguments` (a string, "" at
// first). Without `type` the `openai` SDK's stream helper throws ("tool call snapshot missing `type`"), without
// arguments its final completion does (a call of no arguments from a provider that sends none). Gemini's
// OpenAI-compatible endpoint sends each call whole in its own chunk without `tool_calls[].index`, and some providers
// number every call 0. Passed on as they came, the `openai` SDK's `chat.completions.stream()` lost indexless calls
// (its accumulator files them under `undefined`) and merged same-index ones into one call with both arguments run
// together, and the AI SDK's chat provider failed the stream on its schema. Which delta starts a new call is one rule
// shared with the Responses and Messages translators (protocols/streamed-tool-calls.ts, which streaming/ may not
// import): tool-call-boundary.ts.

import { isRecord } from "../is-record.ts";
import { StreamedJsonValue, startsNewCall } from "../tool-call-boundary.ts";

interface ChoiceCalls {
  /** One past the highest index the client has seen in this choice (a renumbered call's index). */
  count: number;
  /** The indexes the client has seen in this choice: an upstream index stays its own while it is not taken. */
  readonly taken: Set<number>;
  /** The upstream's index -> the index the client sees, and the id and name of the call each names now. */
  readonly byUpstreamIndex: Map<number, CallSeen>;
  /** The call the latest delta belonged to (an indexless delta continues it). */
  latest: CallSeen | undefined;
}

interface CallSeen {
  readonly index: number;
  id: string | undefined;
  name: string | undefined;
  /** Its arguments so far, scanned as they pass (a name repeated at its index starts a new call once whole). */
  readonly arguments: StreamedJsonValue;
}

function stringOf(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

export class ToolCallDeltas {
  readonly #choices = new Map<number, ChoiceCalls>();

  /**
   * Renumbers the chunk's tool-call deltas and completes first deltas in place where needed; returns whether it
   * changed anything (then the chunk must be serialized again). An OpenAI stream is left as it is.
   */
  normalize(json: Record<string, unknown>): boolean {
    const choices = json.choices;
    if (!Array.isArray(choices)) return false;
    let isChanged = false;
    for (const [position, choice] of choices.entries()) {
      if (!isRecord(choice) || !isRecord(choice.delta) || !Array.isArray(choice.delta.tool_calls)) continue;
      const choiceIndex = typeof choice.index === "number" ? choice.index : position;
      let calls = this.#choices.get(choiceIndex);
      if (calls === undefined) {
        calls = { count: 0, taken: new Set(), byUpstreamIndex: new Map(), latest: undefined };
        this.#choices.set(choiceIndex, calls);
      }
      for (const call of choice.delta.tool_calls) {
        if (isRecord(call) && normalizeCall(calls, call)) isChanged = true;
      }
    }
    return isChanged;
  }
}

/**
 * Finds (or opens) the call a delta belongs to, writes its index and completes a first delta; returns whether the
 * delta changed.
 */
function normalizeCall(calls: ChoiceCalls, call: Record<string, unknown>): boolean {
  const id = stringOf(call.id);
  const name = isRecord(call.function) ? stringOf(call.function.name) : undefined;
  const upstreamIndex = typeof call.index === "number" && Number.isInteger(call.index) ? call.index : undefined;
  let isChanged = stringifyArguments(call);
  let seen = upstreamIndex === undefined ? calls.latest : calls.byUpstreamIndex.get(upstreamIndex);
  if (seen === undefined || startsNewCall(seen, { index: upstreamIndex, id, name })) {
    // The upstream's own index while no call has it (an OpenAI stream keeps its numbers, also when parallel calls
    // start out of order), else one past the highest.
    const index =
      upstreamIndex !== undefined &&
      upstreamIndex >= 0 &&
      !calls.taken.has(upstreamIndex) &&
      !calls.byUpstreamIndex.has(upstreamIndex)
        ? upstreamIndex
        : calls.count;
    seen = { index, id, name, arguments: new StreamedJsonValue() };
    calls.taken.add(index);
    calls.count = Math.max(calls.count, index + 1);
    if (completeFirstDelta(call)) isChanged = true;
  } else {
    seen.id ??= id;
    seen.name ??= name;
  }
  if (isRecord(call.function) && typeof call.function.arguments === "string")
    seen.arguments.append(call.function.arguments);
  if (upstreamIndex !== undefined) calls.byUpstreamIndex.set(upstreamIndex, seen);
  calls.latest = seen;
  if (call.index === seen.index) return isChanged;
  call.index = seen.index;
  return true;
}

function completeFirstDelta(call: Record<string, unknown>): boolean {
  let isChanged = false;
  if (call.type === undefined || call.type === null) {
    call.type = "function";
    isChanged = true;
  }
  if (isRecord(call.function) && (call.function.arguments === undefined || call.function.arguments === null)) {
    call.function.arguments = "";
    isChanged = true;
  }
  return isChanged;
}

/** Arguments sent as the object itself (a few providers do) become the JSON string every client expects. */
function stringifyArguments(call: Record<string, unknown>): boolean {
  const fn = call.function;
  if (!isRecord(fn) || fn.arguments === null || typeof fn.arguments !== "object") return false;
  fn.arguments = JSON.stringify(fn.arguments);
  return true;
}
