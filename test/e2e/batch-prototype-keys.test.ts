// A batch line's body with a `__proto__` key (or a `constructor` holding `prototype`) is refused as the JSON door
// refuses that body: a 400 `invalid_value` in the error file, the same error the door answers. Its lines were
// JSON.parse'd and served: the key was an own member of the body, and a copy made by assignment (the chat quick
// check's, until 2026-12-07) took it as its prototype, so what it held was read as the body's unchecked fields.
import assert from "node:assert/strict";
import { test } from "node:test";
import type OpenAI from "openai";
import { chatAndEmbeddingsScene, isFinished, linesOf, upload, waitForBatch } from "../helpers/batches-scene.ts";
import { send } from "../helpers/e2e.ts";
import type { TestGateway } from "../helpers/gateway.ts";

type Endpoint = "/v1/chat/completions" | "/v1/responses" | "/v1/embeddings";

/** A line's raw text: its body written as is, so a `__proto__` member stays one (JSON.stringify cannot make one). */
const rawLine = (customId: string, url: Endpoint, bodyText: string) =>
  `{"custom_id":"${customId}","method":"POST","url":"${url}","body":${bodyText}}`;

/** Per endpoint: a line served, one with `__proto__` at the body's top, one inside a message (or nested object). */
const CASES: Record<Endpoint, { good: string; top: string; nested: string; nestedParam: string }> = {
  "/v1/chat/completions": {
    good: '{"model":"m","messages":[{"role":"user","content":"good"}]}',
    top: '{"model":"m","messages":[{"role":"user","content":"top"}],"__proto__":{"model":"nowhere","max_tokens":-5}}',
    nested: '{"model":"m","messages":[{"role":"user","content":"nested","__proto__":{"role":"system"}}]}',
    nestedParam: "messages[0]",
  },
  "/v1/responses": {
    good: '{"model":"m","input":"good"}',
    top: '{"model":"m","input":"top","__proto__":{"model":"nowhere","background":true}}',
    nested: '{"model":"m","input":[{"role":"user","content":"nested","__proto__":{"role":"system"}}]}',
    nestedParam: "input[0]",
  },
  "/v1/embeddings": {
    good: '{"model":"e","input":"good"}',
    top: '{"model":"e","input":"top","__proto__":{"model":"nowhere","dimensions":-1}}',
    nested: '{"model":"e","input":"nested","constructor":{"prototype":{"model":"nowhere"}}}',
    nestedParam: "",
  },
};

async function runBatch(client: OpenAI, endpoint: Endpoint) {
  const cases = CASES[endpoint];
  const file = await upload(
    client,
    [
      rawLine("good", endpoint, cases.good),
      rawLine("top", endpoint, cases.top),
      rawLine("nested", endpoint, cases.nested),
    ].join("\n"),
  );
  const created = await client.batches.create({ input_file_id: file.id, endpoint, completion_window: "24h" });
  return waitForBatch(client, created.id, isFinished, 30_000);
}

/** The door's answer to the same body sent live: what the line's error must be. */
async function doorError(gateway: TestGateway, endpoint: Endpoint, bodyText: string) {
  const response = await send(gateway, "POST", endpoint, { body: bodyText });
  assert.equal(response.status, 400, response.text);
  return response.json;
}

for (const endpoint of Object.keys(CASES) as Endpoint[]) {
  test(`${endpoint} batch lines with \`__proto__\` or \`constructor.prototype\` keys: refused as the door refuses them, the other line served`, async (t) => {
    const { mock, gateway, client } = await chatAndEmbeddingsScene(t);
    const done = await runBatch(client, endpoint);
    assert.equal(done.status, "completed", JSON.stringify(done));
    assert.deepEqual(done.request_counts, { total: 3, completed: 1, failed: 2 });
    const output = await linesOf(client, done.output_file_id);
    assert.deepEqual(
      output.map((line) => [line.custom_id, (line.response as { status_code: number }).status_code]),
      [["good", 200]],
    );
    const errors = new Map((await linesOf(client, done.error_file_id)).map((line) => [line.custom_id, line]));
    assert.deepEqual([...errors.keys()], ["top", "nested"]);
    const cases = CASES[endpoint];
    for (const [customId, bodyText, param, key] of [
      ["top", cases.top, null, "__proto__"],
      [
        "nested",
        cases.nested,
        cases.nestedParam === "" ? null : cases.nestedParam,
        endpoint === "/v1/embeddings" ? "constructor" : "__proto__",
      ],
    ] as const) {
      const line = errors.get(customId) as {
        response: { status_code: number; body: { error: Record<string, unknown> } };
        error: unknown;
      };
      assert.equal(line.response.status_code, 400, JSON.stringify(line));
      assert.equal(line.error, null);
      const error = line.response.body.error;
      assert.equal(error.code, "invalid_value");
      assert.equal(error.type, "invalid_request_error");
      assert.equal(error.param, param);
      assert.ok(String(error.message).includes(`\`${key}\` key`), String(error.message));
      assert.deepEqual(line.response.body, await doorError(gateway, endpoint, bodyText));
    }
    // Nothing of a refused line was sent upstream: only the good line's request.
    const sent = mock.requests.filter((request) => request.method === "POST");
    assert.equal(sent.length, 1, JSON.stringify(sent.map((request) => request.body)));
    assert.doesNotMatch(JSON.stringify(sent[0]?.body), /top|nested|nowhere/);
  });
}
