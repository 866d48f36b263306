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
    prompt: z.union([z.string(), z.array(z.unknown())], { error: "`prompt` is required: a string or an array" }),
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
