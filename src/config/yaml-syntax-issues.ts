// A YAML file's syntax errors as config issues that say how to fix them. yaml's own messages name the grammar
// ("Nested mappings are not allowed in compact mappings"), which tells someone who indented one line too far
// nothing about what to change; the common mistakes (indentation, tabs, a backslash in double quotes, a key given
// twice) get a hint in the words of the file instead.
import type { LineCounter, YAMLError } from "yaml";
import type { ConfigIssue } from "./config-error.ts";

const LINE_UP_HINT = "line this key up with the keys above it (spaces only; a `- ` entry's keys start after its `- `)";
const TOO_DEEP_HINT =
  "the next line is indented deeper than the keys on this one: line it up with them (a key has a value on its " +
  "own line or a block indented under it, not both)";

/** What to do about the syntax errors users make; one without a hint keeps yaml's message alone. */
function hintFor(error: YAMLError, message: string): string | undefined {
  switch (error.code) {
    case "BLOCK_AS_IMPLICIT_KEY":
    case "MULTILINE_IMPLICIT_KEY":
      return message.startsWith("A block sequence")
        ? "a `- ` list entry stands among `key: value` lines: move it under the key whose list it is (`providers:`)"
        : TOO_DEEP_HINT;
    case "BAD_INDENT":
      return message.startsWith("Flow")
        ? "close the `{` or `[` on this entry with its `}` or `]`, or write the block without braces, one key per line"
        : LINE_UP_HINT;
    case "MISSING_CHAR":
      return message.startsWith("Sequence item") ? LINE_UP_HINT : undefined;
    case "TAB_AS_INDENT":
      return "indent with spaces, not tabs";
    case "BAD_DQ_ESCAPE":
      return "inside double quotes a backslash starts an escape: write the value in single quotes ('\\A') or double the backslash (\"\\\\A\")";
    default:
      return undefined;
  }
}

/**
 * One issue per line at most: yaml often reports one mistake twice at the same place (a too-deep line is both
 * a "nested mapping" and a "multiline implicit key"), and the second would repeat the first's hint.
 */
export function yamlSyntaxIssues(
  errors: readonly YAMLError[],
  lineCounter: LineCounter,
  fileName: string,
  text: string,
): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const seenLines = new Set<number>();
  for (const error of errors) {
    const { line, col } = lineCounter.linePos(error.pos[0]);
    if (seenLines.has(line)) continue;
    seenLines.add(line);
    issues.push({ location: `${fileName}:${line}`, path: "", message: describe(error, text, col) });
  }
  return issues;
}

function describe(error: YAMLError, text: string, col: number): string {
  const message = error.message.split("\n")[0] ?? "";
  if (error.code === "DUPLICATE_KEY") {
    // The error points at the repeated key; a key is never a secret, so it may be shown.
    const key = /^[^:\n]*/.exec(text.slice(error.pos[0]))?.[0].trim() ?? "";
    return `key "${key}" is given twice in one mapping (keys must be unique): keep one`;
  }
  const hint = hintFor(error, message);
  return hint === undefined ? `${message} (column ${col})` : `${message} (column ${col}): ${hint}`;
}
