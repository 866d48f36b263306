// What V8 is held to through start-up, in one place: bin/llm-gateway.js applies it before anything else loads, and
// bin/warm-caches.js must apply exactly the same, in the same order, because V8 rejects code cached under other
// flags (test/e2e/start-caches.test.ts). `serve` and `demo` let go once listening (young-generation.ts,
// optimizing-compilers.ts).
import { holdOptimizingCompilersDuringStartup } from "./optimizing-compilers.ts";
import { holdYoungGenerationDuringStartup } from "./young-generation.ts";

export function holdV8DuringStartup(): void {
  holdYoungGenerationDuringStartup();
  holdOptimizingCompilersDuringStartup();
}

/** For bin/warm-caches.js, which must release the compilers through the instance that held them. */
export { releaseOptimizingCompilers } from "./optimizing-compilers.ts";
