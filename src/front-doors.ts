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
  | "openai-moderations"
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
   * Messages doors are chat too), else the door's name (they name no speech-to-text, text-to-speech, image, rerank or
   * moderation operation; `generate_content` is a Gemini-style multimodal chat call, not the Images API).
   */
  readonly operation: string;
  /** Its JSON answers are kept by the answer cache (pipeline/answer-cache.ts says which are not and why). */
  readonly isCacheable: boolean;
  /** The body is a `multipart/form-data` upload (server/multipart-body.ts), not JSON: it has `files`. */
  readonly isMultipart: boolean;
  /** An upload's file fields, the one it is about first; none: a JSON body. */
  readonly files: readonly UploadField[];
}

/** A file field of an upload: its name, and whether it takes several files (as `image` or `image[]` parts). */
export interface UploadField {
  readonly name: string;
  readonly isList: boolean;
  /** The file name sent on for a part that came without one (a provider may read the file's type from it). */
  readonly unnamedAs: string;
}

/** The audio doors' one file. */
const AUDIO_FILE: readonly UploadField[] = [{ name: "file", isList: false, unnamedAs: "audio" }];

/**
 * Every door, in the order `/v1/models` lists a kind's routes and the kinds themselves (SERVED_KINDS): the first
 * door of a kind places the kind.
 */
export const FRONT_DOORS = {
  chat: door({ name: "chat", kind: "chat", path: "/v1/chat/completions", protocol: "openai-chat", isCacheable: true }),
  completions: door({
    name: "completions",
    kind: "chat",
    path: "/v1/completions",
    protocol: "openai-completions",
    operation: "text_completion",
    isCacheable: true,
  }),
  responses: door({
    name: "responses",
    kind: "chat",
    path: "/v1/responses",
    protocol: "openai-responses",
    operation: "chat",
    isCacheable: true,
  }),
  messages: door({
    name: "messages",
    kind: "chat",
    path: "/v1/messages",
    protocol: "anthropic-messages",
    operation: "chat",
    isCacheable: true,
  }),
  embeddings: door({
    name: "embeddings",
    kind: "embedding",
    path: "/v1/embeddings",
    protocol: "openai-embeddings",
    isCacheable: true,
  }),
  transcriptions: door({
    name: "transcriptions",
    kind: "transcription",
    path: "/v1/audio/transcriptions",
    protocol: "openai-audio",
    files: AUDIO_FILE,
  }),
  translations: door({
    name: "translations",
    kind: "transcription",
    path: "/v1/audio/translations",
    protocol: "openai-audio",
    files: AUDIO_FILE,
  }),
  speech: door({ name: "speech", kind: "speech", path: "/v1/audio/speech", protocol: "openai-audio" }),
  images: door({ name: "images", kind: "image", path: "/v1/images/generations", protocol: "openai-images" }),
  // OpenAI's SDK sends one image as `image`, several as `image[]` parts; the mask applies to the first image.
  imageEdits: door({
    name: "image_edits",
    kind: "image",
    path: "/v1/images/edits",
    protocol: "openai-images",
    files: [
      { name: "image", isList: true, unnamedAs: "image" },
      { name: "mask", isList: false, unnamedAs: "mask" },
    ],
  }),
  imageVariations: door({
    name: "image_variations",
    kind: "image",
    path: "/v1/images/variations",
    protocol: "openai-images",
    files: [{ name: "image", isList: false, unnamedAs: "image" }],
  }),
  rerank: door({ name: "rerank", kind: "rerank", path: "/v1/rerank", protocol: "rerank", isCacheable: true }),
  moderations: door({
    name: "moderations",
    kind: "moderation",
    path: "/v1/moderations",
    protocol: "openai-moderations",
    isCacheable: true,
  }),
} as const satisfies Readonly<Record<string, FrontDoor>>;

export const ALL_FRONT_DOORS: readonly FrontDoor[] = Object.values(FRONT_DOORS);

/** A door from its facts: `operation` is its name unless said, it is not cached and takes JSON unless said. */
function door(
  facts: Pick<FrontDoor, "name" | "kind" | "path" | "protocol"> &
    Partial<Pick<FrontDoor, "operation" | "isCacheable" | "files">>,
): FrontDoor {
  const files = facts.files ?? [];
  return {
    operation: facts.name,
    isCacheable: false,
    ...facts,
    isMultipart: files.length > 0,
    files,
  };
}

/** The door's paths: under `/v1` and without it (clients configured with a base URL lacking `/v1`). */
export function pathsOf(frontDoor: FrontDoor): readonly [string, string] {
  return [frontDoor.path, frontDoor.path.slice("/v1".length)];
}
