// The promise-returning file calls the gateway uses, made from `node:fs`'s callback API. Not `node:fs/promises`:
// loading it also loads Node's readline, its REPL history and its file streams (~0.5 MB of an idle gateway's RSS,
// bench/START-UP.md), for a handful of calls that need none of them. bin/build.js keeps the bundle's
// own `node:fs` imports from loading it too.
import {
  appendFile as appendFileCallback,
  mkdir as mkdirCallback,
  mkdtemp as mkdtempCallback,
  readdir as readdirCallback,
  readFile as readFileCallback,
  rename as renameCallback,
  rm as rmCallback,
  writeFile as writeFileCallback,
} from "node:fs";
import { promisify } from "node:util";

export const appendFile = promisify(appendFileCallback);
export const mkdir = promisify(mkdirCallback);
export const mkdtemp = promisify(mkdtempCallback);
export const readdir = promisify(readdirCallback);
export const readFile = promisify(readFileCallback);
export const rename = promisify(renameCallback);
export const rm = promisify(rmCallback);
export const writeFile = promisify(writeFileCallback);
