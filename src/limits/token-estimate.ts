// Prompt token estimates for budgets and context fit, with a real BPE tokenizer (o200k_base, via gpt-tokenizer).
// Providers use their own tokenizers (Llama, Gemini, ...), which differ by roughly ±15% from o200k on English
// text; that is why budgets reconcile with the `usage` the provider reports afterwards.
import { countTokens } from "gpt-tokenizer";

/** Per-message framing tokens (role markers), as in OpenAI's counting guide. */
const TOKENS_PER_MESSAGE = 4;
/** An image part, counted as a 1024×1024 high-detail image: 765 tokens (OpenAI's formula). */
const TOKENS_PER_IMAGE = 765;

export interface PromptFacts {
  readonly promptTokens: number;
  readonly hasImages: boolean;
}

/** Prompt tokens of a chat `messages` array (text parts, tool calls, names) plus `tools` definitions. */
export function estimateChatPrompt(messages: readonly unknown[], tools: unknown): PromptFacts {
  let tokens = 3;
  let hasImages = false;
  for (const message of messages) {
    tokens += TOKENS_PER_MESSAGE;
    if (message === null || typeof message !== "object") continue;
    const {
      content,
      tool_calls: toolCalls,
      name,
    } = message as { content?: unknown; tool_calls?: unknown; name?: unknown };
    if (typeof content === "string") tokens += countTokens(content);
    else if (Array.isArray(content)) {
      for (const part of content) {
        if (part === null || typeof part !== "object") continue;
        const { type, text } = part as { type?: unknown; text?: unknown };
        if (typeof text === "string") tokens += countTokens(text);
        else if (type === "image_url" || type === "input_image" || type === "image") {
          tokens += TOKENS_PER_IMAGE;
          hasImages = true;
        }
      }
    }
    if (typeof name === "string") tokens += countTokens(name) + 1;
    if (toolCalls !== undefined) tokens += countTokens(JSON.stringify(toolCalls));
  }
  if (Array.isArray(tools) && tools.length > 0) tokens += countTokens(JSON.stringify(tools));
  return { promptTokens: tokens, hasImages };
}

/** Tokens of a plain text (e.g. the part of an answer a cut stream delivered). */
export function countTextTokens(text: string): number {
  return text === "" ? 0 : countTokens(text);
}

/** Prompt tokens of a completions `prompt` or an embeddings `input` (string or array of strings). */
export function estimateTextInput(input: unknown): number {
  if (typeof input === "string") return countTokens(input);
  if (Array.isArray(input)) {
    let tokens = 0;
    for (const item of input) {
      if (typeof item === "string") tokens += countTokens(item);
      else if (Array.isArray(item)) tokens += item.length;
    }
    return tokens;
  }
  return 0;
}
