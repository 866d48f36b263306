// Cross-provider model aliases and model kinds. The rules, with examples, are in docs/model-names.md; keep the
// two in step (model-names.test.ts holds the examples).
import { MAX_MODEL_NAME_CHARS } from "../config/request-bounds.ts";

/**
 * OpenRouter-style variants after a ':' that name a way of serving the same weights, not other weights.
 * Any other ':' tag (Ollama's `llama3.1:8b`) carries a size or flavour and is kept, joined with '-'.
 */
const SERVING_VARIANTS = new Set([
  "free",
  "beta",
  "extended",
  "nitro",
  "floor",
  "online",
  "thinking",
  "exacto",
  "latest",
]);

/** Trailing tokens that only say how the weights are served; the model is the same. */
const SERVING_SUFFIXES = new Set(["hf", "specdec", "versatile"]);

const SIZE_TOKEN = /^(\d+x)?\d+(\.\d+)?[bm]$/;

/**
 * The alias used to find the same model on several providers: `meta-llama/Llama-3.3-70B-Instruct`,
 * `llama-3.3-70b-versatile`, `meta-llama/llama-3.3-70b-instruct:free` and `llama3.3-70b` all give `llama-3.3-70b`.
 * Versions, sizes and dates are kept; only packaging (namespace, `-instruct`, quantisation, serving variant) goes.
 */
export function normaliseModelName(upstreamId: string): string {
  let name = upstreamId.trim().toLowerCase();
  // No alias for a name no real model has: every step below is linear, but there is no reason to pay for it.
  if (name.length > MAX_MODEL_NAME_CHARS) return name;

  const colonAt = name.lastIndexOf(":");
  if (colonAt > 0) {
    const tag = name.slice(colonAt + 1);
    name = SERVING_VARIANTS.has(tag) ? name.slice(0, colonAt) : `${name.slice(0, colonAt)}-${tag}`;
  }

  // Everything up to the last '/' is a namespace: `models/` (Gemini), `meta-llama/`, `@cf/meta/` (Cloudflare),
  // `accounts/fireworks/models/` (Fireworks), `openai/` (Groq, GitHub Models).
  name = name.slice(name.lastIndexOf("/") + 1);

  name = name
    .replace(/[\s_]+/g, "-")
    .replace(/\+/g, "-plus")
    // Quantisation (`-fp8`, Cloudflare's `-fp8-fast`) and a context size baked into the id (Groq's old
    // `mixtral-8x7b-32768`) describe how the same weights are served.
    .replace(/-(?:fp8|fp16|bf16|int8|int4|awq|gguf)(?:-fast)?(?=-|$)/g, "")
    .replace(/-(?:2048|4096|8192|16384|32768|65536|131072)$/, "")
    // Fireworks writes versions as `v3p1`, `qwen2p5`.
    .replace(/(?<=[a-z])(\d+)p(\d+)(?=-|$)/g, "$1.$2")
    .replace(/^llama-v(?=\d)/, "llama-")
    // GitHub Models, Cerebras and LMArena write the vendor in front: `Meta-Llama-3.1-405B-Instruct`,
    // `Cohere-command-r-plus-08-2024`, `AI21-Jamba-1.5-Large`, `zai-glm-4.6`, `Nvidia-Llama-3.3-Nemotron-...`.
    .replace(/^(?:ai21|amazon|cohere|ibm|meta|microsoft|mistralai|nvidia|zai)-(?=[a-z])/, "")
    // Mistral's API names its open-weights models `open-mistral-nemo`, `open-mixtral-8x22b`.
    .replace(/^open-(?=mi[sx]tral|codestral)/, "")
    // A family name glued to its version gets a separator: `llama3.3` -> `llama-3.3`, `qwen3` -> `qwen-3`.
    // One-letter prefixes stay glued: they are part of the version (`o3`, `r1`, `v3`, `k2`, `a22b`, `e4b`).
    // (Written as lookarounds: `([a-z]{2,})(\d)` backtracks quadratically on a long run of letters.)
    .replace(/(?<=[a-z]{2})(?=\d)/g, "-")
    // `claude-3-5-sonnet` -> `claude-3.5-sonnet`, `mistral-medium-3-1` -> `3.1`: two single digits are a version.
    .replace(/(?<=^|-|v)(\d)-(\d)(?=-|$)/g, "$1.$2")
    .replace(/-{2,}/g, "-")
    .replace(/^-|-$/g, "");

  return stripPackagingTokens(name);
}

