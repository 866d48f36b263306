// The wordings of a refusal that tell its kind ("insufficient credits", "per day", "overloaded", ...) and where they
// are read from.
import { readErrorBody } from "./error-body.ts";

/**
 * - `short`: a per-second or per-minute window; cool down briefly.
 * - `daily`: a per-day (or per-month) quota; park the key until the window resets.
 * - `credits`: out of money, or the plan does not include the model at all; park for long.
 * - `capacity`: the provider is overloaded; skip it briefly, the key is not to blame.
 * - `concurrency`: too many of the key's requests are in flight at once; room comes back when one of them ends,
 *   not after a time window, so it teaches a limit on requests in flight, never a rate.
 */
export type RateLimitKind = "short" | "daily" | "credits" | "capacity" | "concurrency";

export interface TextSignal {
  /** Every needle must occur in the lower-cased body. */
  readonly needles: readonly string[];
  readonly kind: RateLimitKind;
  readonly reason: string;
  /** The limit named is the account's pool, shared by every model of the key. */
  readonly isAccountWide?: boolean;
}

/** Wording, checked in order: credits, then capacity, then daily. First match wins. */
export const TEXT_SIGNALS: readonly TextSignal[] = [
  { needles: ["insufficient credits"], kind: "credits", reason: "insufficient credits" },
  { needles: ["requires more credits"], kind: "credits", reason: "request needs more credits than are left" },
  { needles: ["credit balance is too low"], kind: "credits", reason: "credit balance too low" },
  { needles: ["insufficient balance"], kind: "credits", reason: "insufficient balance" },
  { needles: ["out of credits"], kind: "credits", reason: "out of credits" },
  // OpenAI's insufficient_quota wording; Gemini uses the same sentence for per-minute limits, which is why
  // Google errors never reach this table.
  { needles: ["quota", "billing"], kind: "credits", reason: "quota exceeded, check billing" },
  // OpenRouter relays an upstream's 429 on the shared key of a free model: the upstream is busy, not our key.
  { needles: ["rate-limited upstream"], kind: "capacity", reason: "upstream temporarily rate-limited (OpenRouter)" },
  { needles: ["over capacity"], kind: "capacity", reason: "model over capacity" },
  { needles: ["overloaded"], kind: "capacity", reason: "provider overloaded" },
  { needles: ["capacity exceeded"], kind: "capacity", reason: "provider capacity exceeded" },
  { needles: ["out of capacity"], kind: "capacity", reason: "provider out of capacity" },
  { needles: ["high demand"], kind: "capacity", reason: "provider under high demand" },
  { needles: ["high traffic"], kind: "capacity", reason: "provider under high traffic" },
  // GitHub Models names the limit in the body too: "Rate limit of 2 per 0s exceeded for UserConcurrentRequests"
  // (a concurrency limit, not a window of 0 s), for a 429 that lacks the x-ratelimit-type header.
  { needles: ["userconcurrentrequests"], kind: "concurrency", reason: "GitHub Models concurrency limit" },
  // OpenRouter counts every `:free` model of an account in one pool, per minute and per day.
  {
    needles: ["free-models-per-day"],
    kind: "daily",
    reason: "OpenRouter free-models-per-day limit",
    isAccountWide: true,
  },
  {
    needles: ["free-models-per-min"],
    kind: "short",
    reason: "OpenRouter free-models-per-min limit",
    isAccountWide: true,
  },
  { needles: ["requests per day (rpd)"], kind: "daily", reason: "requests per day (RPD) limit" },
  { needles: ["tokens per day (tpd)"], kind: "daily", reason: "tokens per day (TPD) limit" },
  { needles: ["daily free allocation"], kind: "daily", reason: "daily free allocation used up" },
  { needles: ["per day"], kind: "daily", reason: "a per-day limit" },
  { needles: ["per-day"], kind: "daily", reason: "a per-day limit" },
  { needles: ["daily"], kind: "daily", reason: "a daily limit" },
  { needles: ["per month"], kind: "daily", reason: "a per-month limit" },
  // Cohere trial keys: "limited to 1000 API calls / month".
  { needles: ["/ month"], kind: "daily", reason: "a per-month limit" },
  // GitHub Models: "Rate limit of 50 per 86400s exceeded for UserByModelByDay".
  { needles: ["bymodelbyday"], kind: "daily", reason: "GitHub Models per-day limit" },
  { needles: ["per 86400s"], kind: "daily", reason: "a per-day limit" },
  { needles: ["monthly"], kind: "daily", reason: "a monthly limit" },
];

/** Error messages are short; the cap keeps a huge body from costing a long scan. */
const MAX_SCANNED_BODY_CHARS = 16 * 1024;

export function matchTextSignal(text: string): TextSignal | undefined {
  if (text === "") return undefined;
  for (const signal of TEXT_SIGNALS) {
    if (signal.needles.every((needle) => text.includes(needle))) return signal;
  }
  return undefined;
}

/**
 * The text a refusal's wordings are read from, as it was written: the error's own message (error-body.ts `message`),
 * with the routed provider's body when an aggregator relays that provider's refusal (`relayedRaw`); the whole body only
 * when it has no message (not JSON, or a shape without one, as Cloudflare's `errors[]`). Cut to its first 16 KB. Read
 * from the whole body, a 429 whose `metadata` quoted other words (OpenRouter's `previous_errors`, a provider's `raw`
 * beside OpenRouter's own "free-models-per-min", an echo of the prompt) took their kind: a per-minute limit read as
 * the key out of credits parked every model of the key for an hour.
 */
export function refusalWords(bodyText: string | undefined): string {
  if (bodyText === undefined) return "";
  const facts = readErrorBody(bodyText);
  const message = facts.message?.trim() === "" ? undefined : facts.message;
  const words =
    message === undefined ? bodyText : facts.relayedRaw === undefined ? message : `${message}\n${facts.relayedRaw}`;
  return words.length > MAX_SCANNED_BODY_CHARS ? words.slice(0, MAX_SCANNED_BODY_CHARS) : words;
}

/** `refusalWords`, lower-cased: what the wordings' needles are matched against. */
export function refusalText(bodyText: string | undefined): string {
  return refusalWords(bodyText).toLowerCase();
}
