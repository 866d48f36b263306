// The few machine-readable facts in a provider's error body that rate-limit handling needs, read in one pass.
import { isRecord, parseJsonRecord } from "../is-record.ts";

/** What `readErrorBody` found; every list is empty when the body is not JSON or has none of it. */
export interface ErrorBodyFacts {
  /** Lower-cased `code` / `type` / `status` values of the error object(s), e.g. "insufficient_quota", "3036". */
  readonly codes: readonly string[];
  /** Google `QuotaFailure` violation quota ids, e.g. "GenerateRequestsPerDayPerProjectPerModel-FreeTier". */
  readonly quotaIds: readonly string[];
  /** Google `RetryInfo.retryDelay`, a protobuf Duration such as "38s" or "45.5s". */
  readonly retryDelay?: string;
  /** `X-RateLimit-Reset` that OpenRouter relays inside `error.metadata.headers` instead of sending as a header. */
  readonly relayedRateLimitReset?: string;
  /**
   * The wait OpenRouter gives inside the body of a 429 it relays from the provider it routed to (seconds):
   * `error.metadata.retry_after_seconds`, or a `Retry-After` inside `error.metadata.headers`. It sends it there, not
   * always as a header: without it the model was tried again after the gateway's 1 s backoff, each try a request
   * of the account's free pool.
   */
  readonly relayedRetryAfter?: string;
  /**
   * The provider an aggregator routed to, when the body is that provider's own refusal relayed (OpenRouter's
   * "Provider returned error" with its body in `error.metadata.raw` and its name in `provider_name`): its limits are
   * that provider's (on the aggregator's account with it, or the user's own key there), not this key's.
   */
  readonly relayedProvider?: string;
  /**
   * With `relayedProvider`: the routed provider's own error body as OpenRouter relays it in `error.metadata.raw` (its
   * docs: "Raw error body behind the returned error"), as text (an object or a list as its JSON). Its wordings are
   * that provider's refusal, which the relay's message ("Provider returned error") does not repeat.
   */
  readonly relayedRaw?: string;
  /**
   * The error's own words: `error.message` (or `error.error.message`, as OpenRouter nested it once, or a string
   * `error`, or a flat `message`). Wordings are read from it, not from the whole body: OpenRouter's `metadata` quotes
   * other refusals (`previous_errors`, a routed provider's `raw`) that are not this answer's.
   */
  readonly message?: string;
}

const NO_FACTS: ErrorBodyFacts = { codes: [], quotaIds: [] };

// No bound of its own on the bodies parsed: the one bound is the read's (`upstream_limits.max_error_body_bytes`, the
// body's start), as for upstream/read-upstream-error.ts, which reads the message of the same body. With a bound here
// (64 KB) the message's reader did not have, a 429 whose body echoed a long prompt was read as the relayed provider's
// refusal for its message but lost its wait, its class and its relay here: it cooled the key's whole pool for the
// gateway's backoff.

/**
 * The last body read, and its facts: one refusal is read by the classification, the retry hint and the lessons in
 * turn, and a body of up to a MiB (`max_error_body_bytes`' default) is parsed once, not four times.
 */
let lastRead: { readonly bodyText: string; readonly facts: ErrorBodyFacts } | undefined;

type JsonObject = Record<string, unknown>;

/**
 * Reads the error shapes the gateway meets: OpenAI-style `{"error":{...}}`; Cerebras' flat `{"code","type"}`;
 * Cloudflare's `{"errors":[{"code":3036}]}`; Google's `error.details[]` with QuotaFailure and RetryInfo, which
 * Gemini's OpenAI-compatible endpoint sometimes wraps in a one-element list `[{"error":{...}}]`; and OpenRouter's
 * `error.metadata.headers`. Never throws.
 */
export function readErrorBody(bodyText: string | undefined): ErrorBodyFacts {
  if (bodyText === undefined) return NO_FACTS;
  if (lastRead?.bodyText === bodyText) return lastRead.facts;
  const facts = factsOf(proxiedErrorBody(bodyText) ?? bodyText);
  // Only long bodies are kept: a short one parses again in microseconds.
  if (bodyText.length > SHORT_BODY_CHARS && bodyText.length <= MAX_KEPT_BODY_CHARS) lastRead = { bodyText, facts };
  return facts;
}

const SHORT_BODY_CHARS = 4 * 1024;
/**
 * Nor the longest: kept, a body outlives its refusal until the next long one. An error body is read up to
 * `max_error_body_bytes` (a MiB by default), but an error inside a 2xx answer (classify-response.ts
 * classifyErrorInSuccess) is up to `max_response_bytes` (64 MiB): one such answer held 80 MB for as long as no other
 * long error came. Longer bodies are parsed at each read instead.
 */
const MAX_KEPT_BODY_CHARS = 1024 * 1024;

