// Where one streamed tool call ends and the next begins, for the chat door's renumbering (streaming/) and the
// Responses and Messages translators (protocols/), which may not import each other: one rule, kept in one place.
//
// OpenAI gives each call its own `tool_calls[].index` and names the id and the function in its first delta only.
// Providers differ: Gemini sends each call whole with no index; some vLLM, TGI and llama.cpp builds number every
// parallel call 0 and send no ids; MiniMax on NVIDIA NIM repeats the function's name in every delta of one call
// (NousResearch/hermes-agent#8259). A name at an index that already holds a named call is therefore a new call only
// when the call there is over: its arguments so far are a whole JSON value.

/** What a delta says about the call it belongs to. */
export interface ToolCallDeltaHead {
  /** `tool_calls[].index`; undefined when the provider leaves it out. */
  readonly index: number | undefined;
  readonly id: string | undefined;
  readonly name: string | undefined;
}

/** The call the delta would continue: its id and name so far, and its arguments so far. */
export interface ToolCallSoFar {
  readonly id: string | undefined;
  readonly name: string | undefined;
  readonly arguments: StreamedJsonValue;
}

/** Whether `delta` starts a new call rather than continuing `current` (the call at its index, or the latest). */
export function startsNewCall(current: ToolCallSoFar, delta: ToolCallDeltaHead): boolean {
  // Ids, when both have one, decide alone: a provider repeating id and name in every delta sends one call.
  if (delta.id !== undefined && current.id !== undefined) return delta.id !== current.id;
  if (delta.name === undefined || current.name === undefined) return false;
  // Without an index a continuation carries arguments only (Gemini sends each call whole), so a name is a new call.
  if (delta.index === undefined) return true;
  // At an index already holding a named call: a repeated name continues the call while its arguments are still
  // open (or none came yet), and starts the next one once they are a whole value.
  return current.arguments.isComplete;
}

/**
 * `before`: nothing but whitespace so far; `inside`: in an object, array or top-level string; `complete`: a whole
 * object, array or string and nothing but whitespace after it; `other`: a bare number or literal, or more after a
 * whole value (never a whole value this can vouch for, so the call goes on).
 */
type ScanState = "before" | "inside" | "complete" | "other";

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

function isWhitespace(code: number): boolean {
  return code === 0x20 || code === 0x0a || code === 0x0d || code === 0x09;
}

/**
 * Whether a JSON text streamed in pieces is one whole value so far, by counting brackets outside strings as the
 * pieces come: no parse and no copy of the text (a call's arguments can run long and come in hundreds of deltas),
 * one pass over each piece. It does not validate: `{"a" 1}` counts as whole; that only decides where a call ends.
 */
export class StreamedJsonValue {
  #state: ScanState = "before";
  /** Open objects and arrays. */
  #depth = 0;
  #isInString = false;
  #isEscaped = false;

  get isComplete(): boolean {
    return this.#state === "complete";
  }

  /** Something other than whitespace came (a call sent `""` or only spaces has no arguments yet). */
  get hasContent(): boolean {
    return this.#state !== "before";
  }

  append(text: string): void {
    for (let position = 0; position < text.length; position++) {
      if (this.#state === "other") return;
      const code = text.charCodeAt(position);
      if (this.#isInString) {
        if (this.#isEscaped) this.#isEscaped = false;
        else if (code === BACKSLASH) this.#isEscaped = true;
        else if (code === QUOTE) {
          this.#isInString = false;
          if (this.#depth === 0) this.#state = "complete";
        }
      } else if (isWhitespace(code)) {
        // Whitespace changes nothing anywhere outside a string.
      } else if (this.#state === "complete") {
        this.#state = "other";
      } else if (code === QUOTE) {
        this.#isInString = true;
        this.#state = "inside";
      } else if (code === OPEN_BRACE || code === OPEN_BRACKET) {
        this.#depth++;
        this.#state = "inside";
      } else if (code === CLOSE_BRACE || code === CLOSE_BRACKET) {
        this.#depth--;
        if (this.#depth <= 0) this.#state = this.#depth === 0 ? "complete" : "other";
      } else if (this.#state === "before") {
        this.#state = "other";
      }
    }
  }
}
