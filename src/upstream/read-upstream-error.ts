// An upstream's error body as OpenAI's error fields, whatever shape it came in: OpenAI's, a flat one, Gemini's list,
// FastAPI's validation `detail`, plain text, an aggregator's wrapper of the provider it routed to (OpenRouter's
// `metadata.raw`), and a proxy's text wrapper of either (LiteLLM's `OpenrouterException - {...}`). Pure.
import { cutText } from "../errors/shown-reason.ts";
import { isRecord } from "../is-record.ts";
import { isRelayedError, proxiedErrorBody } from "../limits/error-body.ts";

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
  /**
   * An aggregator (OpenRouter) relayed this as the error of the provider it routed to ("Provider returned error"),
   * with that provider's body (`relayedFrom` names it when the wrapper does) or without: about that model there, not
   * the aggregator's key, account or route.
   */
  readonly isRelayed?: true;
  /**
   * A moderation refusal's reasons (OpenRouter's 403 `metadata.reasons`): the input was flagged, not the key. Set, if
   * empty, when the metadata has a moderation's shape (`reasons`, `flagged_input`) without naming a reason.
   */
  readonly flaggedFor?: readonly string[];
}

/** The message as a reason or a client reads it: with the relayed provider's name when an aggregator relayed it. */
export function describedMessage(error: UpstreamErrorFields, via?: string): string {
  if (error.relayedFrom === undefined) return error.message;
  return `${error.relayedFrom}${via === undefined ? "" : ` (via ${via})`}: ${error.message}`;
}

const MAX_REASON_CHARS = 300;
/** An upstream error message is passed on word for word up to this length (clients match these messages). */
const MAX_MESSAGE_CHARS = 8_000;

/** The upstream's error as OpenAI fields, from whatever shape it used (or its raw text). */
export function readUpstreamError(bodyText: string, status: number): UpstreamErrorFields {
  let json: unknown;
  try {
    // A proxy's (LiteLLM's) `OpenrouterException - {...}`: the body it wraps is read, as the provider's own.
    json = JSON.parse(proxiedErrorBody(bodyText) ?? bodyText);
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
  const fields: { -readonly [K in keyof UpstreamErrorFields]: UpstreamErrorFields[K] } = {
    message: clipped(moderationMessageOf(message, flaggedFor)),
  };
  if (flaggedFor !== undefined) fields.flaggedFor = flaggedFor;
  if (typeof error.type === "string") fields.type = identifier(error.type);
  if (typeof error.code === "string") fields.code = identifier(error.code);
  else if (typeof error.code === "number") fields.code = String(error.code);
  if (typeof error.param === "string") fields.param = identifier(error.param);
  return fields;
}

// OpenRouter's (and proxies copying it) wrapper when the provider it routed to refused (limits/error-body.ts
// isRelayedError): the provider's own body is in `error.metadata.raw` (a JSON string, sometimes an object, or text)
// and its name in `metadata.provider_name` (openrouter.ai/docs/api/reference/errors-and-debugging). Read as the
// message, it said nothing: a context-length refusal, a refused parameter, "model not found" were none of them
// recognised.
/** A `raw` longer than this is not parsed as JSON (an echo of the prompt), only its text read. */
const MAX_PARSED_RAW_CHARS = 64 * 1024;
const MAX_PROVIDER_NAME_CHARS = 100;

/**
 * The relayed provider's own error when `root` is an aggregator's wrapper of it: its message, type, code and param,
 * read with the same shapes as a direct answer's (once: a wrapper in `raw` is not opened again), and `relayedFrom`.
 * The outer `code` (the HTTP status OpenRouter repeats) stays when the inner error has none. A wrapper whose `raw`
 * says nothing more (none, empty, a web page) is read as it stands, still marked relayed and named. Undefined when
 * it is no such wrapper.
 */
function relayedErrorOf(root: Record<string, unknown>, status: number): UpstreamErrorFields | undefined {
  const error = root.error;
  if (!isRecord(error) || !isRelayedError(error)) return undefined;
  const metadata = isRecord(error.metadata) ? error.metadata : undefined;
  const inner = innerErrorOf(metadata?.raw, status);
  const fields: { -readonly [K in keyof UpstreamErrorFields]: UpstreamErrorFields[K] } =
    inner === undefined ? { ...errorFieldsOf(root, status, false), isRelayed: true } : { ...inner, isRelayed: true };
  if (fields.code === undefined && (typeof error.code === "number" || typeof error.code === "string"))
    fields.code = identifier(String(error.code));
  // Named even when only the wrapper's words are left: "Together (via openrouter): Provider returned error" says
  // which provider refused, where the bare wrapper said nothing.
  const provider = metadata?.provider_name;
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

/**
 * The reasons of a moderation refusal: OpenRouter's 403 carries them in `metadata.reasons`. Undefined when the metadata
 * is no moderation's; an empty list when it is one naming no reason (`"reasons": []`, or only `flagged_input`): read as
 * the key's 403, such a refusal parked every model of the key for an hour over one flagged prompt.
 */
function moderationReasonsOf(metadata: Record<string, unknown> | undefined): readonly string[] | undefined {
  if (metadata === undefined) return undefined;
  if (!Array.isArray(metadata.reasons)) return typeof metadata.flagged_input === "string" ? [] : undefined;
  return metadata.reasons
    .filter((reason): reason is string => typeof reason === "string" && reason.trim() !== "")
    .slice(0, 10)
    .map((reason) => summarise(reason, 100));
}

/**
 * A moderation refusal's message naming why the input was flagged (`reasons`) when its own words do not name every
 * reason. Not the flagged text (`flagged_input`): that is the client's prompt, and this message is also an attempt's
 * reason, a log line and a request record, which hold message content only with `log.content: true`; the client
 * reads it in the error's `metadata.raw` (the upstream's body as it came).
 */
function moderationMessageOf(message: string, reasons: readonly string[] | undefined): string {
  if (reasons === undefined || reasons.length === 0) return message;
  const lower = message.toLowerCase();
  if (reasons.every((reason) => lower.includes(reason.toLowerCase()))) return message;
  const trimmed = message.trim();
  const said =
    trimmed === "" ? "The input was flagged by moderation." : /[.!?]$/.test(trimmed) ? trimmed : `${trimmed}.`;
  return `${said} Flagged for: ${reasons.join(", ")}.`;
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
  if (fields.length === 1 && fields[0] !== undefined) fieldsOf.param = identifier(fields[0]);
  return fieldsOf;
}

/**
 * An upstream's `type`, `code` or `param` is passed on as it is up to this length (clients match them; OpenAI's
 * longest are a few dozen characters). A longer one is cut: it reaches the client, the request record's
 * `errorCode` and the error's log line, and a relayed `raw` may hold one of up to 64 KB.
 */
const MAX_IDENTIFIER_CHARS = 200;

function identifier(text: string): string {
  return text.length > MAX_IDENTIFIER_CHARS ? `${text.slice(0, MAX_IDENTIFIER_CHARS - 1)}…` : text;
}

/** An upstream message as passed on: word for word up to MAX_MESSAGE_CHARS. */
function clipped(message: string): string {
  return cutText(message, MAX_MESSAGE_CHARS);
}

export function summarise(text: string, maxChars = MAX_REASON_CHARS): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return cutText(flat, maxChars);
}
