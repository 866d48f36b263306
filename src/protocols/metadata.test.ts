import assert from "node:assert/strict";
import { test } from "node:test";
import { InvalidRequestError } from "../errors/gateway-error.ts";
import { readMetadata } from "./metadata.ts";

test("metadata parsed without Fastify's check (a batch line's JSON.parse): a __proto__ key is refused, not dropped", () => {
  const metadata: unknown = JSON.parse('{"__proto__": "polluted", "kept": "yes"}');
  assert.throws(
    () => readMetadata(metadata),
    (error: unknown) =>
      error instanceof InvalidRequestError && error.param === "metadata" && /__proto__/.test(error.message),
  );
  assert.deepEqual(readMetadata({ kept: "yes" }), { kept: "yes" });
});
