// The endpoints the pipeline serves, as data: each is the one forwarding pipeline with a different spec
// (upstream path, model kind, body schema, whether it streams, how to estimate its prompt).
import type { z } from "zod";
import type { ModelKind } from "../config/types.ts";
import { FRONT_DOORS, type FrontDoor } from "../front-doors.ts";
import { isRecord } from "../is-record.ts";
import { audioDurationOf } from "../limits/audio-duration.ts";
import {
  estimateChatPrompt,
  estimateTextInput,
  estimateTextInputs,
  type PromptFacts,
} from "../limits/token-estimate.ts";
import { UploadedFile } from "../upstream/multipart-payload.ts";
import { completionBodySchema } from "./completion-body.ts";
import {
  chatBodySchema,
  embeddingBodySchema,
  imageBodySchema,
  imageEditBodySchema,
  imageVariationBodySchema,
  moderationBodySchema,
  rerankBodySchema,
  speechBodySchema,
  transcriptionBodySchema,
  translationBodySchema,
} from "./request-body.ts";

/** A front door (front-doors.ts: name, kind, paths, protocol, ...) and how the pipeline serves it. */
export interface EndpointSpec extends FrontDoor {
  /** Path below the provider's base URL. */
  readonly upstreamPath: string;
  readonly schema: z.ZodType;
  readonly supportsStream: boolean;
  /** Whether a body asks for a stream: `stream: true` unless said (speech's `stream_format: sse`, a form's `"true"`). */
  readonly isStreamAsked?: (body: Record<string, unknown>) => boolean;
  /** A broken stream of this endpoint may be continued on another upstream (chat only: it has messages). */
  readonly isContinuable: boolean;
  /**
   * An answer translated from chat whose upstream reported no usage gets the gateway's estimate, marked
   * `x_gateway.usage_estimated` (streaming/estimated-usage.ts): a stream whose client asked for usage
   * (`stream_options.include_usage`; the Responses and Messages doors always ask) ends with an estimated usage chunk,
   * a JSON answer gets an estimated `usage`. The chat, legacy completions, Responses and Messages doors.
   */
  readonly estimatesUsage?: boolean;
  /**
   * The client's tools made what chat providers take (protocols/chat-tools-upstream.ts): tool names longer than 64
   * characters or with characters other than letters, digits, `_` and `-` (the deprecated `functions` too) go
   * upstream renamed and come back as the client named them, and `tool` messages with no text get a
   * placeholder. The chat door only: the Responses and Messages doors do so in their translations.
   */
  readonly adaptsChatTools?: boolean;
  /** Prompt size and content facts for budgets and fit checks. */
  estimate(body: Record<string, unknown>): PromptFacts;
  /** The field a refusal for the prompt's size names (`param`): `messages` unless said. */
  readonly promptParam?: string;
  /**
   * The client's name for its output limit where the door translates it into the chat body's `max_tokens` (the
   * Responses door's `max_output_tokens`), named by refusals; unless said, the body's own name.
   */
  readonly outputLimitParam?: string;
  /**
   * A legacy completions body (`prompt`): served by chat models, it gets of their provider's body rules only the
   * fields that API takes (providers/provider-rules-by-kind.ts `providerRulesForCompletions`).
   */
  readonly isLegacyCompletion?: boolean;
  /** A success is answered with bytes (audio), not JSON: read and passed on as they came (upstream/json-attempt.ts). */
  readonly isBinaryAnswer?: boolean;
  /**
   * A rerank request: sent in its provider's rerank dialect and its answer read back from it
   * (upstream/rerank-dialect.ts).
   */
  readonly isRerank?: boolean;
  /**
   * A moderation request: each candidate is called natively (`/moderations`) or, a Llama Guard model, through chat
   * completions once per input, and its answer read back into OpenAI's moderation object
   * (upstream/moderation-dialect.ts).
   */
  readonly isModeration?: boolean;
  /**
   * False: no context-fit check (a reranker's window holds one query-document pair, and providers cut long documents
   * themselves): its requests are planned, and explained (`/v1/gateway/route`), with 0 tokens to fit.
   */
  readonly hasContextFit?: false;
}

export const CHAT_ENDPOINT: EndpointSpec = {
  ...FRONT_DOORS.chat,
  upstreamPath: "/chat/completions",
  schema: chatBodySchema,
  supportsStream: true,
  isContinuable: true,
  estimatesUsage: true,
  adaptsChatTools: true,
  estimate: (body) => estimateChatPrompt(body.messages as unknown[], body.tools),
};

/**
 * The Responses and Messages front doors: their requests are translated into chat bodies and served by the chat
 * pipeline (same upstream path, schema, continuation), but recorded under their own name, so records, metrics'
 * `endpoint` label, log lines and the dashboard tell the doors apart. (The name also scopes sticky sessions:
 * an `x-session-id` keeps its deployment within one door.)
 */
