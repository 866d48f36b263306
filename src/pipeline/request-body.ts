// Request body validation per endpoint. Only the fields the gateway itself reads are checked; every other field
// (tools, response_format, stream_options, ...) passes through untouched, as the upstream may know it.
import { z } from "zod";
import { ZOD_CUSTOM_ISSUE } from "../config/scoring-schema.ts";
import { InvalidRequestError } from "../errors/gateway-error.ts";
import { isRecord } from "../is-record.ts";
import { chatBodyProblem, dropEmptyTools } from "../protocols/chat-message-rules.ts";
import { arrayOf, formatPath } from "../protocols/validate.ts";
import { PRIORITY_AUTO } from "../router/plan-route.ts";
import { UploadedFile } from "../upstream/multipart-payload.ts";
import { quickChatBody } from "./chat-body-check.ts";

export const modelField = z
  .string({ error: "`model` is required and must be a string" })
  .min(1, "`model` must not be empty");
export const fallbackModels = arrayOf(
  z.string().min(1),
  z.array(z.unknown(), { error: "`models` must be an array of model names" }),
).optional();
// The OpenAI API (and its SDK's types: `stream?: false | null`) takes null for "not streamed". Null is dropped
// here, so every reader sees true, false or nothing, and no upstream that only takes a boolean is sent null.
export const streamField = z
  .boolean({ error: "`stream` must be a boolean" })
  .nullable()
  .optional()
  .transform((stream) => stream ?? undefined);

const message = z.looseObject({
  role: z.string({ error: "each message needs a string `role`" }),
});

export const chatBodySchema = z
  .looseObject({
    model: modelField,
    models: fallbackModels,
    messages: arrayOf(
      message,
      z
        .array(z.unknown(), { error: "`messages` is required and must be an array" })
        .min(1, "`messages` must not be empty"),
    ),
    stream: streamField,
    max_tokens: z.number().int().positive().nullable().optional(),
    max_completion_tokens: z.number().int().positive().nullable().optional(),
    tools: z.array(z.unknown(), { error: "`tools` must be an array" }).optional(),
    n: z.number().int().positive().nullable().optional(),
    /** Gateway extension: `reasoning_effort` for the candidates that take it only (docs/protocols.md "Reasoning"). */
    x_gateway_reasoning_effort: z
      .string({ error: "`x_gateway_reasoning_effort` must be a string" })
      .min(1, "`x_gateway_reasoning_effort` must not be empty")
      .optional(),
  })
  .superRefine((body, context) => {
    if (!Array.isArray(body.messages)) return; // its own issue is already said
    const problem = chatBodyProblem(body.messages, body.tools, body.tool_choice);
    if (problem === undefined) return;
    context.addIssue({ code: ZOD_CUSTOM_ISSUE, message: problem.message, path: [...problem.path], input: body });
  })
  .transform(dropEmptyTools);

/**
 * One item of an embeddings `input` list: a text, a token id, a list of token ids (each item is embedded alone), or an
 * object (the multimodal inputs some providers take, `{ "text" }`, `{ "image" }`), which goes to them as it came.
 */
function isEmbeddingInputItem(item: unknown): boolean {
  return (
    typeof item === "string" ||
    typeof item === "number" ||
    isRecord(item) ||
    (Array.isArray(item) && item.every((id) => typeof id === "number"))
  );
}

export const embeddingBodySchema = z.looseObject({
  model: modelField,
  models: fallbackModels,
  input: z
    .union([z.string(), z.array(z.unknown())], { error: "`input` is required: a string or an array" })
    // The first bad item only, as `arrayOf` does (a union's own error would hide it), and a plain test rather than a
    // zod schema per item: a million token ids took 0.5 s through one (0.1 s unchecked); `every` stops at a token
    // list's first bad id.
    .superRefine((input, context) => {
      // OpenAI's reference: the input "cannot be an empty string", a list holds 1 to 2048 items. Sent on, a host
      // answered `data: []` (a bad_response, failed over to every candidate) or a vector of nothing.
      if (input === "" || (Array.isArray(input) && input.length === 0)) {
        const message = "`input` must not be empty: give a text (or at least one item) to embed";
        context.addIssue({ code: ZOD_CUSTOM_ISSUE, message, path: [], input });
        return;
      }
      if (!Array.isArray(input)) return;
      const index = input.findIndex((item) => !isEmbeddingInputItem(item));
      if (index === -1) return;
      context.addIssue({
        code: ZOD_CUSTOM_ISSUE,
        message: "each `input` item must be a string, a token id, a list of token ids or an object",
        path: [index],
        input: input[index],
      });
    }),
  // Embeddings are one JSON answer: `stream: true` would be sent upstream, refused there or answered with a stream
  // the gateway cannot pass on (a 502). Said at once instead.
  stream: z
    .union([z.literal(false), z.null()], { error: "`stream` is not supported for embeddings: leave it out" })
    .optional(),
});

