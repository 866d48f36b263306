// Model adjustments in the original project's `config/model-adjustments.yaml` format:
//   adjustments: { <group>: { priority: <number>, regex: [<pattern>, ...] } }
// A group adds its priority once when any of its patterns is found (case-insensitive) in the model id. Python's
// `\A` and `\Z` anchors are translated (fromPythonAnchors), and a leading `(?i)` is dropped (withoutCaseFlag).
import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from "yaml";
import { type ConfigIssue, formatIssue } from "../config/config-error.ts";
import { didYouMean } from "../config/did-you-mean.ts";
import { yamlSyntaxIssues } from "../config/yaml-syntax-issues.ts";

export interface AdjustmentGroup {
  readonly name: string;
  /** Added to the score's inner sum, in the same units as `priority` (docs/scoring.md). */
  readonly priority: number;
  readonly patterns: readonly RegExp[];
}

export interface Adjustment {
  readonly total: number;
  /** Names of the groups that matched, in file order. */
  readonly matched: readonly string[];
}

/**
 * Every problem found in an adjustments file, as config issues (`file:line key.path: message` once formatted, the
 * config's own format). Like ConfigError (which it becomes when the config is loaded), a startup error, never an
 * HTTP answer, so not a GatewayError.
 */
export class AdjustmentsFileError extends Error {
  readonly fileName: string;
  readonly issues: readonly ConfigIssue[];
  constructor(fileName: string, issues: readonly ConfigIssue[]) {
    super(`${fileName}: ${issues.length} problem(s) in model adjustments:\n  ${issues.map(formatIssue).join("\n  ")}`);
    this.name = "AdjustmentsFileError";
    this.fileName = fileName;
    this.issues = issues;
  }
}

const GROUP_KEYS = new Set(["priority", "regex"]);

/**
 * Parses and compiles an adjustments file. Reports every problem at once (YAML syntax, shape, unknown keys,
 * non-numeric priority, bad regular expressions) with its line, and throws `AdjustmentsFileError`.
 */
// Kept whole: it walks the YAML document once, collecting every problem with its line; split, each part would
// need the line counter, the issue list and the document passed around.
export function loadAdjustments(text: string, fileName: string): AdjustmentGroup[] {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, prettyErrors: false });
  const issues: ConfigIssue[] = [];
  const at = (node: Node | null | undefined, path: string, message: string): void => {
    const offset = node?.range?.[0];
    const line = offset === undefined ? "" : `:${lineCounter.linePos(offset).line}`;
    issues.push({ location: `${fileName}${line}`, path, message });
  };
  issues.push(...yamlSyntaxIssues(document.errors, lineCounter, fileName, text));
  if (issues.length > 0) throw new AdjustmentsFileError(fileName, issues);

  const root = document.contents;
  if (root === null) return [];
  if (!isMap(root))
    throw new AdjustmentsFileError(fileName, [
      { location: fileName, path: "", message: 'expected a mapping with an "adjustments" key' },
    ]);
  const groups: AdjustmentGroup[] = [];
  for (const rootPair of root.items) {
    const rootKey = isScalar(rootPair.key) ? String(rootPair.key.value) : "";
    if (rootKey !== "adjustments") {
      at(
        rootPair.key as Node,
        rootKey,
        `unknown key (expected only "adjustments")${didYouMean(rootKey, ["adjustments"])}`,
      );
      continue;
    }
    const groupsNode = rootPair.value;
    if (groupsNode === null || (isScalar(groupsNode) && groupsNode.value === null)) continue;
    if (!isMap(groupsNode)) {
      at(groupsNode as Node, "adjustments", "expected a mapping of group name to { priority, regex }");
      continue;
    }
    for (const groupPair of groupsNode.items) {
      const name = isScalar(groupPair.key) ? String(groupPair.key.value) : "";
      const path = `adjustments.${name}`;
      const group = groupPair.value;
      if (!isMap(group)) {
        at((group ?? groupPair.key) as Node, path, "expected a mapping with priority and regex");
        continue;
      }
      let priority: number | undefined;
      const patterns: RegExp[] = [];
      let hasRegex = false;
      for (const pair of group.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : "";
        const value = pair.value as Node | null;
        if (!GROUP_KEYS.has(key)) {
          at(
            pair.key as Node,
            `${path}.${key}`,
            `unknown key (expected "priority" and "regex")${didYouMean(key, [...GROUP_KEYS])}`,
          );
        } else if (key === "priority") {
          if (isScalar(value) && typeof value.value === "number" && Number.isFinite(value.value)) {
            priority = value.value;
          } else {
            at(value ?? (pair.key as Node), `${path}.priority`, "must be a number");
          }
        } else {
          hasRegex = true;
          if (!isSeq(value)) {
            at(value ?? (pair.key as Node), `${path}.regex`, "must be a list of patterns");
            continue;
          }
          value.items.forEach((item, position) => {
            const itemPath = `${path}.regex.${position}`;
            if (!isScalar(item) || typeof item.value !== "string") {
              at(item as Node, itemPath, "must be a string");
              return;
            }
            try {
              patterns.push(new RegExp(fromPythonAnchors(withoutCaseFlag(item.value)), "i"));
            } catch (error) {
              const reason = error instanceof Error ? error.message : String(error);
              at(
                item,
                itemPath,
                `invalid regular expression ${JSON.stringify(item.value)}: ${reason}${pythonSyntaxHint(item.value)}`,
              );
            }
          });
        }
      }
      if (priority === undefined && !group.items.some((pair) => isScalar(pair.key) && pair.key.value === "priority")) {
        at(groupPair.key as Node, path, "missing priority");
      }
      if (!hasRegex) at(groupPair.key as Node, path, "missing regex");
      if (priority !== undefined) groups.push({ name, priority, patterns });
    }
  }
  if (issues.length > 0) throw new AdjustmentsFileError(fileName, issues);
  return groups;
}

