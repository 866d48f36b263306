// Whether a value read from YAML is plain JSON, for config values passed on as they are (a body rule's `defaults`
// and `override`, sent in the request body). YAML has values JSON has not, and `JSON.stringify` changes them without
// a word: `.inf` and `.nan` become `null`, a `!!set` `{}`, a `!!binary` an object of byte indexes, a `!!timestamp`
// a string in another spelling; a `__proto__` key is dropped by every copy. A config error is better than a
// request the provider gets otherwise than written.

export interface NonJsonPart {
  /** Below the value checked. */
  readonly path: (string | number)[];
  readonly what: string;
}

/** Every part of `value` that is not JSON (empty when all of it is), so that a config error lists them all. */
export function nonJsonParts(value: unknown): NonJsonPart[] {
  if (value === null || typeof value === "string" || typeof value === "boolean") return [];
  if (typeof value === "number") {
    return Number.isFinite(value) ? [] : [{ path: [], what: `${value} (YAML .inf or .nan), which JSON cannot carry` }];
  }
  if (Array.isArray(value)) return partsIn(value.entries());
  if (typeof value === "object") {
    const prototype: unknown = Object.getPrototypeOf(value);
    if (prototype !== Object.prototype && prototype !== null) {
      const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
      return [{ path: [], what: `a YAML ${typeof name === "string" ? name : "object"} (a tagged value), not JSON` }];
    }
    const proto: NonJsonPart[] = Object.hasOwn(value, "__proto__")
      ? [{ path: ["__proto__"], what: "a `__proto__` key, which no JSON body can be given" }]
      : [];
    return [...proto, ...partsIn(Object.entries(value))];
  }
  return [{ path: [], what: `a ${typeof value}, not JSON` }];
}

function partsIn(entries: Iterable<[string | number, unknown]>): NonJsonPart[] {
  const found: NonJsonPart[] = [];
  for (const [key, item] of entries) {
    for (const part of nonJsonParts(item)) found.push({ path: [key, ...part.path], what: part.what });
  }
  return found;
}
