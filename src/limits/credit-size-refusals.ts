// OpenRouter's 402s that refuse one request's size against the key's credits, not the key itself: its output ("can
// only afford N") or its prompt ("Prompt tokens limit exceeded: N > M"). A request asking for less is served by the
// same key, so these fail over and park nothing (classify-429.ts); read as out of credits, each parked every model of
// the key for an hour while smaller requests were still served.
//
// The wordings are read from the error's message (error-body.ts `message`), the whole text only when the body has
// none (not JSON): OpenRouter's 402 can carry other refusals in its `metadata` (`previous_errors`, the routed
// provider's `raw`), and a spent key's "Insufficient credits" with an "afford 5365" among them was read as this
// request's size: the key was never parked, and every request paid an attempt and a retry.
import { readErrorBody } from "./error-body.ts";

/** Error messages are short; the cap keeps a huge one from costing a long scan. */
const MAX_SCANNED_CHARS = 16 * 1024;

/**
 * OpenRouter reserves a request's whole possible output against the key's credits (without `max_tokens`, the model's
 * whole output limit: 65,536 for some) and refuses it with a 402 when they do not cover it: "This request requires
 * more credits, or fewer max_tokens. You requested up to 16384 tokens, but can only afford 1234." Its older wording
 * says the same as "max_tokens limit exceeded: 100000 > 9577" (cline/cline#940).
 */
// Its numbers as quoted back by clients may carry a "~" and thousands separators ("can only afford ~15,500").
const UNAFFORDABLE_OUTPUT = /\brequested up to ~?(\d[\d,]*) tokens, but can only afford ~?(\d[\d,]*)/i;
const OUTPUT_LIMIT_EXCEEDED = /\bmax_tokens limit exceeded:\s*~?(\d[\d,]*)\s*>\s*~?(\d[\d,]*)/i;
/**
 * Older still: "More credits are required to run this request. 128000 token capacity required, 19484 available. To
 * increase, visit https://openrouter.ai/settings/keys and create a key with a higher limit" (tailcallhq/forgecode#571,
 * a request without `max_tokens` on a key with a limit: 128000 is the model's whole output). Read as "can only afford
 * 19484"; read as the key out of credits, it parked every model of the key for an hour.
 */
const CAPACITY_REQUIRED =
  /\bmore credits are required to run this request\.?\s*~?(\d[\d,]*) token capacity required,\s*~?(\d[\d,]*) available/i;

/**
 * The prompt's counterpart: "Prompt tokens limit exceeded: 64128 > 6964. To increase, visit
 * https://openrouter.ai/settings/credits and upgrade to a paid account" (continuedev/continue#11227; with "create a
 * key with a higher monthly limit" for a key's own limit, anomalyco/opencode#12219). The prompt is larger than what
 * the credits (or the key's limit) cover for this request; a shorter one is served.
 */
const PROMPT_LIMIT_EXCEEDED = /\bprompt tokens limit exceeded:\s*~?(\d[\d,]*)\s*>\s*~?(\d[\d,]*)/i;

/**
 * A prompt allowance below this serves no request: a chat template alone takes more (an embedding of one word is ~3
 * tokens, and "Prompt tokens limit exceeded: 7 > 2" was seen for embeddings). Credits that cover so little are the
 * key's, spent in practice: read as this request's size, the key was never parked and every request paid an attempt.
 */
const MIN_SERVABLE_PROMPT_TOKENS = 16;

/** What a 402 says was asked for and what the credits cover, when it is a refusal of that size alone. */
export interface RefusedSize {
  readonly requested: number;
  readonly affordable: number;
}

/** The output a 402 says was asked for and what the credits cover, when it is a refusal of that size alone. */
export function unaffordableOutput(bodyText: string | undefined): RefusedSize | undefined {
  const text = scannedText(bodyText);
  return (
    refusedSize(text, UNAFFORDABLE_OUTPUT) ??
    refusedSize(text, OUTPUT_LIMIT_EXCEEDED) ??
    refusedSize(text, CAPACITY_REQUIRED)
  );
}

/** The prompt tokens a 402 says the request has and what the credits cover, when the prompt alone is refused. */
export function unaffordablePrompt(bodyText: string | undefined): RefusedSize | undefined {
  const refused = refusedSize(scannedText(bodyText), PROMPT_LIMIT_EXCEEDED);
  return refused !== undefined && refused.affordable >= MIN_SERVABLE_PROMPT_TOKENS ? refused : undefined;
}

/** The error's message, else the body's text (not JSON, or JSON without one), cut to what is scanned. */
function scannedText(bodyText: string | undefined): string {
  if (bodyText === undefined) return "";
  const text = readErrorBody(bodyText).message ?? bodyText;
  return text.length > MAX_SCANNED_CHARS ? text.slice(0, MAX_SCANNED_CHARS) : text;
}

function refusedSize(text: string, pattern: RegExp): RefusedSize | undefined {
  const match = pattern.exec(text);
  if (match === null) return undefined;
  const requested = Number((match[1] ?? "").replaceAll(",", ""));
  const affordable = Number((match[2] ?? "").replaceAll(",", ""));
  // "can only afford 0" (a key whose monthly limit is spent) covers nothing at all: the key's credits, not this
  // request's size (read as its size, every model of the key was asked again at each request).
  return Number.isSafeInteger(requested) && Number.isSafeInteger(affordable) && affordable > 0 && affordable < requested
    ? { requested, affordable }
    : undefined;
}