/**
 * A leading `(?i)`, Python's way to make a whole pattern case-insensitive, is dropped: matching is case-insensitive
 * already, and JavaScript has no inline flags, so a file carried over from the Python project would not load.
 */
function withoutCaseFlag(pattern: string): string {
  return pattern.startsWith("(?i)") ? pattern.slice("(?i)".length) : pattern;
}

/** For a pattern JavaScript refused: what to write instead of the Python-only syntax in it, if any. */
function pythonSyntaxHint(pattern: string): string {
  if (pattern.includes("(?P<")) return " (Python-only syntax: a named group is written `(?<name>...)`)";
  if (pattern.includes("(?P=")) return " (Python-only syntax: a named backreference is written `\\k<name>`)";
  if (/\(\?[a-zA-Z]+\)/.test(pattern))
    return " (Python-only syntax: inline flags; matching is already case-insensitive, and a leading `(?i)` is accepted)";
  return "";
}

/**
 * Python's string anchors in their JavaScript spelling: `\A` becomes `^` and `\Z` (and Python 3.14's `\z`) `$`,
 * outside character classes and unless the backslash is itself escaped; a `]` first in a class is escaped. The
 * patterns come from the Python project's file, and JavaScript without the `u` flag reads an unknown escape as the
 * bare letter, so `instruct\Z` would silently match `instructZ-v2` and never `llama-instruct`. Without the `m` flag
 * `^` and `$` anchor at the ends of the whole id, as Python's do.
 */
export function fromPythonAnchors(pattern: string): string {
  let translated = "";
  /** Where the character class we are in starts (its `[`), or -1 outside one. */
  let classStart = -1;
  for (let index = 0; index < pattern.length; index++) {
    const char = pattern[index] as string;
    if (char === "\\") {
      const next = pattern[index + 1];
      index += 1;
      if (next === undefined) translated += char;
      else if (classStart < 0 && next === "A") translated += "^";
      else if (classStart < 0 && (next === "Z" || next === "z")) translated += "$";
      else translated += char + next;
      continue;
    }
    if (classStart < 0) {
      if (char === "[") classStart = index;
    } else if (char === "]") {
      // A `]` first in a class (`[]a]`, `[^]a]`) is a literal in Python, not the class's end. JavaScript ends the
      // class there (`[]` matches nothing, `[^]` any character), so it is written escaped.
      const firstAt = pattern[classStart + 1] === "^" ? classStart + 2 : classStart + 1;
      if (index === firstAt) {
        translated += "\\]";
        continue;
      }
      classStart = -1;
    }
    translated += char;
  }
  return translated;
}

/** Sums the priority of every group with a matching pattern; a group counts once however many patterns match. */
export function adjustmentFor(groups: readonly AdjustmentGroup[], modelId: string): Adjustment {
  let total = 0;
  const matched: string[] = [];
  for (const group of groups) {
    if (group.patterns.some((pattern) => pattern.test(modelId))) {
      total += group.priority;
      matched.push(group.name);
    }
  }
  return { total, matched };
}
