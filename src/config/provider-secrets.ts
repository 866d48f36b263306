// What of a provider's settings is a secret to redact from every text shown, logged or recorded: its keys, the
// values of the extra `headers` whose names say they carry a credential (Azure's `api-key`, Cloudflare AI Gateway's
// `cf-aig-authorization`, a proxy's `x-portkey-api-key`), and such parameters of its URLs' query strings (Google's
// `?key=` on a `model_url`): an upstream or a proxy echoes those as readily as the key.
import type { ProviderSettings } from "./types.ts";

/** Header and query parameter names that carry a credential (`referer`, `x-title`, `task` do not). */
const CREDENTIAL_NAME = /auth|key|token|secret|passw|credential|cookie|signature|session|sig$/i;
const REDACTED = "[redacted]";

/** The values of a URL's query parameters whose names say they carry a credential. */
export function credentialQueryValues(url: string): string[] {
  if (!URL.canParse(url)) return [];
  const values: string[] = [];
  for (const [name, value] of new URL(url).searchParams)
    if (CREDENTIAL_NAME.test(name) && value !== "") values.push(value);
  return values;
}

/**
 * The values of the headers whose names say they carry a credential, in the config's order: with the key, what
 * says which account a provider's requests go to (Azure's `api-key` in `headers:` is the key).
 */
export function credentialHeaderValues(headers: Readonly<Record<string, string>> | undefined): string[] {
  return Object.entries(headers ?? {})
    .filter(([name]) => CREDENTIAL_NAME.test(name))
    .map(([, value]) => value);
}

/** A URL fit to print or write to disk: each credential parameter's value replaced by `[redacted]`. */
export function redactedUrl(url: string): string {
  if (!URL.canParse(url)) return url;
  const parsed = new URL(url);
  let isChanged = false;
  for (const [name, value] of [...parsed.searchParams]) {
    if (CREDENTIAL_NAME.test(name) && value !== "") {
      parsed.searchParams.set(name, REDACTED);
      isChanged = true;
    }
  }
  return isChanged ? parsed.href : url;
}

const secretsBySettings = new WeakMap<object, readonly string[]>();

/**
 * The provider's keys, credential header values (also a value's part after its scheme: `Bearer <token>`) and
 * credential query parameters of its URLs.
 */
export function providerSecretsOf(
  settings: Pick<ProviderSettings, "apiKeys" | "headers" | "baseUrl" | "modelUrl">,
): readonly string[] {
  let secrets = secretsBySettings.get(settings);
  if (secrets === undefined) {
    const found = new Set<string>(settings.apiKeys);
    for (const url of [settings.baseUrl, settings.modelUrl]) {
      for (const value of credentialQueryValues(url)) {
        found.add(value);
        // As it is written in the URL (percent-encoded), which is how an echo of the URL quotes it.
        found.add(encodeURIComponent(value));
      }
    }
    for (const value of credentialHeaderValues(settings.headers)) {
      found.add(value);
      // `Bearer abc`, `Basic abc`: the token alone is what an echo quotes without its scheme.
      const token = /^\S+\s+(\S+)$/.exec(value.trim())?.[1];
      if (token !== undefined) found.add(token);
    }
    secrets = [...found];
    secretsBySettings.set(settings, secrets);
  }
  return secrets;
}
