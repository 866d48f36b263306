import assert from "node:assert/strict";
import { test } from "node:test";
import { UPSTREAM_PATHS } from "../config/upstream-paths.ts";
import { ENDPOINTS, explainedPathOf } from "./endpoints.ts";

test("`served_paths` may name exactly the paths the endpoints are sent to", () => {
  assert.deepEqual([...new Set(ENDPOINTS.map((endpoint) => endpoint.upstreamPath))].sort(), [...UPSTREAM_PATHS].sort());
});

test("a route is explained for the named door of the kind, else the kind's first door", () => {
  assert.equal(explainedPathOf("chat"), "/chat/completions");
  assert.equal(explainedPathOf("chat", "completions"), "/completions");
  assert.equal(explainedPathOf("image"), "/images/generations");
  assert.equal(explainedPathOf("image", "image_edits"), "/images/edits");
  // A door of another kind does not change the kind's path.
  assert.equal(explainedPathOf("chat", "embeddings"), "/chat/completions");
});
