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
  for (const secret of secrets) {
    if (secret.length >= MIN_SECRET_CHARS && result.includes(secret)) result = result.replaceAll(secret, REDACTED);
  }
  return redactKeyShaped(result);
}

/** Only the shape-based part of `redactSecrets`: API-key-shaped strings and bearer tokens. */
export function redactKeyShaped(text: string): string {
  // Most texts contain neither; skip the regular expressions then (hot for log lines).
  if (!mayHoldKey(text)) return text;
  return text.replace(KEY_SHAPED, REDACTED).replace(BEARER_TOKEN, `$1 ${REDACTED}`);
}

/**
 * Every literal prefix of KEY_SHAPED (case-sensitive, as there), and the word of BEARER_TOKEN in any case: one
 * linear scan without captures. Without the `i` flag (only "bearer" needs it) the scan is ~30% faster; every
 * record stored and every log line pass through it.
 */
const KEY_PREFIX = /(?:sk|pk|rk)-|gsk_|hf_|nvapi-|AIza|gh[pousr]_|github_pat_|xai-|csk-|[Bb][Ee][Aa][Rr][Ee][Rr]/;

function mayHoldKey(text: string): boolean {
  return KEY_PREFIX.test(text);
}
