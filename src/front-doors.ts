// The front doors as data: each door's facts that places outside the pipeline read (routes, the upload parser, the
// model listing, metrics' label sets, trace operation names, the answer cache). Each pipeline EndpointSpec is its door
// plus how to serve it (pipeline/endpoints.ts), so adding a door is one entry here, one spec and its adapter; before,
// seven hand-kept lists named the doors and one was found missing a door. Here, below observability/, because
// observability/ may not import pipeline/ (docs/architecture.md).
import type { ModelKind } from "./config/types.ts";

/** Which front door the client used (a request record's `clientProtocol`, the metrics' `protocol` label). */
export type ClientProtocol =
  | "openai-chat"
  | "openai-completions"
  | "openai-embeddings"
  | "openai-audio"
  | "openai-images"
  | "rerank"
  | "openai-responses"
  | "anthropic-messages";

export interface FrontDoor {
  /** The records' `endpoint`, the metrics' `endpoint` label, the log line's and the dashboard's name of the door. */
  readonly name: string;
  /** The kind of model that serves it. */
  readonly kind: ModelKind;
  /** Where clients send it, under `/v1`; it is served without the prefix too (pathsOf). */
  readonly path: string;
  readonly protocol: ClientProtocol;
  /**
   * The trace spans' `gen_ai.operation.name`: GenAI's name where the semantic conventions have one (the Responses and
   * Messages doors are chat too), else the door's name (they name no speech-to-text, text-to-speech, image or rerank
   * operation; `generate_content` is a Gemini-style multimodal chat call, not the Images API).
   */
  readonly operation: string;
  /** Its JSON answers are kept by the answer cache (pipeline/answer-cache.ts says which are not and why). */
  readonly isCacheable: boolean;
  /** The body is a `multipart/form-data` upload (server/multipart-body.ts), not JSON. */
  readonly isMultipart: boolean;
}

/**
 * Every door, in the order `/v1/models` lists a kind's routes and the kinds themselves (SERVED_KINDS): the first
 * door of a kind places the kind.
 */
export const FRONT_DOORS = {
  chat: door("chat", "chat", "/v1/chat/completions", "openai-chat", "chat", { isCacheable: true }),
  completions: door("completions", "chat", "/v1/completions", "openai-completions", "text_completion", {
    isCacheable: true,
  }),
  responses: door("responses", "chat", "/v1/responses", "openai-responses", "chat", { isCacheable: true }),
  messages: door("messages", "chat", "/v1/messages", "anthropic-messages", "chat", { isCacheable: true }),
  embeddings: door("embeddings", "embedding", "/v1/embeddings", "openai-embeddings", "embeddings", {
    isCacheable: true,
  }),
  transcriptions: door(
    "transcriptions",
    "transcription",
    "/v1/audio/transcriptions",
    "openai-audio",
    "transcriptions",
    {
      isMultipart: true,
    },
  ),
  translations: door("translations", "transcription", "/v1/audio/translations", "openai-audio", "translations", {
    isMultipart: true,
  }),
  speech: door("speech", "speech", "/v1/audio/speech", "openai-audio", "speech"),
  images: door("images", "image", "/v1/images/generations", "openai-images", "images"),
  rerank: door("rerank", "rerank", "/v1/rerank", "rerank", "rerank", { isCacheable: true }),
} as const satisfies Readonly<Record<string, FrontDoor>>;

export type DoorName = keyof typeof FRONT_DOORS;

export const ALL_FRONT_DOORS: readonly FrontDoor[] = Object.values(FRONT_DOORS);

function door(
  name: string,
  kind: ModelKind,
  path: string,
  protocol: ClientProtocol,
  operation: string,
  flags: { isCacheable?: boolean; isMultipart?: boolean } = {},
): FrontDoor {
  return {
    name,
    kind,
    path,
    protocol,
    operation,
    isCacheable: flags.isCacheable ?? false,
    isMultipart: flags.isMultipart ?? false,
  };
}

/** The door's paths: under `/v1` and without it (clients configured with a base URL lacking `/v1`). */
export function pathsOf(frontDoor: FrontDoor): readonly [string, string] {
  return [frontDoor.path, frontDoor.path.slice("/v1".length)];
}
