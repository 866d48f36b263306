// The legacy completions body (`POST /v1/completions`): what the gateway reads of it and what OpenAI's reference
// refuses, checked before any upstream call.
import { z } from "zod";
import { ZOD_CUSTOM_ISSUE } from "../config/scoring-schema.ts";
import { fallbackModels, modelField, streamField } from "./request-body.ts";

/**
 * `n`, `best_of`, `echo` and `suffix` are checked as OpenAI's reference states them (`best_of` at least `n`, never
 * streamed: "Results cannot be streamed"): sent on, a host that does not check them (a vLLM ignores `best_of` on a
 * stream, a string `n` reached a Python server as a 422 in its own shape) answered otherwise than the 400 OpenAI gives.
 */
export const completionBodySchema = z
  .looseObject({
    model: modelField,
    models: fallbackModels,
    prompt: z
      .union([z.string(), z.array(z.unknown())], { error: "`prompt` is required: a string or an array" })
      .superRefine((prompt, context) => {
        const problem = typeof prompt === "string" ? undefined : promptListProblem(prompt);
        if (problem !== undefined) context.addIssue({ code: ZOD_CUSTOM_ISSUE, input: prompt, ...problem });
      }),
    stream: streamField,
    max_tokens: z.number().int().positive().nullable().optional(),
    n: z.int({ error: "`n` must be an integer" }).positive("`n` must be at least 1").nullable().optional(),
    best_of: z
      .int({ error: "`best_of` must be an integer" })
      .positive("`best_of` must be at least 1")
      .nullable()
      .optional(),
    echo: z.boolean({ error: "`echo` must be a boolean" }).nullable().optional(),
    suffix: z.string({ error: "`suffix` must be a string" }).nullable().optional(),
  })
  .superRefine((body, context) => {
    const bestOf = body.best_of;
    if (bestOf === undefined || bestOf === null) return;
    // Only a `best_of` that picks among more than it returns cannot be streamed (vLLM streams `best_of == n`, "as
    // the OpenAI API"; LangChain's OpenAI LLM refuses `bestOf > 1` only); typed clients send their default `1`.
    if (body.stream === true && bestOf > (body.n ?? 1)) {
      const message = "`best_of` above `n` cannot be streamed (its results are picked at the end): leave out one";
      context.addIssue({ code: ZOD_CUSTOM_ISSUE, message, path: ["best_of"], input: bestOf });
    } else if (bestOf < (body.n ?? 1)) {
      const message = `\`best_of\` (${bestOf}) must be at least \`n\` (${body.n})`;
      context.addIssue({ code: ZOD_CUSTOM_ISSUE, message, path: ["best_of"], input: bestOf });
    }
  });

/**
 * What OpenAI's reference takes as a list `prompt`: strings, token ids, or lists of token ids, all of one form (the
 * first item's), and not empty. Anything else (`[]`, `[null]`, `["a", 1]`, `[{}]`, a token id of -1) was sent on, and
 * each host answered it its own way (a vLLM's 422 in its own shape, a 500, a blank completion).
 */
function promptListProblem(prompt: readonly unknown[]): { message: string; path: (string | number)[] } | undefined {
  if (prompt.length === 0) {
    return { message: "`prompt` must not be empty: a string, strings, token ids or lists of token ids", path: [] };
  }
  const first = prompt[0];
  const isForm = typeof first === "string" ? isString : Array.isArray(first) ? isTokenList : isTokenId;
  const form = typeof first === "string" ? "a string" : Array.isArray(first) ? "a list of token ids" : "a token id";
  for (let index = 0; index < prompt.length; index++) {
    if (!isForm(prompt[index])) {
      const detail = index === 0 ? "" : ` as the first is: every item is ${form}`;
      return {
        message: `each item of \`prompt\` must be a string, a token id (a whole number of 0 or more) or a list of token ids${detail}`,
        path: [index],
      };
    }
  }
  return undefined;
}

function isString(item: unknown): boolean {
  return typeof item === "string";
}

function isTokenId(item: unknown): boolean {
  return Number.isSafeInteger(item) && (item as number) >= 0;
}

function isTokenList(item: unknown): boolean {
  return Array.isArray(item) && item.every(isTokenId);
}
