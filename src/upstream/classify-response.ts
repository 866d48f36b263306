// What an upstream answer means for failover. Pure: status, headers and body text in, a verdict out.

import { inBandErrorStatus } from "../errors/in-band-error.ts";
import { cutText } from "../errors/shown-reason.ts";
import { isRecord } from "../is-record.ts";
import { classifyRateLimit, type RateLimitKind, requestLargerThanWindow } from "../limits/classify-429.ts";
import type { HeaderMap } from "../limits/header-map.ts";
import { matchTextSignal, refusalText } from "../limits/refusal-wording.ts";
import { type RetryHint, retryHintFromResponse } from "../limits/retry-hint.ts";
import { orderRefusedBy } from "../providers/order-refusals.ts";
import { hasImageParts, isEchoedPhrase, isWholeMessageIn } from "../providers/request-echo.ts";
import { requestFeatures } from "../router/request-features.ts";
import { describedMessage, readUpstreamError, summarise, type UpstreamErrorFields } from "./read-upstream-error.ts";
import { refusedFeature } from "./refused-feature.ts";
import { requestParamOf, sizeRefusalOf } from "./size-refusal.ts";

export type Verdict =
  | { readonly kind: "success" }
  /** 429 and friends: cool this candidate down, try the next. */
  | {
      readonly kind: "rate_limited";
      readonly limitKind: RateLimitKind;
      readonly hint: RetryHint | undefined;
      readonly reason: string;
      /** The answer names the account's shared pool (see RateLimitClassification.isAccountWide). */
      readonly isAccountWide?: boolean;
      /** The request alone exceeds a whole window (see RateLimitClassification.isRequestTooLarge). */
      readonly isRequestTooLarge?: true;
      /** A provider behind an aggregator refused (see RateLimitClassification.isRelayed). */
      readonly isRelayed?: true;
      /** The output the credits cover (see RateLimitClassification.affordableOutputTokens). */
      readonly affordableOutputTokens?: number;
      /** The prompt the credits cover (see RateLimitClassification.affordablePromptTokens). */
      readonly affordablePromptTokens?: number;
      /** A day's window that reset a moment ago (see RateLimitClassification.isWindowRolledOver). */
      readonly isWindowRolledOver?: true;
      /** Its reset reads now (see RateLimitClassification.isResetNow). */
      readonly isResetNow?: true;
    }
  /** 401/403: the provider's key is bad. */
  | { readonly kind: "invalid_key"; readonly reason: string }
  /** The prompt does not fit this model: try one with a larger context. */
  | { readonly kind: "context_length"; readonly reason: string; readonly error: UpstreamErrorFields }
  /** 408, 5xx, an error inside a 200: retry or fail over. */
  | { readonly kind: "transient"; readonly reason: string }
  /**
   * 400/404/405/422 and other 4xx. `refusal` says whose the fault is: `request`, the request itself is wrong
   * (returned to the client as is); `model_unavailable`, this provider does not serve the model (a 404 naming the
   * model or not saying what is missing; a 400/422 saying the model does not exist or was decommissioned: another
   * provider may); `unserved_endpoint`, this provider has no such route at all (a 405, or a 404 whose body is a
   * router's "no such path": every model of it is left out for this endpoint); `unsupported`, this candidate refuses
   * a parameter or feature of the request that another may take. The last three fail over; when no candidate
   * answers, the first of them is returned as is.
   */
  | {
      readonly kind: "rejected";
      readonly refusal: Refusal;
      readonly status: number;
      readonly error: UpstreamErrorFields;
      /** The upstream's body as it came (capped at MAX_RAW_CHARS), for `error.metadata.raw`. */
      readonly raw: string;
    };

export type Refusal = "request" | "model_unavailable" | "unserved_endpoint" | "unsupported";

