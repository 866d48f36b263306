// Keys must never leave the gateway: upstreams echo the key they were sent ("Incorrect API key provided:
// sk-..."), so every upstream-derived string passes through here before it is shown, logged or recorded.
// Besides the configured keys, anything shaped like a credential is redacted too: an upstream may echo another
// account's key, a proxy may echo the `Authorization` header, and a key may have been rotated since the config
// was loaded.

const REDACTED = "[redacted]";

/** Configured secrets shorter than this are not searched for (they would redact ordinary words). */
const MIN_SECRET_CHARS = 4;

// Each alternative starts with a literal prefix and ends in one character class, so matching stays linear in the
// text (no nested quantifiers). Prefixes: OpenAI/OpenRouter/Anthropic/DeepSeek `sk-`, Groq `gsk_`, Hugging Face
// `hf_`, NVIDIA `nvapi-`, Google `AIza`, GitHub `ghp_`/`github_pat_`, xAI `xai-`, Cerebras `csk-`.
const KEY_SHAPED =
  /\b(?:sk|pk|rk)-[A-Za-z0-9_-]{16,}|\bgsk_[A-Za-z0-9]{16,}|\bhf_[A-Za-z0-9]{16,}|\bnvapi-[A-Za-z0-9_-]{16,}|\bAIza[0-9A-Za-z_-]{30,}|\bgh[pousr]_[A-Za-z0-9]{16,}|\bgithub_pat_[A-Za-z0-9_]{16,}|\bxai-[A-Za-z0-9]{16,}|\bcsk-[A-Za-z0-9]{16,}/g;
/** `Bearer <token>` anywhere (an echoed Authorization header); the word stays, the token goes. */
const BEARER_TOKEN = /\b(Bearer)\s+[A-Za-z0-9._~+/=-]{8,}/gi;

/**
 * Replaces every occurrence of a configured secret, and anything shaped like an API key or a bearer token, in a
 * text that might be shown, logged or recorded.
 */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  let result = text;
  if (secrets.length <= FEW_SECRETS) {
    for (const secret of secrets) {
      if (secret.length >= MIN_SECRET_CHARS && result.includes(secret)) result = result.replaceAll(secret, REDACTED);
    }
  } else {
    const pattern = anySecretPattern(secrets);
    if (pattern !== undefined) result = result.replace(pattern, REDACTED);
  }
  return redactKeyShaped(redactCutSecret(result, secrets));
}

/**
 * Up to this many secrets are searched one by one; more, through one pattern of them all. One search per secret
 * cost ~0.6 us per secret and record (a request record of ~800 bytes: 2 secrets 1.6 us, 20 8 us, 200 128 us), and a
 * gateway's list holds every provider key, every client key and the JSON-escaped forms of both: a team gateway with
 * a hundred client keys spent more on redacting each record than on the rest of the request. One alternation of the
 * literal secrets took 0.4-1.0 us per record for 4 to 400 secrets.
 */
const FEW_SECRETS = 4;

/** By list (every caller's list is built once per config and kept): compiled once. */
const patterns = new WeakMap<readonly string[], RegExp | null>();

function anySecretPattern(secrets: readonly string[]): RegExp | undefined {
  let pattern = patterns.get(secrets);
  if (pattern === undefined) {
    // Longest first: a secret that begins another is not matched in its place, leaving the rest of the longer one.
    const searched = [...new Set(secrets.filter((secret) => secret.length >= MIN_SECRET_CHARS))].sort(
      (a, b) => b.length - a.length,
    );
    pattern = searched.length === 0 ? null : new RegExp(searched.map(escapeRegExp).join("|"), "g");
    patterns.set(secrets, pattern);
  }
  return pattern ?? undefined;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
}

/**
 * A configured secret's beginning at the very end of a text shorter than it allows (`MIN_CUT_SECRET_CHARS`) is
 * left: fewer characters would match ordinary words, and these few say little about a key (a provider's own
 * prefix, `sk-proj-`, is no secret either).
 */
