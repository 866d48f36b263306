// An embeddings batch sent in chunks whose candidates' request or token windows (minute, hour, as day and month) cannot
// take every chunk before routing.total_timeout_ms ends is refused before any chunk is sent
// (pipeline/embeddings-window-fit.ts): a 429 naming the wait when a later start would fit, else a 413.
import assert from "node:assert/strict";
import { test } from "node:test";
import { errorOf, send } from "../helpers/e2e.ts";
import { answerEachInput, embeddingsCalls, texts } from "../helpers/embeddings-scene.ts";
import { MODEL, startScene } from "../helpers/limits-scene.ts";

test("a batch of more chunks than the rpm takes before routing.total_timeout_ms is a 413 before any chunk is sent", async (t) => {
  const scene = await startScene(t, {
    beta: false,
    alphaModel: { kind: "embedding", max_inputs: 2, limits: { rpm: 2 } },
    config: { routing: { total_timeout_ms: 3_000 } },
  });
  answerEachInput(scene.alpha);
  // 7 inputs: 4 chunks, two a minute at most: the last ones could only go after a minute, long past the 3 s.
  const refused = await send(scene.gateway, "POST", "/v1/embeddings", { body: { model: MODEL, input: texts(7) } });
  assert.equal(refused.status, 413, refused.text);
  const { message } = errorOf(refused);
  assert.match(message, /4 chunks/);
  assert.match(message, /alpha\/m: 2 requests left this minute of 2/);
  assert.match(message, /routing\.total_timeout_ms \(3000 ms\)/);
  // Before, chunks [t0, t1] and [t2, t3] were sent and paid, then the third failed past the deadline.
  assert.equal(embeddingsCalls(scene.alpha), 0, "nothing paid for a batch that cannot finish");
  // A batch its window takes is served as before.
  const served = await send(scene.gateway, "POST", "/v1/embeddings", { body: { model: MODEL, input: texts(3) } });
  assert.equal(served.status, 200, served.text);
  assert.equal(embeddingsCalls(scene.alpha), 2);
});

test("a batch the rpm takes once its minute is over is a 429 before any chunk, its Retry-After the wait", async (t) => {
  const scene = await startScene(t, {
    beta: false,
    alphaModel: { kind: "embedding", max_inputs: 2, limits: { rpm: 4 } },
    config: { routing: { total_timeout_ms: 3_000 } },
  });
  answerEachInput(scene.alpha);
  for (let index = 0; index < 2; index++) {
    const whole = await send(scene.gateway, "POST", "/v1/embeddings", { body: { model: MODEL, input: texts(2) } });
    assert.equal(whole.status, 200, whole.text);
  }
  // 2 requests left this minute, 4 chunks: all 4 fit once the two sent leave the window (~60 s).
  const refused = await send(scene.gateway, "POST", "/v1/embeddings", { body: { model: MODEL, input: texts(7) } });
  assert.equal(refused.status, 429, refused.text);
  assert.match(errorOf(refused).message, /alpha\/m: 2 requests left this minute of 4/);
  const retryAfterSeconds = Number(refused.headers["retry-after"]);
  assert.ok(retryAfterSeconds > 50 && retryAfterSeconds <= 60, `Retry-After ${refused.headers["retry-after"]}`);
  // Before, two chunks were sent and paid (the window's last two requests), then the third failed past the deadline.
  assert.equal(embeddingsCalls(scene.alpha), 2, "no chunk of the refused batch was sent");
});
