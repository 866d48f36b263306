import assert from "node:assert/strict";
import { test } from "node:test";
import { z } from "zod";
import { InvalidRequestError } from "../errors/gateway-error.ts";
import { arrayOf, validateAt } from "./validate.ts";

function firstIssue(schema: z.ZodType, value: unknown): { path: PropertyKey[]; message: string } | undefined {
  const issue = schema.safeParse(value).error?.issues[0];
  return issue === undefined ? undefined : { path: issue.path, message: issue.message };
}

test("arrayOf reports the first bad element as zod's own array does, nested ones included", () => {
  const message = z.looseObject({
    role: z.string({ error: "each message needs a string `role`" }),
    content: z.string(),
  });
  const cases: [z.ZodType, z.ZodType, unknown][] = [
    [z.array(message), arrayOf(message), [{ role: "user", content: "hi" }, { content: "x" }, 1, 2]],
    [z.array(message), arrayOf(message), [{ role: "user", content: 5 }]],
    [z.array(z.array(z.string())), arrayOf(arrayOf(z.string())), [["a"], ["b", 1, 2], 3]],
    [z.object({ list: z.array(z.number()) }), z.object({ list: arrayOf(z.number()) }), { list: [1, "x", "y"] }],
    [
      z.array(z.unknown(), { error: "`m` must be an array" }).min(1, "`m` must not be empty"),
      arrayOf(z.unknown(), z.array(z.unknown(), { error: "`m` must be an array" }).min(1, "`m` must not be empty")),
      [],
    ],
    [
      z.array(z.string(), { error: "`m` must be an array" }),
      arrayOf(z.string(), z.array(z.unknown(), { error: "`m` must be an array" })),
      "no",
    ],
  ];
  for (const [zodArray, ours, value] of cases) {
    assert.deepEqual(firstIssue(ours, value), firstIssue(zodArray, value), JSON.stringify(value));
    assert.ok(firstIssue(ours, value) !== undefined);
  }
});

test("arrayOf stops at the first bad element: the rest are never parsed and give no issue", () => {
  let parsed = 0;
  const counted = z.number().refine(() => {
    parsed++;
    return true;
  });
  const result = arrayOf(z.union([z.string(), counted])).safeParse(["a", 1, null, ...Array<number>(1_000).fill(2)]);
  assert.equal(result.success, false);
  assert.equal(result.error?.issues.length, 1);
  assert.deepEqual(result.error?.issues[0]?.path, [2]);
  assert.equal(parsed, 1);
});

test("arrayOf keeps the parsed elements (defaults, transforms) and the error a client sees is unchanged", () => {
  const schema = arrayOf(z.looseObject({ n: z.number().default(7) }));
  assert.deepEqual(schema.parse([{}, { n: 1 }]), [{ n: 7 }, { n: 1 }]);
  assert.throws(
    () => validateAt(z.object({ input: schema }), { input: [{}, { n: "x" }, { n: "y" }] }, []),
    (error: unknown) =>
      error instanceof InvalidRequestError &&
      error.param === "input[1].n" &&
      error.message === "Invalid `input[1].n`: Invalid input: expected number, received string",
  );
});
