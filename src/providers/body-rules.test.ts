import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { applyBodyRules, mergeBodyRules, outputLimitNameOf, outputTokensFor } from "./body-rules.ts";
import { providerRulesForEmbeddings } from "./provider-rules-by-kind.ts";

describe("body rules", () => {
  test("no level says anything: no rules (no work per request)", () => {
    assert.equal(mergeBodyRules([undefined, {}, { defaults: {}, drop: [] }]), undefined);
  });

  test("levels merge provider -> known model -> model: defaults, override and drop field by field", () => {
    const rules = mergeBodyRules([
      { defaults: { temperature: 0.6, top_k: 20 }, drop: ["logprobs"] },
      { override: { top_p: 0.95 }, drop: ["seed"] },
      { defaults: { temperature: 0.2 }, override: { top_p: 0.8 }, drop: ["logprobs"] },
    ]);
    assert.ok(rules !== undefined);
    assert.deepEqual(rules.defaults, { temperature: 0.2, top_k: 20 });
    assert.deepEqual(rules.override, { top_p: 0.8 });
    assert.deepEqual([...rules.drop].sort(), ["logprobs", "seed"]);
  });

  test("a field a later level names is decided by it alone: a model's drop is not filled in by the provider's default", () => {
    // The case body rules are for: a provider-wide temperature, and one model that refuses temperature. Before, the
    // model's drop came first and the provider's default put the field back.
    const refusing = mergeBodyRules([
      { defaults: { temperature: 0.6 }, override: { top_p: 1 } },
      undefined,
      { drop: ["temperature", "top_p"] },
    ]);
    assert.ok(refusing !== undefined);
    const body: Record<string, unknown> = { temperature: 0.3, top_p: 0.5, seed: 1 };
    applyBodyRules(body, refusing);
    assert.deepEqual(body, { seed: 1 });
    // A model's default of a field the provider overrides: the model's (before, the provider's override won).
    const softened = mergeBodyRules([
      { override: { temperature: 0 }, drop: ["logprobs"] },
      { defaults: { temperature: 0.7, logprobs: false } },
    ]);
    assert.ok(softened !== undefined);
    const own: Record<string, unknown> = { temperature: 0.3, logprobs: true };
    applyBodyRules(own, softened);
    assert.deepEqual(own, { temperature: 0.3, logprobs: true });
    // One level may still drop the client's value and give its own (drop then defaults, as documented).
    const replaced = mergeBodyRules([{ override: { seed: 1 } }, { drop: ["seed"], defaults: { seed: 2 } }]);
    assert.ok(replaced !== undefined);
    const seeded: Record<string, unknown> = { seed: 9 };
    applyBodyRules(seeded, replaced);
    assert.deepEqual(seeded, { seed: 2 });
  });

  test("applied in order: drop, defaults where absent or null, override", () => {
    const rules = mergeBodyRules([
      { drop: ["logprobs", "temperature"], defaults: { temperature: 1, seed: 7, user: "u" }, override: { top_p: 1 } },
    ]);
    assert.ok(rules !== undefined);
    const body: Record<string, unknown> = { logprobs: true, temperature: 0.3, user: null, top_p: 0.2, n: 1 };
    applyBodyRules(body, rules);
    assert.deepEqual(body, { temperature: 1, seed: 7, user: "u", top_p: 1, n: 1 });
  });

  test("an output-limit default fills in only when the body has neither max_tokens nor max_completion_tokens", () => {
    const rules = mergeBodyRules([{ defaults: { max_tokens: 4096 } }]);
    assert.ok(rules !== undefined);
    const none: Record<string, unknown> = {};
    applyBodyRules(none, rules);
    assert.deepEqual(none, { max_tokens: 4096 });
    const other: Record<string, unknown> = { max_completion_tokens: 100 };
    applyBodyRules(other, rules);
    assert.deepEqual(other, { max_completion_tokens: 100 }, "no second, conflicting limit under the other name");
  });

  test("the output tokens counted for budgets and context: the client's, a default when it asked none, an override always", () => {
    const plain = { body: undefined };
    assert.equal(outputTokensFor(plain, 300), 300);
    const defaulted = { body: mergeBodyRules([{ defaults: { max_tokens: 4096 } }]) };
    assert.equal(outputTokensFor(defaulted, 0), 4096);
    assert.equal(outputTokensFor(defaulted, 100), 100);
    const overridden = { body: mergeBodyRules([{ override: { max_tokens: 512 } }]) };
    assert.equal(outputTokensFor(overridden, 0), 512);
    // The client's value may be under max_completion_tokens, which the override leaves: the larger counts.
    assert.equal(outputTokensFor(overridden, 2000), 2000);
    const both = { body: mergeBodyRules([{ override: { max_tokens: 512, max_completion_tokens: 256 } }]) };
    assert.equal(outputTokensFor(both, 2000), 512, "both names overridden: the client's value is gone");
    const dropped = { body: mergeBodyRules([{ drop: ["max_tokens", "max_completion_tokens"] }]) };
    assert.equal(outputTokensFor(dropped, 2000), 0);
    // One name dropped: the client's value may have gone with it, and then the default applies: count the larger.
    const halfDropped = { body: mergeBodyRules([{ drop: ["max_tokens"], defaults: { max_tokens: 4096 } }]) };
    assert.equal(outputTokensFor(halfDropped, 100), 4096);
  });
  test("a native Responses body: the output-limit rules set max_output_tokens; other fields as written", () => {
    const rules = mergeBodyRules([
      { defaults: { max_tokens: 4096, temperature: 0.6 }, override: { max_completion_tokens: 512, max_tokens: 256 } },
    ]);
    assert.ok(rules !== undefined);
    const body: Record<string, unknown> = { input: "hi", max_output_tokens: 9000 };
    applyBodyRules(body, rules, "responses");
    assert.deepEqual(
      body,
      { input: "hi", max_output_tokens: 512, temperature: 0.6 },
      "the larger override, as counted",
    );
    const defaulted = mergeBodyRules([{ defaults: { max_completion_tokens: 100 }, drop: ["max_tokens", "logprobs"] }]);
    assert.ok(defaulted !== undefined);
    const own: Record<string, unknown> = { max_output_tokens: 50, logprobs: 1 };
    applyBodyRules(own, defaulted, "responses");
    assert.deepEqual(own, { max_output_tokens: 50 }, "one chat name dropped is no reason to drop the only limit");
    const none: Record<string, unknown> = {};
    applyBodyRules(none, defaulted, "responses");
    assert.deepEqual(none, { max_output_tokens: 100 });
    const bothDropped = mergeBodyRules([{ drop: ["max_tokens", "max_completion_tokens"] }]);
    assert.ok(bothDropped !== undefined);
    const limited: Record<string, unknown> = { max_output_tokens: 50 };
    applyBodyRules(limited, bothDropped, "responses");
    assert.deepEqual(limited, {});
  });
  test("an embedding model gets of its provider's rules the embeddings fields, and every drop", () => {
    assert.deepEqual(
      providerRulesForEmbeddings({
        defaults: { temperature: 0.2, dimensions: 256, max_tokens: 4096 },
        override: { user: "tenant-a", seed: 7 },
        drop: ["logprobs", "encoding_format"],
      }),
      { defaults: { dimensions: 256 }, override: { user: "tenant-a" }, drop: ["logprobs", "encoding_format"] },
    );
    assert.equal(providerRulesForEmbeddings(undefined), undefined);
    const onlyChat = providerRulesForEmbeddings({ defaults: { temperature: 0.2 } });
    assert.equal(mergeBodyRules([onlyChat], { generatesText: false }), undefined, "nothing left: no work per request");
  });

  test("an image model gets of its provider's rules the image fields (OpenAI's and the FLUX hosts'), and every drop", () => {
    assert.deepEqual(
      providerRulesForEmbeddings(
        {
          defaults: { temperature: 0.2, size: "1024x1024", steps: 4, negative_prompt: "blurry", max_tokens: 4096 },
          override: { response_format: "b64_json", reasoning_effort: "low", quality: "high" },
          drop: ["logprobs", "style"],
        },
        "image",
      ),
      {
        defaults: { size: "1024x1024", steps: 4, negative_prompt: "blurry" },
        override: { response_format: "b64_json", quality: "high" },
        drop: ["logprobs", "style"],
      },
    );
  });

  test("a native Responses body: chat fields under another name set it there; chat-only fields are left out", () => {
    const rules = mergeBodyRules([
      {
        defaults: {
          reasoning_effort: "high",
          verbosity: "low",
          temperature: 0.6,
          top_logprobs: 3,
          top_k: 20,
          ...{ logprobs: true, n: 2, stop: ["END"], presence_penalty: 0.5, frequency_penalty: 0.1, seed: 7 },
        },
      },
    ]);
    assert.ok(rules !== undefined);
    const bare: Record<string, unknown> = { input: "hi" };
    applyBodyRules(bare, rules, "responses");
    assert.deepEqual(bare, {
      input: "hi",
      reasoning: { effort: "high" },
      text: { verbosity: "low" },
      temperature: 0.6,
      top_logprobs: 3,
      top_k: 20, // a name neither API has: the host's own, sent as written
    });
    // The client's own effort wins over a default; its other members stay; its objects are copied, never written.
    const reasoning = Object.freeze({ effort: "low", summary: "auto" });
    const text = Object.freeze({ format: { type: "text" } });
    const own: Record<string, unknown> = { input: "hi", reasoning, text };
    applyBodyRules(own, rules, "responses");
    assert.deepEqual(own.reasoning, { effort: "low", summary: "auto" });
    assert.deepEqual(own.text, { format: { type: "text" }, verbosity: "low" });
    // Chat bodies keep the chat names.
    const chat: Record<string, unknown> = {};
    applyBodyRules(chat, rules);
    assert.equal(chat.reasoning_effort, "high");
    assert.equal(chat.logprobs, true);

    const overridden = mergeBodyRules([{ override: { reasoning_effort: "minimal" } }]);
    assert.ok(overridden !== undefined);
    const replaced: Record<string, unknown> = { reasoning };
    applyBodyRules(replaced, overridden, "responses");
    assert.deepEqual(replaced.reasoning, { effort: "minimal", summary: "auto" });

    const dropped = mergeBodyRules([{ drop: ["reasoning_effort", "verbosity"] }]);
    assert.ok(dropped !== undefined);
    const keptSummary: Record<string, unknown> = { reasoning, text: { verbosity: "high" } };
    applyBodyRules(keptSummary, dropped, "responses");
    assert.deepEqual(keptSummary, { reasoning: { summary: "auto" } }, "an object left empty goes too");
    assert.deepEqual(reasoning, { effort: "low", summary: "auto" });
  });

  test("a native Responses body: a response_format rule is text.format, json_schema's members flat beside its type", () => {
    const schema = { type: "object", properties: { city: { type: "string" } }, required: ["city"] };
    const strict = mergeBodyRules([
      {
        override: {
          response_format: { type: "json_schema", json_schema: { name: "place", schema, strict: true } },
          verbosity: "low",
        },
      },
    ]);
    assert.ok(strict !== undefined);
    const text = Object.freeze({ format: { type: "text" }, verbosity: "high" });
    const own: Record<string, unknown> = { input: "hi", text };
    applyBodyRules(own, strict, "responses");
    assert.deepEqual(own, {
      input: "hi",
      text: { format: { type: "json_schema", name: "place", schema, strict: true }, verbosity: "low" },
    });
    assert.deepEqual(text, { format: { type: "text" }, verbosity: "high" }, "the client's object is never written");
    assert.equal("response_format" in own, false);

    const json = mergeBodyRules([{ defaults: { response_format: { type: "json_object" } } }]);
    assert.ok(json !== undefined);
    const bare: Record<string, unknown> = { input: "hi" };
    applyBodyRules(bare, json, "responses");
    assert.deepEqual(bare, { input: "hi", text: { format: { type: "json_object" } } });
    // A default leaves the client's own format, and keeps its other members.
    const chosen: Record<string, unknown> = { input: "hi", text: { format: { type: "text" }, verbosity: "low" } };
    applyBodyRules(chosen, json, "responses");
    assert.deepEqual(chosen.text, { format: { type: "text" }, verbosity: "low" });
    const beside: Record<string, unknown> = { input: "hi", text: { verbosity: "low" } };
    applyBodyRules(beside, json, "responses");
    assert.deepEqual(beside.text, { verbosity: "low", format: { type: "json_object" } });

    const dropped = mergeBodyRules([{ drop: ["response_format"] }]);
    assert.ok(dropped !== undefined);
    const formatted: Record<string, unknown> = { text: { format: { type: "json_object" }, verbosity: "low" } };
    applyBodyRules(formatted, dropped, "responses");
    assert.deepEqual(formatted, { text: { verbosity: "low" } });

    // A shape neither API reads (no `json_schema` object, an unknown type) is left out, as before.
    const odd = mergeBodyRules([{ override: { response_format: { type: "json_schema" }, temperature: 0.1 } }]);
    assert.ok(odd !== undefined);
    const left: Record<string, unknown> = { input: "hi" };
    applyBodyRules(left, odd, "responses");
    assert.deepEqual(left, { input: "hi", temperature: 0.1 });
    // Chat bodies keep response_format as written.
    const chat: Record<string, unknown> = {};
    applyBodyRules(chat, strict);
    assert.deepEqual(chat.response_format, {
      type: "json_schema",
      json_schema: { name: "place", schema, strict: true },
    });
  });

  test("the output tokens counted when the name of the client's limit is known: exactly what the rules leave", () => {
    const capped = { body: mergeBodyRules([{ override: { max_tokens: 512 } }]) };
    assert.equal(outputTokensFor(capped, 32000, "max_tokens"), 512, "the override replaces the client's own");
    assert.equal(outputTokensFor(capped, 32000, "max_completion_tokens"), 32000, "both names reach the provider");
    const renamed = { body: mergeBodyRules([{ drop: ["max_tokens"], defaults: { max_completion_tokens: 4096 } }]) };
    assert.equal(outputTokensFor(renamed, 100, "max_tokens"), 4096, "dropped: the default fills in");
    assert.equal(outputTokensFor(renamed, 100, "max_completion_tokens"), 100);
    assert.equal(outputTokensFor(renamed, 0, undefined), 4096);
    assert.equal(outputLimitNameOf({ max_tokens: 5 }), "max_tokens");
    assert.equal(outputLimitNameOf({ max_tokens: 5, max_completion_tokens: 6 }), undefined, "both: not known which");
    assert.equal(outputLimitNameOf({ max_completion_tokens: null }), undefined);
  });

  test("a default named like a member of an object's prototype fills in too (an own field is what counts)", () => {
    const rules = mergeBodyRules([{ defaults: { toString: "x", constructor: 1 } }]);
    assert.ok(rules !== undefined);
    const body: Record<string, unknown> = {};
    applyBodyRules(body, rules);
    assert.deepEqual(JSON.parse(JSON.stringify(body)), { toString: "x", constructor: 1 });
  });
});
