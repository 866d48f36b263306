// Keeps the dependency arrows of docs/architecture.md: every import (type imports too, since a type import is
// still a dependency on the other module's shape) must follow one allowed-dependency table between folders, and
// no folder or file may take part in an import cycle.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { test } from "node:test";

const SRC = join(import.meta.dirname, "..", "src");

/** Everything the pipeline may use; each layer above it may use the one below it and everything it may. */
const PIPELINE_MAY_USE: readonly string[] = [
  "protocols",
  "upstream",
  "streaming",
  "router",
  "scoring",
  "limits",
  "state",
  "providers",
  "observability",
  "api-routes",
  "front-doors",
  "config",
  "clock",
  "request-timers",
  "logger",
  "sqlite-file",
  "source-paths",
  "async-fs",
  "chat-choice",
  "chat-reasoning",
  "is-record",
  "tool-call-boundary",
  "cooldown-causes",
  "trace-context",
  "errors",
];
const SERVER_MAY_USE: readonly string[] = ["pipeline", ...PIPELINE_MAY_USE];

/**
 * The allowed arrows, folder -> folders it may import. The request's path runs server -> pipeline -> router /
 * limits -> upstream -> streaming; the pure folders (router, scoring, limits) sit below everything that does I/O.
 * `clock`, `request-timers`, `logger`, `sqlite-file`, `source-paths`, `async-fs`, `is-record`, `chat-choice`, `chat-reasoning`, `tool-call-boundary`, `responses-namespace`, `responses-items`, `zod-arrays`, `cooldown-causes`, `trace-context` and `main` are the files at
 * the top of src/. `is-record` imports nothing and every folder may use it.
 */
export const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  clock: [],
  // The per-request timeouts' one Node timer: armed by upstream/ (an attempt's), streaming/ (the relay's) and server/.
  "request-timers": [],
  logger: [],
  "sqlite-file": [],
  "source-paths": [],
  "async-fs": [],
  "is-record": [],
  // W3C trace context (the incoming `traceparent`, an attempt's, new ids): read by server/, upstream/, observability/.
  "trace-context": [],
  // Where one streamed tool call ends and the next begins: one rule for streaming/ (the chat door's renumbering)
  // and protocols/ (the Responses and Messages translators), which may not import each other.
  "tool-call-boundary": [],
  // The longest Responses namespace name: the door's schema in protocols/ and the native answer's check in upstream/.
  "responses-namespace": [],
  // A zod array that stops at its first bad element: the doors' schemas (protocols/) and responses-items.
  "zod-arrays": [],
  // The Responses input items' schemas: the door's input (protocols/), a native answer's items, JSON (upstream/) or
  // streamed (streaming/), which the next turn reads back.
  "responses-items": ["zod-arrays", "responses-namespace", "is-record"],
  // Which choice of a chat answer is the first (index 0): read by upstream/ (is it one?), protocols/ (translate it)
  // and streaming/ (a chunk's first-choice text and reasoning).
  "chat-choice": ["is-record"],
  // A chat message's or delta's reasoning text: read by streaming/ (the relay, estimates) and protocols/ (the doors).
  "chat-reasoning": [],
  // Why a deployment cools down: read by limits/ (the cooldowns) and observability/ (a gauge per cause).
  "cooldown-causes": [],
  errors: ["is-record"],
  config: ["errors", "is-record"],
  // The front doors as data (name, kind, paths, protocol, ...): read by observability/ (label sets, operation names),
  // which may not import pipeline/, as by pipeline/ (each EndpointSpec is its door) and server/ (routes).
  "front-doors": ["config", "is-record"],
  // The routes that are no door but leave records (their families, by path), and the names of an unrouted request's
  // record: read by observability/ (label sets, operation names) and server/ (which routes to record).
  "api-routes": ["front-doors", "config", "is-record"],
  providers: ["config", "clock", "logger", "source-paths", "async-fs", "errors", "is-record"],
  scoring: ["providers", "config", "clock", "logger", "source-paths", "async-fs", "errors", "is-record"],
  limits: ["config", "clock", "logger", "errors", "cooldown-causes", "is-record"],
  state: ["limits", "config", "clock", "logger", "sqlite-file", "errors", "is-record"],
  router: ["scoring", "limits", "providers", "config", "clock", "logger", "errors", "is-record"],
  streaming: [
    "errors",
    "clock",
    "request-timers",
    "tool-call-boundary",
    "chat-choice",
    "chat-reasoning",
    "responses-items",
    "is-record",
  ],
  // Protocol adapters (Responses, Messages): pure translation to and from Chat Completions.
  protocols: [
    "errors",
    "clock",
    "chat-choice",
    "chat-reasoning",
    "tool-call-boundary",
    "responses-namespace",
    "responses-items",
    "zod-arrays",
    "is-record",
  ],
  observability: [
    "api-routes",
    "front-doors",
    "config",
    "clock",
    "logger",
    "sqlite-file",
    "async-fs",
    "errors",
    "cooldown-causes",
    "trace-context",
    "is-record",
  ],
  upstream: [
    "streaming",
    "router",
    "limits",
    "providers",
    "config",
    "clock",
    "request-timers",
    "logger",
    "errors",
    "chat-choice",
    "responses-namespace",
    "trace-context",
    "responses-items",
    "is-record",
  ],
  pipeline: PIPELINE_MAY_USE,
  server: SERVER_MAY_USE,
  cli: ["server", ...SERVER_MAY_USE],
  main: ["cli"],
};

