// A tool call's `extra_content`, read from chat answers and put back on the same call in a later request's history.
// Why: Gemini 3 through Google's OpenAI-compatible API puts `extra_content: {google: {thought_signature}}` on the
// calls it answers, and refuses the next turn with a 400 ("Function call is missing a thought_signature") when the
// assistant tool call comes back without it. A chat client sends it back itself; an Anthropic `tool_use` block or
// a Responses `function_call` item has no place for it, so the Messages and Responses doors keep it in the gateway
// (state/tool-call-extras.ts) by call id and re-apply it here. Pure.
import { isRecord } from "../is-record.ts";

/** One call's id and its `extra_content` as the upstream gave it (an object). */
export interface ToolCallExtra {
  readonly id: string;
  readonly extra: Readonly<Record<string, unknown>>;
}

/** The calls of a chat completion (every choice) that carry an `extra_content` object. */
export function extrasOfCompletion(completion: unknown): ToolCallExtra[] {
  const found: ToolCallExtra[] = [];
  if (!isRecord(completion) || !Array.isArray(completion.choices)) return found;
  for (const choice of completion.choices) {
    if (!isRecord(choice) || !isRecord(choice.message)) continue;
    const calls = choice.message.tool_calls;
    if (!Array.isArray(calls)) continue;
    for (const call of calls) {
      if (isRecord(call) && typeof call.id === "string" && call.id !== "" && isRecord(call.extra_content))
        found.push({ id: call.id, extra: call.extra_content });
    }
  }
  return found;
}

/**
 * The same, from a streamed answer's chunks as they come. Gemini sends each call whole in one delta (id, name,
 * arguments, `extra_content`, no index); a delta that carries `extra_content` without an id is read as belonging to
 * the call its index (else the latest call) named.
 */
export class StreamedExtras {
  readonly #found = new Map<string, Readonly<Record<string, unknown>>>();
  /** Per choice: the call id each index (-1: no index) last named. */
  readonly #ids = new Map<string, string>();

  push(chunk: unknown): void {
    if (!isRecord(chunk) || !Array.isArray(chunk.choices)) return;
    for (const choice of chunk.choices) {
      if (!isRecord(choice) || !isRecord(choice.delta) || !Array.isArray(choice.delta.tool_calls)) continue;
      const choiceIndex = typeof choice.index === "number" ? choice.index : 0;
      for (const delta of choice.delta.tool_calls) {
        if (!isRecord(delta)) continue;
        const slot = `${choiceIndex}:${typeof delta.index === "number" ? delta.index : -1}`;
        if (typeof delta.id === "string" && delta.id !== "") this.#ids.set(slot, delta.id);
        const id = this.#ids.get(slot);
        if (id !== undefined && isRecord(delta.extra_content)) this.#found.set(id, delta.extra_content);
      }
    }
  }

  /** What was found so far. */
  get all(): ToolCallExtra[] {
    return [...this.#found].map(([id, extra]) => ({ id, extra }));
  }
}

/** The ids of the assistant tool calls in a chat history that carry no `extra_content` (those worth a look-up). */
export function unsignedCallIds(messages: readonly unknown[]): string[] {
  const ids: string[] = [];
  for (const message of messages) {
    if (!isRecord(message) || message.role !== "assistant" || !Array.isArray(message.tool_calls)) continue;
    for (const call of message.tool_calls) {
      if (isRecord(call) && typeof call.id === "string" && call.extra_content === undefined) ids.push(call.id);
    }
  }
  return ids;
}

/**
 * The history with each assistant tool call found in `recalled` given its `extra_content` back; the same array when
 * none was (the translated messages are the door's own: changed messages are copies all the same).
 */
export function withRecalledExtras(
  messages: readonly unknown[],
  recalled: ReadonlyMap<string, Readonly<Record<string, unknown>>>,
): readonly unknown[] {
  if (recalled.size === 0) return messages;
  let isChanged = false;
  const out = messages.map((message) => {
    if (!isRecord(message) || message.role !== "assistant" || !Array.isArray(message.tool_calls)) return message;
    let isMessageChanged = false;
    const calls = message.tool_calls.map((call: unknown) => {
      if (!isRecord(call) || typeof call.id !== "string" || call.extra_content !== undefined) return call;
      const extra = recalled.get(call.id);
      if (extra === undefined) return call;
      isMessageChanged = true;
      return { ...call, extra_content: extra };
    });
    if (!isMessageChanged) return message;
    isChanged = true;
    return { ...message, tool_calls: calls };
  });
  return isChanged ? out : messages;
}