/**
 * An audio upload, as server/multipart-body.ts parsed it: every field is text (a repeated one a list), the file an
 * UploadedFile, `models` a list. Only `model`, `models`, `file` and `stream` are read; the rest goes to the provider
 * as it came. `stream: true` (`gpt-4o-transcribe`) is relayed as `transcript.text.*` events (docs/streaming.md).
 */
export const transcriptionBodySchema = z.looseObject({
  model: modelField,
  models: fallbackModels,
  file: z.instanceof(UploadedFile, {
    error: "`file` is required: the audio file, sent as a multipart/form-data file part",
  }),
  stream: z
    .union([z.literal("false"), z.literal(false), z.literal("true"), z.literal(true)], {
      error: "`stream` must be `true` or `false`",
    })
    .optional(),
});

/** A translation upload: as a transcription's, but OpenAI's translations have no streamed form. */
export const translationBodySchema = transcriptionBodySchema.extend({
  // A streamed answer would be refused by the relay as "an event stream to a non-stream request" after the upload:
  // said at once instead.
  stream: z
    .union([z.literal("false"), z.literal(false)], {
      error: "`stream` is not supported for translations: leave it out",
    })
    .optional(),
});

/**
 * Text to speech (`/v1/audio/speech`), answered with the audio's bytes (relayed as they come), or with
 * `speech.audio.*` events (`stream_format: sse`, docs/streaming.md). Only `model`, `input` and `stream_format`
 * are read; `voice`, `response_format`, `speed`, `instructions` go to the provider as they came (it knows its voices).
 * `input` has no length bound here (OpenAI's is 4,096 characters, other hosts' differ: ElevenLabs up to 40,000, Polly
 * 6,000): a longer one is the provider's to refuse, and its tokens count against the budgets like any prompt's. The
 * gateway's own work on it is bounded by `body_limit_bytes` and MAX_ESTIMATED_CHARS (docs/limits.md "Text to speech").
 */
export const speechBodySchema = z.looseObject({
  model: modelField,
  models: fallbackModels,
  input: z
    .string({ error: "`input` is required: the text to speak, as a string" })
    .min(1, "`input` must not be empty: the text to speak"),
  stream_format: z
    .enum(["audio", "sse"], {
      error: "`stream_format` must be `audio` (the audio's bytes) or `sse` (`speech.audio.delta` events)",
    })
    .optional(),
  stream: z
    .union([z.literal(false), z.null()], { error: "`stream` is not supported for speech: leave it out" })
    .optional(),
});

/**
 * Image generation (`/v1/images/generations`), answered with `{created, data: [{url | b64_json}]}`. Only `model`,
 * `prompt`, `n` and `stream` are read; `size`, `quality`, `style`, `response_format`, `background`, `output_format`
 * and the hosts' own (`steps`, `negative_prompt`, ...) go to the provider as they came: which values a model takes
 * differs by model, and a refusal is the provider's. `prompt` has no length bound here (OpenAI's is 1,000 to 32,000
 * characters by model); its tokens count against the budgets like any prompt's.
 */
export const imageBodySchema = z.looseObject({
  model: modelField,
  models: fallbackModels,
  prompt: z
    .string({ error: "`prompt` is required: the description of the image, as a string" })
    .min(1, "`prompt` must not be empty: the description of the image"),
  n: z
    .number({ error: "`n` must be a number: how many images to make" })
    .int("`n` must be a whole number of images")
    .positive("`n` must be at least 1")
    .nullable()
    .optional(),
  // `gpt-image-1` streams partial images as `image_generation.partial_image` events: one JSON answer is what the
  // gateway relays, so it is said at once rather than failed by every candidate after the call.
  stream: z
    .union([z.literal(false), z.null()], {
      error: "`stream` is not supported for image generation: leave it out to get the images in one answer",
    })
    .optional(),
});

const uploadedImage = z.instanceof(UploadedFile);

