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
/**
 * `Bearer <token>` anywhere (an echoed Authorization header); the word stays, the token goes. A base64 token's `/`
 * escaped as `\/`, or a character as `\u002B`, at any depth of JSON, is part of it (else the rest went out): a run of
 * backslashes before `/` or `u`, never one before anything else (it may escape the quote that ends a JSON string).
 * The two alternatives share no character, so matching stays linear.
 */
const BEARER_TOKEN = /\b(Bearer)\s+(?:[A-Za-z0-9._~+/=-]|\\+(?=[/u])){8,}/gi;

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
  // Only a text with an escape other than JSON's once-escaped quote (most have none) is searched a second time.
  const echoed = echoedSecretsPattern(secrets);
  if (echoed !== undefined && MAY_HOLD_ESCAPED.test(result)) result = result.replace(echoed, REDACTED);
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
    const searched = longestFirst(secrets);
    pattern = searched.length === 0 ? null : new RegExp(searched.map(escapeRegExp).join("|"), "g");
    patterns.set(secrets, pattern);
  }
  return pattern ?? undefined;
}

/** Longest first: a secret that begins another is not matched in its place, leaving the rest of the longer one. */
function longestFirst(secrets: readonly string[]): string[] {
  return [...new Set(secrets.filter((secret) => secret.length >= MIN_SECRET_CHARS))].sort(
    (a, b) => b.length - a.length,
  );
}

/** By list: the secrets that are not PLAIN, each in every form an echo may give it (`echoedForms`); compiled once. */
const echoedPatterns = new WeakMap<readonly string[], RegExp | null>();

function echoedSecretsPattern(secrets: readonly string[]): RegExp | undefined {
  let pattern = echoedPatterns.get(secrets);
  if (pattern === undefined) {
    const searched = longestFirst(secrets).filter((secret) => !PLAIN.test(secret));
    pattern = searched.length === 0 ? null : new RegExp(searched.map(echoedForms).join("|"), "g");
    echoedPatterns.set(secrets, pattern);
  }
  return pattern ?? undefined;
}

/**
 * What a text holds when a secret in it may be in a form the literal search misses: an escaped backslash (JSON
 * escaped twice), `\/`, a `\u` escape, a percent-encoded byte. A record or a log line holds `\"` often and these
 * rarely, so the second search (over the secrets that are not PLAIN only: most lists have none) is rare too: the
 * literal search of every secret stays the one pass most texts get (bench/README.md section 19).
 */
const MAY_HOLD_ESCAPED = /\\[\\/u]|%[0-9A-Fa-f]{2}/;

/**
 * Characters no encoding an echo goes through changes: JSON (any depth), `\u` escapes, percent-encoding. A key of
 * only these is found as written (most are: `sk-...`, `gsk_...`).
 */
const PLAIN = /^[A-Za-z0-9_.~-]*$/;

/**
 * A secret as a pattern source matching it as written and as echoes encode it. Upstreams echo what they were sent
 * (the Authorization header) inside error messages that may themselves be JSON bodies kept as strings (the key then
 * JSON-escaped twice, and again in a record or a log line), by encoders that escape more than JSON must (PHP's
 * `\/`; .NET's `\u002B` for `+`, `\u0022` for `"`; Go's `\u003c`), or in a URL they quote (`%2B`, `%2F`, `%3D`:
 * base64 keys hold `+`, `/`, `=`). Every other character than PLAIN's may be: preceded by a run of backslashes (a
 * JSON escape up to four deep; a backslash itself is one or more), written as `\u00XX` (hex in either case, after
 * such a run), or percent-encoded. Each alternative of a character is short and fixed, so matching stays
 * linear in the text; a secret whose characters are all PLAIN is its plain literal, as before.
 */
function echoedForms(secret: string): string {
  let source = "";
  for (const character of secret) {
    if (PLAIN.test(character)) {
      source += character;
      continue;
    }
    const code = character.codePointAt(0) ?? 0;
    const forms = character === "\\" ? [`\\\\{1,${MAX_ESCAPE_RUN + 1}}`] : [`${ESCAPE_RUN}${escapeRegExp(character)}`];
    if (code <= 0xffff) forms.push(`${ESCAPE_RUN}u${anyCaseHex(code.toString(16).padStart(4, "0"))}`);
    if (code < 0x80) forms.push(`%${anyCaseHex(code.toString(16).padStart(2, "0"))}`);
    source += `(?:${forms.join("|")})`;
  }
  return source;
}

/**
 * Backslashes an escape at four depths of JSON puts before a character (1, 3, 7, 15): a bound, so that a long run of
 * backslashes after a secret's beginning costs a few steps, not a search back through the run for each character.
 */
const MAX_ESCAPE_RUN = 15;
const ESCAPE_RUN = `\\\\{0,${MAX_ESCAPE_RUN}}`;

/** Hex digits as a pattern that takes either case (`2b` -> `2[bB]`). */
function anyCaseHex(hex: string): string {
  return hex.replace(/[a-f]/g, (digit) => `[${digit}${digit.toUpperCase()}]`);
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

/**
 * A key prefix and at least 4 more key characters right before a cut's `…` (escaped, `\u2026`: a non-ASCII character
 * in a regular expression stays in the bundle as it is, bin/bundle-plugins.js `nonAsciiOutputs`).
 */
const CUT_KEY_SHAPED =
  /\b(?:(?:sk|pk|rk)-|gsk_|hf_|nvapi-|AIza|gh[pousr]_|github_pat_|xai-|csk-|Bearer\s+)[A-Za-z0-9._~+/=-]{4,}\u2026$/i;

/**
 * Every literal prefix of KEY_SHAPED (case-sensitive, as there), and the word of BEARER_TOKEN in any case: one
 * linear scan without captures. Without the `i` flag (only "bearer" needs it) the scan is ~30% faster; every
 * record stored and every log line pass through it.
 */
const KEY_PREFIX = /(?:sk|pk|rk)-|gsk_|hf_|nvapi-|AIza|gh[pousr]_|github_pat_|xai-|csk-|[Bb][Ee][Aa][Rr][Ee][Rr]/;

function mayHoldKey(text: string): boolean {
  return KEY_PREFIX.test(text);
}
