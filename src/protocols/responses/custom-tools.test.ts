import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { InvalidRequestError } from "../../errors/gateway-error.ts";
import { customToolAsFunction, inputAsArguments, inputOfArguments } from "./custom-tools.ts";

describe("custom tools over chat function tools", () => {
  test("the input survives the round trip through function arguments, quotes and line breaks included", () => {
    const input = 'line one\n"two"\t\\three\u00e9';
    assert.equal(inputOfArguments(inputAsArguments(input)), input);
  });

  test("arguments that are not {input: string} are passed on as the model wrote them", () => {
    assert.equal(inputOfArguments("*** Begin Patch"), "*** Begin Patch");
    assert.equal(inputOfArguments('{"patch":"x"}'), '{"patch":"x"}');
    assert.equal(inputOfArguments('{"input":3}'), '{"input":3}');
    assert.equal(inputOfArguments('{"input":"trunc'), '{"input":"trunc', "a call cut by max_tokens");
    assert.equal(inputOfArguments(""), "");
    assert.equal(inputOfArguments("{}"), "", "a call without arguments, completed to {}");
    assert.equal(inputOfArguments(" { } "), "");
  });

  test("a text-format tool asks for free-form text; a regex grammar is named as such", () => {
    const free = customToolAsFunction({ type: "custom", name: "note" }, ["tools", 0]);
    assert.equal(free.function.name, "note");
    assert.match(String(free.function.description), /free-form text/);
    assert.deepEqual(free.function.parameters.required, ["input"]);
    const regex = customToolAsFunction(
      { type: "custom", name: "digits", format: { type: "grammar", syntax: "regex", definition: "^\\d+$" } },
      ["tools", 1],
    );
    assert.match(String(regex.function.description), /regex grammar:\n\^\\d\+\$/);
    assert.equal(regex.function.strict, undefined, "a chat provider's strict mode cannot hold a grammar");
  });

  test("a malformed custom tool is a 400 naming its field", () => {
    assert.throws(
      () => customToolAsFunction({ type: "custom", name: "x", format: { type: "grammar" } }, ["tools", 2]),
      (error: unknown) => error instanceof InvalidRequestError && String(error.param).startsWith("tools[2].format"),
    );
    assert.throws(
      () => customToolAsFunction({ type: "custom" }, ["tools", 0]),
      (error: unknown) => error instanceof InvalidRequestError && error.param === "tools[0].name",
    );
  });
});
