#!/usr/bin/env node
// Fills the caches a start reads, so that the first start is as fast as any later one: Node's compile cache for
// every module `serve` loads (type-stripped and compiled once), and the parsed scoring data
// (data/cache/scoring-data.json). Run by the Dockerfile at build time; harmless to run again (both are keyed by
// content, so a stale entry is replaced, never used).
const { enableCompileCache, flushCompileCache } = await import("node:module");
enableCompileCache?.();
// V8 rejects code cached under other flags: compile each module under the flags bin/llm-gateway.js has set when
// it loads that module (the same start-up holds, from the same module).
const { holdV8DuringStartup } = await import("../src/cli/start-up-holds.ts");
holdV8DuringStartup();
await import("../src/cli/serve.ts");
// Loaded at the first /metrics scrape, not at start: compiled here so that scrape is not the slow one, under the
// flags a scrape finds (compilers released, the new space growing again: V8's defaults).
const { releaseOptimizingCompilers } = await import("../src/cli/optimizing-compilers.ts");
releaseOptimizingCompilers();
(await import("node:v8")).setFlagsFromString("--semi-space-growth-factor=2");
await import("prom-client");
const { loadShippedScoringData } = await import("../src/scoring/scoring-data-cache.ts");
const paths = await import("../src/scoring/scoring-sources.ts");
const loaded = await loadShippedScoringData({
  leaderboardDir: paths.LEADERBOARD_DIR,
  metadataPath: paths.MODEL_METADATA_PATH,
  cachePath: paths.SCORING_DATA_CACHE_PATH,
});
flushCompileCache?.();
process.stdout.write(`caches warm: scoring data ${loaded.source}, ${loaded.leaderboards.boards.size} leaderboards\n`);
