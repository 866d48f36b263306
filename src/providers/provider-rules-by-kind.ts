// Which of a provider's body rules reach its models of each kind, and the legacy completions door (`body:` on a
// provider is written for its chat models mostly: a chat field sent to an embeddings, audio, image or rerank API, or
// to the legacy completions API, is refused there by a strict host); and the rules a door cannot follow at all.
import type { ModelKind } from "../config/types.ts";
import type { RawBodyRules } from "./body-rules.ts";

/**
 * The fields an embeddings request takes: OpenAI's (`dimensions`, `encoding_format`, `user`) and those of the
 * embedding APIs behind OpenAI-compatible hosts (Voyage, Cohere, NVIDIA NIM, Mistral: `input_type`, `truncate`,
 * `truncation`, `output_dimension`, `output_dtype`, `embedding_types`; Jina: `task`, `late_chunking`,
 * `embedding_type`, `normalized`).
 */
const EMBEDDING_FIELDS: ReadonlySet<string> = new Set([
  "dimensions",
  "encoding_format",
  "user",
  "input_type",
  "truncate",
  "truncation",
  "output_dimension",
  "output_dtype",
  "embedding_types",
  "embedding_type",
  "task",
  "late_chunking",
  "normalized",
]);

/**
 * The fields a speech-to-text upload takes (`/audio/transcriptions`, `/audio/translations`: OpenAI's, which Groq and
 * the other hosts follow).
 */
const TRANSCRIPTION_FIELDS: ReadonlySet<string> = new Set([
  "language",
  "prompt",
  "response_format",
  "temperature",
  "timestamp_granularities[]",
  "include[]",
  "chunking_strategy",
  "user",
]);

/**
 * The fields a text-to-speech request takes (`/audio/speech`: OpenAI's `voice`, `response_format`, `speed`,
 * `instructions`; Groq's `sample_rate`). Not `stream_format`: whether the answer is the audio's bytes or `sse` events
 * is the client's choice (its SDK reads one or the other), and `audio` is the default.
 */
const SPEECH_FIELDS: ReadonlySet<string> = new Set([
  "voice",
  "response_format",
  "speed",
  "instructions",
  "sample_rate",
]);

/**
 * The fields an image generation request takes (`/images/generations`): OpenAI's (`size`, `quality`, `style`,
 * `response_format`, `output_format`, `output_compression`, `background`, `moderation`, `n`, `user`) and those of the
 * hosts serving FLUX and Stable Diffusion behind the same route (Together: `steps`, `width`, `height`, `seed`,
 * `negative_prompt`, `guidance_scale`, `disable_safety_checker`; Nebius: `num_inference_steps`,
 * `response_extension`; Gemini's Imagen and others: `aspect_ratio`). Not `stream` or `partial_images`: the gateway
 * relays no event stream of partial images.
 */
const IMAGE_FIELDS: ReadonlySet<string> = new Set([
  "size",
  "quality",
  "style",
  "response_format",
  "output_format",
  "output_compression",
  "background",
  "moderation",
  "n",
  "user",
  "steps",
  "num_inference_steps",
  "width",
  "height",
  "seed",
  "negative_prompt",
  "guidance_scale",
  "disable_safety_checker",
  "response_extension",
  "aspect_ratio",
]);

/**
 * The fields a rerank request takes besides its query and documents: the door's `top_n` and `return_documents`, and
 * the rerank APIs' own `max_tokens_per_doc`, `max_chunks_per_doc`, `rank_fields` (Cohere, Together), `truncation`
 * (Voyage), `truncate` (NVIDIA NIM).
 */
const RERANK_FIELDS: ReadonlySet<string> = new Set([
  "top_n",
  "return_documents",
  "max_tokens_per_doc",
  "max_chunks_per_doc",
  "rank_fields",
  "truncation",
  "truncate",
]);

