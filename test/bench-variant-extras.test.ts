// The A/B scripts' variant text (bench/ab-helpers.ts variantExtras): `dir|--flag|NAME=value`. A part that is neither
// a flag nor NAME=value is a typo, refused by name, never run as some other variable.
import assert from "node:assert/strict";
import { test } from "node:test";
import { variantExtras } from "../bench/ab-helpers.ts";

test("variantExtras: flags to Node, NAME=value to the environment (a value may hold '=')", () => {
  assert.deepEqual(variantExtras("dir|--v8-pool-size=2|MALLOC_ARENA_MAX=2|OPTS=a=b"), {
    base: "dir",
    nodeArgs: ["--v8-pool-size=2"],
    env: { MALLOC_ARENA_MAX: "2", OPTS: "a=b" },
  });
  assert.deepEqual(variantExtras("dir"), { base: "dir", nodeArgs: [], env: {} });
});

test("variantExtras: a part without NAME= is refused, naming it (it became {FO: 'FOO'})", () => {
  assert.throws(() => variantExtras("dir|FOO"), /variant "dir\|FOO": "FOO" is neither a Node flag .* nor NAME=value/);
  assert.throws(() => variantExtras("dir|=2"), /variant "dir\|=2": "=2" is neither a Node flag .* nor NAME=value/);
});
