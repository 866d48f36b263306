import assert from "node:assert/strict";
import { test } from "node:test";
import { refusedFromEntries, requestParamOf, sizeRefusalOf } from "./size-refusal.ts";

test("each cited wording gives the parameter and the most entries taken", () => {
  const cases: [string, { param?: string; code?: string }, string | undefined, number | undefined][] = [
    [
      "Invalid 'tools': array too long. Expected an array with maximum length 128, but got an array with length 309 instead.",
      { code: "invalid_request_body" },
      "tools",
      128,
    ],
    ["Invalid 'stop': array too long.", { code: "array_above_max_length", param: "stop" }, "stop", undefined],
    ["len(stop) > 4 is not supported", {}, "stop", 4],
    ["'tools' : maximum number of items is 128", {}, "tools", 128],
    [
      "* GenerateContentRequest.generation_config.stop_sequences: the number of stop_sequences must not exceed 5.\n",
      {},
      "stop_sequences",
      5,
    ],
    [
      "Unable to submit request because it has a stopSequences value of 10 but the supported range is from 1 (inclusive) to 6 (exclusive). Update the value and try again.",
      {},
      "stopSequences",
      5,
    ],
    ["stop: List should have at most 4 items after validation, not 6", { param: "stop" }, "stop", 4],
    ["Length of stop ([2, 16, 2, 1, 3, 3]) exceeds the limit max_model_len(5).Please reduce", {}, "stop", 5],
    ["stop:最大只能有4个停止词 (request id: 202409291149558009254221372292)", { param: "", code: "1214" }, "stop", 4],
    ["You may not include more than 128 tools in your request.", {}, "tools", 128],
  ];
  for (const [message, fields, param, maxEntries] of cases) {
    assert.deepEqual(sizeRefusalOf({ message, ...fields }), { param, maxEntries }, message);
  }
});

test("other refusals are not about a size", () => {
  assert.equal(sizeRefusalOf({ message: "'$.stop' is invalid. Please check the API reference." }), undefined);
  assert.equal(sizeRefusalOf({ message: "stop_sequences: each stop sequence must contain non-whitespace" }), undefined);
  assert.equal(sizeRefusalOf({ message: "This model does not support tools" }), undefined);
});

test("the lesson starts above the stated limit, else at the entries sent; Gemini's names are chat's `stop`", () => {
  assert.equal(refusedFromEntries({ param: "stop", maxEntries: 4 }, 9), 5);
  assert.equal(refusedFromEntries({ param: "stop", maxEntries: undefined }, 6), 6);
  assert.equal(refusedFromEntries({ param: "stop", maxEntries: undefined }, undefined), undefined);
  assert.equal(requestParamOf("stop_sequences"), "stop");
  assert.equal(requestParamOf("stopSequences"), "stop");
  assert.equal(requestParamOf("tools"), "tools");
});
