// The JSON door's rule on prototype keys, one place for every parser of a client's JSON (the door's, a batch line's):
// a `__proto__` key, or a `constructor` holding `prototype`, in any object of a body is refused. Copied into an object
// by assignment, either changes its prototype (a batch line's `__proto__` once became the chat quick check's copy's
// prototype, its unchecked fields read as the body's), and a `__proto__` in `metadata` was dropped without a word.
import { InvalidRequestError } from "../errors/gateway-error.ts";
import { isRecord } from "../is-record.ts";
import { formatPath } from "./validate.ts";

const SUSPECT_PROTO =
  /"(?:_|\\u005[Ff])(?:_|\\u005[Ff])(?:p|\\u0070)(?:r|\\u0072)(?:o|\\u006[Ff])(?:t|\\u0074)(?:o|\\u006[Ff])(?:_|\\u005[Ff])(?:_|\\u005[Ff])"\s*:/;
const SUSPECT_CONSTRUCTOR =
  /"(?:c|\\u0063)(?:o|\\u006[Ff])(?:n|\\u006[Ee])(?:s|\\u0073)(?:t|\\u0074)(?:r|\\u0072)(?:u|\\u0075)(?:c|\\u0063)(?:t|\\u0074)(?:o|\\u006[Ff])(?:r|\\u0072)"\s*:/;

/**
 * Whether the text has a `__proto__` or `constructor` key, escaped or not: secure-json-parse's own test (Fastify's
 * JSON parser) before it looks for them in what it parsed.
 */
export function isSuspectJson(text: string): boolean {
  return SUSPECT_PROTO.test(text) || SUSPECT_CONSTRUCTOR.test(text);
}

/**
 * The refusal of a parsed body holding a `__proto__` key or a `constructor` with `prototype` in any of its objects,
 * naming where (the door's 400 `invalid_value`); undefined for a body without one.
 */
export function prototypeKeyRefusal(body: unknown): InvalidRequestError | undefined {
  const found = prototypeKeyPath(body, []);
  if (found === undefined) return undefined;
  const where = found.path.length === 0 ? "The request body" : `\`${formatPath(found.path)}\``;
  return new InvalidRequestError(
    `${where} has a \`${found.key}\` key, which the gateway refuses in any object of a request body (in JavaScript it would change the object's prototype); use another key.`,
    { ...(found.path.length === 0 ? {} : { param: formatPath(found.path) }), code: "invalid_value" },
  );
}

/**
 * The path to the first object holding `__proto__`, or `constructor` with `prototype` (bounded: the body's shape was).
 * One path, pushed and popped, and no call for a string or number: a copy of the path for each of 2 million numbers
 * 60 levels deep held the event loop ~4 times as long as parsing the body.
 */
function prototypeKeyPath(value: unknown, path: PropertyKey[]): { path: PropertyKey[]; key: string } | undefined {
  if (Array.isArray(value)) {
    for (let index = 0; index < value.length; index++) {
      const found = memberPrototypeKeyPath(value[index], path, index);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  if (!isRecord(value)) return undefined;
  if (Object.hasOwn(value, "__proto__")) return { path, key: "__proto__" };
  if (
    Object.hasOwn(value, "constructor") &&
    isRecord(value.constructor) &&
    Object.hasOwn(value.constructor, "prototype")
  ) {
    return { path, key: "constructor" };
  }
  for (const key of Object.keys(value)) {
    const found = memberPrototypeKeyPath(value[key], path, key);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** prototypeKeyPath of a member (`path` as it was when none is found); nothing to look into in a scalar. */
function memberPrototypeKeyPath(
  member: unknown,
  path: PropertyKey[],
  key: PropertyKey,
): { path: PropertyKey[]; key: string } | undefined {
  if (member === null || typeof member !== "object") return undefined;
  path.push(key);
  const found = prototypeKeyPath(member, path);
  if (found === undefined) path.pop();
  return found;
}

/**
 * The refusal of an upload's form field named `__proto__` or `constructor` (a text or a file part), as the JSON door
 * refuses such a key: the form's fields become the body's keys, which body rules and the door's schema copy into
 * objects, where `__proto__` would change the copy's prototype; undefined for any other name.
 */
export function formFieldPrototypeRefusal(name: string): InvalidRequestError | undefined {
  if (name !== "__proto__" && name !== "constructor") return undefined;
  return new InvalidRequestError(
    `The form has a \`${name}\` field, which the gateway refuses in any request body (in JavaScript it would change the object's prototype); use another name.`,
    { param: name, code: "invalid_value" },
  );
}
