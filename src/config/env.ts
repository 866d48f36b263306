// `.env` support without a dependency: Node's own parser (util.parseEnv) reads the file; the real environment
// wins over it, as with dotenv's default.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseEnv } from "node:util";

export type Env = Readonly<Record<string, string | undefined>>;

export function loadEnv(cwd: string, processEnv: NodeJS.ProcessEnv = process.env): Env {
  let fileEnv: Record<string, string> = {};
  try {
    fileEnv = parseEnv(readFileSync(resolve(cwd, ".env"), "utf8")) as Record<string, string>;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  return Object.freeze({ ...fileEnv, ...processEnv });
}

const VARIABLE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * `${VAR}` and `${VAR:-default}` in a string. Unset variables become "" (or the default), so that a provider
 * whose `api_key: ${KEY}` is unset is skipped with a warning naming the variable (config/resolve-providers.ts).
 */
export function interpolate(text: string, env: Env): string {
  if (!text.includes("${")) return text;
  return text.replace(VARIABLE, (_match, name: string, fallback: string | undefined) => {
    const value = env[name];
    if (value !== undefined && value !== "") return value;
    return fallback ?? "";
  });
}
