// The features of a request body a refusal may be tied to (request-features.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import { featureSizesOf, featuresOfNeeds, requestFeatures } from "./request-features.ts";

test("every top-level key with a value, but not the ones every request carries or the gateway's own", () => {
  const features = requestFeatures(
    {
      model: "m",
      models: ["n"],
      messages: [{ role: "user", content: "hi" }],
      stream: true,
      tools: [{ type: "function", function: { name: "f" } }],
      tool_choice: "auto",
      seed: 3,
      stop: null,
      x_gateway_reasoning_effort: "low",
      logprobs: false,
    },
    false,
  );
  assert.deepEqual(features, ["tools", "tool_choice", "seed", "logprobs"]);
});

test("images and a JSON response format are features of their own", () => {
  assert.deepEqual(requestFeatures({ model: "m", messages: [] }, true), ["images"]);
  assert.deepEqual(requestFeatures({ response_format: { type: "json_schema", json_schema: {} } }, false), [
    "response_format",
    "json_schema",
  ]);
  assert.deepEqual(requestFeatures({ response_format: { type: "json_object" } }, false), [
    "response_format",
    "json_object",
  ]);
  assert.deepEqual(requestFeatures({ response_format: { type: "text" } }, false), ["response_format"]);
});

test("a body with thousands of keys is read up to a bound", () => {
  const body = Object.fromEntries(Array.from({ length: 5_000 }, (_, index) => [`k${index}`, index]));
  assert.equal(requestFeatures(body, true).length, 65);
});

test("a route explanation's tools, vision and json_schema stand for the same features", () => {
  assert.deepEqual(featuresOfNeeds({ needsTools: true, needsVision: true, needsJsonSchema: true }), [
    "tools",
    "images",
    "response_format",
    "json_schema",
  ]);
  assert.deepEqual(featuresOfNeeds({}), []);
});

test("every array feature a request is listed with is sized, whatever keys come before it", () => {
  // Keys that are no features (null ones, `messages`, the gateway's own) did count towards the sizes' bound alone:
  // `stop` was then a feature of 1 entry, and a lesson about 5 and more did not hold for its 5.
  const body: Record<string, unknown> = { model: "m", messages: [], user: null, x_gateway_reasoning_effort: "low" };
  for (let index = 0; index < 60; index++) body[`k${index}`] = index;
  body.stop = ["a", "b", "c", "d", "e"];
  assert.ok(requestFeatures(body, false).includes("stop"));
  assert.equal(featureSizesOf(body).get("stop"), 5);
});
