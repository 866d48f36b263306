import assert from "node:assert/strict";
import { test } from "node:test";
import { loggableUrl } from "./otlp-settings.ts";

test("the logged endpoint keeps scheme, host, port and path, never userinfo or the query string", () => {
  const logged = loggableUrl("https://user:s3cret@collector.example:4318/v1/traces?token=abc#frag");
  assert.equal(logged, "https://collector.example:4318/v1/traces");
  assert.ok(!logged.includes("s3cret") && !logged.includes("abc"));
});
