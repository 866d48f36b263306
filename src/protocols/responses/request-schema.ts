// zod schemas for the Responses API request: the top level here, and one schema per input item, content part and
// tool type, which request-mapping.ts applies after choosing by `type` (so an unsupported type gets its own clear
// error instead of a union's "invalid input").
import { z } from "zod";
import { namespaceName, nonEmpty } from "../../responses-items.ts";
import { metadataSchema } from "../metadata.ts";
import { arrayOf } from "../validate.ts";

// The input items' schemas are the one rule a kept answer's items are read by too (responses-items.ts).
export {
  customToolCallItemSchema,
  customToolCallOutputItemSchema,
  functionCallItemSchema,
  functionCallOutputItemSchema,
  inputFileSchema,
  inputImageSchema,
  inputTextSchema,
  messageItemSchema,
  outputTextSchema,
  refusalSchema,
  toolSearchCallItemSchema,
  toolSearchOutputItemSchema,
} from "../../responses-items.ts";

export const responsesRequestSchema = z.looseObject({
  model: z.string({ error: "`model` is required and must be a string" }).min(1, "`model` must not be empty"),
  /** Gateway extension, as on chat: fallback models tried after `model`. */
  models: arrayOf(nonEmpty, z.array(z.unknown(), { error: "`models` must be an array of model names" })).optional(),
  input: z
    .union([z.string(), z.array(z.unknown())], { error: "`input` must be a string or an array of items" })
    .optional(),
  instructions: z.string({ error: "`instructions` must be a string" }).nullish(),
  tools: arrayOf(
    z.looseObject({ type: z.string() }),
    z.array(z.unknown(), { error: "`tools` must be an array of tools with a `type`" }),
  ).optional(),
  tool_choice: z.union([z.string(), z.looseObject({ type: z.string() })]).nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  text: z
    .looseObject({
      format: z.unknown().optional(),
      verbosity: z.enum(["low", "medium", "high"], { error: "`text.verbosity` must be low, medium or high" }).nullish(),
    })
    .nullish(),
  /** OpenAI's minimum (16) is checked apart, with its own code (request-mapping.ts checkOutputLimit). */
  max_output_tokens: z.number().int().nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  user: z.string().nullish(),
  safety_identifier: z.string().nullish(),
  prompt_cache_key: z.string().nullish(),
  service_tier: z.string().nullish(),
  /** The gateway's own reading: at most this many tool calls are kept in an answer (tool-call-limit.ts). */
  max_tool_calls: z.number().int().min(0).nullish(),
  metadata: metadataSchema.nullish(),
  store: z.boolean().nullish(),
  previous_response_id: z.string().min(1).nullish(),
  conversation: z
    .union([nonEmpty, z.looseObject({ id: nonEmpty })], {
      error: "`conversation` must be a conversation id or an object with `id`",
    })
    .nullish(),
  reasoning: z.looseObject({ effort: z.string().nullish(), summary: z.string().nullish() }).nullish(),
  stream: z.boolean().nullish(),
  background: z.boolean().nullish(),
  truncation: z.enum(["auto", "disabled"]).nullish(),
  include: z.array(z.string(), { error: "`include` must be an array of strings" }).nullish(),
  top_logprobs: z.number().int().min(0).max(20).nullish(),
});

export type ResponsesRequest = z.infer<typeof responsesRequestSchema>;

/** `POST /v1/responses/input_tokens` takes the same body, its `model` optional (only the calibration reads it). */
export const inputTokensRequestSchema = responsesRequestSchema.extend({
  model: z.string({ error: "`model` must be a string" }).min(1, "`model` must not be empty").nullish(),
});

export const itemReferenceSchema = z.looseObject({ type: z.literal("item_reference"), id: nonEmpty });

export const functionToolSchema = z.looseObject({
  type: z.literal("function"),
  name: nonEmpty,
  description: z.string().nullish(),
  parameters: z.record(z.string(), z.unknown()).nullish(),
  strict: z.boolean().nullish(),
});

export const customToolSchema = z.looseObject({
  type: z.literal("custom"),
  name: nonEmpty,
  description: z.string().nullish(),
  format: z
    .discriminatedUnion(
      "type",
      [
        z.looseObject({ type: z.literal("text") }),
        z.looseObject({
          type: z.literal("grammar"),
          definition: z.string(),
          syntax: z.enum(["lark", "regex"]).nullish(),
        }),
      ],
      { error: "`format.type` must be `text` or `grammar`" },
    )
    .nullish(),
});

/** A group of function and custom tools (tool-names.ts); its members are checked one by one, by their type. */
export const namespaceToolSchema = z.looseObject({
  type: z.literal("namespace"),
  name: namespaceName,
  description: z.string().nullish(),
  tools: arrayOf(
    z.looseObject({ type: z.string() }),
    z.array(z.unknown(), {
      error: "`tools` must be an array of the namespace's function and custom tools, each with a `type`",
    }),
  ),
});

export const textFormatSchema = z.discriminatedUnion(
  "type",
  [
    z.looseObject({ type: z.literal("text") }),
    z.looseObject({ type: z.literal("json_object") }),
    z.looseObject({
      type: z.literal("json_schema"),
      name: nonEmpty,
      schema: z.record(z.string(), z.unknown()),
      description: z.string().nullish(),
      strict: z.boolean().nullish(),
    }),
  ],
  { error: "`text.format.type` must be `text`, `json_object` or `json_schema`" },
);

export const functionToolChoiceSchema = z.looseObject({
  type: z.enum(["function", "custom"]),
  name: nonEmpty,
  namespace: z.string().nullish(),
});
export const allowedToolsChoiceSchema = z.looseObject({
  type: z.literal("allowed_tools"),
  mode: z.enum(["auto", "required"]),
  tools: arrayOf(z.looseObject({ type: z.string(), name: z.string().optional(), namespace: z.string().nullish() })),
});

/** Codex's own tool search (`execution: "client"`): it runs the search and loads the tools found (tool-search.ts). */
export const clientToolSearchToolSchema = z.looseObject({
  type: z.literal("tool_search"),
  execution: z.literal("client"),
  description: z.string().nullish(),
  parameters: z.record(z.string(), z.unknown()).nullish(),
});