export const RESPONSES_ENDPOINT: EndpointSpec = {
  ...CHAT_ENDPOINT,
  ...FRONT_DOORS.responses,
  promptParam: "input",
  outputLimitParam: "max_output_tokens",
  adaptsChatTools: false,
};
export const MESSAGES_ENDPOINT: EndpointSpec = { ...CHAT_ENDPOINT, ...FRONT_DOORS.messages, adaptsChatTools: false };

export const COMPLETIONS_ENDPOINT: EndpointSpec = {
  ...FRONT_DOORS.completions,
  upstreamPath: "/completions",
  schema: completionBodySchema,
  supportsStream: true,
  isContinuable: false,
  estimatesUsage: true,
  estimate: (body) => ({ promptTokens: estimateTextInput(body.prompt), hasImages: false }),
  promptParam: "prompt",
  isLegacyCompletion: true,
};

export const EMBEDDINGS_ENDPOINT: EndpointSpec = {
  ...FRONT_DOORS.embeddings,
  upstreamPath: "/embeddings",
  schema: embeddingBodySchema,
  supportsStream: false,
  isContinuable: false,
  estimate: (body) => {
    const tokens = estimateTextInputs(body.input);
    // Image parts: the plan leaves out a moderation model that reads text only (router/plan-route.ts acceptsImages).
    const hasImages =
      Array.isArray(body.input) && body.input.some((part) => isRecord(part) && part.type === "image_url");
    return { promptTokens: tokens.total, hasImages, fitTokens: tokens.longest };
  },
  promptParam: "input",
};

/**
 * Speech to text (`/v1/audio/transcriptions`) and to English text (`/v1/audio/translations`): a multipart upload,
 * served by transcription models (`whisper-*`, `*-transcribe`), one answer (JSON or plain text), or for a
 * transcription with `stream: true` its `transcript.text.*` events. The only text the gateway can count is the
 * optional `prompt`: the audio's tokens are the provider's to count.
 */
export const TRANSCRIPTIONS_ENDPOINT: EndpointSpec = {
  ...FRONT_DOORS.transcriptions,
  upstreamPath: "/audio/transcriptions",
  schema: transcriptionBodySchema,
  supportsStream: true,
  // A form's fields are text: `stream=true`.
  isStreamAsked: (body) => body.stream === true || body.stream === "true",
  isContinuable: false,
  // The upload's seconds, read from its header (a few fields of its first and last 64 KB) for `ash`/`asd` budgets.
  estimate: (body) => ({
    promptTokens: estimateTextInput(body.prompt ?? ""),
    hasImages: false,
    ...(body.file instanceof UploadedFile ? { audio: audioDurationOf(body.file.bytes) } : {}),
  }),
};

export const TRANSLATIONS_ENDPOINT: EndpointSpec = {
  ...TRANSCRIPTIONS_ENDPOINT,
  ...FRONT_DOORS.translations,
  upstreamPath: "/audio/translations",
  schema: translationBodySchema,
  supportsStream: false,
};

/**
 * Text to speech (`/v1/audio/speech`): a JSON body, served by speech models (`tts-1`, `gpt-4o-mini-tts`,
 * `playai-tts`, Orpheus), answered with the audio's bytes in the format asked for, relayed as they come
 * (streaming/relay-audio.ts), or with `speech.audio.*` events for `stream_format: sse`. The text to speak is the
 * prompt the budgets count.
 */
export const SPEECH_ENDPOINT: EndpointSpec = {
  ...FRONT_DOORS.speech,
  upstreamPath: "/audio/speech",
  schema: speechBodySchema,
  supportsStream: true,
  isStreamAsked: (body) => body.stream_format === "sse",
  isContinuable: false,
  isBinaryAnswer: true,
  estimate: (body) => ({ promptTokens: estimateTextInput(body.input), hasImages: false }),
  promptParam: "input",
};

/**
 * Image generation (`/v1/images/generations`): a JSON body, served by image models (`gpt-image-1`, `dall-e-3`, FLUX,
 * Imagen), one JSON answer (`data`: a URL or base64 image each), never streamed. The prompt is what the budgets
 * count; `gpt-image-1` reports its tokens in `usage`, which the books take as they take chat's.
 */
export const IMAGES_ENDPOINT: EndpointSpec = {
  ...FRONT_DOORS.images,
  upstreamPath: "/images/generations",
  schema: imageBodySchema,
  supportsStream: false,
  isContinuable: false,
  estimate: (body) => ({ promptTokens: estimateTextInput(body.prompt), hasImages: false }),
  promptParam: "prompt",
};

/**
 * Image editing (`/v1/images/edits`): a multipart upload of one or several images (`image`, or `image[]` parts), an
 * optional `mask` and a `prompt`, served by image models as generation is (same answer, checked the same way), never
 * streamed. The prompt is what the gateway can count; the images' tokens are the provider's (`usage`, as generation).
 */
export const IMAGE_EDITS_ENDPOINT: EndpointSpec = {
  ...FRONT_DOORS.imageEdits,
  upstreamPath: "/images/edits",
  schema: imageEditBodySchema,
  supportsStream: false,
  isContinuable: false,
  estimate: (body) => ({ promptTokens: estimateTextInput(body.prompt), hasImages: false }),
  promptParam: "prompt",
};

