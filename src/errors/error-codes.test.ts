// Keeps docs/errors.md and the code in step, both ways (as fastify's errors test does): the registry lists exactly
// the documented codes with the documented status and type, every error class and every code written anywhere
// in src/ (limits/ included) is a registry code.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { ERROR_CODES } from "./error-codes.ts";
import * as errors from "./gateway-error.ts";

const root = join(import.meta.dirname, "..", "..");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts") ? [path] : [];
  });
}

const documented = new Map(
  [...readFileSync(join(root, "docs", "errors.md"), "utf8").matchAll(/^\| `([a-z_]+)` \| ([^|]+) \| ([^|]+) \|/gm)].map(
    (match) => [match[1] as string, { status: (match[2] as string).trim(), type: (match[3] as string).trim() }],
  ),
);

test("docs/errors.md lists exactly the registry's codes, with their status and type", () => {
  assert.deepEqual([...documented.keys()].sort(), Object.keys(ERROR_CODES).sort());
  for (const [code, info] of Object.entries(ERROR_CODES)) {
    const row = documented.get(code);
    if (info.status === "upstream") assert.equal(row?.status, "upstream's", code);
    else if (Array.isArray(info.status)) assert.equal(row?.status, info.status.join(" or "), code);
    else assert.equal(row?.status, String(info.status), code);
    assert.ok(row?.type.includes(info.type), `${code}: type ${info.type} not in "${row?.type}"`);
  }
});

test("every code written in src/ (limits/ included) is in the registry", () => {
  const unknown: string[] = [];
  for (const file of sourceFiles(join(root, "src"))) {
    const text = readFileSync(file, "utf8");
    const patterns = [/\bcode(?:: ErrorCode)? = "([a-z_]+)"/g, /\bcode: "([a-z_]+)"/g, /\.code \?\? "([a-z_]+)"/g];
    for (const pattern of patterns) {
      for (const match of text.matchAll(pattern)) {
        if (!((match[1] as string) in ERROR_CODES)) unknown.push(`${file.slice(root.length + 1)}: ${match[1]}`);
      }
    }
  }
  assert.deepEqual(unknown, []);
});

test("every error class has a registry code whose status and type it uses", () => {
  const exported: unknown[] = Object.values(errors);
  const fixedClasses = exported.filter(
    (value): value is new (message: string) => errors.GatewayError =>
      typeof value === "function" &&
      value.prototype instanceof errors.GatewayError &&
      value !== errors.UpstreamRequestError,
  );
  assert.ok(fixedClasses.length >= 10, "the classes were found");
  for (const ErrorClass of fixedClasses) {
    const error = new ErrorClass("x");
    const info = ERROR_CODES[error.code as keyof typeof ERROR_CODES];
    assert.ok(info !== undefined, `${ErrorClass.name}: ${error.code} is not in the registry`);
    const statuses: readonly unknown[] = Array.isArray(info.status) ? info.status : [info.status];
    assert.ok(statuses.includes(error.status), `${ErrorClass.name}: status ${error.status}`);
    assert.equal(error.type, info.type, ErrorClass.name);
  }
});
