// The JSON body parser: Fastify's own (with its prototype-poisoning checks), behind a depth check that runs
// before any parsing. 10,000 nested arrays once overflowed the stack after parsing (502, counted against the
// provider, which then cooled down for everyone; inside `tools`, a 500).
import type { FastifyInstance } from "fastify";
import { MAX_JSON_DEPTH } from "../config/request-bounds.ts";
import { InvalidRequestError } from "../errors/gateway-error.ts";

/**
 * Whether `text` nests objects and arrays deeper than `maxDepth`. One pass; strings are skipped with indexOf
 * (native speed: a 1 MB message costs well under a millisecond), so brackets inside them do not count.
 */
export function isJsonDeeperThan(text: string, maxDepth: number): boolean {
  let depth = 0;
  const length = text.length;
  for (let index = 0; index < length; index++) {
    const code = text.charCodeAt(index);
    if (code === 34) {
      index = closingQuote(text, index + 1);
      if (index < 0) return false; // unterminated string: JSON.parse reports it
    } else if (code === 123 || code === 91) {
      depth++;
      if (depth > maxDepth) return true;
    } else if (code === 125 || code === 93) depth--;
  }
  return false;
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
    if (isJsonDeeperThan(text, MAX_JSON_DEPTH)) {
      done(
        new InvalidRequestError(
          `The request body nests objects and arrays deeper than ${MAX_JSON_DEPTH} levels (MAX_JSON_DEPTH).`,
          { code: "invalid_value" },
        ),
        undefined,
      );
      return;
    }
    void parseJson(request, text, done);
  });
}
