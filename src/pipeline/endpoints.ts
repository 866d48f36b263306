// The endpoints the pipeline serves, as data: each is the one forwarding pipeline with a different spec
// (upstream path, model kind, body schema, whether it streams, how to estimate its prompt).
import type { z } from "zod";
import type { ModelKind } from "../config/types.ts";
import {
  estimateChatPrompt,
  estimateTextInput,
  estimateTextInputs,
  type PromptFacts,
} from "../limits/token-estimate.ts";
import {
  chatBodySchema,
  completionBodySchema,
  embeddingBodySchema,
  imageBodySchema,
  rerankBodySchema,
  speechBodySchema,
  transcriptionBodySchema,
} from "./request-body.ts";

export interface EndpointSpec {
  readonly name: string;
  /** Path below the provider's base URL. */
  readonly upstreamPath: string;
  readonly kind: ModelKind;
  readonly schema: z.ZodType;
  readonly supportsStream: boolean;
  /** A broken stream of this endpoint may be continued on another upstream (chat only: it has messages). */
  readonly isContinuable: boolean;
  /** Prompt size and content facts for budgets and fit checks. */
  estimate(body: Record<string, unknown>): PromptFacts;
  /** The field a refusal for the prompt's size names (`param`): `messages` unless said. */
  readonly promptParam?: string;
  /** The body is a file upload (`multipart/form-data`), sent upstream the same way (upstream/multipart-payload.ts). */
  readonly isMultipart?: boolean;
  /**
   * A legacy completions body (`prompt`): served by chat models, it gets of their provider's body rules only the
   * fields that API takes (providers/provider-rules-by-kind.ts `providerRulesForCompletions`).
   */
  readonly isLegacyCompletion?: boolean;
  /** A success is answered with bytes (audio), not JSON: read and passed on as they came (upstream/json-attempt.ts). */
  readonly isBinaryAnswer?: boolean;
  /**
   * A rerank request: sent in its provider's rerank dialect and its answer read back from it
   * (upstream/rerank-dialect.ts), with no context-fit check (a reranker's window holds one query-document pair).
   */
  readonly isRerank?: boolean;
}

/**
 * The kinds the endpoints below serve, in the order a name is listed under (a meta model mixing chat and embedding
 * members is one entry, listed as chat): `/v1/models`, a route explanation's `kind=` and `llm-gateway route`.
 */
export const SERVED_KINDS: readonly ModelKind[] = ["chat", "embedding", "transcription", "speech", "image", "rerank"];

export const CHAT_ENDPOINT: EndpointSpec = {
  name: "chat",
  upstreamPath: "/chat/completions",
  kind: "chat",
  schema: chatBodySchema,
  supportsStream: true,
  isContinuable: true,
  estimate: (body) => estimateChatPrompt(body.messages as unknown[], body.tools),
};

/**
 * The Responses and Messages front doors: their requests are translated into chat bodies and served by the chat
 * pipeline (same upstream path, schema, continuation), but recorded under their own name, so records, metrics'
 * `endpoint` label, log lines and the dashboard tell the doors apart. (The name also scopes sticky sessions:
 * an `x-session-id` keeps its deployment within one door.)
 */
export const RESPONSES_ENDPOINT: EndpointSpec = { ...CHAT_ENDPOINT, name: "responses", promptParam: "input" };
export const MESSAGES_ENDPOINT: EndpointSpec = { ...CHAT_ENDPOINT, name: "messages" };

export const COMPLETIONS_ENDPOINT: EndpointSpec = {
  name: "completions",
  upstreamPath: "/completions",
  kind: "chat",
  schema: completionBodySchema,
  supportsStream: true,
  isContinuable: false,
  estimate: (body) => ({ promptTokens: estimateTextInput(body.prompt), hasImages: false }),
  promptParam: "prompt",
  isLegacyCompletion: true,
};

export const EMBEDDINGS_ENDPOINT: EndpointSpec = {
  name: "embeddings",
  upstreamPath: "/embeddings",
  kind: "embedding",
  schema: embeddingBodySchema,
  supportsStream: false,
  isContinuable: false,
  estimate: (body) => {
    const tokens = estimateTextInputs(body.input);
    return { promptTokens: tokens.total, hasImages: false, fitTokens: tokens.longest };
  },
  promptParam: "input",
};

/**
 * Speech to text (`/v1/audio/transcriptions`) and to English text (`/v1/audio/translations`): a multipart upload,
 * served by transcription models (`whisper-*`, `*-transcribe`), one answer (JSON or plain text), never streamed. The
 * only text the gateway can count is the optional `prompt`: the audio's tokens are the provider's to count.
 */
export const TRANSCRIPTIONS_ENDPOINT: EndpointSpec = {
  name: "transcriptions",
  upstreamPath: "/audio/transcriptions",
  kind: "transcription",
  schema: transcriptionBodySchema,
  supportsStream: false,
  isContinuable: false,
  isMultipart: true,
  estimate: (body) => ({ promptTokens: estimateTextInput(body.prompt ?? ""), hasImages: false }),
};

export const TRANSLATIONS_ENDPOINT: EndpointSpec = {
  ...TRANSCRIPTIONS_ENDPOINT,
  name: "translations",
  upstreamPath: "/audio/translations",
};

/**
 * Text to speech (`/v1/audio/speech`): a JSON body, served by speech models (`tts-1`, `gpt-4o-mini-tts`,
 * `playai-tts`, Orpheus), answered with the audio's bytes in the format asked for, never streamed. The text to speak
 * is the prompt the budgets count.
 */
export const SPEECH_ENDPOINT: EndpointSpec = {
  name: "speech",
  upstreamPath: "/audio/speech",
  kind: "speech",
  schema: speechBodySchema,
  supportsStream: false,
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
  name: "images",
  upstreamPath: "/images/generations",
  kind: "image",
  schema: imageBodySchema,
  supportsStream: false,
  isContinuable: false,
  estimate: (body) => ({ promptTokens: estimateTextInput(body.prompt), hasImages: false }),
};

/**
 * Rerank (`/v1/rerank`): a query and documents, served by rerank models, answered with each document's relevance
 * score, never streamed. The query and every document are the prompt the budgets count.
 */
export const RERANK_ENDPOINT: EndpointSpec = {
  name: "rerank",
  upstreamPath: "/rerank",
  kind: "rerank",
  schema: rerankBodySchema,
  supportsStream: false,
  isContinuable: false,
  isRerank: true,
  estimate: (body) => ({ promptTokens: estimateTextInput(rerankTexts(body)), hasImages: false, fitTokens: 0 }),
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
