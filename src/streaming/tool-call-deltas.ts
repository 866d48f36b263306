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
// A call that got no argument text by its choice's finish (some providers send `""` or nothing for a function
// without parameters) gets `{}` in the finishing chunk, as OpenAI sends: `""` is no JSON, and the Agents SDK then
// told the model its arguments were invalid instead of running the tool. A call whose first delta has no `id` (NVIDIA's
// Kimi K2, GLM behind Mistral, StepFun and older llama.cpp stream so) gets one made here: the AI SDK's chat providers
// failed the stream ("Expected 'id' to be a string."), and a client sending the call back needs an id to answer.
// A continuation delta that names its call's function again (MiniMax on NVIDIA NIM) loses the name, and one that
// repeats its id or `type` loses those: the client has them from the call's first delta, and one that appends names
// or ids got them doubled. What that leaves empty (a `function: {}`, a delta of its index alone, `tool_calls: []`)
// is taken out, as is an empty `tool_calls` array the upstream sent.
// A freeform `custom` call (`{type: "custom", custom: {name, input}}`, of a custom tool the client offered) has no
// arguments to complete: given `function: {arguments: "{}"}`, the client's accumulator made it a call of both kinds.

import { randomBytes } from "node:crypto";
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
  /** Every call of the choice, in the order they began. */
  readonly all: CallSeen[];
}

interface CallSeen {
  readonly index: number;
  id: string | undefined;
  name: string | undefined;
  /** Its arguments so far, scanned as they pass: whether any came (else `{}` at its finish), and whether whole (a name
   * repeated at its index starts a new call once they are). */
  readonly arguments: StreamedJsonValue;
  /** The id made for it when its first delta had none (the client's id of the call from then on). */
  madeId: string | undefined;
  /** The upstream index its deltas came at (undefined while they came without one). */
  upstreamIndex: number | undefined;
  /** A freeform `custom` call: its text is `custom.input`, and it never gets function arguments. */
  readonly isCustom: boolean;
}

