// The prompt a legacy completion that asked `echo` starts each choice's text with: its provider counts it as prompt,
// so the gateway's output counts (a stream's estimate, whether a usage of 0 output tokens is believed, a JSON answer's
// estimate) leave it out. Until 2026-12-07 the echo was counted as output: an echo alone (prompt scoring), reported as
// {prompt n, completion 0}, was not believed, and every book counted the prompt twice.
import { isRecord } from "../is-record.ts";

/** A legacy completions request's body: its `echo`, `prompt` (a string or a list) and `n` say what it echoes. */
export type EchoRequest = Readonly<Record<string, unknown>>;

/**
 * Takes the echoed prompt off each choice's text as it comes (a stream's chunks, or one JSON answer). OpenAI numbers
 * the choices of a list of prompts prompt by prompt, `n` each (index = prompt's index × n + sample). A prompt of
 * tokens (numbers) has no text to match: its choices are counted as they come. Text that stops matching the prompt
 * ends the echo of its choice (a host that echoes otherwise): from there on everything is output.
 */
export class EchoedPrompt {
  readonly #prompts: readonly (string | undefined)[];
  readonly #choicesPerPrompt: number;
  /** What is still to come of each choice's echo, by choice index ("" once it is over). */
  readonly #left = new Map<number, string>();
  /**
   * A prompt is of tokens: its echo cannot be told from generated text, so a usage of {prompt n, completion 0} is
   * believed as it comes (an echo alone: prompt scoring, as evaluation harnesses send it), as before 2026-12-07.
   */
  readonly hasTokenPrompt: boolean;

  constructor(prompts: readonly (string | undefined)[], choicesPerPrompt: number) {
    this.#prompts = prompts;
    this.#choicesPerPrompt = choicesPerPrompt;
    this.hasTokenPrompt = prompts.includes(undefined);
  }

  /** The echo of a request that asked for one, else undefined. */
  static of(request: EchoRequest): EchoedPrompt | undefined {
    const prompt = request.prompt;
    // No prompt, nothing echoed (a chat body's `echo` is no legacy completion's).
    if (request.echo !== true || (typeof prompt !== "string" && !Array.isArray(prompt))) return undefined;
    const prompts =
      typeof prompt === "string"
        ? [prompt]
        : Array.isArray(prompt) && prompt.some((item) => typeof item !== "number")
          ? prompt.map((item) => (typeof item === "string" ? item : undefined))
          : [undefined];
    const n = typeof request.n === "number" && Number.isInteger(request.n) && request.n > 0 ? request.n : 1;
    return new EchoedPrompt(prompts, n);
  }

  /**
   * `json` (a chunk or an answer) with its choices' echoed text taken off, a copy (the client's is left as it is), and
   * the first choice's (index 0) generated text of it; `json` itself when it held no echo.
   */
  generated(json: Record<string, unknown>, firstText: string): { json: Record<string, unknown>; firstText: string } {
    const choices = json.choices;
    if (!Array.isArray(choices)) return { json, firstText };
    let isChanged = false;
    let generatedFirst = firstText;
    const counted = choices.map((choice: unknown, position) => {
      if (!isRecord(choice) || typeof choice.text !== "string") return choice;
      const index = typeof choice.index === "number" ? choice.index : position;
      const text = this.#take(index, choice.text);
      if (text === choice.text) return choice;
      isChanged = true;
      if (index === 0) generatedFirst = text;
      return { ...choice, text };
    });
    return isChanged ? { json: { ...json, choices: counted }, firstText: generatedFirst } : { json, firstText };
  }

  /** What of `text`, the next piece of choice `index`, comes after its echo. */
  #take(index: number, text: string): string {
    const left = this.#left.get(index) ?? this.#prompts[Math.floor(index / this.#choicesPerPrompt)] ?? "";
    if (left === "") {
      this.#left.set(index, "");
      return text;
    }
    if (left.startsWith(text)) {
      this.#left.set(index, left.slice(text.length));
      return "";
    }
    this.#left.set(index, "");
    return text.startsWith(left) ? text.slice(left.length) : text;
  }
}
