// Prompt token estimates for budgets and context fit, with a real BPE tokenizer (o200k_base, via gpt-tokenizer).
// Providers use their own tokenizers (Llama, Gemini, ...), which differ by roughly ±15% from o200k on English
// text; that is why budgets reconcile with the `usage` the provider reports afterwards.
import { countTokens } from "gpt-tokenizer";

/**
 * Token counts of long texts, remembered: a chat client resends the whole history every turn, and counting
 * costs ~80 µs per 1,000 tokens on the event loop. Short texts are cheaper to count than to hash and keep.
 */
const CACHE_MIN_CHARS = 512;
const CACHE_MAX_ENTRIES = 2_000;
/** Memory bound of the cache: the texts it keeps, in characters (~32 MB of UTF-16). */
const CACHE_MAX_CHARS = 16_000_000;
const countCache = new Map<string, number>();
let cachedChars = 0;

function countCached(text: string): number {
  if (text.length < CACHE_MIN_CHARS) return countTokens(text);
  const cached = countCache.get(text);
  if (cached !== undefined) return cached;
  const count = countTokens(text);
  if (text.length > CACHE_MAX_CHARS / 4) return count;
  // Oldest first (Map keeps insertion order).
  while (countCache.size >= CACHE_MAX_ENTRIES || cachedChars + text.length > CACHE_MAX_CHARS) {
    const oldest = countCache.keys().next();
    if (oldest.done === true) break;
    countCache.delete(oldest.value);
    cachedChars -= oldest.value.length;
  }
  countCache.set(text, count);
  cachedChars += text.length;
  return count;
}

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
    if (typeof content === "string") tokens += countCached(content);
    else if (Array.isArray(content)) {
      for (const part of content) {
        if (part === null || typeof part !== "object") continue;
        const { type, text } = part as { type?: unknown; text?: unknown };
        if (typeof text === "string") tokens += countCached(text);
        else if (type === "image_url" || type === "input_image" || type === "image") {
          tokens += TOKENS_PER_IMAGE;
          hasImages = true;
        }
      }
    }
    if (typeof name === "string") tokens += countCached(name) + 1;
    if (toolCalls !== undefined) tokens += countCached(JSON.stringify(toolCalls));
  }
  if (Array.isArray(tools) && tools.length > 0) tokens += countCached(JSON.stringify(tools));
  return { promptTokens: tokens, hasImages };
}

/** Tokens of a plain text (e.g. the part of an answer a cut stream delivered). */
export function countTextTokens(text: string): number {
  return text === "" ? 0 : countCached(text);
}

/** Prompt tokens of a completions `prompt` or an embeddings `input` (string or array of strings). */
export function estimateTextInput(input: unknown): number {
  if (typeof input === "string") return countCached(input);
  if (Array.isArray(input)) {
    let tokens = 0;
    for (const item of input) {
      if (typeof item === "string") tokens += countCached(item);
      else if (Array.isArray(item)) tokens += item.length;
    }
    return tokens;
  }
  return 0;
}
