import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { hasOwnWebAssemblyTierFlags, OWN_WASM_TIER_FLAG } from "./webassembly-tiers.ts";

/**
 * A child that (with `isKept`) applies the start-up holds as every start does (start-up-holds.ts), then runs a small WebAssembly function hot for a
 * while, as undici's parser runs under load, and says which tier its code is in (V8's test natives).
 */
function tierAfterHotLoop(isKept: boolean): { liftoff: boolean; optimized: boolean } {
  const moduleUrl = new URL("./start-up-holds.ts", import.meta.url).href;
  const script = `
    const holds = await import(${JSON.stringify(moduleUrl)});
    if (${isKept}) holds.holdV8DuringStartup();
    // (module (func (export "f") (param i32) (result i32) local.get 0 i32.const 1 i32.add))
    const bytes = new Uint8Array([0,97,115,109,1,0,0,0,1,6,1,96,1,127,1,127,3,2,1,0,7,5,1,1,102,0,0,10,9,1,7,0,32,0,65,1,106,11]);
    const f = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports.f;
    // Hot until the optimizing tier lands (a background job: polled, generous for a busy machine), or for 3 s when
    // kept (without the holds it lands well within that).
    const started = Date.now();
    let x = 0;
    while (Date.now() - started < (${isKept} ? 3000 : 20000) && !%IsTurboFanFunction(f)) {
      for (let i = 0; i < 100000; i++) x = f(x);
      await new Promise((r) => setTimeout(r, 1));
    }
    process.stdout.write(JSON.stringify({ liftoff: %IsLiftoffFunction(f), optimized: %IsTurboFanFunction(f) }));
  `;
  const child = spawnSync(process.execPath, ["--allow-natives-syntax", "--input-type=module", "-e", script], {
    encoding: "utf8",
    env: { ...process.env, NODE_OPTIONS: "" },
  });
  assert.equal(child.status, 0, child.stderr);
  return JSON.parse(child.stdout) as { liftoff: boolean; optimized: boolean };
}

describe("WebAssembly kept in the baseline tier", () => {
  it("a hot WebAssembly function stays in Liftoff code after the start-up holds, and is optimized without them", () => {
    assert.deepEqual(tierAfterHotLoop(true), { liftoff: true, optimized: false });
    assert.deepEqual(tierAfterHotLoop(false), { liftoff: false, optimized: true });
  });

  it("leaves V8 alone when the process was given its own WebAssembly tiering flags", () => {
    assert.equal(hasOwnWebAssemblyTierFlags(["--liftoff-only"], undefined), true);
    assert.equal(hasOwnWebAssemblyTierFlags([], "--wasm-tier-up"), true);
    assert.equal(hasOwnWebAssemblyTierFlags(["--no-wasm-dynamic-tiering"], ""), true);
    assert.equal(hasOwnWebAssemblyTierFlags(["--max-old-space-size=512"], "--enable-source-maps"), false);
  });

  it("bin/llm-gateway.js and bin/warm-caches.js set the flags first with the same rule (their one copy cannot import it)", () => {
    const text = readFileSync(new URL("../../bin/entry-v8-flags.js", import.meta.url), "utf8");
    assert.ok(text.includes(`${OWN_WASM_TIER_FLAG}.test(flag)`), "another own-flags rule");
    assert.ok(text.includes('setFlagsFromString("--no-wasm-dynamic-tiering")'));
    assert.ok(text.includes('setFlagsFromString("--no-wasm-tier-up")'));
    for (const path of ["../../bin/llm-gateway.js", "../../bin/warm-caches.js"]) {
      const entry = readFileSync(new URL(path, import.meta.url), "utf8");
      // Before the first module of the entry's own (start-entry.js) and the first .ts file.
      assert.ok(entry.includes('import { setEntryV8Flags } from "./entry-v8-flags.js";'), path);
      assert.ok(entry.indexOf("setEntryV8Flags();") < entry.indexOf("await import("), `${path}: set after an import`);
    }
  });
});
