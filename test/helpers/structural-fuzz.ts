// The generator and the mutations of the seeded structural fuzzers (test/e2e/fuzz-front-doors.test.ts and
// test/e2e/fuzz-new-doors.test.ts): a valid value broken one field at a time with values of another type or size.
// Shared so that both fuzzers break bodies the same way; any change here reshuffles both fuzzers' seeded cases.

// ---- a seeded generator ----

/** mulberry32: small, fast, and the same sequence on every platform. */
export class Random {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  }
  int(below: number): number {
    return Math.floor(this.next() * below);
  }
  between(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }
  chance(probability: number): boolean {
    return this.next() < probability;
  }
  pick<T>(items: readonly T[]): T {
    const item = items[this.int(items.length)];
    if (item === undefined) throw new Error("pick from an empty list");
    return item;
  }
}

/** One generator per case, from the seed and the case's name: any case replays alone. */
export function seededRandom(seed: number, phase: string, index: number): Random {
  let hash = seed ^ 0x9e3779b9;
  for (const char of `${phase}#${index}`) hash = Math.imul(hash ^ char.charCodeAt(0), 0x01000193);
  return new Random(hash);
}

/** Which cases a fuzzer runs: those of `seed`, `scale` times as many, or only the one named `onlyCase`. */
export interface FuzzRun {
  readonly seed: number;
  readonly scale: number;
  /** `phase#index`: run only that case (replaying a failure). */
  readonly onlyCase: string | undefined;
}

/** Runs `count` cases of a phase (times the scale), or only `onlyCase`, each with its own generator. */
export async function runSeededCases(
  fuzzRun: FuzzRun,
  phase: string,
  count: number,
  run: (random: Random, caseName: string) => Promise<void>,
): Promise<void> {
  for (let index = 0; index < Math.round(count * fuzzRun.scale); index++) {
    const caseName = `${phase}#${index}`;
    if (fuzzRun.onlyCase !== undefined && fuzzRun.onlyCase !== caseName) continue;
    await run(seededRandom(fuzzRun.seed, phase, index), caseName);
  }
}

// ---- JSON that JSON.stringify cannot write: raw number text, duplicated keys, `__proto__` keys ----

/** Written as it is: `1e999`, 30-digit integers, `-0`. */
export class RawJson {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
}

/** Entries written after an object's own: duplicated keys, `__proto__` (which an assignment would not keep). */
export const EXTRA_ENTRIES = Symbol("extra entries");
export type JsonObject = { [key: string]: unknown; [EXTRA_ENTRIES]?: [string, unknown][] };

