import assert from "node:assert/strict";
import { test } from "node:test";
import * as errors from "./gateway-error.ts";

test("every exported error class is in ERROR_CLASSES under its own name, which it carries", () => {
  const exported = Object.entries(errors).filter(
    ([, value]) => typeof value === "function" && (value === errors.GatewayError || value.prototype instanceof Error),
  );
  assert.ok(exported.length > 20, "the module's classes were found");
  assert.deepEqual(Object.keys(errors.ERROR_CLASSES).sort(), exported.map(([name]) => name).sort());
  for (const [name, errorClass] of exported) assert.equal((errorClass as { name: string }).name, name);
});

test("an error's name, stack header and class name are the class's own", () => {
  const error = new errors.UpstreamUnavailableError("No upstream could serve `m`.");
  assert.equal(error.name, "UpstreamUnavailableError");
  assert.equal(error.constructor.name, "UpstreamUnavailableError");
  assert.match(error.stack ?? "", /^UpstreamUnavailableError: No upstream could serve `m`\./);
});
