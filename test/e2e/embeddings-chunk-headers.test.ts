// The headers of an embeddings batch answered in chunks (pipeline/chunked-serving.ts chunkedServing) name each
// chunk's provider and upstream model: whole names, however many chunks.
import assert from "node:assert/strict";
import { test } from "node:test";
import { send } from "../helpers/e2e.ts";
import { answerEachInput, texts } from "../helpers/embeddings-scene.ts";
import { MODEL, startScene } from "../helpers/limits-scene.ts";

test("a batch of more chunks than a header can name lists whole names and says how many it left out", async (t) => {
  const scene = await startScene(t, { beta: false, alphaModel: { kind: "embedding", max_inputs: 1 } });
  answerEachInput(scene.alpha);
  const answered = await send(scene.gateway, "POST", "/v1/embeddings", { body: { model: MODEL, input: texts(200) } });
  assert.equal(answered.status, 200, answered.text.slice(0, 400));
  assert.equal(answered.headers["x-gateway-chunks"], "200");
  // Before, each list was cut at 1,024 characters wherever that fell ("alpha, alpha, al"), a name cut in two.
  for (const [header, name] of [
    ["x-gateway-chunk-providers", "alpha"],
    ["x-gateway-chunk-models", "alpha-model"],
  ] as const) {
    const value = answered.headers[header] ?? "";
    assert.ok(value.length <= 1_024, `${header}: ${value.length} characters`);
    const names = value.split(", ");
    const more = /^\.\.\. \((\d+) more\)$/.exec(names.at(-1) ?? "");
    assert.ok(more !== null, `${header} ends with how many it left out: ${value.slice(-40)}`);
    const named = names.slice(0, -1);
    assert.ok(
      named.every((entry) => entry === name),
      header,
    );
    assert.equal(named.length + Number(more[1]), 200, header);
  }
});
