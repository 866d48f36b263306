// OpenAI's stream names the speaker in each choice's first delta (`role: "assistant"`); a few OpenAI-compatible
// servers never send it. The `openai` SDK's `chat.completions.stream()` then throws at the end ("missing role for
// choice 0") although the answer came whole. The first delta of a choice that has none gets it.
import { isRecord } from "../is-record.ts";

export class MissingRoles {
  /** The choices whose role the client has been sent (given by the upstream or added here). */
  readonly #named = new Set<unknown>();

  /** Adds the role to a choice's first delta when it has none; returns whether the chunk changed. */
  fill(json: Record<string, unknown>): boolean {
    const choices = json.choices;
    if (!Array.isArray(choices)) return false;
    let isChanged = false;
    // An index loop: `entries()` made an iterator and a pair per choice, for every chunk of every stream.
    for (let position = 0; position < choices.length; position++) {
      const choice: unknown = choices[position];
      if (!isRecord(choice) || !isRecord(choice.delta)) continue;
      const index = typeof choice.index === "number" ? choice.index : position;
      if (this.#named.has(index)) continue;
      this.#named.add(index);
      if (typeof choice.delta.role === "string") continue;
      choice.delta.role = "assistant";
      isChanged = true;
    }
    return isChanged;
  }
}