export function toJsonText(value: unknown): string {
  if (value instanceof RawJson) return value.text;
  if (Array.isArray(value)) return `[${value.map(toJsonText).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const object = value as JsonObject;
    const entries = Object.entries(object).map(([key, item]) => `${JSON.stringify(key)}:${toJsonText(item)}`);
    for (const [key, item] of object[EXTRA_ENTRIES] ?? []) entries.push(`${JSON.stringify(key)}:${toJsonText(item)}`);
    return `{${entries.join(",")}}`;
  }
  // JSON.stringify writes a lone surrogate as its \u escape (well-formed JSON.stringify), as clients do.
  return JSON.stringify(value) ?? "null";
}

export function isObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === "object" && !Array.isArray(value) && !(value instanceof RawJson);
}

/** Every place in a JSON tree a value sits: its container and its key. */
export function slotsOf(root: unknown): { parent: JsonObject | unknown[]; key: string | number }[] {
  const slots: { parent: JsonObject | unknown[]; key: string | number }[] = [];
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) {
      value.forEach((item, index) => {
        slots.push({ parent: value, key: index });
        visit(item);
      });
    } else if (isObject(value)) {
      for (const [key, item] of Object.entries(value)) {
        slots.push({ parent: value, key });
        visit(item);
      }
    }
  };
  visit(root);
  return slots;
}

export function nested(random: Random, depth: number): unknown {
  let value: unknown = random.chance(0.5) ? "leaf" : 1;
  const isArray = random.chance(0.5);
  for (let level = 0; level < depth; level++) value = isArray ? [value] : { a: value };
  return value;
}

/** A value of another type or size than the field expects. */
export function hostileValue(random: Random): unknown {
  switch (random.int(30)) {
    case 0:
      return null;
    case 1:
      return random.chance(0.5);
    case 2:
      return random.pick([0, -1, 1, 2, 7, -0.5, 3.75, 4096]);
    case 3:
      return random.pick([Number.MAX_SAFE_INTEGER + 2, 1e308, -1e308, 2 ** 31, -(2 ** 63), 5e-324]);
    case 4:
      return new RawJson(random.pick(["1e999", "-1e999", "123456789012345678901234567890", "1.0e-400", "-0", "1E3"]));
    case 5:
      return random.pick(["NaN", "Infinity", "-Infinity", "-1", "1e999", "0x10", "1_000", "true", "null", "undefined"]);
    case 6:
      return random.pick(["", " ", "\n", "\t\r"]);
    case 7:
      return "x".repeat(random.pick([300, 5_000, 70_000, 250_000]));
    case 8:
      return random.pick(["模型 🚀 émoji", "\u202eright-to-left", "\ufeffbom", "nul\u0000inside", "\u2028\u2029"]);
    case 9:
      return random.pick(["\ud800", "a\udfffb", "\ud83d", "\udc00\ud800", "end\ud834"]);
    case 10:
      return [];
    case 11:
      return [null];
    case 12:
      return [1, "a", {}, [], true];
    case 13:
      return {};
    case 14:
      return { type: random.pick(["text", "image_url", "tool_use", "function", "x"]), text: hostileLeaf(random) };
    case 15:
      return nested(random, random.pick([3, 20, 63, 70, 200]));
    case 16:
      return Array.from({ length: random.pick([100, 5_000]) }, () => 0);
    case 17:
      return random.pick(["__proto__", "constructor", "toString", "hasOwnProperty", "prototype"]);
    case 18:
      return { __proto__: null, constructor: { prototype: { polluted: true } } } as unknown;
    case 19:
      return random.pick(["m", "e", "alpha/m", "m,e", "priority-auto", "m,m,m", "nope", "alpha/", "/m", "a/b/c"]);
    case 20:
      return random.pick([{ role: "user", content: "hi" }, [{ role: "user", content: "hi" }]]);
    case 21:
      return random.pick(["user", "assistant", "system", "tool", "developer", "function", "model"]);
    case 22:
      return random.pick([{ type: "object" }, { type: "function", function: { name: "f" } }, { name: "f" }]);
    case 23:
      return random.pick(["auto", "none", "required", "any", { type: "tool" }, { type: "function" }]);
    case 24:
      return random.pick(["stop", "length", "tool_calls", "content_filter", "function_call", "end_turn", "x"]);
    case 25:
      return random.pick(["{", '{"a":', "[]", "not json", '{"a":1}', "null"]);
    case 26:
      return { [random.pick(["a", "", "__proto__", "constructor"])]: hostileLeaf(random) };
    case 27:
      return random.pick(["2026-01-01T00:00:00Z", "1767225600", "-1", "9".repeat(40)]);
    case 28:
      return random.pick([-1, -100, 0.0001, 1e21, 1.5]);
    default:
      return hostileLeaf(random);
  }
}

export function hostileLeaf(random: Random): unknown {
  return random.pick<unknown>([null, 0, -1, 1e308, "", "x", "\ud800", true, [], {}]);
}

/** One structural change somewhere in `root` (mutated in place); returns what it did, for the failure message. */
export function mutate(random: Random, root: unknown): string {
  const slots = slotsOf(root);
  if (slots.length === 0) return "nothing to mutate";
  const slot = random.pick(slots);
  const where = String(slot.key);
  const { parent, key } = slot;
  const operation = random.int(10);
  if (operation <= 1) {
    if (Array.isArray(parent)) parent.splice(key as number, 1);
    else delete parent[key as string];
    return `deleted ${where}`;
  }
  if (operation <= 5) {
    const value = hostileValue(random);
    if (Array.isArray(parent)) parent[key as number] = value;
    else parent[key as string] = value;
    return `${where} = ${preview(value)}`;
  }
  if (operation === 6 && !Array.isArray(parent)) {
    const value = hostileValue(random);
    parent[EXTRA_ENTRIES] = [...(parent[EXTRA_ENTRIES] ?? []), [key as string, value]];
    return `duplicate key ${where} = ${preview(value)}`;
  }
  if (operation === 7 && !Array.isArray(parent)) {
    const name = random.pick(["__proto__", "constructor", "prototype", "", "unknown_field", "stream"]);
    const value = hostileValue(random);
    parent[EXTRA_ENTRIES] = [...(parent[EXTRA_ENTRIES] ?? []), [name, value]];
    return `extra key ${JSON.stringify(name)} = ${preview(value)}`;
  }
  // Wrap or unwrap: a value where a list is expected and the other way round.
  const current = Array.isArray(parent) ? parent[key as number] : parent[key as string];
  const value = Array.isArray(current) ? current[0] : random.chance(0.5) ? [current] : { value: current };
  if (Array.isArray(parent)) parent[key as number] = value;
  else parent[key as string] = value;
  return `${where} wrapped/unwrapped`;
}

export function preview(value: unknown): string {
  const text = toJsonText(value);
  return text.length > 60 ? `${text.slice(0, 40)}…(${text.length} chars)` : text;
}
