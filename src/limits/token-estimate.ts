// Prompt token estimates for budgets and context fit: one linear pass over the characters, no tokenizer.
// Providers use their own tokenizers (Llama, Gemini, Mistral, Qwen, ...), so no single BPE is exact for them
// anyway; budgets reconcile with the `usage` the provider reports afterwards. What matters before the call is
// that the estimate is cheap at any size (a BPE tokenizer is quadratic on long runs without word breaks: 200 KB of
// `a` blocked the event loop 12.8 s, issue 13) and that it rarely under-estimates: a budget must not admit more
// than the provider allows. The weights below are calibrated to stay above o200k and cl100k on English, code,
// JSON, numbers, base64, hashes, Cyrillic and CJK (Hindi: at cl100k, within 3 %), and for Latin script above
// GPT-2 too (a small vocabulary, like Llama 2 / Mistral 7B); see token-estimate.test.ts for the reference
// counts and docs/limits.md for the rules.

import { MAX_ESTIMATED_CHARS } from "../config/request-bounds.ts";
import type { AudioDuration } from "./audio-duration.ts";

/** Per-message framing tokens (role markers), as in OpenAI's counting guide. */
const TOKENS_PER_MESSAGE = 4;
/** An image part, counted as a 1024×1024 high-detail image: 765 tokens (OpenAI's formula). */
const TOKENS_PER_IMAGE = 765;
/**
 * A document (`file` part, a PDF for chat providers) by its decoded size, as no tokenizer reads PDFs: a page per
 * 100 KB, at least one, 3,000 tokens a page. Anthropic documents 1,500-3,000 text tokens per PDF page, plus the
 * page's image; bytes per page are documented nowhere and run from ~5 KB (plain text) to ~500 KB (scans), so
 * 100 KB is a middle guess: text-heavy PDFs come out under their count and scans over it, both far closer than
 * counting none (a 600 KB PDF is 18,000 tokens, not 0). A file sent by id, unseen, counts one page.
 */
const DOCUMENT_BYTES_PER_PAGE = 100_000;
const TOKENS_PER_DOCUMENT_PAGE = 3_000;
/** A word of Latin letters: letters per token (a case change starts a new word, `camelCase` is two). */
const LATIN_CHARS_PER_TOKEN = 4;
/** Greek, Cyrillic, Armenian, Hebrew, Arabic, ... (two UTF-8 bytes): letters per token. */
const TWO_BYTE_CHARS_PER_TOKEN = 1.5;
/** ASCII punctuation and symbols: characters per token (`":"`, `},{`, `://` merge in most vocabularies). */
const PUNCTUATION_CHARS_PER_TOKEN = 2;
/** Whitespace other than a single space (indentation): characters per token. */
const WHITESPACE_CHARS_PER_TOKEN = 4;
/** CJK, kana, Hangul, Indic, Thai and other three-byte characters: tokens each. */
const TOKENS_PER_THREE_BYTE_CHAR = 1.25;
/** Characters outside the Basic Multilingual Plane (emoji, rare ideographs): several byte tokens each. */
const TOKENS_PER_ASTRAL_CHAR = 3;

/** Letters glued to a previous word or digit with a case change (`aGVsbG8` in base64, hashes): per token. */
const GLUED_CHARS_PER_TOKEN = 1.5;

const RUN = { none: 0, lower: 1, upper: 2, punctuation: 3, whitespace: 4, twoByte: 5 } as const;
type RunKind = (typeof RUN)[keyof typeof RUN];
const CHARS_PER_TOKEN: readonly number[] = [
  1,
  LATIN_CHARS_PER_TOKEN,
  LATIN_CHARS_PER_TOKEN,
  PUNCTUATION_CHARS_PER_TOKEN,
  WHITESPACE_CHARS_PER_TOKEN,
  TWO_BYTE_CHARS_PER_TOKEN,
];

/**
 * Estimated tokens of a text, in one pass: O(length), no allocation, whatever the text (so a hostile 1 MB
 * word costs no more than 1 MB of prose, a few ms). Digits and newlines count one token each (Gemini, Gemma and
 * Llama 2 split numbers into single digits), three-byte and astral characters by the weights above; runs of
 * letters, punctuation, whitespace and two-byte letters count `ceil(run / chars per token)`.
 */
export function countTextTokens(text: string): number {
  return countScanned(text, { remainingChars: MAX_ESTIMATED_CHARS });
}

interface ScanBudget {
  remainingChars: number;
}

