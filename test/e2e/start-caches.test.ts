// The caches a start reads, as the container fills them: bin/warm-caches.js (run by the Dockerfile) must leave a
// compile cache that `bin/llm-gateway.js serve` then uses. V8 rejects code cached under other V8 flags, and the
// entry point sets some before loading anything (young-generation.ts, optimizing-compilers.ts): a warm-up that
// compiles under other flags fills a cache every start throws away (which it did before it set the same flags).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, test } from "node:test";
import { REPO_ROOT, tempDir, writeFiles } from "../helpers/cli-process.ts";
import { serveThroughBin } from "../helpers/served-entry.ts";

describe("start-up caches", () => {
  test("serve (and its first /metrics scrape) compiles nothing again after bin/warm-caches.js filled the compile cache", async (t) => {
    const dir = tempDir(t);
    const cacheDir = join(dir, "compile-cache");
    // The sources (a checkout may hold a bundle in dist/: test/e2e/bundle.test.ts covers that start).
    const env = {
      PATH: process.env.PATH ?? "",
      NODE_NO_WARNINGS: "1",
      NODE_COMPILE_CACHE: cacheDir,
      LLM_GATEWAY_BUNDLE: "0",
    };
    const warm = spawnSync(process.execPath, [join(REPO_ROOT, "bin", "warm-caches.js")], {
      cwd: dir,
      env,
      encoding: "utf8",
    });
    assert.equal(warm.status, 0, warm.stderr);
    assert.match(warm.stdout, /caches warm/);

    const configPath = writeFiles(dir, {
      "config.yaml": `server:\n  port: 0\n  host: 127.0.0.1\n  log_level: info\nproviders:\n  - name: alpha\n    base_url: http://127.0.0.1:9/v1\n    api_key: sk-a\n    models:\n      m: {}\ndiscovery:\n  cache_dir: ${JSON.stringify(join(dir, "discovery"))}\nstate:\n  path: ":memory:"\n`,
    });
    const served = await serveThroughBin(t, REPO_ROOT, configPath, { ...env });
    // prom-client is loaded at the first scrape, after the start-up flags were released: its entries too.
    const scrape = await fetch(`${served.url}/metrics`);
    assert.equal(scrape.status, 200);
    assert.match(await scrape.text(), /^# HELP /m);
    const debug = await served.stop();

    const accepted = debug.match(/V8 code cache for .* was accepted/g) ?? [];
    const rejected = debug.match(/V8 code cache for .* was rejected/g) ?? [];
    assert.deepEqual(rejected, [], "modules whose cached code serve threw away");
    assert.ok(accepted.length > 100, `only ${accepted.length} modules came from the cache`);
    assert.ok(
      accepted.some((line) => line.includes("prom-client")),
      "prom-client did not come from the cache",
    );
  });
});