function factsOf(bodyText: string): ErrorBodyFacts {
  const start = firstNonSpaceCode(bodyText);
  if (start !== CHAR_OPEN_BRACE && start !== CHAR_OPEN_BRACKET) return NO_FACTS;
  let parsed: unknown;
  try {
    parsed = JSON.parse(bodyText);
  } catch {
    return NO_FACTS;
  }
  const root = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!isRecord(root)) return NO_FACTS;

  const codes: string[] = [];
  const quotaIds: string[] = [];
  let retryDelay: string | undefined;
  let relayedRateLimitReset: string | undefined;
  let relayedRetryAfter: string | undefined;
  let relayedProvider: string | undefined;
  let relayedRaw: string | undefined;

  collectCodes(root, codes);
  const message = messageOf(root);
  const error = root.error;
  if (isRecord(error)) {
    collectCodes(error, codes);
    if (Array.isArray(error.details)) {
      for (const detail of error.details) {
        if (!isRecord(detail)) continue;
        const type = detail["@type"];
        if (typeof type !== "string") continue;
        if (type.endsWith("google.rpc.QuotaFailure") && Array.isArray(detail.violations)) {
          for (const violation of detail.violations) {
            if (isRecord(violation) && typeof violation.quotaId === "string") quotaIds.push(violation.quotaId);
          }
        } else if (type.endsWith("google.rpc.RetryInfo") && typeof detail.retryDelay === "string") {
          retryDelay = detail.retryDelay;
        }
      }
    }
    const metadata = error.metadata;
    const seconds = isRecord(metadata) ? metadata.retry_after_seconds : undefined;
    if (typeof seconds === "number" && Number.isFinite(seconds) && seconds >= 0) relayedRetryAfter = String(seconds);
    if (isRelayedError(error)) {
      relayedProvider = relayedProviderNameOf(error) ?? "the upstream provider";
      relayedRaw = rawTextOf(isRecord(metadata) ? metadata.raw : undefined);
    }
    if (isRecord(metadata) && isRecord(metadata.headers)) {
      for (const name in metadata.headers) {
        const value = metadata.headers[name];
        if (typeof value !== "string" && typeof value !== "number") continue;
        const lowerName = name.toLowerCase();
        if (lowerName === "x-ratelimit-reset") relayedRateLimitReset = String(value);
        else if (lowerName === "retry-after") relayedRetryAfter ??= String(value);
      }
    }
  }
  if (Array.isArray(root.errors)) {
    for (const item of root.errors) if (isRecord(item)) collectCodes(item, codes);
  }

  const facts: { -readonly [K in keyof ErrorBodyFacts]: ErrorBodyFacts[K] } = { codes, quotaIds };
  if (retryDelay !== undefined) facts.retryDelay = retryDelay;
  if (relayedRateLimitReset !== undefined) facts.relayedRateLimitReset = relayedRateLimitReset;
  if (relayedRetryAfter !== undefined) facts.relayedRetryAfter = relayedRetryAfter;
  if (relayedProvider !== undefined) facts.relayedProvider = relayedProvider;
  if (relayedRaw !== undefined) facts.relayedRaw = relayedRaw;
  if (message !== undefined) facts.message = message;
  return facts;
}

function messageOf(root: JsonObject): string | undefined {
  const error = root.error;
  // `{"error":"Too Many Requests","message":"Rate limit exceeded, retry in 1 minute"}` (Fastify's rate limit, Spring, Go
  // limiters): the string error is the status's reason phrase, the words are the message's. Read alone, its wait and
  // its kind (a daily limit) were lost.
  if (typeof error === "string") {
    return typeof root.message === "string" && root.message.trim() !== "" ? `${error}\n${root.message}` : error;
  }
  if (!isRecord(error)) return typeof root.message === "string" ? root.message : undefined;
  if (typeof error.message === "string") return error.message;
  // `{"error":{"error":{"message":...,"code":402},"code":402}}` (tailcallhq/forgecode#571).
  return isRecord(error.error) && typeof error.error.message === "string" ? error.error.message : undefined;
}

/**
 * OpenRouter's message for an error of the provider it routed to: that provider's body, when it sent one, is in
 * `metadata.raw` (upstream/read-upstream-error.ts reads it), its name in `metadata.provider_name`. OpenRouter's own
 * errors (its key's, the account's pools and credits, no provider available) say what they are instead.
 */
const RELAYED_MESSAGE = /^\s*provider returned error\.?\s*$/i;
const MAX_PROVIDER_NAME_CHARS = 100;

/**
 * Whether an error object is an aggregator's relay of the routed provider's own error: its message says so, or it
 * has none beside a `raw`. "Provider returned error" alone is enough: OpenRouter often relays a provider's 429 with
 * no `raw` at all (`metadata: {"provider_name":"Together","is_byok":false,"retry_after_seconds":1}`), and a `raw`
 * without `provider_name`; read as OpenRouter's own, such a 429 cooled the account's whole pool and taught it a
 * limit, and such a 401/403 parked the key.
 */
