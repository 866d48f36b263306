// Every config option is documented: each key the config schema accepts (walked through zod's definitions, so a
// new option cannot be forgotten) appears in docs/ — in backticks (`key`, `section.key`), as a YAML key in an
// example (`key:`), or, for the scoring constants written in capitals, as the word itself.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { configSchema } from "./schema.ts";

interface SchemaDef {
  readonly type: string;
  readonly shape?: Record<string, unknown>;
  readonly innerType?: unknown;
  readonly in?: unknown;
  readonly element?: unknown;
  readonly valueType?: unknown;
  readonly options?: readonly unknown[];
  readonly left?: unknown;
  readonly right?: unknown;
}

/** Every object key the schema accepts, with one path where it occurs (for the failure message). */
function schemaKeys(root: unknown): Map<string, string> {
  const keys = new Map<string, string>();
  const seen = new Set<unknown>();
  const walk = (schema: unknown, path: string): void => {
    if (schema === undefined || seen.has(schema)) return;
    seen.add(schema);
    const def = (schema as { _zod: { def: SchemaDef } })._zod.def;
    switch (def.type) {
      case "object":
        for (const [key, value] of Object.entries(def.shape ?? {})) {
          if (!keys.has(key)) keys.set(key, `${path}.${key}`);
          walk(value, `${path}.${key}`);
        }
        break;
      case "pipe":
        walk(def.in, path);
        break;
      case "default":
      case "prefault":
      case "optional":
      case "nullable":
      case "catch":
      case "readonly":
        walk(def.innerType, path);
        break;
      case "array":
        walk(def.element, `${path}[]`);
        break;
      case "record":
        walk(def.valueType, `${path}.*`);
        break;
      case "union":
        for (const option of def.options ?? []) walk(option, path);
        break;
      case "intersection":
        walk(def.left, path);
        walk(def.right, path);
        break;
      default:
        break;
    }
  };
  walk(root, "");
  return keys;
}

test("every key of the config schema is documented in docs/", () => {
  const docsDir = join(import.meta.dirname, "..", "..", "docs");
  const docs = readdirSync(docsDir)
    .filter((name) => name.endsWith(".md"))
    .map((name) => readFileSync(join(docsDir, name), "utf8"))
    .join("\n");
  const keys = schemaKeys(configSchema);
  assert.ok(keys.size > 100, `the walk found the schema's keys (${keys.size})`);
  const undocumented = [...keys].filter(([key]) => {
    const escaped = key.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    const isCapitals = key === key.toUpperCase();
    const pattern = isCapitals
      ? new RegExp(`\\b${escaped}\\b`)
      : new RegExp(`[\`.]${escaped}[\`.:]|^\\s*${escaped}:`, "m");
    return !pattern.test(docs);
  });
  assert.deepEqual(
    undocumented.map(([, path]) => path),
    [],
    "config keys missing from docs/ (add them to docs/configuration.md)",
  );
});
