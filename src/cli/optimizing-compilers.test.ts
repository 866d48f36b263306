import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { EventEmitter } from "node:events";
import { readFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import { describe, it } from "node:test";
import {
  HELD,
  hasOwnCompilerFlags,
  OWN_COMPILER_FLAG,
  releaseOptimizingCompilersOnFirstRequest,
} from "./optimizing-compilers.ts";

describe("optimizing compilers held through start-up", () => {
  it("leaves V8 alone when the process was given its own tiering flags", () => {
    assert.equal(hasOwnCompilerFlags(["--no-maglev"], undefined), true);
    assert.equal(hasOwnCompilerFlags([], "--max-old-space-size=512 --no-turbofan"), true);
    assert.equal(hasOwnCompilerFlags(["--jitless"], ""), true);
    assert.equal(hasOwnCompilerFlags(["--max_opt=2"], ""), true);
    assert.equal(hasOwnCompilerFlags(["--no-sparkplug"], ""), true);
    assert.equal(hasOwnCompilerFlags(["--import", "x.ts", "--max-old-space-size=512"], "--enable-source-maps"), false);
    assert.equal(hasOwnCompilerFlags(["--optimize-for-size"], undefined), false);
    assert.equal(hasOwnCompilerFlags([], undefined), false);
  });
});

describe("released at the first request that is not a probe", () => {
  it("health checks leave them held; the first other request releases them, once", () => {
    const holding = process as NodeJS.Process & { [HELD]?: boolean };
    const server = new EventEmitter();
    const request = (url: string) => server.emit("request", { url } as IncomingMessage);
    holding[HELD] = true;
    try {
      releaseOptimizingCompilersOnFirstRequest(server);
      for (const url of ["/ok", "/health", "/health?verbose=1", "/ok"]) request(url);
      assert.equal(holding[HELD], true, "a probe released the compilers");
      request("/metrics");
      assert.equal(holding[HELD], false);
      assert.equal(server.listenerCount("request"), 0, "the listener stays after the release");
      // Not held (a process started with its own flags, or already released): nothing is listened to.
      releaseOptimizingCompilersOnFirstRequest(server);
      assert.equal(server.listenerCount("request"), 0);
    } finally {
      holding[HELD] = false;
    }
  });
});

/**
 * A child process (with V8's natives syntax, to ask whether a function is optimized) that runs a hot function
 * while the compilers are held, then after the release, and prints whether it was optimized at each point.
 */
interface Tiers {
  readonly whileHeld: boolean;
  readonly afterRelease: boolean;
  readonly baselineWhileHeld: boolean;
  readonly baselineAfterRelease: boolean;
}

function optimizedWhileHeldAndAfter(releasedBy: "same" | "other"): Tiers {
  const moduleUrl = new URL("./optimizing-compilers.ts", import.meta.url).href;
  // "other": another instance of the module (as when bin/llm-gateway.js held through the sources and the bundle
  // releases, or the reverse) must release what the first one held.
  const releasingUrl = releasedBy === "same" ? moduleUrl : `${moduleUrl}?another-instance`;
  const script = `
    const holding = await import(${JSON.stringify(moduleUrl)});
    const compilers = await import(${JSON.stringify(releasingUrl)});
    holding.holdOptimizingCompilersDuringStartup();
    function hot(value) { let sum = 0; for (let index = 0; index < 100; index++) sum += (value * index) % 7; return sum; }
    // V8's OptimizationStatus: bit 4 is "optimized" (Maglev or TurboFan code).
    const isOptimized = () => (eval("%GetOptimizationStatus(hot)") & 16) !== 0;
    // Sparkplug (baseline code) is held too; a function called often enough gets it once released (or optimized code
    // beyond it: bit 15 of the status is "baseline", bit 4 "optimized").
    function warm(value) { return (value * 3) % 7; }
    const isBaseline = () => (eval("%GetOptimizationStatus(warm)") & (32768 | 16)) !== 0;
    const runWarm = async () => {
      for (let round = 0; round < 10; round++) {
        for (let index = 0; index < 20000; index++) warm(index);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    };
    const run = async () => {
      for (let round = 0; round < 10; round++) {
        for (let index = 0; index < 100000; index++) hot(index);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    };
    await run();
    await runWarm();
    const whileHeld = isOptimized();
    const baselineWhileHeld = isBaseline();
    compilers.releaseOptimizingCompilers();
    await run();
    await runWarm();
    process.stdout.write(
      JSON.stringify({ whileHeld, afterRelease: isOptimized(), baselineWhileHeld, baselineAfterRelease: isBaseline() }),
    );
  `;
  const child = spawnSync(process.execPath, ["--allow-natives-syntax", "--input-type=module", "-e", script], {
    encoding: "utf8",
    // Our own flag must not make the module think the process brought its own tiering flags.
    env: { ...process.env, NODE_OPTIONS: "" },
  });
  assert.equal(child.status, 0, child.stderr);
  return JSON.parse(child.stdout) as Tiers;
}

describe("V8 honours the tiering flags set at run time (what optimizing-compilers.ts relies on)", () => {
  it("optimizes nothing while held, and a hot function again once released", () => {
    const { whileHeld, afterRelease, baselineWhileHeld, baselineAfterRelease } = optimizedWhileHeldAndAfter("same");
    assert.equal(whileHeld, false, "optimized while the compilers were held");
    assert.equal(afterRelease, true, "not optimized after the release");
    assert.equal(baselineWhileHeld, false, "Sparkplug compiled while held");
    assert.equal(baselineAfterRelease, true, "no baseline code after the release");
  });

  it("is released by another instance of the module than the one that held it", () => {
    const { whileHeld, afterRelease } = optimizedWhileHeldAndAfter("other");
    assert.equal(whileHeld, false, "optimized while the compilers were held");
    assert.equal(afterRelease, true, "not optimized after another instance released them");
  });
});

describe("the hold in the first statements of bin/llm-gateway.js and bin/warm-caches.js", () => {
  const entries = ["../../bin/llm-gateway.js", "../../bin/warm-caches.js"].map(
    (path) => new URL(path, import.meta.url),
  );

  it("uses the same rule and the same flag on process as this module (their one copy, bin/entry-v8-flags.js, cannot import it)", () => {
    const text = readFileSync(new URL("../../bin/entry-v8-flags.js", import.meta.url), "utf8");
    assert.ok(text.includes(`${OWN_COMPILER_FLAG}.test(flag)`), "another own-flags rule");
    assert.ok(text.includes(`process[Symbol.for("${HELD.description}")] = true`), "another flag");
    for (const entry of entries) {
      const entryText = readFileSync(entry, "utf8");
      // Its first import, called before any other module is imported.
      assert.match(entryText, /^#!.*\n(\/\/.*\n)*import \{ setEntryV8Flags \} from "\.\/entry-v8-flags\.js";\n/);
      assert.ok(entryText.indexOf("setEntryV8Flags();") < entryText.indexOf("await import("), entry.pathname);
    }
  });

  it("holds the compilers before the entry loads any module of its own, unless the process brought its own flags", () => {
    // A module hook notes whether they were held when the entry's first own module (start-entry.js) was loaded:
    // holding them only in the start-up holds (after the bundle check) would read "undefined".
    const probe = `
      import { registerHooks } from "node:module";
      let heldAtFirstModule = "not loaded";
      registerHooks({
        load(url, context, next) {
          if (url.endsWith("/bin/start-entry.js")) heldAtFirstModule = String(process[Symbol.for("${HELD.description}")]);
          return next(url, context);
        },
      });
      process.on("exit", () => process.stderr.write("held:" + heldAtFirstModule));`;
    const run = (nodeArgs: readonly string[]): string => {
      const probeUrl = `data:text/javascript,${encodeURIComponent(probe)}`;
      const child = spawnSync(
        process.execPath,
        [...nodeArgs, "--import", probeUrl, "bin/llm-gateway.js", "--version"],
        {
          cwd: new URL("../../", import.meta.url),
          encoding: "utf8",
          env: { ...process.env, NODE_OPTIONS: "" },
        },
      );
      assert.equal(child.status, 0, child.stderr);
      return /held:(\w+)/.exec(child.stderr)?.[1] ?? "no probe output";
    };
    assert.equal(run([]), "true");
    // (V8's tiering flags are refused in NODE_OPTIONS; on the command line they are the process's own.)
    assert.equal(run(["--no-maglev"]), "undefined");
  });
});
