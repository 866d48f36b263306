// Keys must never leave the gateway: upstreams echo the key they were sent ("Incorrect API key provided:
// sk-..."), so every upstream-derived string passes through here before it is shown, logged or recorded.

/** Replaces every occurrence of a secret in a text that might be shown or logged. */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  let result = text;
  for (const secret of secrets) {
    if (secret.length >= 4 && result.includes(secret)) result = result.replaceAll(secret, "[redacted]");
  }
  return result;
}
