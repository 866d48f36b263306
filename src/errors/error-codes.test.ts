// Keeps docs/errors.md and the code in step: every code the gateway can produce is documented, and every
// documented code exists in the source.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

const root = join(import.meta.dirname, "..", "..");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts") ? [path] : [];
  });
}

test("every error code in src/ is documented in docs/errors.md and vice versa", () => {
  const documented = new Set(
    [...readFileSync(join(root, "docs", "errors.md"), "utf8").matchAll(/^\| `([a-z_]+)` \|/gm)].map(
      (match) => match[1],
    ),
  );
  const used = new Set<string>();
  // src/limits holds provider error codes as data (what upstreams send), not codes the gateway answers with.
  const files = sourceFiles(join(root, "src")).filter((file) => !file.includes(`${join("src", "limits")}`));
  for (const file of files) {
    const text = readFileSync(file, "utf8");
    for (const match of text.matchAll(/readonly code = "([a-z_]+)"/g)) used.add(match[1] as string);
    for (const match of text.matchAll(/code: "([a-z_]+)"/g)) used.add(match[1] as string);
    for (const match of text.matchAll(/options\.code \?\? "([a-z_]+)"|details\.code \?\? "([a-z_]+)"/g))
      used.add((match[1] ?? match[2]) as string);
  }
  const undocumented = [...used].filter((code) => !documented.has(code));
  const unused = [...documented].filter((code) => !used.has(code as string));
  assert.deepEqual(undocumented, [], "codes used in src/ but missing from docs/errors.md");
  assert.deepEqual(unused, [], "codes documented but never produced");
});