/** One loop with inline state on purpose: it runs per character, where a call per character would double the cost. */
function countScanned(text: string, budget: ScanBudget): number {
  const length = Math.min(text.length, budget.remainingChars);
  const unscannedChars = text.length - length;
  budget.remainingChars -= length;
  let tokens = 0;
  let run: RunKind = RUN.none;
  /** Characters in the run (accented Latin letters count twice: they are two UTF-8 bytes). */
  let runLength = 0;
  let isSingleUpper = false;
  /** The current letter run started right after another letter run or a digit, without a separator. */
  let isGlued = false;
  let isAfterDigit = false;
  for (let index = 0; index < length; index++) {
    const code = text.charCodeAt(index);
    let kind: RunKind;
    let weight = 1;
    if ((code >= 97 && code <= 122) || (code >= 0xc0 && code <= 0x24f && code !== 0xd7 && code !== 0xf7)) {
      if (code >= 0xc0) weight = 2;
      // `Hello`: one capital starts a lower-case word; `HTTPServer`, `aGVsbG8` (base64) split at every change.
      if (run === RUN.upper && isSingleUpper) run = RUN.lower;
      kind = RUN.lower;
      isSingleUpper = false;
    } else if (code >= 65 && code <= 90) {
      isSingleUpper = run !== RUN.upper;
      kind = RUN.upper;
    } else if (code === 32) {
      // A single space joins the next word's token; more spaces are indentation.
      const next = index + 1 < length ? text.charCodeAt(index + 1) : 0;
      if (run !== RUN.whitespace && next !== 32 && next !== 9) {
        tokens += runTokens(run, runLength, isGlued);
        run = RUN.none;
        runLength = 0;
        isAfterDigit = false;
        continue;
      }
      kind = RUN.whitespace;
    } else if (code === 9) {
      kind = RUN.whitespace;
    } else if (code < 128 && code > 32 && (code < 48 || code > 57)) {
      kind = RUN.punctuation;
    } else if (code >= 0x370 && code < 0x800) {
      kind = RUN.twoByte;
    } else {
      // A character that is a token of its own: digit, newline, three-byte or astral character.
      tokens += runTokens(run, runLength, isGlued);
      run = RUN.none;
      runLength = 0;
      isAfterDigit = code >= 48 && code <= 57;
      if (isAfterDigit) tokens += 1;
      else if (code === 10) tokens += 1;
      else if (code < 128) tokens += code === 13 ? 0 : 1;
      else if (code >= 0xd800 && code <= 0xdbff) {
        // High surrogate: one astral character; its low surrogate goes with it.
        tokens += TOKENS_PER_ASTRAL_CHAR;
        index++;
      } else {
        // Hot path (CJK text): the rest of a run of three-byte characters.
        let next = index + 1;
        let nextCode = text.charCodeAt(next);
        while (next < length && nextCode >= 0x800 && nextCode < 0xd800) nextCode = text.charCodeAt(++next);
        tokens += TOKENS_PER_THREE_BYTE_CHAR * (next - index);
        index = next - 1;
      }
      continue;
    }
    if (kind === RUN.lower && run === RUN.lower) {
      // Hot path (prose, long words): the rest of a run of ASCII lower-case letters, with no state to update.
      let next = index + 1;
      let nextCode = text.charCodeAt(next);
      while (next < length && nextCode >= 97 && nextCode <= 122) nextCode = text.charCodeAt(++next);
      runLength += weight + (next - index - 1);
      index = next - 1;
      isAfterDigit = false;
      continue;
    }
    if (kind !== run) {
      tokens += runTokens(run, runLength, isGlued);
      const previousRunLength = runLength;
      runLength = 0;
      // A case change after a short run, or letters right after a digit, is a random string (base64, a hash),
      // which tokenizers cut into short pieces; `camelCase` after a 3+ letter word is not.
      isGlued =
        (kind === RUN.lower || kind === RUN.upper) &&
        (isAfterDigit || ((run === RUN.lower || run === RUN.upper) && (run === RUN.upper || previousRunLength <= 2)));
    }
    isAfterDigit = false;
    run = kind;
    runLength += weight;
  }
  return Math.ceil(tokens + runTokens(run, runLength, isGlued)) + unscannedChars;
}

function runTokens(run: RunKind, runLength: number, isGlued: boolean): number {
  if (run === RUN.none || runLength === 0) return 0;
  return Math.ceil(runLength / (isGlued ? GLUED_CHARS_PER_TOKEN : (CHARS_PER_TOKEN[run] ?? 1)));
}

export interface PromptFacts {
  readonly promptTokens: number;
  readonly hasImages: boolean;
  /** The prompt holds documents, counted by size (DOCUMENT_BYTES_PER_PAGE), not by their text. */
  readonly hasDocuments?: boolean;
  /**
   * The tokens the context fit compares with a model's window, when not `promptTokens` (which the budgets count):
   * an embeddings request's longest input (each is embedded alone).
   */
  readonly fitTokens?: number;
  /** A transcription's or translation's upload: its seconds of audio, for `ash`/`asd` budgets (audio-duration.ts). */
  readonly audio?: AudioDuration;
  /**
   * The part of `promptTokens` that is reasoning sent back (messages' `reasoning_content`): not sent, so not counted,
   * to a host that refused the field (providers/message-order.ts `reasoning: "remove"`, promptTokensSent).
   */
  readonly reasoningTokens?: number;
}

/**
 * The prompt tokens of the body a candidate is actually sent: without the reasoning sent back when its host refused
 * `reasoning_content` (the field is removed before the send). Counted, it made the reservation, the calibration's
 * estimate and the estimated usage too high for every request of a long agent loop.
 */
