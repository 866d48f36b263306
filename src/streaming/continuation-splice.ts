// Splicing a continuation into the client's stream so that the client sees one answer: its chunks take the
// first stream's id, the first one carries the `x_gateway.continuation` marker, and in "replay" mode the fresh
// answer's repetition of what was already delivered is matched and dropped (docs/streaming.md, "Continuation").
import { firstChunkChoice } from "../chat-choice.ts";
import type { SseEvent } from "./sse-parser.ts";
import type { StreamEventInfo } from "./stream-event.ts";

export type ReplayStep =
  /** The event adds nothing new yet (all of its text repeats delivered text): skip it. */
  | { readonly kind: "skip" }
  /** The event goes on, with `text` as its first-choice text. */
  | { readonly kind: "pass"; readonly text: string }
  | { readonly kind: "diverged"; readonly reason: string };

/** Matches a fresh answer against the text already delivered, event by event. */
export class ReplayMatcher {
  readonly #repeatsText: string;
  /** Characters of the delivered text the fresh answer has matched so far. */
  #replayed = 0;

  constructor(repeatsText: string) {
    this.#repeatsText = repeatsText;
  }

  get isDone(): boolean {
    return this.#replayed >= this.#repeatsText.length;
  }

  /** The delivered text the fresh answer has repeated so far: generated (and billed), then dropped. */
  get droppedText(): string {
    return this.#repeatsText.slice(0, this.#replayed);
  }

  step(info: StreamEventInfo): ReplayStep {
    const text = info.text;
    const overlap = Math.min(text.length, this.#repeatsText.length - this.#replayed);
    if (text.slice(0, overlap) !== this.#repeatsText.slice(this.#replayed, this.#replayed + overlap)) {
      return { kind: "diverged", reason: "the fresh answer does not start with the text already delivered" };
    }
    const rest = text.slice(overlap);
    // Output other than text (a tool call, a refusal, the finish) is new to the client, so it is passed on, even
    // in the chunk whose text only repeats (providers send text and a whole tool call in one chunk) — but only
    // once the delivered text has been repeated whole: before that, the fresh answer went another way.
    const hasOtherOutput = info.hasToolCall || info.hasRefusal || info.finishReason !== undefined;
    if (hasOtherOutput && this.#replayed + overlap < this.#repeatsText.length) {
      // Not counted as matched: the diverging event's whole text is the segment's `unrelayedText` (relay-segment.ts),
      // so counting its repeating part here too billed it twice in a segment's estimate.
      return {
        kind: "diverged",
        reason: "the fresh answer ended or turned to a tool call before repeating what was already delivered",
      };
    }
    this.#replayed += overlap;
    // Reasoning alone is skipped here: the client has the first stream's (relay-segment.ts).
    if (rest === "" && !hasOtherOutput) return { kind: "skip" };
    return { kind: "pass", text: rest };
  }
}

/** What a prefill continuation's event means while it may still be starting the answer again (PrefillEchoGuard). */
export type EchoStep =
  /** Its text so far repeats the start of the delivered text: hold it until that is settled. */
  | { readonly kind: "hold" }
  /** It is the continuation it was asked for: the held events, then this one, go on as they are. */
  | { readonly kind: "continuing" }
  /** It started the answer again and has now repeated all of it: the held events are dropped, `text` goes on. */
  | { readonly kind: "restarted"; readonly text: string }
  /** Settled before (or nothing to judge: no text, no other output): the event goes on as it is. */
  | { readonly kind: "pass" };

/**
 * Some providers take a trailing assistant message with a 200 but do not extend it: they answer the conversation
 * afresh (OpenAI's own models among them), so their "continuation" starts with the text the client already has.
 * Spliced on as it came, the client got that text twice. While the continuation's text is a prefix of the delivered
 * text its events are held; once it differs, it is a real continuation and they go on; once it has repeated all of
 * the delivered text, it is a fresh answer, and is handled as a replay (the repeated part dropped).
 */
export class PrefillEchoGuard {
  readonly #matcher: ReplayMatcher;
  #isSettled: boolean;
  /** It turned out a real continuation: what it held went on to the client. */
  #isContinuing = false;
  readonly #held: SseEvent[] = [];

  constructor(deliveredText: string) {
    this.#matcher = new ReplayMatcher(deliveredText);
    this.#isSettled = deliveredText === "";
  }