/**
 * The fields a legacy completions request (`/v1/completions`) takes besides its prompt: OpenAI's (`best_of`, `echo`,
 * `frequency_penalty`, `logit_bias`, `max_tokens`, `n`, `presence_penalty`, `seed`, `stop`, `suffix`,
 * `temperature`, `top_p`, `user`) and the sampling fields the open-model hosts serving it take on both routes (vLLM,
 * Together, Fireworks, DeepInfra: `top_k`, `min_p`, `repetition_penalty`). Not `logprobs`: chat's is a boolean,
 * the completions API's the number of alternatives per token, so a chat rule's `logprobs: true` is a 400 there.
 * Not `stream_options`: refused in rules (the gateway's usage request).
 */
const COMPLETION_FIELDS: ReadonlySet<string> = new Set([
  "best_of",
  "echo",
  "frequency_penalty",
  "logit_bias",
  "max_tokens",
  "n",
  "presence_penalty",
  "seed",
  "stop",
  "suffix",
  "temperature",
  "top_p",
  "user",
  "top_k",
  "min_p",
  "repetition_penalty",
]);

/**
 * A provider's rules as a chat model's legacy completions requests get them: its `defaults` and `override` of the
 * fields that API takes, a `max_completion_tokens` (chat's newer name for the output limit) as `max_tokens` (the
 * only name there) unless the part names `max_tokens` itself, and its `drop` whole. The completions door shares its
 * models with chat: a provider's `reasoning_effort`, `response_format`, `tool_choice` or `parallel_tool_calls`,
 * written for its chat requests, reached completions bodies too, where OpenAI and strict hosts refuse an unknown
 * field. The model's own rules (and its `known_models` entry's) apply as written, as for the other kinds.
 */
export function providerRulesForCompletions(level: RawBodyRules | undefined): RawBodyRules | undefined {
  if (level === undefined) return undefined;
  const keep = (values: Readonly<Record<string, unknown>> | undefined) => {
    if (values === undefined) return undefined;
    const kept = Object.fromEntries(Object.entries(values).filter(([field]) => COMPLETION_FIELDS.has(field)));
    if (values.max_completion_tokens !== undefined && values.max_tokens === undefined) {
      kept.max_tokens = values.max_completion_tokens;
    }
    return kept;
  };
  return { defaults: keep(level.defaults), override: keep(level.override), drop: level.drop };
}

/**
 * A moderation request takes nothing besides `model` and `input` (OpenAI's, Mistral's); a Llama Guard model is sent
 * no rule at all (upstream/moderation-dialect.ts). A provider's chat `defaults` reaching `/moderations` would be
 * refused there.
 */
const MODERATION_FIELDS: ReadonlySet<string> = new Set();

const FIELDS_OF_KIND = {
  embedding: EMBEDDING_FIELDS,
  transcription: TRANSCRIPTION_FIELDS,
  speech: SPEECH_FIELDS,
  image: IMAGE_FIELDS,
  rerank: RERANK_FIELDS,
  moderation: MODERATION_FIELDS,
} as const;

/**
 * A provider's rules as its embedding models (or transcription, speech or image models: `fields` names the kind) get
 * them: its `defaults` and `override` of the fields such a request takes, and its `drop` whole (removing a field never
 * makes a request one an API refuses). A provider's rules are written for its chat models mostly: its `defaults: {
 * temperature: 0.2 }` went to its embeddings endpoint too, where a strict host refuses an unknown field and every
 * embeddings request failed. A rule for such a model's other fields belongs on that model (or its `known_models`
 * entry), whose rules apply as written.
 */
export function providerRulesForEmbeddings(
  level: RawBodyRules | undefined,
  fields: keyof typeof FIELDS_OF_KIND = "embedding",
): RawBodyRules | undefined {
  if (level === undefined) return undefined;
  const allowed = FIELDS_OF_KIND[fields];
  const keep = (values: Readonly<Record<string, unknown>> | undefined) =>
    values === undefined
      ? undefined
      : Object.fromEntries(Object.entries(values).filter(([field]) => allowed.has(field)));
  return { defaults: keep(level.defaults), override: keep(level.override), drop: level.drop };
}