/**
 * Image variations (`/v1/images/variations`, `dall-e-2`'s): a multipart upload of one `image`, answered as generation
 * is. There is no prompt: nothing for the budgets to count but the request.
 */
export const IMAGE_VARIATIONS_ENDPOINT: EndpointSpec = {
  ...FRONT_DOORS.imageVariations,
  upstreamPath: "/images/variations",
  schema: imageVariationBodySchema,
  supportsStream: false,
  isContinuable: false,
  estimate: () => ({ promptTokens: 0, hasImages: false }),
};

/**
 * Rerank (`/v1/rerank`): a query and documents, served by rerank models, answered with each document's relevance
 * score, never streamed. The query and every document are the prompt the budgets count.
 */
export const RERANK_ENDPOINT: EndpointSpec = {
  ...FRONT_DOORS.rerank,
  upstreamPath: "/rerank",
  schema: rerankBodySchema,
  supportsStream: false,
  isContinuable: false,
  isRerank: true,
  hasContextFit: false,
  estimate: (body) => ({ promptTokens: estimateTextInput(rerankTexts(body)), hasImages: false }),
  promptParam: "documents",
};

/** The query and the documents' texts, one list: estimated under one bound (token-estimate.ts). */
function rerankTexts(body: Record<string, unknown>): string[] {
  const texts = [String(body.query)];
  for (const document of body.documents as readonly (string | { text: string })[]) {
    texts.push(typeof document === "string" ? document : document.text);
  }
  return texts;
}

/**
 * Moderations (`/v1/moderations`): texts (or text and image parts) classified by moderation models, one result per
 * input, never streamed. Each input is classified alone, so the fit is the longest input's; the budgets count them all.
 */
export const MODERATIONS_ENDPOINT: EndpointSpec = {
  ...FRONT_DOORS.moderations,
  upstreamPath: "/moderations",
  schema: moderationBodySchema,
  supportsStream: false,
  isContinuable: false,
  isModeration: true,
  estimate: (body) => {
    const tokens = estimateTextInputs(moderationTexts(body.input));
    // Image parts: the plan leaves out a moderation model that reads text only (router/plan-route.ts acceptsImages).
    const hasImages =
      Array.isArray(body.input) && body.input.some((part) => isRecord(part) && part.type === "image_url");
    return { promptTokens: tokens.total, hasImages, fitTokens: tokens.longest };
  },
  promptParam: "input",
};

/**
 * The texts of a moderation `input`: itself, its strings, or (multimodal parts: one input) its text parts joined.
 * An image part counts nothing: the estimate has no size for an image it does not fetch.
 */
function moderationTexts(input: unknown): string[] {
  if (typeof input === "string") return [input];
  const items = input as readonly (string | { type: string; text?: string })[];
  if (typeof items[0] === "string") return items as string[];
  const texts: string[] = [];
  for (const part of items as readonly { type: string; text?: string }[]) {
    if (part.type === "text" && part.text !== undefined) texts.push(part.text);
  }
  return [texts.join("\n")];
}

/** Every endpoint, in front-doors.ts's order (a test keeps them one to one). */
export const ENDPOINTS: readonly EndpointSpec[] = [
  CHAT_ENDPOINT,
  COMPLETIONS_ENDPOINT,
  RESPONSES_ENDPOINT,
  MESSAGES_ENDPOINT,
  EMBEDDINGS_ENDPOINT,
  TRANSCRIPTIONS_ENDPOINT,
  TRANSLATIONS_ENDPOINT,
  SPEECH_ENDPOINT,
  IMAGES_ENDPOINT,
  IMAGE_EDITS_ENDPOINT,
  IMAGE_VARIATIONS_ENDPOINT,
  RERANK_ENDPOINT,
  MODERATIONS_ENDPOINT,
];

/**
 * The kinds the endpoints serve, in the order a name is listed under (a meta model mixing chat and embedding members
 * is one entry, listed as chat): `/v1/models`, a route explanation's `kind=` and `llm-gateway route`.
 */
export const SERVED_KINDS: readonly ModelKind[] = [...new Set(ENDPOINTS.map((endpoint) => endpoint.kind))];

/**
 * The upstream path a route of this kind is explained for (`/v1/gateway/route`, `llm-gateway route`): the named
 * door's when it is one of the kind's, else the kind's first door's (chat's `/chat/completions`, images'
 * `/images/generations`). A provider without that route (`served_paths`, or learned) is shown skipped.
 */
export function explainedPathOf(kind: ModelKind, doorName?: string): string | undefined {
  const doors = ENDPOINTS.filter((endpoint) => endpoint.kind === kind);
  return (doors.find((endpoint) => endpoint.name === doorName) ?? doors[0])?.upstreamPath;
}

/** Whether requests of this kind are checked against a model's context window (EndpointSpec.hasContextFit). */
export function hasContextFit(kind: ModelKind): boolean {
  return ENDPOINTS.some((endpoint) => endpoint.kind === kind && endpoint.hasContextFit !== false);
}
