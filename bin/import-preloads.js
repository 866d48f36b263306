// The `--import` preloads of a start from the start-up snapshot (bin/snapshot-main.js). Node runs `--import` modules
// only before a main script it loads itself: from a snapshot, whose main is a function in the heap, it skips them
// without a word (`--require` ones it still runs), so `NODE_OPTIONS="--import ./telemetry.mjs" npm start` would start
// without the telemetry. The deserialized main requires this ES module (a snapshot's own script has no `import()`),
// which imports them in Node's order (NODE_OPTIONS' first, then the command line's), each resolved from the working
// folder as Node resolves them, before the command runs.
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

/** `--import X` and `--import=X` in the given arguments, in order (NODE_OPTIONS: double quotes as Node reads them). */
export function importSpecifiers(execArgv, nodeOptions) {
  const specifiers = [];
  const pattern = /(?:^|\s)--import(?:=|\s+)("(?:[^"\\]|\\.)*"|\S+)/g;
  for (const match of (nodeOptions ?? "").matchAll(pattern)) {
    const value = match[1] ?? "";
    specifiers.push(value.startsWith('"') ? value.slice(1, -1).replace(/\\(.)/g, "$1") : value);
  }
  for (let index = 0; index < execArgv.length; index++) {
    const argument = execArgv[index] ?? "";
    if (argument === "--import" && index + 1 < execArgv.length) specifiers.push(execArgv[++index] ?? "");
    else if (argument.startsWith("--import=")) specifiers.push(argument.slice("--import=".length));
  }
  return specifiers;
}

/** A specifier as Node resolves an `--import` one: from the working folder. */
function resolved(specifier, cwd) {
  const parent = pathToFileURL(cwd.endsWith("/") ? cwd : `${cwd}/`);
  if (/^\.{0,2}\//.test(specifier) || specifier === "." || specifier === "..") return new URL(specifier, parent).href;
  // A URL (file:, data:, node:).
  if (/^[a-z][a-z0-9+.-]+:/i.test(specifier)) return specifier;
  // A package: as an ES import from the project (npm start's working folder), else as Node would find it from cwd.
  try {
    return import.meta.resolve(specifier);
  } catch {
    return pathToFileURL(createRequire(parent).resolve(specifier)).href;
  }
}

/** Imports the `--import` preloads of this process, one after the other; resolves once all have loaded. */
export async function importPreloads(execArgv, nodeOptions, cwd) {
  for (const specifier of importSpecifiers(execArgv, nodeOptions)) await import(resolved(specifier, cwd));
}
