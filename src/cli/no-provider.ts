// What every command says when the config enables no provider (`serve` exits 2 on it, and so does every command
// that loads the config): which variable enables which provider, where to put a key, how to try without one.
// Its own module: `check` needs it without the server's modules that serve.ts brings.
import { readFileSync } from "node:fs";
import { ALSO_REQUIRED_SEPARATOR, locatedText } from "../config/resolve-providers.ts";
import type { SkippedProvider } from "../config/types.ts";

export interface NoProviderContext {
  /** The config file read, or undefined in the no-config mode. */
  readonly configPath: string | undefined;
  /** The `.env` file the commands read (in the working directory), where a key is usually put. */
  readonly envFile: string;
  /**
   * `serve` points to `check` (which tells the same without starting, once a key is set); a command that already
   * is `check`, or loads the config like it, does not send the user to run itself.
   */
  readonly isServe: boolean;
}

/**
 * Every provider of the config was skipped (usually: no key set). One block instead of a warning per provider
 * and a gateway that serves nothing: which variable enables which provider, the `.env` line that would enable the
 * first, and how to try it without keys. A config that lists no provider at all (an empty file) is told so, not
 * asked for keys of an empty list.
 */
export function noProviderMessage(skipped: readonly SkippedProvider[], context: NoProviderContext): string {
  const { configPath } = context;
  const missing = skipped.map((entry) => ({
    name: `${entry.name}${locatedText(entry)}`,
    variables: missingVariables(entry.reason),
  }));
  const again = context.isServe ? "start again" : "run this again";
  const opening =
    skipped.length > 0
      ? [
          `No provider is enabled${configPath === undefined ? "" : ` in ${configPath}`}: set a key variable for at least one`,
          `of them (in the environment or in .env) and ${again}:`,
          ...missing.map((entry, index) => `  ${entry.name}: ${entry.variables ?? skipped[index]?.reason}`),
        ]
      : [
          `No provider is configured: ${configPath === undefined ? "the config" : configPath} ${isEmptyFile(configPath) ? "is empty" : "lists no providers"}.`,
          "Add a `providers:` list (a preset is one line: `- preset: groq`; docs/configuration.md, docs/providers.md).",
        ];
  // The first variable named: `GEMINI_API_KEY or GOOGLE_API_KEY (...)` -> GEMINI_API_KEY.
  const example = missing
    .map((entry) => /^[A-Za-z_][A-Za-z0-9_]*/.exec(entry.variables ?? "")?.[0])
    .find((variable) => variable !== undefined);
  return [
    ...opening,
    "",
    ...(example === undefined
      ? []
      : [`Set them in ${context.envFile} (one VARIABLE=value per line), e.g.:`, `  ${example}=<value>`]),
    "Try the gateway without any key:   npm run demo",
    ...(context.isServe ? ["Check the keys without starting:   npx llm-gateway check"] : []),
    "Getting keys (free tiers):         docs/quickstart.md",
    "",
  ].join("\n");
}

/**
 * The variables a skip reason names, with what follows them (a look-alike variable that is set: config/env.ts), as
 * the no-config mode lists them: `CLOUDFLARE_API_TOKEN or CLOUDFLARE_API_KEY and CLOUDFLARE_ACCOUNT_ID`.
 */
function missingVariables(reason: string): string | undefined {
  const [keyPart = "", required] = reason.split(ALSO_REQUIRED_SEPARATOR);
  const found = /environment variable (.+?) is not set(.*)$/.exec(keyPart);
  if (found === null) return undefined;
  return `${found[1]}${found[2]}${required === undefined ? "" : ` and ${required.split(", ").join(" and ")}`}`;
}

/** noProviderMessage in one line, for `check --json`'s problem. */
export function noProviderProblem(skipped: readonly unknown[]): string {
  return skipped.length === 0
    ? "no provider is configured: the config lists no providers"
    : "no provider is enabled (`skipped` says why): set a key variable for at least one of them";
}

/** Read only on error paths, to say "is empty" rather than "lists no providers" (or "none is configured"). */
export function isEmptyFile(path: string | undefined): boolean {
  if (path === undefined) return false;
  try {
    return readFileSync(path, "utf8").trim() === "";
  } catch {
    return false;
  }
}
