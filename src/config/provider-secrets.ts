// What of a provider's settings is a secret to redact from every text shown, logged or recorded: its keys, and the
// values of the extra `headers` whose names say they carry a credential (Azure's `api-key`, Cloudflare AI Gateway's
// `cf-aig-authorization`, a proxy's `x-portkey-api-key`): an upstream or a proxy echoes those as readily as the key.
import type { ProviderSettings } from "./types.ts";

/** Header names that carry a credential (`referer`, `x-title`, `user-agent` do not). */
const CREDENTIAL_HEADER = /auth|key|token|secret|passw|credential|cookie|signature|session/i;

const secretsBySettings = new WeakMap<object, readonly string[]>();

/** The provider's keys and credential header values (also a value's part after its scheme: `Bearer <token>`). */
export function providerSecretsOf(settings: Pick<ProviderSettings, "apiKeys" | "headers">): readonly string[] {
  let secrets = secretsBySettings.get(settings);
  if (secrets === undefined) {
    const found = new Set<string>(settings.apiKeys);
    for (const [name, value] of Object.entries(settings.headers ?? {})) {
      if (!CREDENTIAL_HEADER.test(name)) continue;
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
