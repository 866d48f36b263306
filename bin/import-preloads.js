// The `--import` preloads of a start from the start-up snapshot (bin/snapshot-main.js). Node runs `--import` modules
// only before a main script it loads itself: from a snapshot, whose main is a function in the heap, it skips them
// without a word (`--require` ones it still runs), so `NODE_OPTIONS="--import ./telemetry.mjs" npm start` would start
// without the telemetry. The deserialized main requires this ES module (a snapshot's own script has no `import()`),
// which imports them in Node's order (NODE_OPTIONS' first, then the command line's), each resolved from the working
// folder as Node resolves them, before the command runs. Node skips `--loader` / `--experimental-loader` from a
// snapshot too, and a loader could not see the modules already in its heap: such a start runs bin/llm-gateway.js
// instead, with the loaders registered first (startWithLoaders).
import { createRequire, register } from "node:module";
import { pathToFileURL } from "node:url";

/** The values of the given flags (`--flag X`, `--flag=X`) in the given arguments, in order: NODE_OPTIONS' first. */
function flagValues(names, execArgv, nodeOptions) {
  const values = [];
  const alternatives = names.map((name) => name.replaceAll("-", "\\-")).join("|");
  // Double quotes as Node reads them in NODE_OPTIONS.
  const pattern = new RegExp(`(?:^|\\s)(?:${alternatives})(?:=|\\s+)("(?:[^"\\\\]|\\\\.)*"|\\S+)`, "g");
  for (const match of (nodeOptions ?? "").matchAll(pattern)) {
    const value = match[1] ?? "";
    values.push(value.startsWith('"') ? value.slice(1, -1).replace(/\\(.)/g, "$1") : value);
  }
  for (let index = 0; index < execArgv.length; index++) {
    const argument = execArgv[index] ?? "";
    const name = names.find((flag) => argument === flag || argument.startsWith(`${flag}=`));
    if (name === undefined) continue;
    if (argument === name && index + 1 < execArgv.length) values.push(execArgv[++index] ?? "");
    else if (argument !== name) values.push(argument.slice(name.length + 1));
  }
  return values;
}

/** `--import X` and `--import=X` in the given arguments, in order (NODE_OPTIONS: double quotes as Node reads them). */
export function importSpecifiers(execArgv, nodeOptions) {
  return flagValues(["--import"], execArgv, nodeOptions);
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

/**
 * The start of a process with `--loader` / `--experimental-loader` (Node skips them from the snapshot, and the modules
 * in its heap are loaded already): each loader registered with module.register() from the working folder, as Node
 * resolves the flag's value, in Node's order; then the `--import` preloads, which Node also runs after the loaders;
 * then `entry` (bin/llm-gateway.js), the start without the snapshot, whose modules the loaders see load.
 */
export async function startWithLoaders(execArgv, nodeOptions, cwd, entry) {
  const parent = pathToFileURL(cwd.endsWith("/") ? cwd : `${cwd}/`);
  for (const specifier of flagValues(["--loader", "--experimental-loader"], execArgv, nodeOptions)) {
    register(specifier, parent);
  }
  await importPreloads(execArgv, nodeOptions, cwd);
  await import(pathToFileURL(entry).href);
}