/** Packages only some folders may use: the HTTP framework lives in server/, the HTTP client below pipeline. */
const PACKAGE_OWNERS: readonly { pattern: RegExp; folders: readonly string[] }[] = [
  { pattern: /^fastify($|\/)|^@fastify\//, folders: ["server"] },
  // observability/: the OTLP trace exporter posts over its own Pool.
  { pattern: /^undici($|\/)/, folders: ["upstream", "providers", "pipeline", "server", "cli", "observability"] },
  { pattern: /^ioredis($|\/)/, folders: ["state"] },
];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts") ? [path] : [];
  });
}

/** Every specifier a file imports or re-exports, `import type` and dynamic `import()` included. */
export function importsOf(text: string): string[] {
  return [
    ...text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+"([^"]+)"/gms),
    ...text.matchAll(/^\s*import\s+"([^"]+)"/gm),
    ...text.matchAll(/import\(\s*"([^"]+)"\s*\)/g),
  ].map((match) => match[1] as string);
}

function moduleOf(file: string): string {
  const path = relative(SRC, file);
  const parts = path.split("/");
  return parts.length === 1 ? path.replace(/\.ts$/, "") : (parts[0] as string);
}

interface Graph {
  readonly files: Map<string, string[]>;
  readonly packages: Map<string, string[]>;
}

function readGraph(): Graph {
  const files = new Map<string, string[]>();
  const packages = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) {
    const specifiers = importsOf(readFileSync(file, "utf8"));
    files.set(
      file,
      specifiers.filter((specifier) => specifier.startsWith(".")).map((specifier) => resolve(dirname(file), specifier)),
    );
    packages.set(
      file,
      specifiers.filter((specifier) => !specifier.startsWith(".") && !specifier.startsWith("node:")),
    );
  }
  return { files, packages };
}

/** Strongly connected components with more than one member (or a self-loop): the cycles. Tarjan's algorithm. */
export function cyclesOf(edges: ReadonlyMap<string, readonly string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (node: string): void => {
    index.set(node, counter);
    low.set(node, counter);
    counter++;
    stack.push(node);
    onStack.add(node);
    for (const next of edges.get(node) ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node) as number, low.get(next) as number));
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node) as number, index.get(next) as number));
      }
    }
    if (low.get(node) === index.get(node)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop() as string;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1 || (edges.get(node) ?? []).includes(node)) cycles.push(component.sort());
    }
  };
  for (const node of edges.keys()) if (!index.has(node)) visit(node);
  return cycles;
}

