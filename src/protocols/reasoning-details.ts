// An assistant message's `reasoning_details`, read from chat answers and put back on the same message in a later
// request's history. Why: OpenRouter carries a reasoning model's reasoning (and Gemini's thought signatures, as
// `reasoning.encrypted` entries) in that array, wants it back unmodified on the next turn of a tool loop, and refuses
// a Gemini turn without it with a 400 ("Gemini models require OpenRouter reasoning details to be preserved in each
// request"). A chat client sends it back itself; an Anthropic assistant turn or a Responses item list has no place for
// it, so the Messages and Responses doors keep it in the gateway, in the tool-call extras store, under the message's
// first tool call id (the id the client sends back), and put it back here. Pure.
import { isRecord } from "../is-record.ts";
import type { ToolCallExtra } from "./tool-call-extras.ts";

/**
 * What a kept array's store key starts with, before the message's first tool call id: the same store keeps each
 * call's `extra_content` under the bare call id. A space is in no provider's call id format.
 */
export const REASONING_KEY_PREFIX = "reasoning_details ";

/** The store key of the `reasoning_details` of the assistant message whose first tool call has this id. */
export function reasoningKeyOf(firstCallId: string): string {
  return REASONING_KEY_PREFIX + firstCallId;
}

/** The kept entry: the array under one field (the store keeps objects), by the first call's store key. */
function kept(firstCallId: string, details: readonly unknown[]): ToolCallExtra {
  return { id: reasoningKeyOf(firstCallId), extra: { reasoning_details: details } };
}

function firstCallId(calls: unknown): string | undefined {
  if (!Array.isArray(calls)) return undefined;
  const first: unknown = calls[0];
  return isRecord(first) && typeof first.id === "string" && first.id !== "" ? first.id : undefined;
}

/** The `reasoning_details` of a chat completion's messages (every choice) that made tool calls, by first call id. */
export function reasoningOfCompletion(completion: unknown): ToolCallExtra[] {
  const found: ToolCallExtra[] = [];
  if (!isRecord(completion) || !Array.isArray(completion.choices)) return found;
  for (const choice of completion.choices) {
    if (!isRecord(choice) || !isRecord(choice.message)) continue;
    const id = firstCallId(choice.message.tool_calls);
    const details = choice.message.reasoning_details;
    if (id !== undefined && Array.isArray(details) && details.length > 0) found.push(kept(id, details));
  }
  return found;
}

/** The string fields a streamed entry's pieces are split in (OpenRouter streams `reasoning.text` a piece a chunk). */
const PIECE_FIELDS = ["text", "summary"] as const;

/**
 * An entry that always comes whole: an opaque blob (Anthropic's redacted thinking, OpenAI's encrypted content, a
 * Gemini signature) is never split by any of them, and OpenRouter's own AI SDK provider pushes these as they come.
 * Two of them appended would be one invalid blob; two kept apart, at worst one entry more.
 */
const WHOLE_TYPE = "reasoning.encrypted";

/** A streamed choice's gathering: its entries so far, by `index` and `type` too, their bytes, its first call id. */
interface GatheredChoice {
  entries: Record<string, unknown>[];
  /** The entries a later piece joins (same `index` and `type`): a look-up, not a scan per piece. */
  readonly byIndex: Map<string, Record<string, unknown>>;
  bytes: number;
  /** Past the byte bound: gathered no more (never kept: the store takes no value that large). */
  isOver: boolean;
  callId?: string;
}

/**
 * The same, gathered from a streamed answer's chunks (`delta.reasoning_details`) as they come: the pieces of one
 * entry (same `index` and `type`) joined, as the answer's message would hold them; an entry without an index, and a
 * `reasoning.encrypted` one, is one whole. Kept per choice with the first tool call id the choice's deltas named.
 * Bounded: a choice's array past `maxBytes` (the store's per-value bound) is dropped at once and gathered no more,
 * so an endless stream of reasoning holds at most that much per choice, never the whole stream.
 */
export class StreamedReasoning {
  readonly #choices = new Map<number, GatheredChoice>();
  readonly #maxBytes: number;

  /** `maxBytes`: the largest array (as JSON, about) worth gathering: the store keeps none larger. */
  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  push(chunk: unknown): void {
    if (!isRecord(chunk) || !Array.isArray(chunk.choices)) return;
    for (const choice of chunk.choices) {
      if (!isRecord(choice) || !isRecord(choice.delta)) continue;
      const { delta } = choice;
      const choiceIndex = typeof choice.index === "number" ? choice.index : 0;
      if (Array.isArray(delta.reasoning_details)) {
        const state = this.#choice(choiceIndex);
        for (const entry of delta.reasoning_details) if (isRecord(entry) && !state.isOver) this.#join(state, entry);
      }
      if (Array.isArray(delta.tool_calls) && this.#choices.get(choiceIndex)?.callId === undefined) {
        const id = firstCallId(delta.tool_calls);
        if (id !== undefined) this.#choice(choiceIndex).callId = id;
      }
    }
  }

