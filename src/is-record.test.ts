import assert from "node:assert/strict";
import { test } from "node:test";
import { isRecord } from "./is-record.ts";

test("isRecord: objects, including class instances and null-prototype objects; not null, arrays or primitives", () => {
  for (const value of [{}, { a: 1 }, Object.create(null), new Date(0)]) assert.equal(isRecord(value), true);
  for (const value of [null, undefined, [], [{}], "x", 1, true, () => ({})]) assert.equal(isRecord(value), false);
});
