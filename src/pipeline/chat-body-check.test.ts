import assert from "node:assert/strict";
import { test } from "node:test";
import { lineBody } from "../protocols/batches/batch-line-body.ts";
import { checkBatchInput } from "../protocols/batches/batch-objects.ts";
import { quickChatBody } from "./chat-body-check.ts";
import { chatBodySchema, parseBody } from "./request-body.ts";

/** Keys in order, all the way down: what JSON.stringify of the upstream body and the cache key read. */
function shapeOf(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(shapeOf);
  if (typeof value !== "object" || value === null) return value === undefined ? "<undefined>" : value;
  // `for...in`: what a reader of `body.x` sees, inherited keys too (a `__proto__` made the object's prototype).
  const entries: unknown[] = [];
  for (const key in value) entries.push([key, shapeOf((value as Record<string, unknown>)[key])]);
  return entries;
}

/** A field left out of the body (not set to undefined, which a door's translation may do). */
const ABSENT = Symbol("absent");

/**
 * Every value a field may take in these bodies, the most common first: plain ones the check takes, and ones only zod
 * may judge.
 */
const FIELD_VALUES: Record<string, readonly unknown[]> = {
  model: ["m", "", 3, null, undefined, ABSENT, " ", "x".repeat(70_000)],
  models: [ABSENT, ["a"], [], ["", "b"], "a", undefined],
  messages: [
    [{ role: "user", content: "hi" }],
    [
      { content: "x", role: "system", name: "n" },
      { role: "user", content: [{ type: "text", text: "y" }] },
    ],
    [],
    [{ content: "no role" }],
    [{ role: 1 }],
    [null],
    [["user"]],
    "hi",
    undefined,
    ABSENT,
    // Hostile messages: own `__proto__` (as JSON.parse makes it) and `constructor` keys, index-like keys, an empty
    // role, tool calls, a content left undefined, an undefined message.
    [JSON.parse('{"role":"user","__proto__":{"content":"ghost"}}')],
    [{ role: "user", constructor: { prototype: {} }, 1: "one", 0: "zero", content: "x" }],
    [
      { role: "", content: null, name: "" },
      { tool_calls: [{ id: "c" }], role: "assistant", content: undefined },
    ],
    [{ role: null }, { role: "user" }],
    [undefined, { role: "user" }],
    // What the reference refuses (protocols/chat-message-rules.ts), and what it takes around it.
    [{ role: "robot", content: "x" }],
    [{ role: "user", content: 5 }],
    [{ role: "user", content: [{ type: "hologram" }] }],
    [{ role: "tool", tool_call_id: "c", content: "x" }],
    [
      { role: "assistant", content: null, tool_calls: [{ id: "c", type: "function" }] },
      { role: "tool", tool_call_id: "c", content: null },
    ],
  ],
  stream: [ABSENT, true, false, null, "yes", 0, undefined, "true", 1, {}],
  max_tokens: [
    32,
    ABSENT,
    1,
    0,
    -1,
    1.5,
    null,
    "32",
    Number.MAX_SAFE_INTEGER + 2,
    undefined,
    -0,
    2 ** 53,
    Number.MAX_SAFE_INTEGER,
    1e21,
    1e-7,
    Number.POSITIVE_INFINITY,
    Number.NaN,
    true,
    [1],
  ],
  max_completion_tokens: [ABSENT, 64, null, 0, undefined, -0, 2 ** 53, Number.NaN],
  tools: [ABSENT, [], [{ type: "function", function: { name: "f" } }], {}, null, undefined, [undefined], "t"],
  n: [ABSENT, 1, 2, null, 0, undefined, -0, 1.0000001],
  x_gateway_reasoning_effort: [ABSENT, "low", "", 5, undefined, null],
  temperature: [0.2, ABSENT, undefined],
  // With `tools: []`: dropped along with it (auto, none, left out), or refused (required, a named function).
  tool_choice: [ABSENT, "auto", "required", "none", { type: "function", function: { name: "f" } }, null],
  parallel_tool_calls: [ABSENT, false],
  // Keys of the client's own, passed on: prototype keys as JSON.parse keeps them (own), an index-like key.
  ["__proto__"]: [ABSENT, { models: "abc", max_tokens: -5 }, null, 5],
  constructor: [ABSENT, { prototype: { stream: "yes" } }, "c"],
  "0": [ABSENT, "zero"],
  stream_options: [ABSENT, { include_usage: true }, null],
};

