// Recognising a provider entry written without `preset:` (as the Python project's files write every entry) by its
// base_url: `https://api.groq.com/openai/v1` is Groq whatever the entry is called, so it gets the groq preset's
// knowledge (docs/providers.md "Recognised by the base URL"). Pure string work, plus a cheap scan of the preset
// files' `base_url:` lines, so that a config whose URLs are no preset's never pays for loading the presets.
import { readdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";

/** A preset an entry's base_url points at, with the values its URL gives the preset's `${VAR}` placeholders. */
export interface PresetUrlMatch {
  readonly preset: string;
  /** E.g. `{ CLOUDFLARE_ACCOUNT_ID: "abc123" }` from `.../accounts/abc123/ai/v1`. */
  readonly variables: Readonly<Record<string, string>>;
}

/** `${NAME}` or `${NAME:-default}`, as config/env.ts interpolates them. */
const PLACEHOLDER = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}/g;

interface CompiledTemplate {
  readonly preset: string;
  readonly pattern: RegExp;
  readonly variables: readonly string[];
}

const compiledByTemplates = new WeakMap<ReadonlyMap<string, string>, readonly CompiledTemplate[]>();

/**
 * The preset whose base_url (as its file writes it: preset name -> template) `baseUrl` is. Compared: the host
 * (case-insensitive, default port dropped, as URL parsing does) and the path without trailing slashes. The scheme
 * is not compared: `http://` to a preset's host is still that provider, and the entry keeps the URL it wrote. A URL
 * with a query or a fragment is no preset's. A `${VAR}` of the template matches one non-empty path segment.
 */
export function matchPresetUrl(baseUrl: string, templates: ReadonlyMap<string, string>): PresetUrlMatch | undefined {
  const comparable = comparableUrl(baseUrl);
  if (comparable === undefined) return undefined;
  for (const template of compiled(templates)) {
    const found = template.pattern.exec(comparable);
    if (found === null) continue;
    const variables: Record<string, string> = {};
    template.variables.forEach((name, index) => {
      variables[name] = found[index + 1] ?? "";
    });
    return { preset: template.preset, variables };
  }
  return undefined;
}

/** `host/path` without trailing slashes, or undefined for what cannot be a preset's URL. */
function comparableUrl(url: string): string | undefined {
  if (!URL.canParse(url)) return undefined;
  const parsed = new URL(url);
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") return undefined;
  if (parsed.search !== "" || parsed.hash !== "") return undefined;
  return `${parsed.host}${parsed.pathname.replace(/\/+$/, "")}`;
}

function compiled(templates: ReadonlyMap<string, string>): readonly CompiledTemplate[] {
  let result = compiledByTemplates.get(templates);
  if (result !== undefined) return result;
  result = [...templates].flatMap(([preset, template]) => {
    const withoutScheme = /^https?:\/\/(.*?)\/*$/i.exec(template)?.[1];
    if (withoutScheme === undefined) return [];
    const variables: string[] = [];
    let source = "";
    let last = 0;
    for (const placeholder of withoutScheme.matchAll(PLACEHOLDER)) {
      source += `${escapeRegExp(withoutScheme.slice(last, placeholder.index))}([^/]+)`;
      variables.push(placeholder[1] ?? "");
      last = placeholder.index + placeholder[0].length;
    }
    source += escapeRegExp(withoutScheme.slice(last));
    // The host part of a template is lower case, as URL parsing makes the entry's.
    return [{ preset, pattern: new RegExp(`^${source}$`), variables }];
  });
  compiledByTemplates.set(templates, result);
  return result;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

const templatesByDir = new Map<string, ReadonlyMap<string, string>>();

/**
 * Each preset file's `base_url:` line as written (preset name -> template), read without a YAML parser: about a
 * millisecond, against ~70 ms for loading the presets (which is only done once an entry's URL matches one). A test
 * keeps this scan equal to the parsed files.
 */
export function presetBaseUrlTemplates(dir: string): ReadonlyMap<string, string> {
  const cached = templatesByDir.get(dir);
  if (cached !== undefined) return cached;
  const templates = new Map<string, string>();
  for (const file of readdirSync(dir)
    .filter((name) => name.endsWith(".yaml"))
    .sort()) {
    const line = /^base_url:[ \t]*["']?([^"'\s#]+)/m.exec(readFileSync(join(dir, file), "utf8"));
    if (line?.[1] !== undefined) templates.set(basename(file, ".yaml"), line[1]);
  }
  templatesByDir.set(dir, templates);
  return templates;
}
