// zod schemas for the Anthropic Messages request: the top level here, and one schema per content block type,
// which request-mapping.ts applies after choosing by `type` (so an unsupported block gets its own clear error).
import { z } from "zod";
import { arrayOf } from "../validate.ts";
import { MAX_STOP_SEQUENCES, MAX_STOP_SEQUENCES_CHARS } from "./stop-sequences.ts";

// Blocks are checked one by one where the turn's role says which types it takes (request-mapping.ts `blockAt`), so a
// bad one is named by its position (`messages.3.content.2`) and told the accepted types: inside zod's union of a
// string and an array of blocks, a bad block failed the union, reported as a bad `content` without its position.
// The array's elements are not looked at here (no issue per element: see `arrayOf`).
const blocks = z.array(z.unknown());
const content = z.union([z.string(), blocks], { error: "`content` must be a string or an array of blocks" });

/** The value of `top_p` and `top_k` that means "not set" (Anthropic's legacy default, still sent by some clients). */
export const NOT_SET = -1;

export const messagesRequestSchema = z.looseObject({
  model: z.string({ error: "`model` is required and must be a string" }).min(1, "`model` must not be empty"),
  /** Gateway extension, as on chat: fallback models tried after `model`. */
  models: arrayOf(
    z.string().min(1),
    z.array(z.unknown(), { error: "`models` must be an array of model names" }),
  ).optional(),
  max_tokens: z
    .number({ error: "`max_tokens` is required: an integer, 0 or more (the Messages API has no default)" })
    .int("`max_tokens` must be an integer")
    // 0 is Anthropic's cache pre-warming: the prompt is read (and cached), nothing is generated (request-mapping.ts).
    .nonnegative("`max_tokens` must not be negative"),
  system: z.union([z.string(), blocks], { error: "`system` must be a string or an array of text blocks" }).optional(),
  messages: arrayOf(
    z.looseObject({
      // `system` turns inside `messages` are in the SDK's MessageParam (SystemMessageParam: text only).
      role: z.enum(["user", "assistant", "system"], { error: "`role` must be `user`, `assistant` or `system`" }),
      content,
    }),
    z
      .array(z.unknown(), { error: "`messages` is required and must be an array" })
      .min(1, "`messages` must not be empty"),
  ),
  tools: arrayOf(z.looseObject({ name: z.string().min(1), type: z.string().nullish() })).optional(),
  tool_choice: z
    .looseObject({
      type: z.enum(["auto", "any", "tool", "none"], { error: "`tool_choice.type` must be auto, any, tool or none" }),
      name: z.string().min(1).optional(),
      disable_parallel_tool_use: z.boolean().optional(),
    })
    .optional(),
  // Bounded after each entry is checked (the first bad one is named as before): the gateway matches them itself.
  stop_sequences: arrayOf(z.string())
    .refine((sequences) => sequences.length <= MAX_STOP_SEQUENCES, {
      error: `at most ${MAX_STOP_SEQUENCES.toLocaleString("en")} stop sequences are taken`,
    })
    .refine((sequences) => sequences.reduce((sum, sequence) => sum + sequence.length, 0) <= MAX_STOP_SEQUENCES_CHARS, {
      error: `stop sequences of at most ${MAX_STOP_SEQUENCES_CHARS.toLocaleString("en")} characters in all are taken`,
    })
    .optional(),
  temperature: z.number().min(0).max(1).optional(),
  // -1 is "not set" on Anthropic's API, which takes it: LangChain JS's ChatAnthropic sends `top_k: -1, top_p: -1` on
  // every request unless told otherwise (its defaults). Refused here, every such request failed (request-mapping.ts).
  top_p: z
    .number()
    .refine((value) => value === NOT_SET || (value >= 0 && value <= 1), {
      error: "`top_p` must be between 0 and 1 (or -1: not set)",
    })
    .optional(),
  top_k: z.number().int().min(NOT_SET, "`top_k` must be 0 or more (or -1: not set)").optional(),
  metadata: z.looseObject({ user_id: z.string().nullish() }).optional(),
  stream: z.boolean().optional(),
  mcp_servers: z.array(z.unknown(), { error: "`mcp_servers` must be an array" }).nullish(),
  thinking: z
    .looseObject({
      type: z.string(),
      budget_tokens: z.number().int().positive().optional(),
      display: z.enum(["summarized", "omitted"]).nullish(),
    })
    .optional(),
});

export type MessagesRequest = z.infer<typeof messagesRequestSchema>;

/** `POST /v1/messages/count_tokens` takes the same body without `max_tokens`. */
export const countTokensRequestSchema = messagesRequestSchema.extend({
  max_tokens: z.number().int().nonnegative().optional(),
});

export const textBlockSchema = z.looseObject({ type: z.literal("text"), text: z.string() });

export const imageBlockSchema = z.looseObject({
  type: z.literal("image"),
  source: z.discriminatedUnion(
    "type",
    [
      z.looseObject({ type: z.literal("base64"), media_type: z.string().min(1), data: z.string().min(1) }),
      z.looseObject({ type: z.literal("url"), url: z.string().min(1) }),
    ],
    { error: "`source.type` must be `base64` or `url` (the gateway keeps no uploaded files)" },
  ),
});

export const documentBlockSchema = z.looseObject({
  type: z.literal("document"),
  source: z.discriminatedUnion(
    "type",
    [
      z.looseObject({ type: z.literal("base64"), media_type: z.string().min(1), data: z.string().min(1) }),
      z.looseObject({ type: z.literal("text"), data: z.string() }),
      // A document of the client's own content blocks (text and images), e.g. chunks it wants cited.
      z.looseObject({
        type: z.literal("content"),
        content: z.union([z.string(), blocks], { error: "`content` must be a string or an array of blocks" }),
      }),
    ],
    { error: "`source.type` must be `base64`, `text` or `content` for documents" },
  ),
  title: z.string().nullish(),
});

/** Anthropic's `SearchResultBlockParam`: a result the client's own search found (RAG), its text in text blocks. */
export const searchResultBlockSchema = z.looseObject({
  type: z.literal("search_result"),
  source: z.string({ error: "`source` is required: a string (the result's URL or id)" }),
  title: z.string({ error: "`title` is required: a string" }),
  content: z.array(textBlockSchema, { error: "`content` must be an array of text blocks" }),
});

export const toolUseBlockSchema = z.looseObject({
  type: z.literal("tool_use"),
  id: z.string().min(1),
  name: z.string().min(1),
  // An object, as Anthropic's API takes it (its 400: "Input should be a valid dictionary"); a string was sent on as a
  // JSON string of arguments, which chat providers refuse or the model reads as text. Left out: `{}` (request-mapping.ts).
  input: z.record(z.string(), z.unknown(), { error: "Input should be a valid dictionary" }).optional(),
});

export const toolResultBlockSchema = z.looseObject({
  type: z.literal("tool_result"),
  tool_use_id: z.string().min(1),
  content: z.union([z.string(), blocks], { error: "`content` must be a string or an array of blocks" }).optional(),
  is_error: z.boolean().optional(),
});

export const customToolSchema = z.looseObject({
  name: z.string().min(1),
  description: z.string().optional(),
  input_schema: z.record(z.string(), z.unknown(), { error: "`input_schema` is required: a JSON schema object" }),
});
