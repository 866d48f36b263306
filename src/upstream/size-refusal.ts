// A refusal of a parameter for its size (too many entries), not its value: which parameter, and the most entries the
// provider says it takes. Pure. Only wordings seen from real providers are read (each cited); another refusal that
// names a parameter is read by the other rows of classify-response.ts.
import { isEchoedPhrase } from "../providers/request-echo.ts";
import type { UpstreamErrorFields } from "./read-upstream-error.ts";

export interface SizeRefusal {
  /** The parameter refused, as the provider names it (`stop`, `tools`, Gemini's `stop_sequences`); undefined: unnamed. */
  readonly param: string | undefined;
  /** The most entries it takes, when the refusal says: more than this are refused. */
  readonly maxEntries: number | undefined;
}

/** OpenAI's code for an array over its limit (`stop` over 4, `tools` over 128). */
const SIZE_REFUSAL_CODES = new Set(["array_above_max_length"]);

/** A wording: group 1 the parameter (or `param` names it), group 2 the limit as the wording counts it. */
interface SizeWording {
  readonly words: RegExp;
  /** The parameter when the wording names none of its own. */
  readonly param?: string;
  /** The most entries taken, from the number the wording states (an exclusive bound is one more). */
  readonly maxOf: (stated: number) => number;
}

const AS_STATED = (stated: number): number => stated;

const SIZE_WORDINGS: readonly SizeWording[] = [
  // OpenAI's, also relayed without its code (GitHub Copilot's API: `"code":"invalid_request_body"`,
  // caozhiyuan/copilot-api#188): "Invalid 'tools': array too long. Expected an array with maximum length 128, but got
  // an array with length 309 instead." (vishalmysore/Tools4AI#16, QwenLM/Qwen-Agent#228 for `stop`).
  {
    words: /invalid '([a-z_]+)': array too long\.(?: expected an array with maximum length (\d+))?/i,
    maxOf: AS_STATED,
  },
  // Groq: "len(stop) > 4 is not supported" (letta-ai/letta#1272).
  { words: /\blen\(([a-z_]+)\) > (\d+) is not supported/i, maxOf: AS_STATED },
  // Groq: "'tools' : maximum number of items is 128" (HunorLaczko/ha-groq-cloud-api#25).
  { words: /'([a-z_]+)' ?: maximum number of items is (\d+)/i, maxOf: AS_STATED },
  // Gemini: "* GenerateContentRequest.generation_config.stop_sequences: the number of stop_sequences must not exceed
  // 5." (BerriAI/litellm#18921; the same from generativelanguage.googleapis.com, continuedev/continue#2702).
  { words: /\bthe number of ([a-z_]+) must not exceed (\d+)/i, maxOf: AS_STATED },
  // Vertex AI: "Unable to submit request because it has a stopSequences value of 10 but the supported range is from 1
  // (inclusive) to 6 (exclusive)." (continuedev/continue#7849).
  {
    words: /has a ([a-z_]+) value of \d+ but the supported range is from \d+ \(inclusive\) to (\d+) \(exclusive\)/i,
    maxOf: (stated) => stated - 1,
  },
  // vLLM (pydantic's `too_long`, read from FastAPI's `detail` as "<field>: <msg>" with the field as `param`):
  // "ChatCompletionRequest.stop: List should have at most 4 items" (vllm-project/vllm#51997).
  { words: /^(?:[a-z_.]+\.)?([a-z_]+)?:? ?list should have at most (\d+) items?\b/i, maxOf: AS_STATED },
  // FastDeploy: "Length of stop ([2, 16, 2, 1, 3, 3]) exceeds the limit max_model_len(5)." (PaddlePaddle/FastDeploy#3216).
  { words: /\blength of ([a-z_]+) \([^)]*\) exceeds the limit [a-z_]+\((\d+)\)/i, maxOf: AS_STATED },
  // Zhipu GLM: "stop:最大只能有4个停止词" ("stop: at most 4 stop words", QwenLM/Qwen-Agent#370). Escaped: esbuild's
  // `charset: "ascii"` leaves a regular expression's characters as they are, and one non-ASCII character makes V8 hold
  // the whole bundle file (the start-up snapshot's: 1.8 MB) as two-byte text (bin/bundle-plugins.js, nonAsciiOutputs).
  { words: /^([a-z_]+):\u6700\u5927\u53ea\u80fd\u6709(\d+)\u4e2a\u505c\u6b62\u8bcd/i, maxOf: AS_STATED },
  // Google's OpenAI-compatible embeddings: "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one
  // batch" (its inputs, one request each; googleapis/python-genai#427).
  { words: /\bat most (\d+) requests can be in one batch\b/i, param: "input", maxOf: AS_STATED },
  // GitHub Copilot's API: "You may not include more than 128 tools in your request." (microsoft/vscode-copilot-release#9375).
  { words: /\bmay not include more than (\d+) tools\b/i, param: "tools", maxOf: AS_STATED },
];

