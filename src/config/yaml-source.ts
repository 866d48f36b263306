// A YAML config text as data plus a map back to its lines, so every problem found later (by the schema or by a
// cross-field check) names `file:line key.path`.
import { type Document, isMap, LineCounter, type Node, parseDocument } from "yaml";
import type { z } from "zod";
import { ConfigError, type ConfigIssue } from "./config-error.ts";
import { didYouMean } from "./did-you-mean.ts";
import { knownKeysAt } from "./schema-keys.ts";
import { yamlSyntaxIssues } from "./yaml-syntax-issues.ts";

/** `file:line` of a key path (`isKey`: the key itself rather than its value); the closest parent when absent. */
export type Locate = (path: readonly (string | number)[], isKey?: boolean) => string;

interface YamlSource {
  readonly data: unknown;
  readonly locate: Locate;
}

/**
 * Aliases a config may expand (`*anchor`). Real configs use a handful; a "billion laughs" file uses them to
 * expand a few lines into gigabytes. yaml's own default (100) is kept, and its error turned into a config error.
 */
const MAX_ALIAS_COUNT = 100;

export function parseYamlSource(text: string, fileName: string): YamlSource {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number | undefined): string =>
    offset === undefined ? fileName : `${fileName}:${lineCounter.linePos(offset).line}`;
  if (document.errors.length > 0) throw new ConfigError(yamlSyntaxIssues(document.errors, lineCounter, fileName, text));
  let data: unknown;
  try {
    data = document.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) ?? {};
  } catch (error) {
    // yaml throws a ReferenceError for an alias bomb (or an alias to an unknown anchor).
    const message = error instanceof Error ? error.message : String(error);
    throw new ConfigError([
      {
        location: fileName,
        path: "",
        message: /alias count/i.test(message)
          ? `too many YAML aliases (more than ${MAX_ALIAS_COUNT} expansions; a "billion laughs" file?)`
          : `cannot read the YAML: ${message}`,
      },
    ]);
  }
  return { data, locate: (path, isKey = false) => at(offsetOf(document, path, isKey)) };
}

/** Where a path points to in the document: the key (or value) node, else its closest existing parent. */
function offsetOf(document: Document, path: readonly (string | number)[], isKey: boolean): number | undefined {
  if (isKey && path.length > 0) {
    const parent = path.length === 1 ? document.contents : nodeAt(document, path.slice(0, -1));
    const key = String(path[path.length - 1]);
    if (isMap(parent)) {
      const pair = parent.items.find((item) => String((item.key as { value?: unknown } | null)?.value) === key);
      const offset = (pair?.key as Node | undefined)?.range?.[0];
      if (offset !== undefined) return offset;
    }
  }
  for (let length = path.length; length >= 0; length--) {
    const node = length === 0 ? document.contents : nodeAt(document, path.slice(0, length));
    const offset = node?.range?.[0];
    if (offset !== undefined) return offset;
  }
  return undefined;
}

function nodeAt(document: Document, path: readonly (string | number)[]): Node | null | undefined {
  const node: unknown = document.getIn(path, true);
  return node !== null && typeof node === "object" && "range" in node ? (node as Node) : undefined;
}

/**
 * zod's issues as config issues; an unknown key is reported at its own line, one issue per key, with the known key
 * it is closest to when `schema` (the one that raised the issues) is given: `unknown key "modles"; did you mean
 * "models"?`.
 */
export function toConfigIssues(
  issues: readonly z.core.$ZodIssue[],
  locate: Locate,
  schema?: z.core.$ZodType,
): ConfigIssue[] {
  return issues.flatMap((issue): ConfigIssue[] => {
    const path = issue.path.filter((key): key is string | number => typeof key !== "symbol");
    if (issue.code === "unrecognized_keys") {
      // A schema may name its known keys in the message (`known: ...`); zod's own message repeats the key.
      const hint = issue.message.startsWith("known: ") ? `; ${issue.message}` : "";
      const known = schema === undefined ? [] : knownKeysAt(schema, path);
      return issue.keys.map((key) => ({
        location: locate([...path, key], true),
        path: [...path, key].join("."),
        message: `unknown key "${key}"${didYouMean(key, known) || sectionHint(schema, path, known, key) || hint}`,
      }));
    }
    if (issue.code === "invalid_type" && issue.expected === "object" && path.length === 0) {
      // A list of providers pasted as the whole file (the docs show entries without their `providers:` line). A file
      // of one line of text (a `.env` given as the config) has no list: the hint about one pointed nowhere.
      const isList = issue.message.endsWith("received array");
      const received = /received (\w+)$/.exec(issue.message)?.[1] ?? "something else";
      return [
        {
          location: locate(path),
          path: "",
          message: `the file must be a mapping of sections (\`providers:\`, \`server:\`, ...)${isList ? ": a list of `- preset: ...` entries goes under `providers:`, indented" : `, of \`key: value\` lines; it reads as one ${received}`}`,
        },
      ];
    }
    if (issue.code === "invalid_type" && issue.expected === "object" && issue.message.endsWith("received null")) {
      // `server:` with its keys on the next lines but not indented under it: YAML reads an empty section.
      return [
        {
          location: locate(path),
          path: path.join("."),
          message: "is empty: its keys go on the lines below it, indented under it (or leave the section out)",
        },
      ];
    }
    const branch = issue.code === "invalid_union" ? matchingBranch(issue.errors) : undefined;
    if (branch !== undefined) {
      return toConfigIssues(
        branch.map((inner) => ({ ...inner, path: [...path, ...inner.path] })),
        locate,
        schema,
      );
    }
    return [{ location: locate(path), path: path.join("."), message: issue.message }];
  });
}

/**
 * A key that is not known where it stands but is a key of exactly one sibling section (`port` written at the top
 * of the file, under an empty `server:`): it was indented too little.
 */
function sectionHint(
  schema: z.core.$ZodType | undefined,
  path: readonly (string | number)[],
  siblings: readonly string[],
  key: string,
): string {
  if (schema === undefined) return "";
  // A section keyed by names the user chooses (`meta_models`, a provider's `models`): its entries' keys go under one
  // of those names. Indented right under the section, `tools: true` became a meta model named `tools`.
  const isNamedEntryKey = (section: string): boolean => knownKeysAt(schema, [...path, section, ANY_NAME]).includes(key);
  const owners = siblings.filter(
    (section) =>
      // A list section's keys are its entries' (`providers`: `timeout_ms` is a provider's key too).
      [...knownKeysAt(schema, [...path, section]), ...knownKeysAt(schema, [...path, section, 0])].includes(key) ||
      isNamedEntryKey(section),
  );
  if (owners.length !== 1) return "";
  const owner = owners[0] ?? "";
  if (isNamedEntryKey(owner)) {
    return `; it is a key of each entry of \`${owner}\`: indent it under an entry's name (\`${owner}:\`, then \`<name>:\`)`;
  }
  return `; it is a key of \`${owner}\`: indent it under \`${owner}:\``;
}

/** A name no section's own keys use: the path of any entry of a section keyed by names (a record). */
const ANY_NAME = "\u0000any-name";

/**
 * The one branch of a failed union whose type the value has (`{ key, nmae }` is the object form of a client key,
 * not the string one): its own problems say what is wrong, where zod's summary says only "Invalid input".
 */
function matchingBranch(branches: readonly (readonly z.core.$ZodIssue[])[]): readonly z.core.$ZodIssue[] | undefined {
  const sameType = branches.filter(
    (issues) => !issues.some((inner) => inner.path.length === 0 && inner.code === "invalid_type"),
  );
  return sameType.length === 1 ? sameType[0] : undefined;
}
