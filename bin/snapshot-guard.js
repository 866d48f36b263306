// The start-up snapshot's load-time guard. What a module computes while `node --build-snapshot` evaluates the
// snapshot's modules (bin/build-snapshot.js) is frozen into dist/snapshot.blob and shared by every process started
// from it: a `randomUUID()` then (Node draws a batch of UUIDs at the first call, so every process would hand out the
// same ids), random bytes, the time, the environment, the working folder or the host name kept in a module-level
// value, a timer started at load. bin/snapshot-main.js imports this module first, so that, while the snapshot is
// built (only then: `isBuildingSnapshot()`), those entry points are wrapped before any other module is evaluated;
// its last statement calls endLoadTimeWatch(), which ends the build with every such call and its stack (a call
// later, before the heap is written, ends it from the serialize callback). Once built, the originals are back in
// place; a wrapper a module kept a reference to calls the original without a word. bin/build-snapshot.js maps the
// stacks to the sources (src/...ts:line:column) for bin/build.js's "no start-up snapshot" message.
import { startupSnapshot } from "node:v8";

/** The first line of the report, by which bin/build-snapshot.js finds it in the build's stderr. */
export const REPORT_HEADING = "load-time calls while the start-up snapshot was built";
/** Stack frames kept per call: enough to name the module and who imported it. */
const FRAMES_PER_CALL = 8;
/** Calls reported at most (each distinct API and call site once). */
const MAX_REPORTED_CALLS = 20;

const calls = new Map();
const restores = [];
let isWatching = false;

function recordCall(api) {
  if (!isWatching) return;
  // Not the Error line, nor recordCall and the wrapper.
  const frames = (new Error().stack ?? "").split("\n").slice(3, 3 + FRAMES_PER_CALL);
  const key = `${api}\n${frames[0] ?? ""}`;
  if (!calls.has(key)) calls.set(key, { api, frames });
}

/** Wraps owner[key] (a function) so that a call while watching is recorded as `api`. */
function wrapFunction(owner, key, api) {
  const original = owner[key];
  if (typeof original !== "function") return;
  const hadOwn = Object.hasOwn(owner, key);
  const wrapped = {
    [key](...argumentList) {
      recordCall(api);
      return Reflect.apply(original, this, argumentList);
    },
  }[key];
  // Its own keys (setTimeout's util.promisify.custom, os.hostname's Symbol.toPrimitive): a module may read them.
  for (const property of Reflect.ownKeys(original)) {
    if (property === "length" || property === "name" || property === "prototype") continue;
    Object.defineProperty(wrapped, property, Object.getOwnPropertyDescriptor(original, property));
  }
  owner[key] = wrapped;
  restores.push(() => {
    if (hadOwn) owner[key] = original;
    else delete owner[key];
  });
}

/** `new Date()` and `Date()` (the time) recorded, `new Date(value)` not. */
function wrapDate() {
  const OriginalDate = globalThis.Date;
  const watched = new Proxy(OriginalDate, {
    apply(target, self, argumentList) {
      recordCall("Date()");
      return Reflect.apply(target, self, argumentList);
    },
    construct(target, argumentList, newTarget) {
      if (argumentList.length === 0) recordCall("new Date()");
      return Reflect.construct(target, argumentList, newTarget === watched ? target : newTarget);
    },
  });
  globalThis.Date = watched;
  restores.push(() => {
    globalThis.Date = OriginalDate;
  });
}

/** Reads of process.env (a value, a key's presence, the list of keys) recorded; writes not. */
function wrapEnvironment() {
  const original = process.env;
  const read = (api, operation) => {
    recordCall(api);
    return operation();
  };
  process.env = new Proxy(original, {
    get: (target, key) => read(`process.env.${String(key)}`, () => Reflect.get(target, key)),
    has: (target, key) => read(`"${String(key)}" in process.env`, () => Reflect.has(target, key)),
    ownKeys: (target) => read("Object.keys(process.env)", () => Reflect.ownKeys(target)),
    getOwnPropertyDescriptor: (target, key) =>
      read(`process.env.${String(key)}`, () => Reflect.getOwnPropertyDescriptor(target, key)),
  });
  restores.push(() => {
    process.env = original;
  });
}

function wrapEntryPoints() {
  const crypto = process.getBuiltinModule("node:crypto");
  for (const key of ["randomUUID", "randomBytes", "randomFillSync", "randomFill", "randomInt", "getRandomValues"]) {
    wrapFunction(crypto, key, `crypto.${key}()`);
  }
  for (const key of ["randomUUID", "getRandomValues"]) wrapFunction(globalThis.crypto, key, `crypto.${key}()`);
  wrapFunction(Math, "random", "Math.random()");
  wrapFunction(Date, "now", "Date.now()");
  wrapDate();
  wrapFunction(globalThis.performance, "now", "performance.now()");
  wrapFunction(process, "cwd", "process.cwd()");
  wrapEnvironment();
  const os = process.getBuiltinModule("node:os");
  for (const key of ["hostname", "homedir", "tmpdir", "userInfo"]) wrapFunction(os, key, `os.${key}()`);
  const timers = process.getBuiltinModule("node:timers");
  for (const key of ["setTimeout", "setInterval", "setImmediate"]) {
    wrapFunction(globalThis, key, `${key}()`);
    wrapFunction(timers, key, `${key}()`);
  }
}

function restoreEntryPoints() {
  isWatching = false;
  for (const restore of restores.splice(0).reverse()) restore();
}

/** Writes the report and ends the build (no blob is written) when a call was recorded. */
function failOnCalls(when) {
  if (calls.size === 0) return;
  restoreEntryPoints();
  const lines = [
    `${REPORT_HEADING} (${when}; their results would be frozen into the blob and shared by every start: ` +
      "make them at first use or when the command runs; bin/snapshot-guard.js):",
  ];
  for (const { api, frames } of [...calls.values()].slice(0, MAX_REPORTED_CALLS)) lines.push(api, ...frames);
  if (calls.size > MAX_REPORTED_CALLS) lines.push(`... and ${calls.size - MAX_REPORTED_CALLS} more`);
  process.stderr.write(`${lines.join("\n")}\n`);
  process.exit(1);
}

/** Called by bin/snapshot-main.js's last statement: the modules are evaluated. */
export function endLoadTimeWatch() {
  failOnCalls("while the modules were evaluated");
}

if (startupSnapshot.isBuildingSnapshot()) {
  wrapEntryPoints();
  isWatching = true;
  // What runs after the modules (a promise's continuation, a timer) and before the heap is written is frozen too.
  startupSnapshot.addSerializeCallback(() => {
    failOnCalls("after the modules were evaluated, before the heap was written");
    restoreEntryPoints();
  });
}
