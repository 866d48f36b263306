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
      done(error === null ? null : (prototypeKeyRefusal(text) ?? error), parsed);
    });
  });
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

/** The path to the first object holding `__proto__`, or `constructor` with `prototype` (bounded: the body's shape was). */
function prototypeKeyPath(value: unknown, path: PropertyKey[]): { path: PropertyKey[]; key: string } | undefined {
  if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) {
      const found = prototypeKeyPath(item, [...path, index]);
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
  for (const [key, member] of Object.entries(value)) {
    const found = prototypeKeyPath(member, [...path, key]);
    if (found !== undefined) return found;
  }
  return undefined;
}
