// Whether words in a provider's error are its own or a copy of the request it was sent. Some servers echo the request
// in their errors (a validation error quoting the offending value, a content filter quoting the prompt it blocked, a
// proxy wrapping the whole body), so a prompt that merely says "roles must alternate" or "not supported" would
// otherwise be read as the provider's refusal. Pure; the request's text is built once per request body (a 400 is read
// by the classification and by the lesson, each asking several questions of it).

/** The request as text to search for echoes, lower-cased: its JSON, and its strings as they are. */
export interface RequestText {
  /** The body as JSON: an echo of the body itself (a proxy quoting what it was sent). */
  readonly json: string;
  /** Its strings, one per line: an echo of a prompt (JSON escapes its quotes and newlines; an error quoting it, not). */
  readonly strings: string;
}

const EMPTY: RequestText = { json: "", strings: "" };
/** Per request body (the object sent): built at the first question, kept as long as the body is. */
const textOf = new WeakMap<object, RequestText>();

export function requestTextOf(request: unknown): RequestText {
  if (request === undefined) return EMPTY;
  const isObject = typeof request === "object" && request !== null;
  const known = isObject ? textOf.get(request) : undefined;
  if (known !== undefined) return known;
  const text: RequestText = {
    json: (JSON.stringify(request) ?? "").toLowerCase(),
    strings: stringsOf(request).join("\n").toLowerCase(),
  };
  if (isObject) textOf.set(request, text);
  return text;
}

/** Every string in a JSON value (its objects' values and arrays' items, depth first). */
function stringsOf(value: unknown): string[] {
  const strings: string[] = [];
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const next = pending.pop();
    if (typeof next === "string") strings.push(next);
    // Pushed one by one: spread into arguments, an array of a few hundred thousand items overflows the stack.
    else if (Array.isArray(next)) for (const item of next) pending.push(item);
    else if (next !== null && typeof next === "object") for (const item of Object.values(next)) pending.push(item);
  }
  return strings;
}

/**
 * Where a sentence ends on either side of a phrase in an error: a quote (an echo is quoted: `input 'the prompt'`,
 * `"text": "the prompt"`), a line break, or sentence punctuation followed by a space or the end (not the dot of
 * `gpt-4.1`).
 */
const QUOTE_OR_BREAK = new Set(["'", '"', "`", "\n", "\r"]);
const SENTENCE_END = new Set([".", "!", "?", ";"]);

/** The sentence of `text` around `[start, end)` (up to a quote, a line break or a sentence's end), trimmed. */
export function sentenceAround(text: string, start: number, end: number): string {
  let from = start;
  while (from > 0) {
    const before = text[from - 1] ?? "";
    if (QUOTE_OR_BREAK.has(before)) break;
    if (SENTENCE_END.has(text[from - 2] ?? "") && /\s/.test(before)) break;
    from -= 1;
  }
  let to = end;
  while (to < text.length) {
    const next = text[to] ?? "";
    if (QUOTE_OR_BREAK.has(next)) break;
    if (SENTENCE_END.has(next) && (to + 1 === text.length || /\s/.test(text[to + 1] ?? ""))) break;
    to += 1;
  }
  return text.slice(from, to).trim();
}

/**
 * A sentence this much longer than the phrase in it may be an echo; a shorter one ("Not supported.", "tools are not
 * supported") is too common to tell from a provider's own words, and is always taken as the provider's: the cost of
 * taking an echo for a refusal is a failover, that of taking a refusal for an echo a request not served.
 */
const MIN_ECHO_EXTRA_CHARS = 12;

/**
 * Whether the phrase at `[start, end)` of an error message is a copy of the request: its whole sentence (long enough to
 * be a quotation rather than a coincidence) is in one of the request's strings or in its JSON.
 */
export function isEchoedPhrase(message: string, start: number, end: number, request: unknown): boolean {
  if (request === undefined) return false;
  const sentence = sentenceAround(message, start, end).toLowerCase();
  if (sentence.length < end - start + MIN_ECHO_EXTRA_CHARS) return false;
  const text = requestTextOf(request);
  return text.strings.includes(sentence) || text.json.includes(sentence);
}

/**
 * Whether the whole error message is in the request, as it is or as JSON escapes it (an error body pasted into a tool
 * result): the client was shown this very answer before (a refusal the gateway passed on, kept in an agent's history;
 * a developer pasting it). A filter or a validator quoting the prompt wraps the quotation in words of its own, which
 * the request does not hold; an answer held whole is a copy of the provider's own refusal, not of the prompt.
 */
export function isWholeMessageIn(message: string, request: unknown): boolean {
  if (request === undefined) return false;
  const whole = message.trim().toLowerCase();
  if (whole === "") return false;
  const escaped = (JSON.stringify(whole) ?? "").slice(1, -1);
  const text = requestTextOf(request);
  return [whole, escaped].some((form) => text.strings.includes(form) || text.json.includes(form));
}

/**
 * Image part types of the three protocols a request body can be sent in: chat's `image_url`, a Responses body's
 * `input_image` (sent as it is to a provider serving Responses natively), Messages' `image`. A file or document part
 * (chat's `file`, Responses' `input_file`, Messages' `document`) is a document, not an image, in each of them alike
 * (limits/token-estimate.ts counts chat's `file` so).
 */
const IMAGE_PART_TYPES: ReadonlySet<unknown> = new Set(["image_url", "input_image", "image"]);
/** Values looked at before giving up: a history of thousands of messages is still read, a hostile body is bounded. */
const MAX_VISITED_VALUES = 200_000;

/**
 * Whether the request's prompt holds an image part, whatever protocol its body is in: a part of a message's content in
 * chat's or Messages' `messages`, or of a Responses body's `input`, also inside a part's own content or output (a
 * Messages `tool_result`'s content, a Responses `function_call_output`'s output hold parts too). Only content is read:
 * an image-typed object among a tool call's arguments (a Messages `tool_use` block's `input`, a function call's
 * arguments sent as an object) is data the model produced for a tool, not an image the model is shown; read as one,
 * it made an echoed "image input is not supported" a refusal of the request's images, failed over for nothing. The
 * echo rule asks it of the body as it was sent: an error whose "not supported" only quotes the prompt is still this
 * candidate's refusal when it names images the request carries.
 */
export function hasImageParts(request: unknown): boolean {
  if (request === null || typeof request !== "object") return false;
  const { messages, input } = request as { messages?: unknown; input?: unknown };
  const pending: unknown[] = [messages, input];
  let visited = 0;
  while (pending.length > 0 && visited < MAX_VISITED_VALUES) {
    const next = pending.pop();
    visited += 1;
    if (Array.isArray(next)) for (const item of next) pending.push(item);
    else if (next !== null && typeof next === "object") {
      const part = next as Record<string, unknown>;
      if (IMAGE_PART_TYPES.has(part.type) || isUntypedImagePart(part)) return true;
      // A message's (or a tool result's) parts, and a Responses tool output's: nothing else holds content.
      for (const key of CONTENT_KEYS) {
        const value = part[key];
        if (value !== null && typeof value === "object") pending.push(value);
      }
    }
  }
  return false;
}

/** vLLM's image part without `type` (`{"image_url": "https://..."}`), which the chat door takes (chat-message-rules.ts). */
function isUntypedImagePart(part: Record<string, unknown>): boolean {
  return (part.type === undefined || part.type === null) && Object.hasOwn(part, "image_url");
}

/** The keys under which a message, an input item or a part holds parts shown to the model. */
const CONTENT_KEYS = ["content", "output"] as const;