const MIN_CUT_SECRET_CHARS = 8;
const ELLIPSIS = "…";

/**
 * Upstream texts are cut to a length before they are kept (a reason, a message), and a key echoed where the cut
 * falls loses its end: what is left no longer matches the configured secret and went out whole but for a character
 * or two. A cut text ends there (then perhaps `…`), so its end is checked for the beginning of each secret.
 */
function redactCutSecret(text: string, secrets: readonly string[]): string {
  const hasEllipsis = text.endsWith(ELLIPSIS);
  const body = hasEllipsis ? text.slice(0, -ELLIPSIS.length) : text;
  if (body.length < MIN_CUT_SECRET_CHARS) return text;
  // Any cut secret long enough to matter ends with these characters; most texts end in none of the secrets'.
  const tail = body.slice(-MIN_CUT_SECRET_CHARS);
  if (secrets.length > FEW_SECRETS && !cutTailsOf(secrets).has(tail)) return text;
  for (const secret of secrets) {
    if (secret.length <= MIN_CUT_SECRET_CHARS || !secret.includes(tail)) continue;
    for (let length = Math.min(secret.length - 1, body.length); length >= MIN_CUT_SECRET_CHARS; length--) {
      if (body.endsWith(secret.slice(0, length))) {
        return `${body.slice(0, body.length - length)}${REDACTED}${hasEllipsis ? ELLIPSIS : ""}`;
      }
    }
  }
  return text;
}

/** By list: every run of MIN_CUT_SECRET_CHARS characters of its secrets, so that a long list is one lookup per text. */
const cutTails = new WeakMap<readonly string[], ReadonlySet<string>>();

function cutTailsOf(secrets: readonly string[]): ReadonlySet<string> {
  let tails = cutTails.get(secrets);
  if (tails === undefined) {
    const found = new Set<string>();
    for (const secret of secrets) {
      if (secret.length <= MIN_CUT_SECRET_CHARS) continue;
      for (let start = 0; start + MIN_CUT_SECRET_CHARS <= secret.length; start++) {
        found.add(secret.slice(start, start + MIN_CUT_SECRET_CHARS));
      }
    }
    tails = found;
    cutTails.set(secrets, tails);
  }
  return tails;
}

/** Only the shape-based part of `redactSecrets`: API-key-shaped strings and bearer tokens. */
export function redactKeyShaped(text: string): string {
  // Most texts contain neither; skip the regular expressions then (hot for log lines).
  if (!mayHoldKey(text)) return text;
  const redacted = text.replace(KEY_SHAPED, REDACTED).replace(BEARER_TOKEN, `$1 ${REDACTED}`);
  // A key-shaped string that a cut left shorter than the shapes above ask for (see redactCutSecret).
  return redacted.endsWith(ELLIPSIS) ? redacted.replace(CUT_KEY_SHAPED, `${REDACTED}${ELLIPSIS}`) : redacted;
}

/** A key prefix and at least 4 more key characters right before a cut's `…`. */
const CUT_KEY_SHAPED =
  /\b(?:(?:sk|pk|rk)-|gsk_|hf_|nvapi-|AIza|gh[pousr]_|github_pat_|xai-|csk-|Bearer\s+)[A-Za-z0-9._~+/=-]{4,}…$/i;

/**
 * Every literal prefix of KEY_SHAPED (case-sensitive, as there), and the word of BEARER_TOKEN in any case: one
 * linear scan without captures. Without the `i` flag (only "bearer" needs it) the scan is ~30% faster; every
 * record stored and every log line pass through it.
 */
const KEY_PREFIX = /(?:sk|pk|rk)-|gsk_|hf_|nvapi-|AIza|gh[pousr]_|github_pat_|xai-|csk-|[Bb][Ee][Aa][Rr][Ee][Rr]/;

function mayHoldKey(text: string): boolean {
  return KEY_PREFIX.test(text);
}
