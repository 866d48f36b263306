// `.env` support without a dependency: Node's own parser (util.parseEnv) reads the file; the real environment
// wins over it, as with dotenv's default.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseEnv } from "node:util";

export type Env = Readonly<Record<string, string | undefined>>;

/**
 * The unset variables the value at a key path referred to, as written before interpolation: why that value came
 * out empty. Known only for a file (a config built in code has no `${...}`).
 */
export type UnsetVariablesAt = (path: readonly (string | number)[]) => readonly string[];

/**
 * The values the environment put into the value at a key path: what its `${VAR}` references (in any string, at any
 * depth) were substituted with, as written before interpolation. Known only for a file.
 */
export type SubstitutedValuesAt = (path: readonly (string | number)[]) => readonly string[];

export function loadEnv(cwd: string, processEnv: NodeJS.ProcessEnv = process.env): Env {
  let fileEnv: Record<string, string> = {};
  try {
    // A byte-order mark (Notepad's "UTF-8 with BOM") would otherwise become part of the first variable's name, and
    // that variable, usually the one key, would be "not set" although the file visibly sets it.
    const text = readFileSync(resolve(cwd, ".env"), "utf8").replace(/^\uFEFF/, "");
    fileEnv = expandReferences(parseEnv(text) as Record<string, string>, namesInFileOrder(text), processEnv);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  return Object.freeze({ ...fileEnv, ...processEnv });
}

/**
 * `${VAR}` and `${VAR:-default}` inside `.env` values, as python-dotenv (the Python project's loader) expands them:
 * from the real environment first, then from the lines above in the file. `GROQ_API_KEY=${MY_GROQ_KEY}` worked
 * there; Node's parser keeps the text as it is.
 */
function expandReferences(
  fileEnv: Record<string, string>,
  names: readonly string[],
  processEnv: NodeJS.ProcessEnv,
): Record<string, string> {
  const expanded: Record<string, string> = {};
  // parseEnv's object is not in file order (its keys come out sorted): the order is read from the text.
  for (const name of [...names, ...Object.keys(fileEnv)]) {
    const value = fileEnv[name];
    if (value === undefined || Object.hasOwn(expanded, name)) continue;
    expanded[name] = value.replace(VARIABLE, (_match, variable: string, fallback: string | undefined) => {
      const found = processEnv[variable] ?? expanded[variable];
      return found === undefined || found === "" ? (fallback ?? "") : found;
    });
  }
  return expanded;
}

/** The names a `.env` text assigns, in file order (`NAME=`, `export NAME=`). */
function namesInFileOrder(text: string): string[] {
  return [...text.matchAll(/^[ \t]*(?:export[ \t]+)?([\w.-]+)[ \t]*=/gm)].map((match) => match[1] as string);
}

const VARIABLE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** The variables a text refers to with `${VAR}` or `${VAR:-default}`, in order. */
export function referencedVariables(text: string): string[] {
  return [...text.matchAll(VARIABLE)].map((match) => match[1] as string);
}

/** Of those, the ones without a value: they are why an interpolated value came out empty. */
export function unsetVariables(text: string, env: Env): string[] {
  return referencedVariables(text).filter((name) => env[name] === undefined || env[name] === "");
}

/**
 * The values of the set variables that the strings of a value as written refer to (`${VAR}`, `${VAR:-default}`), at
 * any depth. A default is written in the file, and an unset variable put nothing in: neither is listed.
 */
export function substitutedValues(written: unknown, env: Env): string[] {
  if (typeof written === "string") {
    if (!written.includes("${")) return [];
    return referencedVariables(written).flatMap((name) => {
      const value = env[name];
      return value === undefined || value === "" ? [] : [value];
    });
  }
  if (Array.isArray(written)) return written.flatMap((item) => substitutedValues(item, env));
  if (written !== null && typeof written === "object")
    return Object.values(written).flatMap((item) => substitutedValues(item, env));
  return [];
}

/** The value at a key path of parsed YAML (undefined where the path leaves it). */
export function valueAt(data: unknown, path: readonly (string | number)[]): unknown {
  let value = data;
  for (const key of path) {
    if (value === null || typeof value !== "object") return undefined;
    value = (value as Record<string | number, unknown>)[key];
  }
  return value;
}

/** "environment variable A is not set", "environment variables A, B are not set". */
export function notSetPhrase(names: readonly string[]): string {
  return names.length === 1
    ? `environment variable ${names[0]} is not set`
    : `environment variables ${names.join(", ")} are not set`;
}

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

/** `interpolate` in every string of a parsed YAML document (arrays and objects copied, other values as they are). */
export function interpolateDeep(value: unknown, env: Env): unknown {
  if (typeof value === "string") return interpolate(value, env);
  if (Array.isArray(value)) return value.map((item) => interpolateDeep(item, env));
  // Only plain objects are copied: a YAML-tagged value (`!!set`, `!!binary`, `!!timestamp`) stays what it is, for the
  // schema to refuse, rather than becoming a plain object (a set `{}`, binary an object of byte indexes) that passes
  // where any value is taken (a body rule's `defaults`). A `__proto__` key stays a key (`out.__proto__ = ...` would
  // set the copy's prototype), for the schema to see.
  if (value !== null && typeof value === "object" && isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      Object.defineProperty(out, key, {
        value: interpolateDeep(item, env),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return out;
  }
  return value;
}

function isPlainObject(value: object): boolean {
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** Words in the name of a variable that holds a credential (`GROQ_KEY`, `HF_API_TOKEN`, `SCW_SECRET`). */
const CREDENTIAL_WORD = /KEY|TOKEN|SECRET/;
/** Look-alikes named at most; more would be noise in a one-line reason. */
const MAX_LOOKALIKES = 3;

/**
 * For a key variable that is not set: the set variables that look like it under another name (`GROQ_KEY` or
 * `groq_api_key` for `GROQ_API_KEY`: the same first word and a credential word, or the same name in another case),
 * as ` (GROQ_KEY is set, under another name)`, else "". A key put in `.env` under a name of the user's own was
 * otherwise reported only as "GROQ_API_KEY is not set", which reads as though `.env` had not been read.
 */
export function lookalikeVariablesHint(wanted: readonly string[], env: Env): string {
  const wantedUpper = new Set(wanted.map((name) => name.toUpperCase()));
  const prefixes = [...new Set(wanted.map((name) => `${name.split("_")[0]?.toUpperCase()}_`))];
  const found = Object.keys(env)
    .filter((name) => {
      if (wanted.includes(name) || (env[name] ?? "") === "") return false;
      const upper = name.toUpperCase();
      return (
        wantedUpper.has(upper) || (prefixes.some((prefix) => upper.startsWith(prefix)) && CREDENTIAL_WORD.test(upper))
      );
    })
    .sort()
    .slice(0, MAX_LOOKALIKES);
  if (found.length === 0) return "";
  return ` (${found.join(", ")} ${found.length === 1 ? "is" : "are"} set, under another name)`;
}
