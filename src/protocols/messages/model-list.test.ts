import assert from "node:assert/strict";
import { test } from "node:test";
import { InvalidRequestError } from "../../errors/gateway-error.ts";
import { anthropicModelPage, type ListedModel } from "./model-list.ts";

const MODELS: ListedModel[] = ["a", "b", "c", "d", "e"].map((id) => ({
  id,
  created: 1767225600,
  kind: "chat",
  endpoints: ["/v1/messages"],
}));

function ids(query: Record<string, string>): [string[], boolean, string | null, string | null] {
  const page = anthropicModelPage(MODELS, query);
  return [page.data.map((model) => model.id), page.has_more, page.first_id, page.last_id];
}

test("pages forwards from after_id and backwards from before_id, as Anthropic pages its model list", () => {
  assert.deepEqual(ids({}), [["a", "b", "c", "d", "e"], false, "a", "e"]);
  assert.deepEqual(ids({ limit: "2" }), [["a", "b"], true, "a", "b"]);
  assert.deepEqual(ids({ limit: "2", after_id: "b" }), [["c", "d"], true, "c", "d"]);
  assert.deepEqual(ids({ limit: "2", after_id: "d" }), [["e"], false, "e", "e"]);
  assert.deepEqual(ids({ limit: "2", before_id: "d" }), [["b", "c"], true, "b", "c"]);
  assert.deepEqual(ids({ limit: "2", before_id: "b" }), [["a"], false, "a", "a"]);
  assert.deepEqual(ids({ after_id: "e" }), [[], false, null, null]);
  assert.equal(anthropicModelPage(MODELS, {}).data[0]?.created_at, "2026-01-01T00:00:00.000Z");
});

test("a limit out of range or an unlisted id is a 400 naming it", () => {
  for (const [query, param] of [
    [{ limit: "0" }, "limit"],
    [{ limit: "1001" }, "limit"],
    [{ limit: "2.5" }, "limit"],
    [{ limit: "" }, "limit"],
    [{ after_id: "zz" }, "after_id"],
    [{ before_id: "zz" }, "before_id"],
  ] as const) {
    assert.throws(
      () => anthropicModelPage(MODELS, query),
      (error: unknown) => error instanceof InvalidRequestError && error.param === param,
      JSON.stringify(query),
    );
  }
});