test("the cycle finder finds a cycle and accepts a chain (so the checks below can fail)", () => {
  const cyclic = new Map([
    ["a", ["b"]],
    ["b", ["c"]],
    ["c", ["a"]],
    ["d", ["a"]],
  ]);
  assert.deepEqual(cyclesOf(cyclic), [["a", "b", "c"]]);
  assert.deepEqual(
    cyclesOf(
      new Map([
        ["x", ["y"]],
        ["y", []],
      ]),
    ),
    [],
  );
  assert.deepEqual(
    importsOf('import type { A } from "../a.ts";\nexport { b } from "./b.ts";\nawait import("./c.ts");'),
    ["../a.ts", "./b.ts", "./c.ts"],
  );
});

test("no import cycle between files", () => {
  const { files } = readGraph();
  const cycles = cyclesOf(files).map((cycle) => cycle.map((file) => relative(SRC, file)));
  assert.deepEqual(cycles, []);
});

test("no import cycle between folders", () => {
  const { files } = readGraph();
  const folders = new Map<string, string[]>();
  for (const [file, targets] of files) {
    const from = moduleOf(file);
    const list = folders.get(from) ?? [];
    for (const target of targets) {
      const to = moduleOf(target);
      if (to !== from && !list.includes(to)) list.push(to);
    }
    folders.set(from, list);
  }
  assert.deepEqual(cyclesOf(folders), []);
});

test("every import follows the allowed-dependency table", () => {
  const { files } = readGraph();
  const violations: string[] = [];
  for (const [file, targets] of files) {
    const from = moduleOf(file);
    const allowed = ALLOWED[from];
    if (allowed === undefined) {
      violations.push(`${relative(SRC, file)}: folder "${from}" is missing from the table`);
      continue;
    }
    for (const target of targets) {
      const to = moduleOf(target);
      if (to !== from && !allowed.includes(to)) violations.push(`${relative(SRC, file)} -> ${relative(SRC, target)}`);
    }
  }
  assert.deepEqual(violations, []);
});

