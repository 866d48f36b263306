// Small building blocks shared by the config schemas: integer kinds, snake_case -> camelCase, and value checks.
import { z } from "zod";

/**
 * The options of a parse that runs once per config load (the config, presets, provider settings). Without them zod
 * compiles each object schema's parser into a function (`new Function`, its "JIT") at its first parse: worth it
 * for a schema parsed on every request (the request bodies keep it), not for one parsed once. At start that compile
 * was ~20 functions of ~140 KB generated source, parsed, compiled and kept for the process's life: with this,
 * 0.3 MB less idle RSS and ~50 ms less CPU until ready (bench/README.md, section 24).
 */
export const PARSE_ONCE = Object.freeze({ jitless: true });

export const positiveInt = z.number().int().positive();
export const nonNegativeInt = z.number().int().nonnegative();

/**
 * Node's timers take at most 2^31 - 1 ms (about 24.8 days); a longer delay fires after 1 ms instead (with a
 * TimeoutOverflowWarning). A huge value written to mean "no limit" made every stream end at once with its timeout.
 */
export const MAX_TIMER_MS = 2_147_483_647;
export const timerMs = positiveInt.max(
  MAX_TIMER_MS,
  `at most ${MAX_TIMER_MS} ms (about 24.8 days, the longest timer Node can run); a larger value would fire at once`,
);

/** A value sent in an HTTP header: a CR or LF would split the header (undici refuses the request, every time). */
export const headerSafe = z
  .string()
  .refine(
    (text) => !hasControlCharacter(text),
    "contains a control character (CR, LF, ...), which cannot be sent in an HTTP header; check the value or the .env line it came from",
  );

/**
 * An upstream URL. Credentials in it (`https://user:pass@host/v1`) are refused rather than dropped: the gateway
 * authenticates with the provider's key, and a Basic header from the URL would collide with it.
 */
export const httpUrl = z
  .url({ protocol: /^https?$/, error: "not an http(s) URL (e.g. https://api.example.com/v1)" })
  .refine((url) => !hasControlCharacter(url), "contains a control character (CR, LF, ...)")
  // zod runs the refinements after a failed format too: a URL that does not parse is the format's problem alone.
  .refine(
    (url) => !URL.canParse(url) || (new URL(url).username === "" && new URL(url).password === ""),
    "credentials in the URL (user:pass@) are not supported: remove them and put the key in api_key or api_key_env_var",
  );

type CamelCase<Key extends string> = Key extends `${infer Head}_${infer Tail}`
  ? `${Head}${Capitalize<CamelCase<Tail>>}`
  : Key;

export type CamelKeys<T> = { [Key in keyof T as Key extends string ? CamelCase<Key> : Key]: T[Key] };

/** `{ max_attempts: 6 }` -> `{ maxAttempts: 6 }`, one level deep (nested objects are resolved by their schema). */
export function camelKeys<T extends object>(value: T): CamelKeys<T> {
  return Object.fromEntries(
    Object.entries(value).map(([key, item]) => [
      key.replace(/_([a-z])/g, (_match, letter: string) => letter.toUpperCase()),
      item,
    ]),
  ) as CamelKeys<T>;
}

/** C0 controls except tab, and DEL (a loop, not a regular expression with control characters in it). */
export function hasControlCharacter(text: string): boolean {
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if ((code < 0x20 && code !== 0x09) || code === 0x7f) return true;
  }
  return false;
}

export function asList(value: string | readonly string[] | undefined): string[] {
  return value === undefined ? [] : typeof value === "string" ? [value] : [...value];
}

export function stripTrailingSlash(url: string): string {
  return url.endsWith("/") ? url.slice(0, -1) : url;
}

/**
 * `model_url` when the entry gives none: `base_url`, or, when `base_url` has a query string (Azure OpenAI's
 * `?api-version=`, a proxy's `?key=`), the list URL itself, `<base path>/models?<query>`: discovery takes a URL with
 * a query as the list URL (Cloudflare's `model_url`), and the provider wants its query on every call, as chat gets.
 */
export function defaultModelUrl(baseUrl: string): string {
  if (!URL.canParse(baseUrl)) return stripTrailingSlash(baseUrl);
  const url = new URL(baseUrl);
  if (url.search === "") return stripTrailingSlash(baseUrl);
  url.pathname = `${url.pathname.replace(/\/+$/, "")}/models`;
  url.hash = "";
  return url.href;
}

export function isValidPattern(pattern: string): boolean {
  try {
    new RegExp(pattern, "i");
    return true;
  } catch {
    return false;
  }
}
