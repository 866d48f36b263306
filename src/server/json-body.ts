// The JSON body parser: Fastify's own (with its prototype-poisoning checks), behind a depth and width check that
// runs before any parsing. 10,000 nested arrays once overflowed the stack after parsing (502, counted against the
// provider, which then cooled down for everyone; inside `tools`, a 500); 1.4 million members of one object held the
// event loop for 10 s and more (MAX_JSON_OBJECT_MEMBERS).
import type { FastifyInstance } from "fastify";
import { MAX_JSON_DEPTH, MAX_JSON_OBJECT_MEMBERS } from "../config/request-bounds.ts";
import { InvalidRequestError } from "../errors/gateway-error.ts";

/**
 * Whether `text` nests objects and arrays deeper than `maxDepth`. One pass; strings are skipped with indexOf
 * (native speed: a 1 MB message costs well under a millisecond), so brackets inside them do not count.
 */
export function isJsonDeeperThan(text: string, maxDepth: number): boolean {
  return jsonShapeOverBounds(text, maxDepth, Number.POSITIVE_INFINITY) === "deep";
}

/**
 * What of the body's shape passes a bound, in the one pass isJsonDeeperThan describes: its nesting (`deep`), or the
 * members of one object (`wide`: the colons at that object's own level, a member's name being a string).
 */
export function jsonShapeOverBounds(text: string, maxDepth: number, maxMembers: number): "deep" | "wide" | undefined {
  // The member count of each open object, -1 for an open array (its colons are its objects' own).
  const members: number[] = [];
  const length = text.length;
  for (let index = 0; index < length; index++) {
    const code = text.charCodeAt(index);
    if (code === 34) {
      index = closingQuote(text, index + 1);
      if (index < 0) return undefined; // unterminated string: JSON.parse reports it
    } else if (code === 123 || code === 91) {
      members.push(code === 123 ? 0 : -1);
      if (members.length > maxDepth) return "deep";
    } else if (code === 125 || code === 93) members.pop();
    else if (code === 58) {
      const top = members.length - 1;
      const count = members[top];
      if (count === undefined || count < 0) continue; // not JSON: JSON.parse reports it
      if (count + 1 > maxMembers) return "wide";
      members[top] = count + 1;
    }
  }
  return undefined;
}

/** Index of the quote that ends the string starting at `from`, or -1. */
function closingQuote(text: string, from: number): number {
  let quote = text.indexOf('"', from);
  while (quote >= 0) {
    let backslashes = 0;
    while (text.charCodeAt(quote - 1 - backslashes) === 92) backslashes++;
    if (backslashes % 2 === 0) return quote;
    quote = text.indexOf('"', quote + 1);
  }
  return -1;
}

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
    void parseJson(request, text, done);
  });
}