/** A deterministic walk over combinations (every value of every field appears, with varied neighbours). */
function* bodies(): Generator<Record<string, unknown>> {
  const fields = Object.keys(FIELD_VALUES);
  let seed = 7;
  const next = (bound: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    // The high bits: an LCG's low bits repeat with a short period (two draws in a row would be tied).
    return Math.floor((seed / 2147483648) * bound);
  };
  for (let round = 0; round < 6000; round++) {
    const body: Record<string, unknown> = {};
    // Half the bodies list their fields in another order, as clients do (`temperature` first, `model` last).
    const order = round % 2 === 0 ? fields : [...fields].reverse();
    for (const field of order) {
      const values = FIELD_VALUES[field] as readonly unknown[];
      // Mostly a field's most common value, else any of them.
      const value = values[next(3) === 0 ? next(values.length) : 0];
      // Defined, not assigned: a `__proto__` field is an own key, as JSON.parse makes it.
      if (value !== ABSENT)
        Object.defineProperty(body, field, { value, enumerable: true, writable: true, configurable: true });
    }
    yield body;
  }
}

test("what the quick check accepts comes out exactly as zod's parse, key order and copies included", () => {
  let accepted = 0;
  for (const body of bodies()) {
    const quick = quickChatBody(body);
    if (quick === undefined) continue;
    accepted++;
    const parsed = chatBodySchema.safeParse(body);
    assert.ok(parsed.success, `zod refuses what the quick check took: ${JSON.stringify(body)}`);
    assert.deepEqual(shapeOf(quick), shapeOf(parsed.data), JSON.stringify(body));
    // New objects as zod's are: the pipeline may change its copy without touching the client's parsed body.
    assert.notEqual(quick.messages, body.messages);
    if (Array.isArray(body.tools)) assert.notEqual(quick.tools, body.tools);
  }
  assert.ok(accepted > 300, `only ${accepted} bodies took the quick path`);
});

test("the usual chat bodies take the quick path; anything else goes to zod, whose 400 is unchanged", () => {
  const usual = [
    { model: "bench-model", messages: [{ role: "user", content: "hi" }], max_tokens: 32 },
    { model: "m", messages: [{ role: "user", content: "hi" }], stream: null, temperature: 0 },
    { messages: [{ role: "user", content: "hi" }], tools: [], stream: true, model: "m", stream_options: {} },
  ];
  for (const body of usual) assert.notEqual(quickChatBody(body), undefined, JSON.stringify(body));
  const unsure = [
    { model: "m", messages: [] },
    { model: "m", messages: [{ role: "user" }], models: ["a"] },
    { model: "m", messages: [{ role: "user" }], max_tokens: 0 },
    { model: "m", messages: [{ role: "user" }], stream: undefined },
    { messages: [{ role: "user" }] },
  ];
  for (const body of unsure) assert.equal(quickChatBody(body), undefined, JSON.stringify(body));
  assert.throws(() => parseBody(chatBodySchema, { model: "m", messages: [] }), {
    message: "`messages` must not be empty",
  });
  assert.throws(() => parseBody(chatBodySchema, { model: "m", messages: [{ role: "user" }], max_tokens: 0 }), {
    message: /Invalid `max_tokens`/,
  });
});

test("a `__proto__` key (a batch line's body is JSON.parse'd: own keys) is dropped as zod drops it, never made a prototype", () => {
  // The HTTP door refuses such a body (json-body.ts); a batch file's line is only scanned, and refused as the door
  // refuses it when it is parsed (batch-line-body.ts). The quick check still drops the key, should a body reach it so.
  const line = JSON.stringify({ custom_id: "a", method: "POST", url: "/v1/chat/completions", body: {} }).replace(
    '"body":{}',
    '"body":{"model":"m","messages":[{"role":"user","__proto__":{"content":"ghost"}}],"__proto__":{"models":"abc","max_tokens":-5,"stream":"yes"}}',
  );
  const check = checkBatchInput(line, "/v1/chat/completions", 10);
  assert.ok(check.isValid);
  assert.throws(() => lineBody(Buffer.from(line), check.lines[0] as (typeof check.lines)[number]), {
    code: "invalid_value",
    param: null,
  });
  const raw = (JSON.parse(line) as { body: Record<string, unknown> }).body;
  const body = parseBody(chatBodySchema, raw);
  // zod's output: the unchecked `models`, `max_tokens` and `stream` are nowhere, nor the message's `content`.
  assert.equal(Object.getPrototypeOf(body), Object.prototype);
  assert.deepEqual([body.models, body.max_tokens, body.stream], [undefined, undefined, undefined]);
  const [message] = body.messages as Record<string, unknown>[];
  assert.equal(Object.getPrototypeOf(message), Object.prototype);
  assert.equal(message?.content, undefined);
  assert.deepEqual(body, chatBodySchema.parse(raw));
});
