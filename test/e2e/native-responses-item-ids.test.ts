// A native Responses provider answering output items without an `id` (OpenAI always gives one; a compatible provider
// may not): the gateway gives each one, so the answer is kept and continued from. Without, the kept row was indexed by
// an undefined item id, the store refused it, and the next turn's `previous_response_id` was a 400 "could not be
// stored", though the store was up.
import assert from "node:assert/strict";
import { test } from "node:test";
import { send, useGateway, useMock } from "../helpers/e2e.ts";

const RESPONSES_ROUTE = "POST /v1/responses";
const BASE = { id: "resp_upstream", object: "response", status: "completed", model: "n" };
const USAGE = { input_tokens: 3, output_tokens: 2, total_tokens: 5 };

test("a native answer whose items have no id is kept: the next turn continues from it", async (t) => {
  const upstream = await useMock(t);
  const gateway = await useGateway(
    t,
    `providers:\n  - name: first\n    base_url: ${upstream.baseUrl}\n    api_key: sk-first\n    responses_api: native\n    retries: 0\n    models:\n      n: { id: n }\n`,
  );
  const output = [
    { type: "reasoning", summary: [] },
    { type: "message", role: "assistant", status: "completed", content: [{ type: "output_text", text: "Hi." }] },
    { type: "function_call", id: null, call_id: "call_1", name: "f", arguments: "{}" },
  ];
  upstream.setDefault(RESPONSES_ROUTE, { kind: "json", body: { ...BASE, output, usage: USAGE } });
  const first = await send(gateway, "POST", "/v1/responses", { body: { model: "n", input: "hi" } });
  assert.equal(first.status, 200, first.text);
  const items = (first.json as { id: string; output: { id?: unknown }[] }).output;
  const ids = items.map((item) => item.id);
  assert.ok(
    ids.every((id) => typeof id === "string" && id !== ""),
    `items without ids: ${JSON.stringify(ids)}`,
  );
  assert.equal(new Set(ids).size, ids.length);
  const kept = await send(gateway, "GET", `/v1/responses/${(first.json as { id: string }).id}`);
  assert.equal(kept.status, 200, kept.text);
  upstream.setDefault(RESPONSES_ROUTE, { kind: "json", body: { ...BASE, output: [], usage: USAGE } });
  const call = { type: "function_call_output", call_id: "call_1", output: "ok" };
  const next = await send(gateway, "POST", "/v1/responses", {
    body: { model: "n", input: [call], previous_response_id: (first.json as { id: string }).id },
  });
  assert.equal(next.status, 200, next.text);
});
