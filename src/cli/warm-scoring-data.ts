// bin/warm-caches.js: parse and index the shipped scoring data once and keep it in data/cache/, from the same code a
// start runs (the sources or the bundle, where this is an entry of its own).
import { loadShippedScoringData } from "../scoring/scoring-data-cache.ts";
import { LEADERBOARD_DIR, MODEL_METADATA_PATH, SCORING_DATA_CACHE_PATH } from "../scoring/scoring-sources.ts";

/** Loads (or rebuilds and writes) data/cache/scoring-data.json; says what it did. */
export function warmScoringData(): string {
  const loaded = loadShippedScoringData({
    leaderboardDir: LEADERBOARD_DIR,
    metadataPath: MODEL_METADATA_PATH,
    cachePath: SCORING_DATA_CACHE_PATH,
  });
  return `scoring data ${loaded.source}, ${loaded.leaderboards.boards.size} leaderboards`;
}
