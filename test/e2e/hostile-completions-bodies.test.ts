// Legacy completions prompts OpenAI's reference refuses (`[]`, items of no prompt form, forms mixed): a 400 naming the
// item, before any upstream call. Sent on, each host answered in its own way (a vLLM's 422 in its own shape).
import assert from "node:assert/strict";
import { test } from "node:test";
import { badRequest, errorOf, send } from "../helpers/e2e.ts";
import { assertRefusedBeforeUpstream, hostileScene } from "../helpers/hostile-bodies.ts";

const REFUSED: [unknown, string][] = [
  [[], "prompt"],
  [[null], "prompt[0]"],
  [[{ text: "hi" }], "prompt[0]"],
  [["a", 1], "prompt[1]"],
  [[1, "a"], "prompt[1]"],
  [[1, -2], "prompt[1]"],
  [[1.5], "prompt[0]"],
  [
    [
      [1, 2],
      [3, "x"],
    ],
    "prompt[1]",
  ],
  [[[1], 2], "prompt[1]"],
  [5, "prompt"],
];

test("a prompt of no form OpenAI takes: a 400 naming the item, OpenAI's shape, nothing sent", async (t) => {
  const { mock, gateway, client } = await hostileScene(t);
  for (const [prompt, param] of REFUSED) {
    const response = await send(gateway, "POST", "/v1/completions", { body: { model: "m", prompt } });
    assert.equal(response.status, 400, `${JSON.stringify(prompt)}: ${response.text}`);
    const error = errorOf(response);
    assert.deepEqual([error.type, error.code, error.param], ["invalid_request_error", "invalid_value", param]);
  }
  const error = await badRequest(client.completions.create({ model: "m", prompt: [] }));
  assert.equal(error.param, "prompt");
  assert.match(error.message, /`prompt` must not be empty/);
  await assertRefusedBeforeUpstream(gateway, mock, "completions", REFUSED.length + 1);
});

test("every form the reference takes is sent on as it came", async (t) => {
  const { mock, client } = await hostileScene(t);
  const prompts: (string | string[] | number[] | number[][])[] = ["", ["a", ""], [1, 0, 2], [[1, 2], [3]]];
  for (const prompt of prompts) await client.completions.create({ model: "m", prompt });
  const sent = mock.requests.filter((recorded) => recorded.path === "/v1/completions");
  assert.deepEqual(
    sent.map((recorded) => (recorded.body as { prompt: unknown }).prompt),
    prompts,
  );
});