/**
 * Image editing (`/v1/images/edits`), as server/multipart-body.ts parsed the upload: the images to edit as `image` (one
 * file, or several) or `image[]` parts (OpenAI's SDK sends a list so), kept under the name they came as and sent on so,
 * an optional `mask` file, and the `prompt`. Every other field (`n`, `size`, `quality`, `response_format`,
 * `background`, `output_format`, `input_fidelity`, `user`, ...) is text, and goes to the provider as it came.
 */
export const imageEditBodySchema = z
  .looseObject({
    model: modelField,
    models: fallbackModels,
    image: z
      .union([uploadedImage, arrayOf(uploadedImage)], {
        error: "`image` must be a file part: the image to edit, sent as a multipart/form-data file",
      })
      .optional(),
    "image[]": arrayOf(
      uploadedImage,
      z.array(z.unknown(), { error: "`image[]` must be file parts: the images to edit" }),
    ).optional(),
    mask: z
      .instanceof(UploadedFile, { error: "`mask` must be a file part: a PNG whose transparent areas are edited" })
      .optional(),
    prompt: z
      .string({ error: "`prompt` is required: the description of the edit, as a string" })
      .min(1, "`prompt` must not be empty: the description of the edit"),
    // `gpt-image-1` streams partial images as `image_edit.partial_image` events: one JSON answer is what the gateway
    // relays, so it is said at once rather than failed by every candidate after the upload.
    stream: z
      .union([z.literal("false"), z.literal(false)], {
        error: "`stream` is not supported for image edits: leave it out to get the images in one answer",
      })
      .optional(),
  })
  .refine((body) => body.image !== undefined || body["image[]"] !== undefined, {
    error: "`image` is required: the image to edit, sent as a multipart/form-data file part (several as `image[]`)",
    path: ["image"],
  });

/**
 * Image variations (`/v1/images/variations`): one `image` file and text fields (`n`, `size`, `response_format`,
 * `user`), which go to the provider as they came.
 */
export const imageVariationBodySchema = z.looseObject({
  model: modelField,
  models: fallbackModels,
  image: z.instanceof(UploadedFile, {
    error: "`image` is required: the image to vary, sent as a multipart/form-data file part",
  }),
  stream: z
    .union([z.literal("false"), z.literal(false)], {
      error: "`stream` is not supported for image variations: leave it out",
    })
    .optional(),
});

/**
 * Most documents one rerank request may carry: Cohere and Voyage refuse more than 1,000, and every document is one
 * query-document pair the provider scores.
 */
export const MAX_RERANK_DOCUMENTS = 1_000;

const rerankDocument = z.union([z.string(), z.looseObject({ text: z.string() })], {
  error: "each document must be a string or an object with a string `text`",
});

/**
 * Rerank (`/v1/rerank`), the shape Cohere, Jina, Together, vLLM and Infinity share. `query`, `documents`, `top_n`
 * and `return_documents` are read (a provider of another dialect gets them translated, upstream/rerank-dialect.ts);
 * the rest (`max_tokens_per_doc`, `rank_fields`, `truncation`, ...) goes to the provider as it came.
 */
export const rerankBodySchema = z.looseObject({
  model: modelField,
  models: fallbackModels,
  query: z
    .string({ error: "`query` is required: the text to rank the documents against, as a string" })
    .min(1, "`query` must not be empty: the text to rank the documents against"),
  documents: arrayOf(
    rerankDocument,
    z
      .array(z.unknown(), { error: "`documents` is required: an array of strings or of objects with a `text`" })
      .min(1, "`documents` must not be empty: give at least one document to rank")
      .max(MAX_RERANK_DOCUMENTS, `\`documents\` holds at most ${MAX_RERANK_DOCUMENTS} documents per request`),
  ),
  top_n: z
    .number({ error: "`top_n` must be a positive whole number" })
    .int("`top_n` must be a positive whole number")
    .positive("`top_n` must be a positive whole number")
    .nullable()
    .optional()
    .transform((top) => top ?? undefined),
  return_documents: z
    .boolean({ error: "`return_documents` must be a boolean" })
    .nullable()
    .optional()
    .transform((value) => value ?? undefined),
  // One JSON answer: no rerank API streams.
  stream: z
    .union([z.literal(false), z.null()], { error: "`stream` is not supported for rerank: leave it out" })
    .optional(),
});

/**
 * Most inputs one moderation request may carry. OpenAI documents no bound; a Llama Guard candidate is sent one chat
 * call per input (upstream/moderation-dialect.ts), so a list of thousands would hold one attempt for minutes.
 */
export const MAX_MODERATION_INPUTS = 100;