  /** What was gathered so far, for the choices that named a tool call. */
  get all(): ToolCallExtra[] {
    const found: ToolCallExtra[] = [];
    for (const { entries, callId } of this.#choices.values()) {
      if (callId !== undefined && entries.length > 0) found.push(kept(callId, entries));
    }
    return found;
  }

  #choice(choiceIndex: number): GatheredChoice {
    let state = this.#choices.get(choiceIndex);
    if (state === undefined) {
      state = { entries: [], byIndex: new Map(), bytes: 0, isOver: false };
      this.#choices.set(choiceIndex, state);
    }
    return state;
  }

  #join(state: GatheredChoice, piece: Readonly<Record<string, unknown>>): void {
    state.bytes += joinEntry(state, piece);
    if (state.bytes <= this.#maxBytes) return;
    state.isOver = true;
    state.entries = [];
    state.byIndex.clear();
  }
}

/** Joins `piece` into the choice's entries; returns the bytes it added (as JSON, about: escapes are not counted). */
function joinEntry(state: GatheredChoice, piece: Readonly<Record<string, unknown>>): number {
  const index = piece.index;
  const slot = typeof index === "number" && piece.type !== WHOLE_TYPE ? `${index} ${String(piece.type)}` : undefined;
  const same = slot === undefined ? undefined : state.byIndex.get(slot);
  if (same === undefined) {
    const entry = { ...piece };
    state.entries.push(entry);
    if (slot !== undefined) state.byIndex.set(slot, entry);
    return Buffer.byteLength(JSON.stringify(entry));
  }
  let added = 0;
  for (const [field, value] of Object.entries(piece)) {
    const isPiece = (PIECE_FIELDS as readonly string[]).includes(field);
    const before = same[field];
    if (isPiece && typeof value === "string" && typeof before === "string") {
      same[field] = before + value;
      added += Buffer.byteLength(value);
    }
    // A field a later piece names first (a signature, a format) is the entry's; one already there stays. An empty
    // string is not there: OpenRouter opens a Claude thinking entry with `"signature":""` and sends the signature
    // whole in a later piece, which Anthropic needs unchanged on the next turn (kept "", the turn is refused).
    else if (isAbsent(before) && !isAbsent(value)) {
      same[field] = value;
      added += Buffer.byteLength(JSON.stringify(value) ?? "");
    }
  }
  return added;
}

/** A field that says nothing yet: missing, null, or the empty string a stream opens an entry with. */
function isAbsent(value: unknown): boolean {
  return value === undefined || value === null || value === "";
}

/**
 * The store keys of a chat history's assistant messages that made tool calls and carry no `reasoning_details` (those
 * worth a look-up).
 */
export function reasoningKeysToRecall(messages: readonly unknown[]): string[] {
  // Each key once: a history naming one call in many messages made an MGET reading one 1 MiB value as many times.
  const keys = new Set<string>();
  for (const message of messages) {
    if (!isRecord(message) || message.role !== "assistant" || message.reasoning_details !== undefined) continue;
    const id = firstCallId(message.tool_calls);
    if (id === undefined) continue;
    // At its latest message (history order is the look-up's newest-first order: redis-tool-call-extras.ts).
    keys.delete(reasoningKeyOf(id));
    keys.add(reasoningKeyOf(id));
  }
  return [...keys];
}

/**
 * Bytes of kept arrays (as JSON) one request is given back at most: the memory store's own bound (32 MiB,
 * state/tool-call-extras.ts), below what Redis keeps per client (64 MiB, redis-tool-call-extras.ts): a history naming
 * many kept calls made an upstream request of everything its client had kept. The latest messages
 * come first (the current tool loop is what Anthropic and Gemini check); older ones go without, as after an eviction.
 */
const MAX_RECALLED_BYTES = 32 * 1024 * 1024; // 32 MiB

/**
 * The history with each such message found in `recalled` (by store key) given its `reasoning_details` back; the same
 * array when none was (the client's objects are never changed: changed messages are copies). Each kept array goes
 * back once, with the latest message naming its call (a history has each call once; one naming a call in many
 * messages got the array, up to 1 MiB, in each: a small request made an upstream one of gigabytes), and no more than
 * MAX_RECALLED_BYTES in all.
 */
export function withRecalledReasoning(
  messages: readonly unknown[],
  recalled: ReadonlyMap<string, Readonly<Record<string, unknown>>>,
): readonly unknown[] {
  if (recalled.size === 0) return messages;
  const given = new Set<string>();
  let givenBytes = 0;
  const out = [...messages];
  for (let index = out.length - 1; index >= 0; index--) {
    const message = out[index];
    if (!isRecord(message) || message.role !== "assistant" || message.reasoning_details !== undefined) continue;
    const id = firstCallId(message.tool_calls);
    const key = id === undefined ? undefined : reasoningKeyOf(id);
    const details = key === undefined || given.has(key) ? undefined : recalled.get(key)?.reasoning_details;
    if (key === undefined || !Array.isArray(details)) continue;
    const bytes = Buffer.byteLength(JSON.stringify(details));
    if (givenBytes + bytes > MAX_RECALLED_BYTES) continue;
    givenBytes += bytes;
    given.add(key);
    out[index] = { ...message, reasoning_details: details };
  }
  return given.size > 0 ? out : messages;
}