test("docs/architecture.md's folder table names every folder of the table here, with the same arrows", () => {
  const docs = readFileSync(join(SRC, "..", "docs", "architecture.md"), "utf8");
  const documented = new Map<string, string>();
  for (const [, names, arrows] of docs.matchAll(/^\| (`[^|]+) \| [^|]+ \| ([^|]+) \|$/gm)) {
    for (const [, name] of (names as string).matchAll(/`([a-z-]+)(?:\/|\.ts)`/g))
      documented.set(name as string, (arrows as string).trim());
  }
  const problems: string[] = [];
  for (const [folder, allowed] of Object.entries(ALLOWED)) {
    const arrows = documented.get(folder);
    if (arrows === undefined) problems.push(`${folder}: not in the table`);
    // "everything above" rows (pipeline, server, cli) follow the layering; the listed ones must match exactly.
    else if (!arrows.startsWith("everything")) {
      const listed = arrows === "—" ? [] : arrows.split(", ");
      // The docs say once that every folder may import is-record, rather than in every row.
      const expected = allowed.filter((name) => name !== "is-record");
      if (listed.toSorted().join() !== expected.toSorted().join()) problems.push(`${folder}: docs say ${arrows}`);
    }
  }
  assert.deepEqual(problems, []);
});

test("the HTTP framework, the HTTP client and the Redis client are used only where the table says", () => {
  const { packages } = readGraph();
  const violations: string[] = [];
  for (const [file, specifiers] of packages) {
    const folder = moduleOf(file);
    for (const specifier of specifiers) {
      const owner = PACKAGE_OWNERS.find((entry) => entry.pattern.test(specifier));
      if (owner !== undefined && !owner.folders.includes(folder))
        violations.push(`${relative(SRC, file)} -> ${specifier}`);
    }
  }
  assert.deepEqual(violations, []);
});

test("the pure modules read time only through the injected clock", () => {
  const violations: string[] = [];
  for (const file of sourceFiles(SRC)) {
    if (!["router", "scoring"].includes(moduleOf(file))) continue;
    const text = readFileSync(file, "utf8");
    if (/Date\.now\(\)|setTimeout\(|setInterval\(/.test(text)) violations.push(relative(SRC, file));
  }
  assert.deepEqual(violations, []);
});

/**
 * The recorder's own modules (pipeline/recorder-*.ts but recorder-books.ts, types only) `file` imports, from any folder,
 * dynamic imports too. Until 2026-12-07 the rule read only `from "./recorder-...` lines: server/ importing
 * "../pipeline/recorder-effects.ts", or an `import("./recorder-effects.ts")`, passed it.
 */
function recorderModulesOf(file: string, text: string): string[] {
  return importsOf(text)
    .filter((specifier) => specifier.startsWith("."))
    .map((specifier) => relative(SRC, resolve(dirname(file), specifier)))
    .filter((path) => /^pipeline\/recorder-(?!books\.ts$)[a-z-]+\.ts$/.test(path));
}

test("the recorder rule finds its modules imported from any folder (so the check below can fail)", () => {
  const from = (path: string, text: string) => recorderModulesOf(join(SRC, path), text);
  const effects = "pipeline/recorder-effects.ts";
  assert.deepEqual(from("server/x.ts", 'import { applyEffects } from "../pipeline/recorder-effects.ts";'), [effects]);
  assert.deepEqual(from("pipeline/x.ts", 'import {\n  applyEffects,\n} from "./recorder-effects.ts";'), [effects]);
  assert.deepEqual(from("pipeline/x.ts", 'const m = await import("./recorder-effects.ts");'), [effects]);
  assert.deepEqual(from("pipeline/x.ts", 'import type { RecorderBooks } from "./recorder-books.ts";'), []);
});

test("only the recorder changes availability, budgets, health and stats after an attempt", () => {
  // Admission (acquire/reserve) happens before an attempt and the admin reset is an explicit operator action;
  // everything that learns from an outcome must be in the recorder: pipeline/recorder.ts and its own modules, split by
  // concern (pipeline/recorder-*.ts: an attempt's effects), which it alone calls.
  const mutation =
    /\.(recordFailure|recordSuccess|recordTokens|recordRateLimited|recordInvalidKey|coolPool|park|releaseProbe|reconcile|release|learn|unlearn|recordHealth)\(/;
  const violations: string[] = [];
  for (const file of sourceFiles(SRC)) {
    const path = relative(SRC, file);
    const isRecorder = /^pipeline\/recorder(-[a-z-]+)?\.ts$/.test(path) && !path.endsWith(".test.ts");
    if (isRecorder || path.startsWith("limits/") || path.startsWith("state/")) continue;
    const text = readFileSync(file, "utf8");
    // The recorder's own modules that change books are called by it alone (recorder-books.ts holds types only).
    for (const module of recorderModulesOf(file, text)) violations.push(`${path} imports ${module}`);
    const lines = text.split("\n");
    lines.forEach((line, index) => {
      if (mutation.test(line) && !line.trimStart().startsWith("//") && !line.trimStart().startsWith("*"))
        violations.push(`${path}:${index + 1}: ${line.trim()}`);
    });
  }
  assert.deepEqual(violations, []);
});

/** A source file longer than this must say in its header why it stays whole. */
const MAX_FILE_LINES = 400;

test(`no source file over ${MAX_FILE_LINES} lines without a header saying why it stays whole`, () => {
  const violations: string[] = [];
  for (const file of sourceFiles(SRC)) {
    const text = readFileSync(file, "utf8");
    const lines = text.split("\n").length;
    if (lines <= MAX_FILE_LINES) continue;
    // The module's header: its comment lines before the first import (its leading comments when it imports nothing).
    const firstImport = text.search(/^import /m);
    const header = firstImport >= 0 ? text.slice(0, firstImport) : (/^(\/\/.*\n)*/.exec(text)?.[0] ?? "");
    if (!/stays whole|kept whole|one file on purpose/i.test(header))
      violations.push(`${relative(SRC, file)}: ${lines} lines`);
  }
  assert.deepEqual(violations, []);
});
