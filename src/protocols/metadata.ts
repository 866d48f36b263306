// OpenAI's `metadata` of what the gateway keeps and repeats back (Responses, Conversations, Batches): at most 16
// pairs, keys up to 64 characters, values strings up to 512. OpenAI answers anything past that with a 400 naming
// `metadata`; so does the gateway, before anything is sent or kept. The chat door forwards its `metadata` as it came
// (clients moving from a LiteLLM proxy send tags and trace ids there), for the provider to judge.
import { z } from "zod";
import { InvalidRequestError } from "../errors/gateway-error.ts";
import { isRecord } from "../is-record.ts";
import { validateAt } from "./validate.ts";

const MAX_METADATA_PAIRS = 16;
const MAX_METADATA_KEY_CHARS = 64;
const MAX_METADATA_VALUE_CHARS = 512;
/** zod's issue code for a refinement's own problem (not an error code of the gateway's). */
const CUSTOM_ISSUE = "custom";

/**
 * A `__proto__` key, refused: a record copied from the parsed object loses it without a word (the assignment sets the
 * copy's prototype instead). The HTTP body parser refuses one already (server/json-body.ts); a batch line's body is
 * parsed with JSON.parse, which keeps it as a key.
 */
const withoutPrototypeKey = z.unknown().superRefine((value, context) => {
  if (isRecord(value) && Object.hasOwn(value, "__proto__")) {
    context.addIssue({
      code: CUSTOM_ISSUE,
      message:
        "`metadata` has a `__proto__` key, which the gateway refuses (in JavaScript it would change the object's prototype); use another key.",
    });
  }
});

/** `metadata` within OpenAI's bounds; the first problem is the 400's message, `param` `metadata`. */
export const metadataSchema = withoutPrototypeKey.pipe(
  z
    .record(z.string(), z.string({ error: "`metadata` values must be strings" }), {
      error: "`metadata` must be an object of strings",
    })
    .superRefine((metadata, context) => {
      const keys = Object.keys(metadata);
      if (keys.length > MAX_METADATA_PAIRS) {
        context.addIssue({
          code: CUSTOM_ISSUE,
          message: `\`metadata\` may have at most ${MAX_METADATA_PAIRS} keys (it has ${keys.length}).`,
        });
        return;
      }
      for (const key of keys) {
        if (key.length > MAX_METADATA_KEY_CHARS) {
          context.addIssue({
            code: CUSTOM_ISSUE,
            message: `\`metadata\` keys must be at most ${MAX_METADATA_KEY_CHARS} characters (one has ${key.length}).`,
          });
          return;
        }
        const value = metadata[key] ?? "";
        if (value.length > MAX_METADATA_VALUE_CHARS) {
          context.addIssue({
            code: CUSTOM_ISSUE,
            message: `\`metadata\` values must be at most ${MAX_METADATA_VALUE_CHARS} characters (\`${key}\`'s has ${value.length}).`,
          });
          return;
        }
      }
    }),
);

/** `metadata` of a create or update: null or absent is none; otherwise within OpenAI's bounds. */
export function readMetadata(value: unknown): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (!isRecord(value)) {
    throw new InvalidRequestError("`metadata` must be an object of strings.", {
      param: "metadata",
      code: "invalid_value",
    });
  }
  // Every issue names `metadata` itself (a value's type issue would name `metadata.<key>`): one param, as OpenAI's.
  try {
    return validateAt(metadataSchema, value, ["metadata"]);
  } catch (error) {
    if (!(error instanceof InvalidRequestError)) throw error;
    throw new InvalidRequestError(error.message, { param: "metadata", code: "invalid_value" });
  }
}