const moderationText = z.string({
  error: "each item of `input` must be a string when the first is: an array of texts, or of text and image_url parts",
});
const moderationPart = z.discriminatedUnion(
  "type",
  [
    z.looseObject({
      type: z.literal("text"),
      text: z.string({ error: "`text` must be a string: the text part's text" }),
    }),
    z.looseObject({
      type: z.literal("image_url"),
      image_url: z.looseObject(
        {
          url: z
            .string({ error: "`url` must be a string: the image's URL or data URL" })
            .min(1, "`url` must not be empty: the image's URL or data URL"),
        },
        { error: "`image_url` must be an object with a `url`" },
      ),
    }),
  ],
  {
    error:
      'each item of `input` must be a text part ({"type":"text","text":...}) or an image part ({"type":"image_url","image_url":{"url":...}}) when the first is a part',
  },
);
const moderationInputBounds = z
  .array(z.unknown())
  .min(1, "`input` must not be empty: give at least one text (or part) to classify")
  .max(MAX_MODERATION_INPUTS, `\`input\` holds at most ${MAX_MODERATION_INPUTS} items per request`);
/** An array of texts (one result each), or OpenAI's multimodal parts (one input: one result). */
const moderationTexts = arrayOf(moderationText, moderationInputBounds);
const moderationParts = arrayOf(moderationPart, moderationInputBounds);

/**
 * Moderations (`/v1/moderations`, OpenAI's). `model` may be left out, as OpenAI's SDK allows: the request then asks for
 * `priority-auto`, the best moderation model. `input` is a text, an array of texts, or an array of text and image
 * parts; which array it is, its first item says, and every item must be of that form. The rest goes to a native
 * moderation endpoint as it came.
 */
export const moderationBodySchema = z.looseObject({
  model: modelField.optional().transform((model) => model ?? PRIORITY_AUTO),
  models: fallbackModels,
  input: z
    .union([z.string(), z.array(z.unknown())], {
      error: "`input` is required: a string, an array of strings, or an array of text and image_url parts",
    })
    // The array's form is read from its first item, then checked by arrayOf, which stops at the first bad item (a
    // union of both array forms would check a huge bad array twice and hide which item is wrong).
    .transform((input, context) => {
      if (typeof input === "string") {
        if (input !== "") return input;
        context.addIssue({
          code: ZOD_CUSTOM_ISSUE,
          message: "`input` must not be empty: give the text to classify",
          input,
        });
        return z.NEVER;
      }
      const form = typeof input[0] === "string" ? moderationTexts : moderationParts;
      const checked = form.safeParse(input);
      if (checked.success) return checked.data;
      const issue = checked.error.issues[0];
      context.addIssue({
        code: ZOD_CUSTOM_ISSUE,
        message: issue?.message ?? "`input` is not a moderation input",
        path: issue?.path.filter((key) => typeof key !== "symbol") ?? [],
        input,
      });
      return z.NEVER;
    }),
  // One JSON answer: no moderation API streams.
  stream: z
    .union([z.literal(false), z.null()], { error: "`stream` is not supported for moderations: leave it out" })
    .optional(),
});

export type ChatBody = z.infer<typeof chatBodySchema>;

/** Validates a parsed JSON body; the first problem becomes a 400 naming the offending field in `param`. */
export function parseBody<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> & Record<string, unknown> {
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new InvalidRequestError("The request body must be a JSON object.", { code: "invalid_body" });
  }
  // The chat doors' common body skips zod (chat-body-check.ts: same output, zod still words every refusal).
  const quick = (schema as z.ZodType) === chatBodySchema ? quickChatBody(body as Record<string, unknown>) : undefined;
  if (quick !== undefined) return quick as z.infer<T> & Record<string, unknown>;
  const result = schema.safeParse(body);
  if (result.success) return result.data as z.infer<T> & Record<string, unknown>;
  const issue = result.error.issues[0];
  // OpenAI's way of naming a field (`messages[2].role`), as the Responses and Messages doors' validation does.
  const param = issue === undefined ? null : formatPath(issue.path);
  const message = issue === undefined ? "Invalid request body." : describeIssue(issue, param ?? "");
  throw new InvalidRequestError(message, { param: param === "" ? null : param, code: "invalid_value" });
}

function describeIssue(issue: z.core.$ZodIssue, param: string): string {
  if (issue.message.startsWith("`") || issue.message.startsWith("each")) return issue.message;
  return param === "" ? issue.message : `Invalid \`${param}\`: ${issue.message}`;
}