export function promptTokensSent(
  promptTokens: number,
  reasoningTokens: number | undefined,
  isReasoningRemoved: boolean,
): number {
  return isReasoningRemoved ? Math.max(0, promptTokens - (reasoningTokens ?? 0)) : promptTokens;
}

/** Prompt tokens of a chat `messages` array (text, image and file parts, tool calls, names, reasoning sent back) plus `tools` definitions. */
export function estimateChatPrompt(messages: readonly unknown[], tools: unknown): PromptFacts {
  const budget: ScanBudget = { remainingChars: MAX_ESTIMATED_CHARS };
  const count = (text: string): number => countScanned(text, budget);
  let tokens = 3;
  let reasoningTokens = 0;
  let hasImages = false;
  let hasDocuments = false;
  for (const message of messages) {
    tokens += TOKENS_PER_MESSAGE;
    if (message === null || typeof message !== "object") continue;
    const {
      content,
      tool_calls: toolCalls,
      name,
      reasoning_content: reasoning,
    } = message as { content?: unknown; tool_calls?: unknown; name?: unknown; reasoning_content?: unknown };
    // Reasoning sent back (DeepSeek's thinking mode wants a tool turn's) is prompt too.
    if (typeof reasoning === "string") reasoningTokens += count(reasoning);
    if (typeof content === "string") tokens += count(content);
    else if (Array.isArray(content)) {
      for (const part of content) {
        if (part === null || typeof part !== "object") continue;
        const { type, text } = part as { type?: unknown; text?: unknown };
        if (typeof text === "string") tokens += count(text);
        else if (type === "image_url" || type === "input_image" || type === "image" || isUntypedImage(part, type)) {
          tokens += TOKENS_PER_IMAGE;
          hasImages = true;
        } else if (type === "file") {
          tokens += documentTokens((part as { file?: unknown }).file);
          hasDocuments = true;
        }
      }
    }
    if (typeof name === "string") tokens += count(name) + 1;
    if (toolCalls !== undefined) tokens += count(JSON.stringify(toolCalls, withoutExtraContent));
  }
  if (Array.isArray(tools) && tools.length > 0) tokens += count(JSON.stringify(tools));
  tokens += reasoningTokens;
  return {
    promptTokens: tokens,
    hasImages,
    ...(hasDocuments ? { hasDocuments } : {}),
    ...(reasoningTokens > 0 ? { reasoningTokens } : {}),
  };
}

/**
 * vLLM's image part without `type` (`{"image_url": "https://..."}`, which the chat door takes: chat-message-rules.ts):
 * an image all the same, so it counts and routes to candidates that take images.
 */
function isUntypedImage(part: object, type: unknown): boolean {
  return (type === undefined || type === null) && Object.hasOwn(part, "image_url");
}

/** A chat `file` part's `file`: `file_data` is a data URL (base64), else the file is sent by id. */
function documentTokens(file: unknown): number {
  const data = (file as { file_data?: unknown } | null | undefined)?.file_data;
  if (typeof data !== "string") return TOKENS_PER_DOCUMENT_PAGE;
  // `data:application/pdf;base64,JVBERi0...`: four base64 characters are three bytes.
  const bytes = Math.floor(((data.length - data.indexOf(",") - 1) * 3) / 4);
  return Math.max(1, Math.ceil(bytes / DOCUMENT_BYTES_PER_PAGE)) * TOKENS_PER_DOCUMENT_PAGE;
}

/** Prompt tokens of a completions `prompt` or an embeddings `input` (string or array of strings). */
export function estimateTextInput(input: unknown): number {
  return estimateTextInputs(input).total;
}

/**
 * The tokens of a text input (a string, a list of strings, a list of token lists) in all, and of its longest item:
 * an embeddings request's inputs are embedded one by one, so each must fit the model's window, not their sum.
 */
export function estimateTextInputs(input: unknown): { readonly total: number; readonly longest: number } {
  const budget: ScanBudget = { remainingChars: MAX_ESTIMATED_CHARS };
  const count = (text: string): number => countScanned(text, budget);
  if (typeof input === "string") {
    const tokens = count(input);
    return { total: tokens, longest: tokens };
  }
  // One prompt given as token ids (`[1, 2, 3]`, as evaluation harnesses send it): one input of that many tokens, not
  // a list of inputs that are not text (it was counted 0, so such a prompt was planned and reserved as empty).
  if (Array.isArray(input) && input.length > 0 && input.every((item) => typeof item === "number")) {
    return { total: input.length, longest: input.length };
  }
  let total = 0;
  let longest = 0;
  if (Array.isArray(input)) {
    for (const item of input) {
      const tokens = typeof item === "string" ? count(item) : Array.isArray(item) ? item.length : 0;
      total += tokens;
      if (tokens > longest) longest = tokens;
    }
  }
  return { total, longest };
}

/**
 * A tool call's `extra_content` (Gemini 3's thought signature: opaque base64 of a few KB that the gateway gives back
 * on every later turn, protocols/tool-call-extras.ts) is not text the model reads: counted, a long agent session's
 * signatures grew the estimate by far more than its prompt, and the context fit refused what fits.
 */
function withoutExtraContent(key: string, value: unknown): unknown {
  return key === "extra_content" ? undefined : value;
}