/**
 * A provider's rules as one of its models of `kind` gets them: whole for a chat model; for a model of another kind,
 * only the fields its requests take (providerRulesForEmbeddings; a kind no door serves is held to the embeddings
 * fields, as before any other list existed).
 */
export function providerRulesForKind(level: RawBodyRules | undefined, kind: ModelKind): RawBodyRules | undefined {
  if (kind === "chat") return level;
  return providerRulesForEmbeddings(
    level,
    Object.hasOwn(FIELDS_OF_KIND, kind) ? (kind as keyof typeof FIELDS_OF_KIND) : "embedding",
  );
}

/**
 * A speech model's rules with the answer's form left to the client. The form is the client's choice (its SDK reads the
 * audio's bytes or `sse` events, never the other): a `stream_format` other than `audio` in `defaults` or `override` is
 * left out (`onRule` is told each one, as `override.stream_format: sse`): with it a client that asked for the bytes
 * would be sent `speech.audio.delta` events its SDK cannot read. An `override` of `audio` is applied as a default
 * (`onRule` is told too): sent when the client names no form, as the rule says, but never over a client's `sse`, which
 * it turned into a request for the bytes that every candidate so configured answered with audio, so the model never
 * streamed (each attempt an `unsupported` refusal, docs/protocols.md). A `defaults` of `audio` is kept as it is.
 * Warned (at start, on reload, in `check`) rather than refused as a config error: which models are speech models is
 * known only once the catalog is built (a `kind:`, a guess from the id, a provider's model list), and one model's
 * rule should not stop the gateway.
 */
export function withoutStreamedSpeech(
  level: RawBodyRules | undefined,
  onRule: (rule: string, treatment: SpeechRuleTreatment) => void,
): RawBodyRules | undefined {
  if (level === undefined) return undefined;
  const streamFormatOf = (part: "defaults" | "override"): unknown => level[part]?.[STREAM_FORMAT];
  const without = (values: Readonly<Record<string, unknown>> | undefined) =>
    values === undefined
      ? undefined
      : Object.fromEntries(Object.entries(values).filter(([field]) => field !== STREAM_FORMAT));
  const defaultsFormat = streamFormatOf("defaults");
  const overrideFormat = streamFormatOf("override");
  const isDefaultsKept = defaultsFormat === undefined || defaultsFormat === "audio";
  if (isDefaultsKept && overrideFormat === undefined) return level;
  let defaults = level.defaults;
  if (!isDefaultsKept) {
    onRule(`defaults.${STREAM_FORMAT}: ${JSON.stringify(defaultsFormat)}`, "left_out");
    defaults = without(defaults);
  }
  let override = level.override;
  if (overrideFormat !== undefined) {
    const isAudio = overrideFormat === "audio";
    onRule(`override.${STREAM_FORMAT}: ${JSON.stringify(overrideFormat)}`, isAudio ? "as_default" : "left_out");
    override = without(override);
    if (isAudio) defaults = { ...defaults, [STREAM_FORMAT]: "audio" };
  }
  return { defaults, override, drop: level.drop };
}

/** What withoutStreamedSpeech did with a speech model's `stream_format` rule. */
export type SpeechRuleTreatment = "left_out" | "as_default";

const STREAM_FORMAT = "stream_format";

/** The warning for a rule withoutStreamedSpeech left out of (or applied as a default to) the deployment `key`. */
export function streamedSpeechWarning(key: string, rule: string, treatment: SpeechRuleTreatment): string {
  if (treatment === "as_default") {
    return (
      `${key}: the body rule \`${rule}\` is applied as a default: the client chooses the answer's form, and one ` +
      "asking for events (`stream_format` `sse`) gets them; move the rule to `defaults`"
    );
  }
  return (
    `${key}: the body rule \`${rule}\` is left out: /v1/audio/speech answers with the audio's bytes unless the ` +
    "client asks for events (`stream_format` `sse`); remove the rule"
  );
}
