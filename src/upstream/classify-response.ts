// What an upstream answer means for failover. Pure: status, headers and body text in, a verdict out.

import { isRecord } from "../is-record.ts";
import { classifyRateLimit, type RateLimitKind, requestLargerThanWindow } from "../limits/classify-429.ts";
import type { HeaderMap } from "../limits/header-map.ts";
import { type RetryHint, retryHintFromResponse } from "../limits/retry-hint.ts";
import { estimateChatPrompt } from "../limits/token-estimate.ts";
import { orderRefusedBy } from "../providers/order-refusals.ts";
import { isEchoedPhrase, isWholeMessageIn } from "../providers/request-echo.ts";
import { requestFeatures } from "../router/request-features.ts";
import { refusedFeature } from "./refused-feature.ts";

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

export interface UpstreamErrorFields {
  readonly message: string;
  readonly type?: string;
  readonly code?: string;
  readonly param?: string;
  /**
   * The provider an aggregator (OpenRouter) routed to, whose own error this is (`error.metadata.provider_name`):
   * `message`, `type`, `code` and `param` are that provider's, read from the wrapper's `metadata.raw`.
   */
  readonly relayedFrom?: string;
  /** A moderation refusal's reasons (OpenRouter's 403 `metadata.reasons`): the input was flagged, not the key. */
  readonly flaggedFor?: readonly string[];
}

/** The message as a reason or a client reads it: with the relayed provider's name when an aggregator relayed it. */
export function describedMessage(error: UpstreamErrorFields, via?: string): string {
  if (error.relayedFrom === undefined) return error.message;
  return `${error.relayedFrom}${via === undefined ? "" : ` (via ${via})`}: ${error.message}`;
}

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

