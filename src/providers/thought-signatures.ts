// Which deployments get a tool call's `extra_content` (Gemini's thought signatures), and the fallback signature for
// a Gemini call that has none. Pure. Only Google's hosts read the field; elsewhere it is an unknown message field
// that a strict host (Groq, Cerebras, vLLM's "Extra inputs are not permitted") refuses with a 400, so it is sent to
// Gemini deployments only (upstream-request.ts).
import { isRecord } from "../is-record.ts";

/**
 * Google's documented fallback for a function call whose real signature is lost (history built elsewhere, or the
 * gateway's store forgot it: a restart, an eviction): the dummy signature `skip_thought_signature_validator` (the
 * other documented one is `context_engineering_is_the_way_to_go`), which skips the validator for that call; the model
 * loses the reasoning the signature carried, nothing else. Source: Gemini API docs, "Thought signatures"
 * (https://ai.google.dev/gemini-api/docs/thought-signatures, its FAQ and OpenAI-compatibility notes); the same
 * sentinel is what vercel/ai's Google provider injects for Gemini 3 replays without one (@ai-sdk/google 3.0.80).
 */
export const FALLBACK_THOUGHT_SIGNATURE = "skip_thought_signature_validator";

/** Hosts of Google's OpenAI-compatible APIs: Gemini API (AI Studio) and Vertex AI (`aiplatform.googleapis.com`). */
const GOOGLE_HOST = /(^|\.)googleapis\.com$/i;

/**
 * A deployment of the Gemini family as far as the signatures go: the `gemini` preset (named, or recognised by its
 * base URL: presets.ts presetOrigin), or a Gemini model on a Google host (Vertex's OpenAI-compatible endpoint
 * answers with the same `extra_content`). A Gemini model elsewhere (OpenRouter: its own `reasoning_details`) is not.
 */
export function isGeminiDeployment(preset: string | undefined, baseUrl: string, upstreamModelId: string): boolean {
  if (preset === "gemini" || preset === "google") return true;
  const host = hostOf(baseUrl);
  return host !== undefined && GOOGLE_HOST.test(host) && /gemini/i.test(upstreamModelId);
}

/**
 * Hosts of the base URLs seen, by base URL. Both questions above are asked on every chat attempt (up to three
 * times: attempt.ts), and a `new URL` each time was ~1.5 µs of a JSON request's CPU (bench/README.md, section 39).
 * Base URLs come from the config, so the map stays small; the bound only guards a reload loop of ever-new URLs.
 */
const hostsByBaseUrl = new Map<string, string | undefined>();
const MAX_REMEMBERED_HOSTS = 256;

/** The base URL's hostname; undefined for a URL that does not parse. */
function hostOf(baseUrl: string): string | undefined {
  if (hostsByBaseUrl.has(baseUrl)) return hostsByBaseUrl.get(baseUrl);
  const host = URL.parse(baseUrl)?.hostname;
  if (hostsByBaseUrl.size >= MAX_REMEMBERED_HOSTS) hostsByBaseUrl.clear();
  hostsByBaseUrl.set(baseUrl, host);
  return host;
}

/** OpenRouter's host: its chat API carries reasoning (Gemini's signatures included) in `reasoning_details`. */
const OPENROUTER_HOST = /(^|\.)openrouter\.ai$/i;

/**
 * Vercel AI Gateway's host (no preset of ours names it): its OpenAI-compatible chat API takes and answers the same
 * `reasoning_details` array as OpenRouter (Vercel's "Reasoning" docs: preserve it on the assistant message of a tool
 * loop's next turn), and an Anthropic or Gemini model behind it refuses that turn without it just the same.
 */
const VERCEL_AI_GATEWAY_HOST = /^ai-gateway\.vercel\.sh$/i;

/**
 * A deployment that reads an assistant message's `reasoning_details` (protocols/reasoning-details.ts): the
 * `openrouter` preset (named, or recognised by its base URL), any base URL on openrouter.ai, or Vercel AI Gateway's
 * host. Only those are given back what the Messages and Responses doors kept of it.
 */
export function readsReasoningDetails(preset: string | undefined, baseUrl: string): boolean {
  if (preset === "openrouter") return true;
  const host = hostOf(baseUrl);
  return host !== undefined && (OPENROUTER_HOST.test(host) || VERCEL_AI_GATEWAY_HOST.test(host));
}

/**
 * The history for one candidate (the client's objects are never changed; the same array when nothing changes):
 * `gemini`, an assistant turn whose tool calls carry no signature at all gets the documented fallback on its first
 * call (Google signs only the first call of a parallel step, so that is the one its validator checks); `drop`, every
 * tool call's `extra_content` is removed.
 */
export function signaturesFor(messages: readonly unknown[], mode: "gemini" | "drop"): readonly unknown[] {
  let isChanged = false;
  const out = messages.map((message) => {
    if (!isRecord(message) || message.role !== "assistant" || !Array.isArray(message.tool_calls)) return message;
    const calls: unknown[] = message.tool_calls;
    const next = mode === "drop" ? withoutExtras(calls) : withFallback(calls);
    if (next === calls) return message;
    isChanged = true;
    return { ...message, tool_calls: next };
  });
  return isChanged ? out : messages;
}

function withoutExtras(calls: unknown[]): unknown[] {
  if (!calls.some((call) => isRecord(call) && "extra_content" in call)) return calls;
  return calls.map((call) => {
    if (!isRecord(call) || !("extra_content" in call)) return call;
    const { extra_content: _dropped, ...rest } = call;
    return rest;
  });
}

function withFallback(calls: unknown[]): unknown[] {
  const first = calls[0];
  if (!isRecord(first) || calls.some(hasSignature)) return calls;
  const extra = isRecord(first.extra_content) ? first.extra_content : {};
  const google = isRecord(extra.google) ? extra.google : {};
  const signed = {
    ...first,
    extra_content: { ...extra, google: { ...google, thought_signature: FALLBACK_THOUGHT_SIGNATURE } },
  };
  return [signed, ...calls.slice(1)];
}

function hasSignature(call: unknown): boolean {
  if (!isRecord(call) || !isRecord(call.extra_content)) return false;
  const google = call.extra_content.google;
  return isRecord(google) && typeof google.thought_signature === "string" && google.thought_signature !== "";
}
