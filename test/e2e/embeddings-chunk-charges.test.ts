// What a chunked embeddings batch that failed at a later chunk charged (pipeline/embeddings-chunks.ts failedChunk):
// the chunks answered before it, on their deployment's budgets and on the client's alike.
import assert from "node:assert/strict";
import { test } from "node:test";
import { errorOf, send } from "../helpers/e2e.ts";
import { answerEachInput, texts } from "../helpers/embeddings-scene.ts";
import { MODEL, startScene, windowOf } from "../helpers/limits-scene.ts";

test("a chunk answered without usage before a later chunk failed is charged to the client as to its deployment", async (t) => {
  const scene = await startScene(t, {
    beta: false,
    alphaModel: { kind: "embedding", max_inputs: 2, limits: { tpm: 1_000_000 } },
    config: {
      server: {
        port: 0,
        host: "127.0.0.1",
        api_keys: [{ key: "sk-client", name: "greedy", limits: { tpm: 1_000_000 } }, "sk-ops"],
      },
    },
  });
  // No usage in any answer; the chunk holding t2 fails every time.
  answerEachInput(scene.alpha, { text: "t2", times: 100 }, () => ({}));
  const failed = await send(scene.gateway, "POST", "/v1/embeddings", {
    body: { model: MODEL, input: texts(3) },
    headers: { authorization: "Bearer sk-client" },
  });
  assert.equal(failed.status, 502, failed.text);
  assert.match(errorOf(failed).message, /inputs 0 to 1 were answered and charged \(4 tokens\)/);
  // The first chunk kept its reservation (4 tokens, its estimate) on alpha; the client was charged 0 for it before.
  const opsHeaders = { authorization: "Bearer sk-ops" };
  let client: number | undefined;
  let alpha: number | undefined;
  for (let tries = 0; tries < 50 && (client === undefined || client !== alpha); tries++) {
    const stats = (await send(scene.gateway, "GET", "/stats", { headers: opsHeaders })).json as {
      deployments: Parameters<typeof windowOf>[0][];
      clients?: Record<string, { budgets: { unit: string; used: number }[] }>;
    };
    client = stats.clients?.greedy?.budgets.find((window) => window.unit === "tokens")?.used;
    const row = stats.deployments[0];
    alpha = row === undefined ? undefined : windowOf(row, "deployment:alpha/m", "tokens", "minute").used;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.equal(alpha, 4);
  assert.equal(client, 4);
});