  step(event: SseEvent, info: StreamEventInfo): EchoStep {
    if (this.#isSettled) return { kind: "pass" };
    const hasOtherOutput = info.hasToolCall || info.hasRefusal || info.finishReason !== undefined;
    if (info.text === "" && !hasOtherOutput) return this.#held.length === 0 ? { kind: "pass" } : this.#hold(event);
    const step = this.#matcher.step(info);
    if (step.kind === "diverged") {
      this.#isSettled = true;
      this.#isContinuing = true;
      return { kind: "continuing" };
    }
    if (!this.#matcher.isDone) return this.#hold(event);
    this.#isSettled = true;
    this.#held.length = 0;
    return { kind: "restarted", text: step.kind === "pass" ? step.text : "" };
  }

  /**
   * What it generated that the client does not get: the delivered text it repeated when it started over, or what it
   * held when it ended still undecided (a cut while it repeated). Its provider billed it as output all the same.
   */
  get droppedText(): string {
    return this.#isContinuing ? "" : this.#matcher.droppedText;
  }

  /** The events held while it was undecided, in order, handed back once (when it is a real continuation). */
  takeHeld(): SseEvent[] {
    return this.#held.splice(0);
  }

  #hold(event: SseEvent): EchoStep {
    this.#held.push(event);
    return { kind: "hold" };
  }
}

export function setFirstChoiceText(json: Record<string, unknown>, text: string): void {
  const choice = firstChunkChoice(json.choices);
  if (choice === undefined) return;
  const delta = choice.delta as Record<string, unknown> | undefined;
  if (delta !== undefined) delta.content = text;
  else if (typeof choice.text === "string") choice.text = text;
}

/** n > 1 cannot be continued soundly (nor can a tool call: a prefill cannot resume a half-written call). */
export function hasManyChoices(json: Record<string, unknown> | undefined): boolean {
  const choices = json?.choices;
  if (!Array.isArray(choices)) return false;
  for (const choice of choices as { index?: unknown }[]) {
    if (choice !== null && typeof choice === "object" && typeof choice.index === "number" && choice.index > 0) {
      return true;
    }
  }
  return false;
}

/** Choice indexes the client has seen, and those that got a finish_reason: the answer is complete when all did. */
export class ChoiceTracker {
  readonly #seen = new Set<number>();
  readonly #finished = new Set<number>();
  /** The chat choices (they stream `delta`s) that made a tool call: for `closingChunk()`. */
  readonly #toolCalling = new Set<number>();
  /** The latest chat chunk (undefined: not a chat stream): the closing chunk takes its id, created and model. */
  #lastChat: Record<string, unknown> | undefined;

  note(json: Record<string, unknown>): void {
    const choices = json.choices;
    if (!Array.isArray(choices)) return;
    for (const choice of choices as { index?: unknown; finish_reason?: unknown; delta?: unknown }[]) {
      if (choice === null || typeof choice !== "object") continue;
      const index = typeof choice.index === "number" ? choice.index : 0;
      this.#seen.add(index);
      if (typeof choice.finish_reason === "string") this.#finished.add(index);
      const delta = choice.delta as { tool_calls?: unknown } | undefined;
      if (delta === null || typeof delta !== "object") continue;
      this.#lastChat = json;
      if (Array.isArray(delta.tool_calls) && delta.tool_calls.length > 0) this.#toolCalling.add(index);
    }
  }

  get isAnswerFinished(): boolean {
    return this.#seen.size > 0 && this.#finished.size === this.#seen.size;
  }

  /**
   * The chunk that finishes the chat choices an upstream left without a finish_reason although it ended the
   * stream with `[DONE]`: `"tool_calls"` for a choice that made one, else `"stop"`. OpenAI always sends one; the
   * `openai` SDK's `finalChatCompletion()` throws without it and the AI SDK reports `other`. Undefined when every
   * choice has its finish (or the stream has no chat choices).
   */
  closingChunk(streamId: string | undefined): Record<string, unknown> | undefined {
    const last = this.#lastChat;
    if (last === undefined || this.isAnswerFinished) return undefined;
    const choices: Record<string, unknown>[] = [];
    for (const index of [...this.#seen].sort((a, b) => a - b)) {
      if (this.#finished.has(index)) continue;
      const reason = this.#toolCalling.has(index) ? "tool_calls" : "stop";
      choices.push({ index, delta: {}, logprobs: null, finish_reason: reason });
    }
    if (choices.length === 0) return undefined;
    return {
      id: streamId ?? last.id,
      object: "chat.completion.chunk",
      created: last.created,
      model: last.model,
      choices,
    };
  }
}

/**
 * A continuation's event that adds nothing to an answer already under way: role-only and empty chunks, and its
 * reasoning before its first output. The client already has the first stream's reasoning (a fresh answer's would
 * repeat it, or open a second one after the delivered text); reasoning later in the continuation goes on.
 */
export function isNothingNew(info: StreamEventInfo, hasAdded: boolean): boolean {
  if (info.usage !== undefined) return false;
  if (!info.hasContent) return true;
  return (
    !hasAdded &&
    info.hasReasoning &&
    info.text === "" &&
    !info.hasToolCall &&
    !info.hasRefusal &&
    info.finishReason === undefined
  );
}
