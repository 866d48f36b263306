// The JSON body parser: Fastify's own (with its prototype-poisoning checks), behind a depth and width check that
// runs before any parsing. 10,000 nested arrays once overflowed the stack after parsing (502, counted against the
// provider, which then cooled down for everyone; inside `tools`, a 500); 1.4 million members of one object held the
// event loop for 10 s and more (MAX_JSON_OBJECT_MEMBERS). A body Fastify refuses for a `__proto__` key (or
// `constructor.prototype`) is said to be that, naming where, not "not valid JSON".
import type { FastifyInstance } from "fastify";
import { MAX_JSON_DEPTH, MAX_JSON_OBJECT_MEMBERS } from "../config/request-bounds.ts";
import { InvalidRequestError } from "../errors/gateway-error.ts";
import { isRecord } from "../is-record.ts";
import { jsonShapeOverBounds } from "../protocols/json-shape.ts";
import { formatPath } from "../protocols/validate.ts";

export function registerJsonBodyParser(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser("error", "error");
  // Fastify also parses `text/plain` by default: a JSON body sent so reached the pipeline as a string and got
  // `invalid_body` ("must be a JSON object"), where docs/errors.md promises `invalid_content_type`.
  app.removeContentTypeParser(["application/json", "text/plain"]);
  app.addContentTypeParser("application/json", { parseAs: "string" }, (request, body, done) => {
    const text = typeof body === "string" ? body : body.toString("utf8");
    const overBounds = jsonShapeOverBounds(text, MAX_JSON_DEPTH, MAX_JSON_OBJECT_MEMBERS);
    if (overBounds !== undefined) {
      done(
        new InvalidRequestError(
          overBounds === "deep"
            ? `The request body nests objects and arrays deeper than ${MAX_JSON_DEPTH} levels (MAX_JSON_DEPTH).`
            : `An object in the request body has more than ${MAX_JSON_OBJECT_MEMBERS} members (MAX_JSON_OBJECT_MEMBERS).`,
          { code: "invalid_value" },
        ),
        undefined,
      );
      return;
    }
    void parseJson(request, text, (error, parsed) => {
      // Fastify says "not valid JSON" for both; a body without such a key is not parsed a second time.
      const refusal = error !== null && isSuspect(text) ? prototypeKeyRefusal(text) : undefined;
      done(error === null ? null : (refusal ?? error), parsed);
    });
  });
}

const SUSPECT_PROTO =
  /"(?:_|\\u005[Ff])(?:_|\\u005[Ff])(?:p|\\u0070)(?:r|\\u0072)(?:o|\\u006[Ff])(?:t|\\u0074)(?:o|\\u006[Ff])(?:_|\\u005[Ff])(?:_|\\u005[Ff])"\s*:/;
const SUSPECT_CONSTRUCTOR =
  /"(?:c|\\u0063)(?:o|\\u006[Ff])(?:n|\\u006[Ee])(?:s|\\u0073)(?:t|\\u0074)(?:r|\\u0072)(?:u|\\u0075)(?:c|\\u0063)(?:t|\\u0074)(?:o|\\u006[Ff])(?:r|\\u0072)"\s*:/;

/**
 * Whether the text has a `__proto__` or `constructor` key, escaped or not: secure-json-parse's own test (Fastify's
 * JSON parser) before it looks for them in what it parsed.
 */
function isSuspect(text: string): boolean {
  return SUSPECT_PROTO.test(text) || SUSPECT_CONSTRUCTOR.test(text);
}

/**
 * Why Fastify's parser refused a body that JSON.parse takes: a `__proto__` key, or a `constructor` holding a
 * `prototype` (prototype poisoning: copied into an object, either changes its prototype, and a `__proto__` in
 * `metadata` was dropped without a word where the parser did not see it). Undefined for a body that is not JSON.
 */
function prototypeKeyRefusal(text: string): InvalidRequestError | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
  const found = prototypeKeyPath(value, []);
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