/** Error messages are short; a long one is read only as far as this. */
const MAX_READ_CHARS = 2_000;

/**
 * The refusal's parameter and stated limit when it refuses a parameter for its size; undefined otherwise. `request`:
 * the body sent, when known: a wording whose sentence only quotes it back (a content filter's `input '...'`) is the
 * prompt's words, not the provider's (request-echo.ts isEchoedPhrase, as for "not supported"), and is not read.
 */
export function sizeRefusalOf(error: UpstreamErrorFields, request?: unknown): SizeRefusal | undefined {
  const message = error.message.length > MAX_READ_CHARS ? error.message.slice(0, MAX_READ_CHARS) : error.message;
  const isCoded = error.code !== undefined && SIZE_REFUSAL_CODES.has(error.code.toLowerCase());
  for (const wording of SIZE_WORDINGS) {
    const match = wording.words.exec(message);
    if (match === null) continue;
    if (isEchoedPhrase(message, match.index, match.index + match[0].length, request)) continue;
    // A wording that names its parameter itself states its limit in its second group, else in its first.
    const named = wording.param ?? match[1];
    const stated = wording.param === undefined ? match[2] : match[1];
    // Zhipu sends `"param": ""` beside its wording: an empty param names nothing.
    return {
      param: error.param === undefined || error.param === "" ? named || undefined : error.param,
      maxEntries: limitOf(wording, stated),
    };
  }
  return isCoded ? { param: error.param, maxEntries: undefined } : undefined;
}

/**
 * The most entries a wording's stated number means, or undefined when it states none a lesson can keep: 400 digits read
 * as Infinity, a lesson that held for no request here but was written `null` to the state file and Redis, read back
 * as a lesson about every size.
 */
function limitOf(wording: SizeWording, stated: string | undefined): number | undefined {
  if (stated === undefined) return undefined;
  const limit = wording.maxOf(Number(stated));
  return Number.isSafeInteger(limit) ? limit : undefined;
}

/**
 * The request's parameter a size refusal names: its own key, or Gemini's and Vertex's names for chat's `stop`
 * (`stop_sequences`, `stopSequences`: their OpenAI-compatible API renames it).
 */
export function requestParamOf(param: string): string {
  return param === "stop_sequences" || param === "stopSequences" ? "stop" : param;
}

/**
 * The fewest entries of the parameter a later request may carry to be refused as this one was: above the stated limit,
 * else as many as were sent (fewer were never refused). Undefined when neither is known.
 */
export function refusedFromEntries(refusal: SizeRefusal, sentEntries: number | undefined): number | undefined {
  const aboveStated = refusal.maxEntries === undefined ? undefined : refusal.maxEntries + 1;
  if (aboveStated === undefined) return sentEntries;
  return sentEntries === undefined ? aboveStated : Math.min(aboveStated, sentEntries);
}
