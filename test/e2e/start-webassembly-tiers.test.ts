// WebAssembly in V8's baseline tier from the first statement of a start (src/cli/webassembly-tiers.ts): a start from
// the sources without a compile cache (the first start of a checkout, LLM_GATEWAY_BUNDLE=0, an unwritable cache)
// compiles Node's TypeScript stripper, WebAssembly, as it loads the first .ts file; set only with the start-up holds
// (after that file), the stripper tiered up on V8's workers while it stripped the sources (68 optimizing compiles, one
// of them a 16 MB zone: the arena the flags are there to avoid).
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { REPO_ROOT, tempDir, writeFiles } from "../helpers/cli-process.ts";
import { serveThroughBin } from "../helpers/served-entry.ts";

describe("WebAssembly tiers at start", () => {
  test("a start from the sources without a compile cache compiles no WebAssembly with the optimizing tier", async (t) => {
    const dir = tempDir(t);
    const configPath = writeFiles(dir, {
      "config.yaml": `server:\n  port: 0\n  host: 127.0.0.1\n  log_level: info\nproviders:\n  - name: alpha\n    base_url: http://127.0.0.1:9/v1\n    api_key: sk-a\n    models:\n      m: {}\ndiscovery:\n  cache_dir: ${JSON.stringify(join(dir, "discovery"))}\nstate:\n  path: ":memory:"\n`,
    });
    const env = {
      PATH: process.env.PATH ?? "",
      NODE_NO_WARNINGS: "1",
      NODE_COMPILE_CACHE: join(dir, "compile-cache"),
      LLM_GATEWAY_BUNDLE: "0",
    };
    // V8 prints each WebAssembly function it compiles, and with which tier (not a tiering flag: the holds apply).
    const served = await serveThroughBin(t, REPO_ROOT, configPath, env, ["--trace-wasm-compilation-times"]);
    // The optimizing compiles run in the background: time to land.
    await delay(1_500);
    await served.stop();
    const compiled = served.stdout().match(/^Compiled function .* using \w+/gm) ?? [];
    assert.ok(
      compiled.length > 100,
      `only ${compiled.length} WebAssembly functions compiled: the stripper did not run`,
    );
    assert.deepEqual(
      compiled.filter((line) => !line.endsWith("using Liftoff")),
      [],
      "WebAssembly compiled above the baseline tier",
    );
  });
});
