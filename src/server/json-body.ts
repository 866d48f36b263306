// The JSON body parser: Fastify's own (with its prototype-poisoning checks), behind a depth and width check that
// runs before any parsing. 10,000 nested arrays once overflowed the stack after parsing (502, counted against the
// provider, which then cooled down for everyone; inside `tools`, a 500); 1.4 million members of one object held the
// event loop for 10 s and more (MAX_JSON_OBJECT_MEMBERS). A body Fastify refuses for a `__proto__` key (or
// `constructor.prototype`) is said to be that, naming where, not "not valid JSON".
import type { FastifyInstance } from "fastify";
import { MAX_JSON_DEPTH, MAX_JSON_OBJECT_MEMBERS } from "../config/request-bounds.ts";
import { InvalidRequestError } from "../errors/gateway-error.ts";
import { jsonShapeOverBounds } from "../protocols/json-shape.ts";
import { isSuspectJson, prototypeKeyRefusal } from "../protocols/prototype-keys.ts";
import { refusedBody } from "./body-refusals.ts";

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
        refusedBody(
          new InvalidRequestError(
            overBounds === "deep"
              ? `The request body nests objects and arrays deeper than ${MAX_JSON_DEPTH} levels (MAX_JSON_DEPTH).`
              : `An object in the request body has more than ${MAX_JSON_OBJECT_MEMBERS} members (MAX_JSON_OBJECT_MEMBERS).`,
            { code: "invalid_value" },
          ),
        ),
        undefined,
      );
      return;
    }
    void parseJson(request, text, (error, parsed) => {
      // Fastify says "not valid JSON" for both; a body without such a key is not parsed a second time.
      const refusal = error !== null && isSuspectJson(text) ? refusalOf(text) : undefined;
      done(error === null ? null : refusedBody(refusal ?? error), parsed);
    });
  });
}

/** Why Fastify's parser refused a body that JSON.parse takes (prototype-keys.ts); undefined for one not JSON. */
function refusalOf(text: string): InvalidRequestError | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
  return prototypeKeyRefusal(value);
}
