import assert from "node:assert/strict";
import { test } from "node:test";
import type { JsonResult } from "../upstream/forward-types.ts";
import { chunkAnswerOf, joinedAnswer, joinedUsage } from "./embeddings-chunk-answers.ts";

/** A chunk's answer as its attempt hands it over: the upstream's text, parsed here with JSON.parse. */
const answerOf = (bodyText: string, promptTokens: number, start: number) =>
  chunkAnswerOf({ bodyText, deployment: {} } as unknown as JsonResult, undefined, promptTokens, start);

test("an upstream usage's `__proto__` key is dropped when chunks' usages are summed, never made the sum's prototype", () => {
  // JSON.parse makes it an own key; assigned into the sum, it became its prototype, and the inherited `total_tokens`
  // counted as reported: the chunk without usage added its estimate to it, and the client read a `total_tokens` (4) no upstream sent.
  const answers = [
    answerOf(
      '{"object":"list","data":[{"embedding":[1]}],"usage":{"prompt_tokens":3,"__proto__":{"total_tokens":5}}}',
      3,
      0,
    ),
    answerOf('{"object":"list","data":[{"embedding":[2]}]}', 4, 1),
  ];
  const usage = joinedAnswer(answers, joinedUsage(answers)).usage as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(usage), Object.prototype);
  assert.equal(usage.total_tokens, undefined);
  assert.deepEqual(JSON.parse(JSON.stringify(usage)), { prompt_tokens: 7 });
});
