// What V8 is held to through start-up: bin/llm-gateway.js applies it right after the bundle check, and
// bin/warm-caches.js must apply exactly the same, in the same order, because V8 rejects code cached under other
// flags (test/e2e/start-caches.test.ts). Both hold the optimizing compilers earlier still, in their first
// statements (optimizing-compilers.ts says why), so that half is a no-op there. `serve` and `demo` let the young
// generation go once listening (young-generation.ts) and the compilers at the first request that is not a health check
// (optimizing-compilers.ts). WebAssembly is kept in its baseline tier from here on, for good (webassembly-tiers.ts):
// not a hold, but a flag change that must come at the same point for the same reason.
import { holdOptimizingCompilersDuringStartup } from "./optimizing-compilers.ts";
import { keepWebAssemblyInBaselineTier } from "./webassembly-tiers.ts";
import { holdYoungGenerationDuringStartup } from "./young-generation.ts";

export function holdV8DuringStartup(): void {
  holdYoungGenerationDuringStartup();
  holdOptimizingCompilersDuringStartup();
  keepWebAssemblyInBaselineTier();
}

/** For bin/warm-caches.js, which must release the compilers through the instance that held them. */
export { releaseOptimizingCompilers } from "./optimizing-compilers.ts";
