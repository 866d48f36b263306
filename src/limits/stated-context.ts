// The context window a provider's context-length refusal states, and the prompt it counted when it says so. Read so
// that a Responses request with `truncation: "auto"` refused as too long after the gateway's own truncation can be cut
// to what that provider takes (pipeline/refused-context.ts), rather than failing on an estimate that was short.
// The wordings, as the providers write them:
//   OpenAI, vLLM, DeepSeek, Groq, OpenRouter: "This model's maximum context length is 8192 tokens. However, your
//     messages resulted in 9000 tokens" / "you requested 9500 tokens (9000 in the messages, 500 in the completion)" /
//     "your request has 9000 input tokens" / "you requested about 9500 tokens (9000 of text input, 500 in the output)"
//   Anthropic (and its OpenAI-compatible API): "prompt is too long: 208310 tokens > 200000 maximum"
//   Mistral: "Prompt contains 40000 tokens and 0 draft tokens, too large for model with 32768 maximum context length"
//   Gemini: "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576)."
//   TGI (Together, Hugging Face): "`inputs` tokens + `max_new_tokens` must be <= 8193. Given: 8000 `inputs` tokens"
//   Cerebras: "Please reduce the length of the messages or completion. Current length is 9000 while limit is 8192"

/** A context refusal's numbers: the window it states, and the prompt tokens it counted (when it says). */
export interface StatedContext {
  readonly limitTokens: number;
  readonly promptTokens?: number;
}

/** Error messages are short; the cap keeps a huge one from costing a long scan. */
const MAX_SCANNED_CHARS = 8 * 1024;

// Each number as written: thousands separators, and a "~" some clients quote back.
/** Wordings stating the limit and the prompt at once: [pattern, index of the limit's group, of the prompt's]. */
const BOTH: readonly (readonly [RegExp, number, number])[] = [
  [/prompt is too long:\s*~?(\d[\d,]*) tokens\s*>\s*~?(\d[\d,]*)/i, 2, 1],
  [/prompt contains ~?(\d[\d,]*) tokens.*?too large for model with ~?(\d[\d,]*) maximum/i, 2, 1],
  [/input token count \(~?(\d[\d,]*)\) exceeds the maximum number of tokens allowed \(~?(\d[\d,]*)\)/i, 2, 1],
  [/must be <= ~?(\d[\d,]*)\.\s*Given: ~?(\d[\d,]*) `?inputs`? tokens/i, 1, 2],
  [/current length is ~?(\d[\d,]*) while limit is ~?(\d[\d,]*)/i, 2, 1],
];

const MAXIMUM_CONTEXT = /maximum context length is ~?(\d[\d,]*) tokens/i;
/** After MAXIMUM_CONTEXT: the whole prompt (messages and functions), when the refusal says it. */
const PROMPT_TOTAL = /messages resulted in ~?(\d[\d,]*) tokens/i;
/** Else the prompt part, in the order tried (a total with the completion is not the prompt). */
// Each number read from its first digit only (the lookbehind): tried from every digit of a long run, the run was
// scanned again from each (quadratic: 8 KiB of digits took a third of a second of the event loop).
const PROMPT_PARTS: readonly RegExp[] = [
  /(?<![\d,])(\d[\d,]*) (?:tokens )?in the messages/i,
  /(?<![\d,])(\d[\d,]*) of text input/i,
  /request has ~?(\d[\d,]*) input tokens/i,
];
/** The tools' definitions, prompt too: OpenAI states them apart ("4000 in the messages, 500 in the functions"). */
const FUNCTIONS_PART = /(?<![\d,])(\d[\d,]*) (?:tokens )?in the functions/i;

/** The window and prompt a context-length refusal's message states; undefined when it states no window. */
export function statedContextOf(message: string): StatedContext | undefined {
  const text = message.length > MAX_SCANNED_CHARS ? message.slice(0, MAX_SCANNED_CHARS) : message;
  for (const [pattern, limitGroup, promptGroup] of BOTH) {
    const match = pattern.exec(text);
    if (match === null) continue;
    return stated(numberOf(match[limitGroup]), numberOf(match[promptGroup]));
  }
  const limit = numberOf(MAXIMUM_CONTEXT.exec(text)?.[1]);
  if (limit === undefined) return undefined;
  const total = numberOf(PROMPT_TOTAL.exec(text)?.[1]);
  if (total !== undefined) return stated(limit, total);
  for (const pattern of PROMPT_PARTS) {
    const prompt = numberOf(pattern.exec(text)?.[1]);
    if (prompt !== undefined) return stated(limit, prompt + (numberOf(FUNCTIONS_PART.exec(text)?.[1]) ?? 0));
  }
  return stated(limit, undefined);
}

function stated(limitTokens: number | undefined, promptTokens: number | undefined): StatedContext | undefined {
  if (limitTokens === undefined) return undefined;
  return promptTokens === undefined ? { limitTokens } : { limitTokens, promptTokens };
}

/** A positive whole number as written ("131,072"), else undefined. */
function numberOf(digits: string | undefined): number | undefined {
  if (digits === undefined) return undefined;
  const value = Number(digits.replaceAll(",", ""));
  return Number.isSafeInteger(value) && value > 0 ? value : undefined;
}
