// A start from the sources (`node src/main.ts`, no bin/llm-gateway.js) holds V8 as every other start does
// (src/cli/start-up-holds.ts): the optimizing compilers held until the first request, and WebAssembly kept in its
// baseline tier (undici's parser). Before 2026-12-07 only bin/llm-gateway.js applied them.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import { HELD } from "../../src/cli/optimizing-compilers.ts";

/**
 * A preload that, once the command ran (`--version`: nothing released since), says whether the compilers are held
 * and which tier a hot WebAssembly function reaches (V8's test natives), as src/cli/webassembly-tiers.test.ts asks.
 */
const PROBE = `
  process.once("beforeExit", async () => {
    const held = String(process[Symbol.for(${JSON.stringify(HELD.description)})]);
    // (module (func (export "f") (param i32) (result i32) local.get 0 i32.const 1 i32.add))
    const bytes = new Uint8Array([0,97,115,109,1,0,0,0,1,6,1,96,1,127,1,127,3,2,1,0,7,5,1,1,102,0,0,10,9,1,7,0,32,0,65,1,106,11]);
    const f = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports.f;
    // Hot for 3 s, or until the optimizing tier lands (without the holds it does well within that).
    const started = Date.now();
    let x = 0;
    while (Date.now() - started < 3000 && !%IsTurboFanFunction(f)) {
      for (let i = 0; i < 100000; i++) x = f(x);
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    process.stderr.write("probe:" + JSON.stringify({ held, liftoff: %IsLiftoffFunction(f), optimized: %IsTurboFanFunction(f) }));
  });`;

describe("a start from the sources (node src/main.ts)", () => {
  it("applies the start-up holds: the compilers held, WebAssembly kept in its baseline tier", () => {
    const child = spawnSync(
      process.execPath,
      [
        "--allow-natives-syntax",
        "--import",
        `data:text/javascript,${encodeURIComponent(PROBE)}`,
        "src/main.ts",
        "--version",
      ],
      { cwd: new URL("../../", import.meta.url), encoding: "utf8", env: { ...process.env, NODE_OPTIONS: "" } },
    );
    assert.equal(child.status, 0, child.stderr);
    assert.match(child.stdout, /^llm-gateway /);
    const probe = /probe:(\{.*\})/.exec(child.stderr)?.[1];
    assert.ok(probe !== undefined, `no probe output: ${child.stderr}`);
    assert.deepEqual(JSON.parse(probe), { held: "true", liftoff: true, optimized: false });
  });
});