export function isRelayedError(error: JsonObject): boolean {
  const message = error.message;
  if (typeof message === "string" && RELAYED_MESSAGE.test(message)) return true;
  if (message !== undefined && !(typeof message === "string" && message.trim() === "")) return false;
  const raw = isRecord(error.metadata) ? error.metadata.raw : undefined;
  return typeof raw === "string" ? raw.trim() !== "" : isRecord(raw) || Array.isArray(raw);
}

/** A relayed `raw` as text: a string as it is, an object or a list as its JSON, nothing else. */
function rawTextOf(raw: unknown): string | undefined {
  if (typeof raw === "string") return raw.trim() === "" ? undefined : raw;
  return isRecord(raw) || Array.isArray(raw) ? JSON.stringify(raw) : undefined;
}

/** The routed provider's name a relayed error gives (`metadata.provider_name`), cut to a name's length. */
export function relayedProviderNameOf(error: JsonObject): string | undefined {
  const name = isRecord(error.metadata) ? error.metadata.provider_name : undefined;
  return typeof name === "string" && name.trim() !== "" ? name.trim().slice(0, MAX_PROVIDER_NAME_CHARS) : undefined;
}

function collectCodes(object: JsonObject, codes: string[]): void {
  for (const key of CODE_KEYS) {
    const value = object[key];
    if (typeof value === "string" && value !== "") codes.push(value.toLowerCase());
    else if (typeof value === "number") codes.push(String(value));
  }
}

const CODE_KEYS = ["code", "type", "status"] as const;
const CHAR_OPEN_BRACE = 123;
const CHAR_OPEN_BRACKET = 91;

function firstNonSpaceCode(text: string): number {
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code !== 32 && code !== 9 && code !== 10 && code !== 13) return code;
  }
  return -1;
}

/**
 * LiteLLM in front of a provider wraps the provider's error body in text: `<Provider>Exception - <the body>`
 * (`OpenrouterException - {"error":{"message":"Provider returned error","code":429,"metadata":{...}}}`), as its
 * proxy's error message (`{"error":{"message":"litellm.RateLimitError: RateLimitError: OpenrouterException - {...}",
 * "type":null,"param":null,"code":"429"}}`, sometimes followed by its router's "Received Model Group=...") or as the
 * whole text. Read as it stands, OpenRouter's relay of a provider's 429 was LiteLLM's own (the key's pool cooled, the
 * relay's wait lost) and its refusals said nothing recognisable.
 */
//
// The wrapper is the start of the message (or text): LiteLLM's error class names, each followed by ": "
// (`litellm.RateLimitError: RateLimitError: `), then `<Provider>Exception - {`. Anywhere else in a message it is
// someone's text quoted (a validator's 400 quoting a prompt that pastes a proxy's error): opened, the quoted JSON's
// `model_not_found` was this provider's own answer, and the model was left out of it on a client's words.
const PROXIED_EXCEPTION = /^\s*(?:[A-Za-z][\w.]*: )*[A-Za-z]\w*Exception - (?=\{)/;
const PROXIED_MARKER = "Exception - {";
/** The wrapper's words come first: a marker later in a body is part of someone's text, not the wrapper. */
const MAX_MARKER_AT = 1_000;

/** The provider's own error body a proxy (LiteLLM) wrapped as `<Provider>Exception - {json}`, else undefined. */
export function proxiedErrorBody(bodyText: string): string | undefined {
  const markerAt = bodyText.indexOf(PROXIED_MARKER);
  if (markerAt === -1 || markerAt > MAX_MARKER_AT) return undefined;
  const message = firstNonSpaceCode(bodyText) === CHAR_OPEN_BRACE ? proxyMessageOf(bodyText) : bodyText;
  if (message === undefined) return undefined;
  const match = PROXIED_EXCEPTION.exec(message.slice(0, MAX_MARKER_AT + PROXIED_MARKER.length));
  if (match === null) return undefined;
  const inner = leadingObjectText(message, match.index + match[0].length);
  if (inner === undefined) return undefined;
  return parseJsonRecord(inner) === undefined ? undefined : inner;
}

/** The message of a proxy's own error JSON (`error.message`, or a flat `message`). */
function proxyMessageOf(bodyText: string): string | undefined {
  const json = parseJsonRecord(bodyText);
  if (json === undefined) return undefined;
  const error = isRecord(json.error) ? json.error : json;
  return typeof error.message === "string" ? error.message : undefined;
}

/** The JSON object starting at `start` (`{`), up to its matching brace (strings and escapes skipped), if whole. */
function leadingObjectText(text: string, start: number): string | undefined {
  let depth = 0;
  let isInString = false;
  for (let index = start; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (isInString) {
      if (code === CHAR_BACKSLASH) index++;
      else if (code === CHAR_QUOTE) isInString = false;
    } else if (code === CHAR_QUOTE) isInString = true;
    else if (code === CHAR_OPEN_BRACE) depth++;
    else if (code === CHAR_CLOSE_BRACE && --depth === 0) return text.slice(start, index + 1);
  }
  return undefined;
}

const CHAR_CLOSE_BRACE = 125;
const CHAR_QUOTE = 34;
const CHAR_BACKSLASH = 92;
