import assert from "node:assert/strict";
import { test } from "node:test";
import { RefusedFeatures } from "../limits/refused-features.ts";
import { refusedFromEntries, requestParamOf, type SizeRefusal, sizeRefusalOf } from "./size-refusal.ts";

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
    ["* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch", { code: "400" }, "input", 100],
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

test("a stated limit too large to keep is no stated limit: the lesson reads the same after the state file", () => {
  const huge = `Invalid 'stop': array too long. Expected an array with maximum length ${"9".repeat(400)}, but got 5.`;
  const refusal = sizeRefusalOf({ message: huge, param: "stop" });
  assert.equal(refusal?.maxEntries, undefined, "Infinity was kept, and written as null");
  assert.equal(refusedFromEntries(refusal as SizeRefusal, 5), 5);
  // A `stop` string was sent (no entries counted): the lesson holds alike before and after the state file.
  const book = new RefusedFeatures(60_000);
  book.learn("a", "stop", "HTTP 400", 0, undefined, refusedFromEntries(refusal as SizeRefusal, undefined));
  const restarted = new RefusedFeatures(60_000);
  restarted.import(JSON.parse(JSON.stringify(book.export(1))), 1);
  assert.deepEqual(restarted.refusalOf("a", ["stop"], 2, new Map()), book.refusalOf("a", ["stop"], 2, new Map()));
  assert.equal(sizeRefusalOf({ message: huge.replace("9".repeat(400), "0"), param: "stop" })?.maxEntries, 0);
});
