// A refusal of a parameter for its size (too many entries), not its value: which parameter, and the most entries the
// provider says it takes. Pure. Only wordings seen from real providers are read (each cited); another refusal that
// names a parameter is read by the other rows of classify-response.ts.
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
  // OpenAI's: "Invalid 'tools': array too long. Expected an array with maximum length 128, but got an array with length
  // 309 instead." (vishalmysore/Tools4AI#16, QwenLM/Qwen-Agent#228 for `stop`): the limit it states.
  {
    words: /invalid '([a-z_]+)': array too long\.(?: expected an array with maximum length (\d+))?/i,
    maxOf: AS_STATED,
  },
];

/** Error messages are short; a long one is read only as far as this. */
const MAX_READ_CHARS = 2_000;

/** The refusal's parameter and stated limit when it refuses a parameter for its size; undefined otherwise. */
export function sizeRefusalOf(error: UpstreamErrorFields): SizeRefusal | undefined {
  const message = error.message.length > MAX_READ_CHARS ? error.message.slice(0, MAX_READ_CHARS) : error.message;
  const isCoded = error.code !== undefined && SIZE_REFUSAL_CODES.has(error.code.toLowerCase());
  for (const wording of SIZE_WORDINGS) {
    const match = wording.words.exec(message);
    if (match === null) continue;
    // A wording that names its parameter itself states its limit in its second group, else in its first.
    const named = wording.param ?? match[1];
    const stated = wording.param === undefined ? match[2] : match[1];
    return {
      param: error.param ?? (named === "" ? undefined : named),
      maxEntries: stated === undefined ? undefined : wording.maxOf(Number(stated)),
    };
  }
  return isCoded ? { param: error.param, maxEntries: undefined } : undefined;
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