function stripPackagingTokens(name: string): string {
  const tokens = name.split("-").filter((token) => token !== "instruct");
  // Together's `-Instruct-Turbo` is a quantised build of the instruct model, unlike `gpt-4-turbo`; the
  // `instruct` token is gone by now, so look at the original name.
  if (/-instruct-turbo$/.test(name)) tokens.pop();
  let isChanged = true;
  while (isChanged && tokens.length > 1) {
    isChanged = false;
    const last = tokens.at(-1) ?? "";
    const beforeLast = tokens.at(-2) ?? "";
    if (SERVING_SUFFIXES.has(last) || last === "it") {
      tokens.pop();
      isChanged = true;
    } else if (last === "instant" && SIZE_TOKEN.test(beforeLast)) {
      // Groq's `llama-3.1-8b-instant`; `gpt-5.3-instant` is a model of its own.
      tokens.pop();
      isChanged = true;
    }
  }
  return tokens.join("-");
}

export type ModelKind =
  | "chat"
  | "embedding"
  | "transcription"
  | "speech"
  | "audio"
  | "image"
  | "video"
  | "ocr"
  | "rerank"
  | "moderation";

/** Speech to text: what `/v1/audio/transcriptions` and `/v1/audio/translations` are served by. */
const TRANSCRIPTION_TOKENS = new Set(["whisper", "transcribe", "stt", "asr"]);
/**
 * Text to speech: what `/v1/audio/speech` is served by (`tts-1`, `gpt-4o-mini-tts`, `playai-tts`, Orpheus, and
 * Together's `hexgrad/Kokoro-82M` and `cartesia/sonic-2`, which were chat models by their ids).
 */
const SPEECH_TOKENS = new Set(["tts", "speech", "playai", "orpheus", "kokoro", "cartesia"]);
/**
 * Other audio models, which no route serves: music (`lyria`), realtime (`gpt-realtime`, `gpt-4o-realtime-preview`:
 * OpenAI's Realtime API only, Chat Completions refuses them) and live-audio models, and audio chat
 * (`gpt-4o-audio-preview` takes Chat Completions, but only with `modalities` and audio parts a text client does not
 * send, and costs several times its text sibling: routed as chat only when a config says `kind: chat`).
 */
const AUDIO_TOKENS = new Set(["audio", "lyria", "realtime"]);
/**
 * Image generation: what `/v1/images/generations` is served by (`dall-e-3`, `gpt-image-1`, FLUX, Stable Diffusion,
 * Imagen, Ideogram, Seedream, HiDream, Qwen-Image, DreamShaper).
 */
const IMAGE_TOKENS = new Set([
  "dall",
  "flux",
  "sdxl",
  "sd3",
  "imagen",
  "image",
  "midjourney",
  "recraft",
  "ideogram",
  "seedream",
  "hidream",
  "dreamshaper",
]);
/**
 * Video generation (`veo-3.0-generate-001`, `sora-2`) and OCR (`mistral-ocr-latest`): kinds of their own, which no
 * route serves. They were `image` while no route served images; the images route would send them a request they
 * refuse.
 */
const VIDEO_TOKENS = new Set(["veo", "sora"]);
const OCR_TOKENS = new Set(["ocr"]);
const EMBEDDING_TOKENS = new Set(["bge", "e5", "gte", "minilm", "voyage"]);

/**
 * What kind of endpoint a model serves, from its id alone, so that non-chat models stay out of chat routing.
 * Safety classifiers (`llama-guard`, `shieldgemma`, `gpt-oss-safeguard`) take chat messages but answer with a
 * verdict, so they are `moderation`, never `chat`. OCR and video models are kinds of their own, not `image`: the
 * images route would send them a request they cannot serve.
 */
export function modelKind(id: string): ModelKind {
  const name = id.toLowerCase();
  const tokens = name.split(/[^a-z0-9]+/).filter((token) => token.length > 0);
  const hasToken = (set: ReadonlySet<string>): boolean => tokens.some((token) => set.has(token));
  // `rank` alone: Together's `Salesforce/Llama-Rank-V1`.
  if (name.includes("rerank") || tokens.includes("rank")) return "rerank";
  if (
    name.includes("moderation") ||
    name.includes("safeguard") ||
    name.includes("shieldgemma") ||
    tokens.includes("guard")
  ) {
    return "moderation";
  }
  if (hasToken(TRANSCRIPTION_TOKENS)) return "transcription";
  if (hasToken(SPEECH_TOKENS)) return "speech";
  if (hasToken(AUDIO_TOKENS)) return "audio";
  if (hasToken(VIDEO_TOKENS)) return "video";
  if (hasToken(OCR_TOKENS)) return "ocr";
  // An image embedding model (`amazon.titan-embed-image-v1`, `cohere.embed-english-image-v3.0`) embeds images; the
  // images route would send it a generation request.
  if (name.includes("embed")) return "embedding";
  if (hasToken(IMAGE_TOKENS) || name.includes("stable-diffusion")) return "image";
  // `embed` also inside words: `nv-embedqa`, `text-embedding-3-small`, `jina-embeddings-v3`.
  if (hasToken(EMBEDDING_TOKENS) || name.includes("embed")) return "embedding";
  return "chat";
}
