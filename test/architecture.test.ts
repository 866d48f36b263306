// Keeps the dependency arrows of CONVENTIONS.md: the pure modules (router, scoring, limits) never import the
// HTTP framework, the HTTP client or the layers above them, and only src/server imports Fastify.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { test } from "node:test";

const SRC = join(import.meta.dirname, "..", "src");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts") ? [path] : [];
  });
}

/** Runtime imports only: `import type` is erased before the code runs and creates no dependency. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [
    ...text.matchAll(/^\s*(?:import|export)\s(?!type\s)[^;]*?from\s+"([^"]+)"/gms),
    ...text.matchAll(/import\("([^"]+)"\)/g),
  ].map((match) => match[1] as string);
}

const PURE_FOLDERS = ["router", "scoring", "limits"];
const FORBIDDEN_FOR_PURE = [
  /^fastify/,
  /^undici/,
  /\/server\//,
  /\/upstream\//,
  /\/runtime\//,
  /\/cli\//,
  /\/streaming\//,
];

test("router, scoring and limits never import the HTTP framework, the HTTP client or the layers above", () => {
  const violations: string[] = [];
  for (const file of sourceFiles(SRC)) {
    const folder = relative(SRC, file).split("/")[0] ?? "";
    if (!PURE_FOLDERS.includes(folder)) continue;
    for (const specifier of importsOf(file)) {
      if (FORBIDDEN_FOR_PURE.some((pattern) => pattern.test(specifier)))
        violations.push(`${relative(SRC, file)} -> ${specifier}`);
    }
  }
  assert.deepEqual(violations, []);
});

test("only src/server imports Fastify", () => {
  const violations: string[] = [];
  for (const file of sourceFiles(SRC)) {
    if (relative(SRC, file).startsWith("server/")) continue;
    for (const specifier of importsOf(file)) {
      if (/^fastify/.test(specifier)) violations.push(`${relative(SRC, file)} -> ${specifier}`);
    }
  }
  assert.deepEqual(violations, []);
});

test("the pure modules read time only through the injected clock", () => {
  const violations: string[] = [];
  for (const file of sourceFiles(SRC)) {
    const folder = relative(SRC, file).split("/")[0] ?? "";
    if (!["router", "scoring"].includes(folder)) continue;
    const text = readFileSync(file, "utf8");
    if (/Date\.now\(\)|setTimeout\(|setInterval\(/.test(text)) violations.push(relative(SRC, file));
  }
  assert.deepEqual(violations, []);
});