function stringOf(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

/** An id for a call the upstream gave none, in OpenAI's form. */
export function madeCallId(): string {
  return `call_${randomBytes(12).toString("hex")}`;
}

export class ToolCallDeltas {
  readonly #choices = new Map<number, ChoiceCalls>();
  readonly #newCallId: () => string;

  /** `newCallId`: the id given a call that came without one (injected, so tests are exact). */
  constructor(newCallId: () => string = madeCallId) {
    this.#newCallId = newCallId;
  }

  /**
   * Renumbers the chunk's tool-call deltas and completes first deltas in place where needed; returns whether it
   * changed anything (then the chunk must be serialized again). An OpenAI stream is left as it is.
   */
  normalize(json: Record<string, unknown>): boolean {
    const choices = json.choices;
    if (!Array.isArray(choices)) return false;
    let isChanged = false;
    // Index loops here: `entries()` made an iterator and a pair per choice, for every chunk of every stream.
    for (let position = 0; position < choices.length; position++) {
      const choice: unknown = choices[position];
      if (!isRecord(choice) || !isRecord(choice.delta) || !Array.isArray(choice.delta.tool_calls)) continue;
      if (choice.delta.tool_calls.length === 0) {
        // `"tool_calls": []`, which some upstreams put on every chunk: the `openai` SDK's stream helper then gives
        // a text answer `tool_calls: []`, and OpenAI refuses that assistant message when the client sends it back.
        delete choice.delta.tool_calls;
        isChanged = true;
        continue;
      }
      const choiceIndex = typeof choice.index === "number" ? choice.index : position;
      let calls = this.#choices.get(choiceIndex);
      if (calls === undefined) {
        calls = { count: 0, taken: new Set(), byUpstreamIndex: new Map(), latest: undefined, all: [] };
        this.#choices.set(choiceIndex, calls);
      }
      const deltas: unknown[] = [];
      for (const call of choice.delta.tool_calls) {
        if (!isRecord(call)) {
          deltas.push(call);
          continue;
        }
        const step = normalizeCall(calls, call, this.#newCallId);
        if (step.isChanged) isChanged = true;
        if (step.ended !== undefined) {
          // Before the next call's first delta, so a client that takes a new index for the end of the last call
          // (the `openai` SDK's stream helper) has the `{}` when it fires that call's done event.
          step.ended.arguments.append("{}");
          deltas.push({ index: step.ended.index, function: { arguments: "{}" } });
          isChanged = true;
        }
        deltas.push(call);
      }
      if (deltas.length !== choice.delta.tool_calls.length) choice.delta.tool_calls = deltas;
      if (dropEmptyDeltas(choice.delta)) isChanged = true;
    }
    return isChanged;
  }

  /**
   * In a chunk that finishes choices (other than by `length`, where a call may be cut, or `error`), gives each call
   * of theirs that came without arguments `{}`; returns whether the chunk changed.
   */
  completeArguments(json: Record<string, unknown>): boolean {
    const choices = json.choices;
    if (!Array.isArray(choices)) return false;
    let isChanged = false;
    for (let position = 0; position < choices.length; position++) {
      const choice: unknown = choices[position];
      if (!isRecord(choice) || typeof choice.finish_reason !== "string") continue;
      if (choice.finish_reason === "length" || choice.finish_reason === "error") continue;
      const choiceIndex = typeof choice.index === "number" ? choice.index : position;
      const missing =
        this.#choices.get(choiceIndex)?.all.filter((call) => !call.isCustom && !call.arguments.hasContent) ?? [];
      if (missing.length === 0) continue;
      if (!isRecord(choice.delta)) choice.delta = {};
      const delta = choice.delta as Record<string, unknown>;
      if (!Array.isArray(delta.tool_calls)) delta.tool_calls = [];
      const deltas = delta.tool_calls as unknown[];
      for (const call of missing) {
        call.arguments.append("{}");
        deltas.push({ index: call.index, function: { arguments: "{}" } });
      }
      isChanged = true;
    }
    return isChanged;
  }
}

interface CallStep {
  /** Whether the delta changed. */
  readonly isChanged: boolean;
  /**
   * A call this delta's new call certainly ended while it had no arguments yet (it gets `{}` now, not at the finish).
   */
  readonly ended: CallSeen | undefined;
}

/**
 * Finds (or opens) the call a delta belongs to, writes its index and completes a first delta; says whether the delta
 * changed and which argument-less call it ended.
 */
function normalizeCall(calls: ChoiceCalls, call: Record<string, unknown>, newCallId: () => string): CallStep {
  const id = stringOf(call.id);
  const name = isRecord(call.function) ? stringOf(call.function.name) : undefined;
  const upstreamIndex = typeof call.index === "number" && Number.isInteger(call.index) ? call.index : undefined;
  let isChanged = stringifyArguments(call);
  let seen = upstreamIndex === undefined ? calls.latest : calls.byUpstreamIndex.get(upstreamIndex);
  let ended: CallSeen | undefined;
  if (seen === undefined || startsNewCall(seen, { index: upstreamIndex, id, name })) {
    // The call this one replaces (at its upstream index, or the latest for an indexless one) can get no more
    // arguments: later deltas there are the new call's. One still without any ends with `{}` before the new call
    // starts, as OpenAI sends it, or the `openai` SDK's stream helper fires its done event with `""` (and throws in
    // JSON.parse for a strict tool). A call at another upstream index is not ended so: a provider may interleave
    // parallel calls' deltas (call 0 opens with `""`, call 1 opens, then call 0's arguments come), and `{}` sent
    // early would run into them. It gets its `{}` at the finish, as before. Nor is the latest call that an indexless
    // one follows while its own upstream index still leads to it: a later delta at that index continues it, and
    // `{}` sent now came before its arguments (`{}{"x":1}`).
    if (
      seen !== undefined &&
      !seen.isCustom &&
      !seen.arguments.hasContent &&
      !isStillAtItsIndex(calls, seen, upstreamIndex)
    ) {
      ended = seen;
    }
    // The upstream's own index while no call has it (an OpenAI stream keeps its numbers, also when parallel calls
    // start out of order), else one past the highest.
    const index =
      upstreamIndex !== undefined &&
      upstreamIndex >= 0 &&
      !calls.taken.has(upstreamIndex) &&
      !calls.byUpstreamIndex.has(upstreamIndex)
        ? upstreamIndex
        : calls.count;
    const isCustom = isCustomCall(call);
    seen = {
      index,
      id,
      name,
      arguments: new StreamedJsonValue(),
      madeId: undefined,
      upstreamIndex: undefined,
      isCustom,
    };
    calls.all.push(seen);
    calls.taken.add(index);
    calls.count = Math.max(calls.count, index + 1);
    if (id === undefined) {
      // `seen.id` stays the upstream's (none), so an id the upstream sends later still continues this call.
      seen.madeId = newCallId();
      call.id = seen.madeId;
      isChanged = true;
    }
    if (completeFirstDelta(call)) isChanged = true;
  } else {
    seen.id ??= id;
    // The id again in a continuation (providers repeating the whole head in every delta): the client has the call's
    // id from its first delta (the upstream's or the one made for it), and one appending ids as it appends
    // arguments got `call_xcall_x`. A late upstream id after a made one goes too: passed on, it differs from the
    // call's id, and the SDKs' accumulators (as the Responses and Messages translators did) may take it for a second
    // call. OpenAI sends a call's id and type in its first delta only.
    if (call.id !== undefined) {
      delete call.id;
      isChanged = true;
    }
    if (call.type === "function" || call.type === "custom") {
      delete call.type;
      isChanged = true;
    }
    if (name !== undefined && name === seen.name && isRecord(call.function)) {
      // The name again in a continuation (MiniMax on NVIDIA NIM sends it in every delta): clients that append a
      // call's name as they append its arguments (hermes-agent's accumulator, NousResearch/hermes-agent#8259)
      // would run `read_fileread_file`. OpenAI names a call in its first delta only; a different name is left.
      delete call.function.name;
      isChanged = true;
    }
    seen.name ??= name;
  }
  if (isRecord(call.function) && typeof call.function.arguments === "string") {
    seen.arguments.append(call.function.arguments);
  }
  if (upstreamIndex !== undefined) {
    calls.byUpstreamIndex.set(upstreamIndex, seen);
    seen.upstreamIndex = upstreamIndex;
  }
  calls.latest = seen;
  if (call.index !== seen.index) {
    call.index = seen.index;
    isChanged = true;
  }
  return { isChanged, ended };
}

/**
 * Whether `seen`, which a new call replaces, is still the call at its own upstream index after it: only when the new
 * call's delta came without an index (then it replaces the latest call, not the one at an index).
 */
function isStillAtItsIndex(calls: ChoiceCalls, seen: CallSeen, upstreamIndex: number | undefined): boolean {
  if (upstreamIndex !== undefined || seen.upstreamIndex === undefined) return false;
  return calls.byUpstreamIndex.get(seen.upstreamIndex) === seen;
}

/**
 * Takes out what the continuation rules above emptied: a `function: {}` (a name-only continuation after its name
 * went), a call delta left with its index alone, and the `tool_calls` array when no call delta is left. Clients
 * tolerate them unevenly (an empty array became the `openai` SDK's `tool_calls: []`, an index alone opened a
 * snapshot in accumulators keyed by index); OpenAI never sends them. Returns whether the delta changed.
 */
function dropEmptyDeltas(delta: Record<string, unknown>): boolean {
  const calls = delta.tool_calls as unknown[];
  let isChanged = false;
  const kept = calls.filter((call) => {
    if (!isRecord(call)) return true;
    if (isRecord(call.function) && Object.keys(call.function).length === 0) {
      delete call.function;
      isChanged = true;
    }
    for (const key in call) if (key !== "index") return true;
    isChanged = true;
    return false;
  });
  if (!isChanged) return false;
  if (kept.length === 0) delete delta.tool_calls;
  else delta.tool_calls = kept;
  return true;
}

/** Whether a call's first delta opens a freeform `custom` call (by its type, or by a `custom` part without one). */
function isCustomCall(call: Record<string, unknown>): boolean {
  if (call.type === "custom") return true;
  return (call.type === undefined || call.type === null) && isRecord(call.custom) && !isRecord(call.function);
}

function completeFirstDelta(call: Record<string, unknown>): boolean {
  let isChanged = false;
  if (call.type === undefined || call.type === null) {
    call.type = isCustomCall(call) ? "custom" : "function";
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
