// What of a provider's settings is a secret to redact from every text shown, logged or recorded: its keys, the
// values of the extra `headers` whose names say they carry a credential (Azure's `api-key`, Cloudflare AI Gateway's
// `cf-aig-authorization`, a proxy's `x-portkey-api-key`), and such parameters of its URLs' query strings (Google's
// `?key=` on a `model_url`), and what the environment put into its body rules (`user: ${TENANT_TOKEN}`): an upstream
// or a proxy echoes those as readily as the key.
import { redactKeyShaped } from "../errors/redact.ts";
import { type Env, interpolateDeep, substitutedValues, valueAt } from "./env.ts";
import type { RawProvider } from "./schema.ts";
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
  return redactCredentialParameters(parsed.searchParams) ? parsed.href : url;
}

/**
 * A request target as a client sent it (`/v1/models?api_key=...`), fit for a log line: each credential parameter's
 * value replaced by `[redacted]`, as redactedUrl does for upstream URLs. A client may put its key in the query
 * (`?key=`, `?api_key=`) although the gateway reads it only from headers. Split by hand rather than parsed as a URL
 * against a base: a target starting with `//` would be read as a host.
 */
export function redactedRequestTarget(target: string): string {
  const queryAt = target.indexOf("?");
  if (queryAt < 0) return target;
  const parameters = new URLSearchParams(target.slice(queryAt + 1));
  return redactCredentialParameters(parameters) ? `${target.slice(0, queryAt)}?${parameters}` : target;
}

/** Replaces each credential parameter's non-empty value in place; whether any was. */
function redactCredentialParameters(parameters: URLSearchParams): boolean {
  let isChanged = false;
  for (const [name, value] of [...parameters]) {
    if (CREDENTIAL_NAME.test(name) && value !== "") {
      parameters.set(name, REDACTED);
      isChanged = true;
    }
  }
  return isChanged;
}

/**
 * A variable's value shorter than this in a body rule is taken for a setting, not a secret (`${EFFORT}` = `high`,
 * `${REGION}` = `eu-west`): redacted, it would be cut out of every answer and record that says the word. As for hand-
 * chosen client keys (pipeline/logged-secrets.ts).
 */
const MIN_BODY_SECRET_CHARS = 8;

/**
 * A setting's word, however long (`priority`, `detailed`, `retrieval.passage`, `search_document`): lower-case letters
 * and `.`, `_`, `-` only. A token, an id or a hash has digits or capitals. Redacted, such a word would be cut out of
 * every record, and where it is also a field name of the record (`${TIER}` = `priority`), the request log could no
 * longer read the record back.
 */
const SETTING_WORD = /^[a-z._-]+$/;

/**
 * The values the environment put into a provider entry's body rules (its own, its models', its `known_models`'),
 * but for settings: every rule value is sent upstream in every body, and which of them is a credential (a tenant
 * token in `user`, an account id in `metadata`) the gateway cannot tell, but one kept out of the file and passed in
 * a variable was kept out for a reason. A setting is a value shorter than MIN_BODY_SECRET_CHARS, a SETTING_WORD, or
 * a number (`${SEED}` = `1234567890`: redacted, it would be cut out of the digits of every record's timestamps,
 * which are then no longer JSON).
 */
export function bodyRuleSecrets(
  entry: Pick<RawProvider, "models" | "known_models">,
  substitutedAt: (path: readonly (string | number)[]) => readonly string[],
): readonly string[] {
  const paths: (string | number)[][] = [["body"]];
  for (const name of Object.keys(entry.models ?? {})) paths.push(["models", name, "body"]);
  for (const id of Object.keys(entry.known_models ?? {})) paths.push(["known_models", id, "body"]);
  const found = new Set<string>();
  for (const path of paths) {
    for (const value of substitutedAt(path)) if (!isSetting(value)) found.add(value);
  }
  return [...found];
}

/**
 * What the environment put into a preset's body rules: a `${VAR}` in its file or in an `LLM_GATEWAY_PRESET_<PRESET>_BODY`
 * (`_MODELS`, `_KNOWN_MODELS`) variable, which replaces the file's field, as for the config file; and of the values
 * that variable writes out, those that look like a credential (looksLikeCredential). Not every value it holds: it
 * is a whole rule written in a variable, and its other values are settings (a `stop` sequence, a prompt prefix)
 * which, redacted, were cut out of every error, record and log line that quoted them.
 */
export function presetBodySecrets(
  provider: Pick<RawProvider, "models" | "known_models">,
  written: unknown,
  overrides: Readonly<Record<string, unknown>> | undefined,
  env: Env,
): readonly string[] {
  return bodyRuleSecrets(provider, (path) => {
    const [field] = path;
    if (overrides !== undefined && typeof field === "string" && Object.hasOwn(overrides, field)) {
      const overridden = valueAt(overrides, path);
      return [
        ...substitutedValues(overridden, env),
        ...stringsIn(interpolateDeep(overridden, env)).filter(looksLikeCredential),
      ];
    }
    return substitutedValues(valueAt(written, path), env);
  });
}

function stringsIn(value: unknown): string[] {
  if (typeof value === "string") return value === "" ? [] : [value];
  if (value !== null && typeof value === "object") return Object.values(value).flatMap(stringsIn);
  return [];
}

/**
 * A value written out (not from a `${VAR}`) that reads as a credential: key-shaped (errors/redact.ts), or one token of
 * letters and digits both, not a setting (`9f3e1c7a55b2d4e8`, `acct-7Hq2Zp9L`). A stop sequence (`Observation:`,
 * `<|im_end|>`), a word or a sentence is not.
 */
function looksLikeCredential(value: string): boolean {
  if (isSetting(value)) return false;
  return redactKeyShaped(value) !== value || (/^\S+$/.test(value) && /\d/.test(value) && /[A-Za-z]/.test(value));
}

function isSetting(value: string): boolean {
  const isNumber = value.trim() !== "" && Number.isFinite(Number(value));
  return value.length < MIN_BODY_SECRET_CHARS || SETTING_WORD.test(value) || isNumber;
}

const secretsBySettings = new WeakMap<object, readonly string[]>();

/**
 * The provider's keys, credential header values (also a value's part after its scheme: `Bearer <token>`),
 * credential query parameters of its URLs and what the environment put into its body rules (bodyRuleSecrets).
 */
export function providerSecretsOf(
  settings: Pick<ProviderSettings, "apiKeys" | "headers" | "baseUrl" | "modelUrl" | "bodySecrets">,
): readonly string[] {
  let secrets = secretsBySettings.get(settings);
  if (secrets === undefined) {
    const found = new Set<string>([...settings.apiKeys, ...settings.bodySecrets]);
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