const MAX_REASON_CHARS = 300;
/** An upstream error message is passed on word for word up to this length (clients match these messages). */
const MAX_MESSAGE_CHARS = 8_000;
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
  // Groq answers 413 (not 429) to a request larger than the model's whole tokens-per-minute window, with its
  // rate-limit code and wording (console.groq.com/docs/errors lists the 413): another candidate may take it.
  if (
    status === 429 ||
    status === 402 ||
    status === 529 ||
    (status === 413 && requestLargerThanWindow(bodyText) !== undefined)
  ) {
    const classification = classifyRateLimit({ status, headers, bodyText });
    return {
      kind: "rate_limited",
      limitKind: classification.kind,
      hint: retryHintFromResponse({ status, headers, bodyText, nowMs }),
      reason: classification.reason,
      ...(classification.isAccountWide === true ? { isAccountWide: true } : {}),
      ...(classification.isRequestTooLarge === true ? { isRequestTooLarge: true } : {}),
      ...(classification.isRelayed === true ? { isRelayed: true } : {}),
    };
  }
  if (status === 401 || status === 403) {
    const error = readUpstreamError(bodyText, status);
    // Neither is about the key that was sent: a moderation refusal flagged the input (OpenRouter's 403 with
    // `metadata.reasons`), returned to the client as is; a provider behind an aggregator refused the aggregator (its
    // own key, a region it does not serve: OpenAI's "Country, region, or territory not supported" through
    // OpenRouter), so this model is out there for now, not every model of the key.
    if (status === 403 && error.flaggedFor !== undefined) {
      return { kind: "rejected", refusal: "request", status, error, raw: rawOf(bodyText) };
    }
    if (error.relayedFrom !== undefined) {
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
  return bodyText.length > MAX_RAW_CHARS ? `${bodyText.slice(0, MAX_RAW_CHARS - 1)}…` : bodyText;
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
 * Whose fault a 4xx (other than a rate limit, a bad key or a context length) is: see the verdict's `refusal`.
 * `bodyText`: the answer as it came, for a 404 whose HTML page readUpstreamError reduced to "upstream answered".
 * `request`: the body sent, for the role-order refusal's echo check (classifyResponse).
 */
export function refusalOf(status: number, error: UpstreamErrorFields, bodyText = "", request?: unknown): Refusal {
  // 405: the path exists for another method only (a read-only mirror, a proxy exposing GET /models): no model of
  // the provider is served there, whatever the body says.
  if (status === 405) return "unserved_endpoint";
  const code = error.code?.toLowerCase();
  const isModelNamed =
    (code !== undefined && MODEL_GONE_CODES.has(code)) ||
    (/model/i.test(error.message) && MODEL_GONE.test(error.message));
  if (status === 404) return !isModelNamed && isRouteGone(error, bodyText) ? "unserved_endpoint" : "model_unavailable";
  if (status !== 400 && status !== 422) return "request";
  if (isModelNamed) return "model_unavailable";
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
  // Images are a feature read from the messages' parts, not a key: "Image input is not supported" names them.
  const hasImages = Array.isArray(request.messages) && estimateChatPrompt(request.messages, undefined).hasImages;
  return refusedFeature(error, requestFeatures(request, hasImages)) !== undefined ? "unsupported" : "request";
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

/** The upstream's error as OpenAI fields, from whatever shape it used (or its raw text). */
function readUpstreamError(bodyText: string, status: number): UpstreamErrorFields {
  let json: unknown;
  try {
    json = JSON.parse(bodyText);
  } catch {
    return textErrorOf(bodyText, status);
  }
  return errorFieldsOf(json, status, true);
}

/** A body that is not JSON: its text, flattened and cut, unless it is empty or a web page. */
function textErrorOf(bodyText: string, status: number): UpstreamErrorFields {
  const text = bodyText.trim();
  return { message: text === "" || text.startsWith("<") ? `upstream answered HTTP ${status}` : summarise(text) };
}

/**
 * `mayUnwrap`: whether an aggregator's wrapper (relayedErrorOf) is opened. Only the outer body's is: a wrapper
 * inside `raw` is read as it stands, so a body nesting wrappers costs one parse of `raw`, not one per level.
 */
function errorFieldsOf(json: unknown, status: number, mayUnwrap: boolean): UpstreamErrorFields {
  const root = Array.isArray(json) ? json[0] : json;
  if (!isRecord(root)) return { message: `upstream answered HTTP ${status}` };
  if (mayUnwrap) {
    const relayed = relayedErrorOf(root, status);
    if (relayed !== undefined) return relayed;
  }
  const validation = validationErrorOf(root.detail ?? (isRecord(root.error) ? root.error.message : undefined));
  if (validation !== undefined) return validation;
  const error = isRecord(root.error) ? root.error : root;
  const message =
    typeof error.message === "string"
      ? error.message
      : typeof root.error === "string"
        ? root.error
        : typeof root.detail === "string"
          ? root.detail
          : `upstream answered HTTP ${status}`;
  const metadata = isRecord(error.metadata) ? error.metadata : undefined;
  const flaggedFor = moderationReasonsOf(metadata);
  const fields: {
    message: string;
    type?: string;
    code?: string;
    param?: string;
    flaggedFor?: readonly string[];
  } = {
    message: clipped(moderationMessageOf(message, flaggedFor, metadata)),
  };
  if (flaggedFor.length > 0) fields.flaggedFor = flaggedFor;
  if (typeof error.type === "string") fields.type = error.type;
  if (typeof error.code === "string") fields.code = error.code;
  else if (typeof error.code === "number") fields.code = String(error.code);
  if (typeof error.param === "string") fields.param = error.param;
  return fields;
}

// OpenRouter's (and proxies copying it) message when the provider it routed to refused: the provider's own body is
// in `error.metadata.raw` (a JSON string, sometimes an object, or text) and its name in `metadata.provider_name`
// (openrouter.ai/docs/api/reference/errors-and-debugging). Read as the message, it said nothing: a context-length
// refusal, a refused parameter, "model not found" were none of them recognised.
const GENERIC_RELAYED_MESSAGE = /^\s*(?:provider returned error\.?)?\s*$/i;
/** A `raw` longer than this is not parsed as JSON (an echo of the prompt), only its text read. */
const MAX_PARSED_RAW_CHARS = 64 * 1024;
const MAX_PROVIDER_NAME_CHARS = 100;

/**
 * The relayed provider's own error when `root` is an aggregator's wrapper of it (GENERIC_RELAYED_MESSAGE with a
 * `metadata.raw`): its message, type, code and param, read with the same shapes as a direct answer's (once: a wrapper
 * in `raw` is not opened again), and `relayedFrom`. The outer `code` (the HTTP status OpenRouter repeats) stays when
 * the inner error has none. Undefined when it is no such wrapper, or `raw` says nothing more than the wrapper.
 */
function relayedErrorOf(root: Record<string, unknown>, status: number): UpstreamErrorFields | undefined {
  const error = root.error;
  if (!isRecord(error) || !isRecord(error.metadata)) return undefined;
  if (
    error.message !== undefined &&
    (typeof error.message !== "string" || !GENERIC_RELAYED_MESSAGE.test(error.message))
  )
    return undefined;
  const inner = innerErrorOf(error.metadata.raw, status);
  if (inner === undefined) return undefined;
  const fields: { -readonly [K in keyof UpstreamErrorFields]: UpstreamErrorFields[K] } = { ...inner };
  if (fields.code === undefined && (typeof error.code === "number" || typeof error.code === "string"))
    fields.code = String(error.code);
  const provider = error.metadata.provider_name;
  if (typeof provider === "string" && provider.trim() !== "")
    fields.relayedFrom = summarise(provider, MAX_PROVIDER_NAME_CHARS);
  return fields;
}

function innerErrorOf(raw: unknown, status: number): UpstreamErrorFields | undefined {
  if (isRecord(raw) || Array.isArray(raw)) return meaningful(errorFieldsOf(raw, status, false));
  if (typeof raw !== "string") return undefined;
  const text = raw.trim();
  if (text === "" || text.startsWith("<")) return undefined;
  if ((text.startsWith("{") || text.startsWith("[")) && text.length <= MAX_PARSED_RAW_CHARS) {
    try {
      const fields = meaningful(errorFieldsOf(JSON.parse(text), status, false));
      if (fields !== undefined) return fields;
    } catch {
      // Not JSON after all (a cut body, a Python repr): its text, below.
    }
  }
  // Only what summarise keeps is read: a huge `raw` costs no more than its first part.
  return { message: summarise(text.slice(0, MAX_REASON_CHARS * 4)) };
}

/** Fields that say more than the gateway's own "upstream answered HTTP n" placeholder. */
function meaningful(fields: UpstreamErrorFields): UpstreamErrorFields | undefined {
  return /^upstream answered HTTP \d+$/.test(fields.message) && fields.code === undefined ? undefined : fields;
}

/** The reasons of a moderation refusal: OpenRouter's 403 carries them in `metadata.reasons`. */
function moderationReasonsOf(metadata: Record<string, unknown> | undefined): readonly string[] {
  if (!Array.isArray(metadata?.reasons)) return [];
  return metadata.reasons
    .filter((reason): reason is string => typeof reason === "string" && reason.trim() !== "")
    .slice(0, 10)
    .map((reason) => summarise(reason, 100));
}

/**
 * A moderation refusal's message naming why the input was flagged (`reasons`, and `flagged_input`, the flagged
 * text OpenRouter cuts to 100 characters) when its own words do not name every reason.
 */
function moderationMessageOf(
  message: string,
  reasons: readonly string[],
  metadata: Record<string, unknown> | undefined,
): string {
  if (reasons.length === 0) return message;
  const lower = message.toLowerCase();
  if (reasons.every((reason) => lower.includes(reason.toLowerCase()))) return message;
  const flagged = typeof metadata?.flagged_input === "string" ? summarise(metadata.flagged_input, 200) : "";
  const trimmed = message.trim();
  const said =
    trimmed === "" ? "The input was flagged by moderation." : /[.!?]$/.test(trimmed) ? trimmed : `${trimmed}.`;
  return `${said} Flagged for: ${reasons.join(", ")}${flagged === "" ? "" : ` (flagged input: "${flagged}")`}.`;
}

/**
 * A FastAPI / pydantic validation error (vLLM, LiteLLM and other Python servers answer 422 with
 * `{"detail": [{"loc": ["body", "parallel_tool_calls"], "msg": "Extra inputs are not permitted", ...}]}`), as one
 * message naming each field, and the field as `param` when there is one: without it the refusal read as "upstream
 * answered HTTP 422", neither recognised as a refused parameter nor tied to one.
 */
function validationErrorOf(detail: unknown): UpstreamErrorFields | undefined {
  if (!Array.isArray(detail) || detail.length === 0) return undefined;
  const parts: string[] = [];
  const fields: string[] = [];
  for (const entry of detail.slice(0, 20)) {
    if (!isRecord(entry) || typeof entry.msg !== "string") return undefined;
    const location = Array.isArray(entry.loc)
      ? entry.loc.filter((part, index) => !(index === 0 && part === "body")).map(String)
      : [];
    const field = location.map((part, index) => (/^\d+$/.test(part) ? `[${part}]` : index === 0 ? part : `.${part}`));
    const path = field.join("");
    if (path !== "") fields.push(path);
    parts.push(path === "" ? entry.msg : `${path}: ${entry.msg}`);
  }
  const message = parts.join("; ");
  const fieldsOf: { message: string; param?: string } = {
    message: clipped(message),
  };
  if (fields.length === 1 && fields[0] !== undefined) fieldsOf.param = fields[0];
  return fieldsOf;
}

/** An upstream message as passed on: word for word up to MAX_MESSAGE_CHARS. */
function clipped(message: string): string {
  return message.length > MAX_MESSAGE_CHARS ? `${message.slice(0, MAX_MESSAGE_CHARS - 1)}…` : message;
}

function summarise(text: string, maxChars = MAX_REASON_CHARS): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > maxChars ? `${flat.slice(0, maxChars - 1)}…` : flat;
}