// Wording seen from OpenAI, Groq, Mistral, Together, vLLM, OpenRouter and Google for prompts that do not fit.
const CONTEXT_LENGTH =
  /context[_ ]length|context window|maximum context|reduce the length|prompt is too long|input is too long|too many (?:input )?tokens|exceeds? (?:the )?(?:model'?s? )?(?:maximum|max)|input token count|longer than the model/i;

// A provider that does not (or no longer) serve the model: OpenAI's and Cerebras's "does not exist", Groq's
// `model_decommissioned`, OpenRouter's "No endpoints found", Google's "is not found for API version", Mistral's
// "Invalid model". Only with the word "model" in the code or message: "file does not exist" is the request's.
const MODEL_GONE_CODES = new Set(["model_not_found", "model_decommissioned", "model_not_available", "invalid_model"]);
const MODEL_GONE =
  /does not exist|decommissioned|no longer (?:available|supported|served)|no endpoints found|not found for api version|(?:invalid|unknown) model|model not found|not a valid model|model is not available/i;
// A parameter or feature this candidate refuses, which another may take (vLLM's "Extra inputs are not permitted",
// OpenAI's "Unrecognized request argument", "... is not supported with this model", "This model does not support
// tools", "Function calling is not enabled for this model", a vLLM server started without tool parsing:
// "\"auto\" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set", a JSON-schema validated
// API's "Additional properties are not allowed ('prefix' was unexpected)", Google's OpenAI-compatible endpoint, which
// parses the body as a protobuf: "Invalid JSON payload received. Unknown name \"store\": Cannot find field.", for a
// message's `reasoning_content` too). A request every
// candidate refuses still reaches the client as the first refusal, word for word.
const UNSUPPORTED =
  /not supported|unsupported|does not support|doesn't support|unrecognized request argument|extra (?:inputs|fields) (?:are )?not permitted|unknown (?:field|parameter|argument|name)|cannot find field|unexpected (?:keyword|field|parameter)|additional properties are not allowed|not enabled for this model|--enable-auto-tool-choice/i;
const UNSUPPORTED_EACH = new RegExp(UNSUPPORTED.source, "gi");
// A 404 (or a 200-less 405) from the web server's router rather than from the API: the PATH does not exist, whatever
// the model. As real servers word it: OpenAI's "Invalid URL (POST /v1/x)", FastAPI's (vLLM, LiteLLM, SGLang)
// `{"detail":"Not Found"}`, Fastify's "Route POST:/v1/x not found", Express's "Cannot POST /v1/x", Go's net/http
// and gin's "404 page not found" (Ollama), nginx's or a web app's HTML page (OpenRouter answers an unknown
// `/api/v1/...` path with its site's HTML 404). Matched against the whole message, so that a model error that
// happens to say "not found" ("model not found", "No endpoints found for x") is never taken for one: those name
// the model and are tested first (refusalOf).
const ROUTE_GONE =
  /^(?:not found\.?|404:? (?:page )?not found\.?|page not found\.?|invalid url\b.*|cannot (?:post|get|put) \/.*|route \S+ not found\.?|no route\b.*|(?:unknown|unrecognized) (?:url|path|route|endpoint)\b.*|(?:path|endpoint|route) not found\b.*|no such (?:route|path|endpoint)\b.*)$/i;

/**
 * OpenRouter's own 404 when none of the providers hosting the model takes what the request asks for ("No endpoints
 * found that support tool use", "... that support image input", "... that can handle the requested parameters"): a
 * refusal of the request's features, failed over (and the feature learned when it names one), not the model gone
 * ("No endpoints found for <model>" is that). Read as the model gone, it left the deployment out of every request
 * for `model_unavailable_ms`, those without tools too.
 */
const NO_ENDPOINT_FOR_FEATURE = /\bno endpoints found that (?:support|can handle)\b/i;

const MAX_RAW_CHARS = 4_000;

/**
 * `request`: the body sent, when known: a role-order phrase in the error that is also in it may be an echo of the
 * client's own text (orderRefusedBy), and then does not make the answer a role-order refusal.
 */
export function classifyResponse(
  status: number,
  headers: HeaderMap,
  bodyText: string,
  nowMs: number,
  request?: unknown,
): Verdict {
  if (status >= 200 && status < 300) return { kind: "success" };
  if (status === 402) {
    // A 402 an aggregator relays is the routed provider's refusal of the aggregator's account there, or of the user's
    // own key (BYOK): Venice's "API key USD spend limit exceeded", a BYOK key's "insufficient balance". This model is
    // out there for now; read as the key's own credits, it parked every model of the key for `invalid_key_ms`.
    const error = readUpstreamError(bodyText, status);
    if (error.isRelayed === true) {
      return { kind: "rejected", refusal: "model_unavailable", status, error, raw: rawOf(bodyText) };
    }
  }
  // Groq answers 413 (not 429) to a request larger than the model's whole tokens-per-minute window, with its
  // rate-limit code and wording (console.groq.com/docs/errors lists the 413): another candidate may take it.
  if (
    status === 429 ||
    status === 402 ||
    status === 529 ||
    (status === 413 && requestLargerThanWindow(bodyText) !== undefined)
  ) {
    const classification = classifyRateLimit({ status, headers, bodyText, nowMs });
    return {
      kind: "rate_limited",
      limitKind: classification.kind,
      hint: retryHintFromResponse({ status, headers, bodyText, nowMs }),
      reason: classification.reason,
      ...(classification.isAccountWide === true ? { isAccountWide: true } : {}),
      ...(classification.isRequestTooLarge === true ? { isRequestTooLarge: true } : {}),
      ...(classification.isRelayed === true ? { isRelayed: true } : {}),
      ...(classification.affordableOutputTokens === undefined
        ? {}
        : { affordableOutputTokens: classification.affordableOutputTokens }),
      ...(classification.affordablePromptTokens === undefined
        ? {}
        : { affordablePromptTokens: classification.affordablePromptTokens }),
      ...(classification.isWindowRolledOver === true ? { isWindowRolledOver: true } : {}),
      ...(classification.isResetNow === true ? { isResetNow: true } : {}),
    };
  }
  if (status === 401 || status === 403) {
    const error = readUpstreamError(bodyText, status);
    // Neither is about the key that was sent. A moderation refusal flagged the input (OpenRouter's 403 with
    // `metadata.reasons`): OpenRouter moderates per model ("<model> requires moderation on <provider>": only some
    // providers' models), and flags by mistake ("misc" on "i want to order eba"), so another candidate may serve the
    // same input: failed over as a refusal this candidate alone made, nothing learned or parked (lessons.ts), and the
    // client gets it when no candidate answers (final-error.ts `refusalToReturn`). A provider behind an aggregator refused
    // the aggregator (its own key, a region it does not serve: OpenAI's "Country, region, or territory not supported"
    // through OpenRouter), so this model is out there for now, not every model of the key.
    if (status === 403 && error.flaggedFor !== undefined) {
      return { kind: "rejected", refusal: "unsupported", status, error, raw: rawOf(bodyText) };
    }
    if (error.isRelayed === true) {
      return { kind: "rejected", refusal: "model_unavailable", status, error, raw: rawOf(bodyText) };
    }
    return { kind: "invalid_key", reason: `HTTP ${status}: ${summarise(describedMessage(error))}` };
  }
  if (status === 408 || status >= 500) {
    if (status === 503) {
      // 503 "overloaded" answers carry retry-after more often than not; honour it as a capacity skip.
      const hint = retryHintFromResponse({ status, headers, bodyText, nowMs });
      if (hint !== undefined) {
        return { kind: "rate_limited", limitKind: "capacity", hint, reason: "HTTP 503 with retry-after (overloaded)" };
      }
    }
    return {
      kind: "transient",
      reason: `HTTP ${status}: ${summarise(describedMessage(readUpstreamError(bodyText, status)))}`,
    };
  }
  const error = readUpstreamError(bodyText, status);
  if ((status === 400 || status === 413 || status === 422) && isContextLengthError(error)) {
    return { kind: "context_length", reason: `HTTP ${status}: ${summarise(describedMessage(error))}`, error };
  }
  return {
    kind: "rejected",
    refusal: refusalOf(status, error, bodyText, request),
    status,
    error,
    raw: rawOf(bodyText),
  };
}

/** The upstream's body for `error.metadata.raw`, capped. */
function rawOf(bodyText: string): string {
  return cutText(bodyText, MAX_RAW_CHARS);
}

/**
 * Some providers answer HTTP 200 with an error object instead of a completion (OpenRouter mid-routing
 * failures, Gemini's list-wrapped errors). Returns the verdict for such a body, or undefined for a real answer.
 */
export function classifyErrorInSuccess(json: unknown, headers: HeaderMap, nowMs: number): Verdict | undefined {
  const root = Array.isArray(json) ? json[0] : json;
  if (!isRecord(root) || root.error === undefined || root.error === null) return undefined;
  if (Array.isArray(root.choices) || Array.isArray(root.data)) return undefined;
  const error = isRecord(root.error) ? root.error : { message: String(root.error) };
  const code = Number(error.code ?? error.status);
  const bodyText = JSON.stringify(root);
  if (code === 429 || code === 402) return classifyResponse(code, headers, bodyText, nowMs);
  if (code === 401 || code === 403) return classifyResponse(code, headers, bodyText, nowMs);
  // An overload said in-band (Anthropic's `event: error` with `overloaded_error`, an error chunk whose code or words say
  // overloaded) is the upstream's overload, as its 529 status would be: a blip's 502 left it to be asked again at once.
  if (isInBandOverload(error, bodyText)) {
    const verdict = classifyResponse(529, headers, bodyText, nowMs);
    return verdict.kind === "rate_limited" ? { ...verdict, reason: `in-band error: ${verdict.reason}` } : verdict;
  }
  const fields = readUpstreamError(bodyText, 200);
  if (isContextLengthError(fields))
    return {
      kind: "context_length",
      reason: `error in a 200 answer: ${summarise(describedMessage(fields))}`,
      error: fields,
    };
  return { kind: "transient", reason: `error in a 200 answer: ${summarise(describedMessage(fields))}` };
}

/**
 * An error object inside a 200 (a stream's error event before content, a JSON answer's error) that says the upstream is
 * overloaded: its status or name is an overload's (529, `overloaded_error`, `overloaded`: errors/in-band-error.ts), or
 * it names no other status than a 5xx and its words are a capacity refusal's ("overloaded", "over capacity":
 * limits/refusal-wording.ts). A 503 named without such words stays a blip, as a 503 status without retry-after does.
 */
function isInBandOverload(error: Record<string, unknown>, bodyText: string): boolean {
  const status = inBandErrorStatus(error);
  if (status === 529) return true;
  if (status !== undefined && status < 500) return false;
  return matchTextSignal(refusalText(bodyText))?.kind === "capacity";
}

/**
 * Whose fault a 4xx (other than a rate limit, a bad key or a context length) is: see the verdict's `refusal`.
 * `bodyText`: the answer as it came, for a 404 whose HTML page readUpstreamError reduced to "upstream answered".
 * `request`: the body sent, for the role-order refusal's echo check (classifyResponse).
 */
export function refusalOf(status: number, error: UpstreamErrorFields, bodyText = "", request?: unknown): Refusal {
  // 405: the path exists for another method only (a read-only mirror, a proxy exposing GET /models): no model of
  // the provider is served there, whatever the body says.
  if (status === 405) return error.isRelayed === true ? "model_unavailable" : "unserved_endpoint";
  const code = error.code?.toLowerCase();
  const isModelNamed =
    (code !== undefined && MODEL_GONE_CODES.has(code)) ||
    (/model/i.test(error.message) && MODEL_GONE.test(error.message));
  // A 404 or 405 an aggregator relays is the routed provider's: the aggregator has the route (it answered on it), so
  // only this model is out there, never the whole provider's endpoint.
  if (status === 404 && NO_ENDPOINT_FOR_FEATURE.test(error.message)) return "unsupported";
  if (status === 404)
    return !isModelNamed && error.isRelayed !== true && isRouteGone(error, bodyText)
      ? "unserved_endpoint"
      : "model_unavailable";
  if (status !== 400 && status !== 422) return "request";
  if (isModelNamed) return "model_unavailable";
  if (isSizeRefusal(error, request)) return "unsupported";
  // A role-order refusal (Mistral's `invalid_request_message_order`, a chat template's alternation error): another
  // candidate takes the same messages, and this one takes them rewritten (providers/message-order.ts). Judged with
  // the request, as the lesson is: a phrase that only echoes the client's prompt ("Request blocked: input '... roles
  // must alternate ...'") is the client's 400, returned at once, not a refusal to fail over from (every candidate
  // would be asked, and nothing learned from any of them).
  if (orderRefusedBy(error, request) !== undefined) return "unsupported";
  const isUnsupportedWorded = UNSUPPORTED.test(error.message);
  // An order phrase here is in the request too (orderRefusedBy without it reads the words alone).
  if (!isUnsupportedWorded && orderRefusedBy(error) === undefined) return "request";
  // The request holds the whole answer, not only its phrases or sentences: it is this refusal passed on before (an
  // agent keeps the gateway's earlier 400 in its history, a tool result holds the error body, a developer asks about
  // "Conversation roles must alternate ..."), a copy of the provider's own words, whatever the feature is ("image
  // input", two features at once, the system role: none tied to one key the request carries). Another candidate is
  // tried; nothing is learned from it (lessons.ts), as from a pasted sentence below.
  if (isWholeMessageIn(error.message, request)) return "unsupported";
  if (!isUnsupportedWorded) return "request";
  if (!isEchoedUnsupported(error.message, request)) return "unsupported";
  // Every "not supported" in it is a sentence of the prompt quoted back (a content filter, a validator quoting the
  // value it refused): read without them, the answer says nothing about a feature, and is the client's 400 as it
  // would be had the prompt not said so. Unless it names a feature the request carries (`'logprobs'`, "tools"):
  // then it may be this candidate's own refusal whose sentence the prompt happens to hold (a developer pasting the
  // error they got), and another candidate is tried; nothing is learned from it (lessons.ts).
  if (!isRecord(request)) return "request";
  // Images are a feature read from the prompt's parts, not a key: "Image input is not supported" names them. The body
  // is the one sent, in the protocol it was sent in (a Responses body's `input_image` to a native Responses provider).
  return refusedFeature(error, requestFeatures(request, hasImageParts(request))) !== undefined
    ? "unsupported"
    : "request";
}

/**
 * A refusal of a parameter for its size (size-refusal.ts: OpenAI's `array_above_max_length` for a `stop` of more than 4
 * entries, which DeepSeek (16) and others take; Groq's, Gemini's, vLLM's wordings), only when the parameter it names is
 * one of the request's features (lessons.ts learns it by that parameter): a too long `messages` is the request's,
 * whoever is asked. Mostly worded without "not supported", so known by its code or wording.
 */
function isSizeRefusal(error: UpstreamErrorFields, request: unknown): boolean {
  const refusal = sizeRefusalOf(error, request);
  if (refusal?.param === undefined || !isRecord(request)) return false;
  // Tied by the param alone: the message's other words are not read, and a wording that quotes the prompt is not
  // read either (size-refusal.ts): a quoted prompt cannot make it one.
  const param = requestParamOf(refusal.param);
  return refusedFeature({ message: "", param }, requestFeatures(request, false)) !== undefined;
}

/**
 * Whether an error's "not supported" (UNSUPPORTED) phrases are all copies of the request it was sent: each one's
 * sentence is in it (providers/request-echo.ts). False when it has none, or without the request.
 */
export function isEchoedUnsupported(message: string, request?: unknown): boolean {
  if (request === undefined) return false;
  let hasPhrase = false;
  for (const match of message.matchAll(UNSUPPORTED_EACH)) {
    if (!isEchoedPhrase(message, match.index, match.index + match[0].length, request)) return false;
    hasPhrase = true;
  }
  return hasPhrase;
}

/**
 * Whether a 404 says the path does not exist (ROUTE_GONE, or a web page: an API answers its own errors in JSON or
 * text, a page is the site's). An empty 404 says nothing either way: kept as the model's, as before.
 */
function isRouteGone(error: UpstreamErrorFields, bodyText: string): boolean {
  const text = bodyText.trim();
  if (text.startsWith("<")) return true;
  return ROUTE_GONE.test(error.message.trim()) || (text !== "" && !text.startsWith("{") && ROUTE_GONE.test(text));
}

function isContextLengthError(error: UpstreamErrorFields): boolean {
  return error.code === "context_length_exceeded" || CONTEXT_LENGTH.test(error.message);
}
