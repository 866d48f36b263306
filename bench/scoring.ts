// Scoring cost per request for 500 candidates. The router's per-request work is: look up each candidate's
// precomputed static score in a per-model cache, add its live health, and order the candidates. Building the
// cache (leaderboard matching, metadata, adjustments) happens once per catalog and is timed separately.
// Run: node bench/scoring.ts   (prints µs per request; target < 50 µs for 500 candidates)
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { ManualClock } from "../src/clock.ts";
import { loadAdjustments } from "../src/scoring/adjustments.ts";
import { HealthTracker } from "../src/scoring/health.ts";
import { DEFAULT_BOARD_WEIGHTS, loadLeaderboards } from "../src/scoring/leaderboards.ts";
import { loadModelMetadata } from "../src/scoring/model-metadata.ts";
import { profileModel, type ScoringSources, staticScoreFor } from "../src/scoring/model-profile.ts";
import { DEFAULT_SCORING_WEIGHTS, type StaticScore, scoreWithHealth } from "../src/scoring/score.ts";

const CANDIDATES = 500;
const WARMUP_REQUESTS = 2_000;
const REQUESTS = 20_000;
const TARGET_US = 50;

const root = new URL("../", import.meta.url);
const weights = DEFAULT_SCORING_WEIGHTS;

const loadStartedAt = performance.now();
const sources: ScoringSources = {
  leaderboards: await loadLeaderboards(fileURLToPath(new URL("data/leaderboards", root))),
  metadata: await loadModelMetadata(
    fileURLToPath(new URL("data/model-metadata/model_prices_and_context_window.json", root)),
  ),
  adjustments: loadAdjustments(
    await readFile(new URL("config/model-adjustments.yaml", root), "utf8"),
    "model-adjustments.yaml",
  ),
  boardWeights: DEFAULT_BOARD_WEIGHTS,
};
const loadMs = performance.now() - loadStartedAt;

// Real provider/model pairs: the chat entries of the LiteLLM table under free-tier providers' prefixes.
const metadataKeys = [...(sources.metadata?.byKey.keys() ?? [])];
const providers = [
  "groq",
  "cerebras",
  "gemini",
  "mistral",
  "openrouter",
  "cloudflare",
  "together_ai",
  "fireworks_ai",
  "deepinfra",
  "sambanova",
  "nvidia_nim",
];
const pairs: Array<{ provider: string; modelId: string }> = [];
for (const key of metadataKeys) {
  const slash = key.indexOf("/");
  const provider = key.slice(0, slash);
  if (slash < 0 || !providers.includes(provider)) continue;
  pairs.push({ provider, modelId: key.slice(slash + 1) });
  if (pairs.length === CANDIDATES) break;
}
while (pairs.length < CANDIDATES) pairs.push({ provider: "synthetic", modelId: `synthetic-model-${pairs.length}-8b` });

// Once per catalog: the per-model cache the router keeps.
const cacheStartedAt = performance.now();
const staticScores = new Map<string, StaticScore>();
for (const { provider, modelId } of pairs) {
  const profile = profileModel(sources, provider, modelId);
  staticScores.set(`${provider}\u0000${modelId}`, staticScoreFor(profile, { basePriority: 1, priority: 0 }, weights));
}
const cacheMs = performance.now() - cacheStartedAt;

// Live health: every candidate has a tracker; most have seen traffic.
const clock = new ManualClock();
const candidates = pairs.map(({ provider, modelId }, position) => {
  const health = new HealthTracker(clock);
  for (let attempt = 0; attempt < position % 7; attempt++) health.record(attempt % 5 !== 0, 400 + 37 * attempt);
  return { key: `${provider}\u0000${modelId}`, health };
});

const scores = new Float64Array(CANDIDATES);
const order = Array.from({ length: CANDIDATES }, (_, position) => position);
let checksum = 0;

function routeOnce(): void {
  for (let position = 0; position < CANDIDATES; position++) {
    const candidate = candidates[position];
    const staticScore = candidate === undefined ? undefined : staticScores.get(candidate.key);
    if (candidate === undefined || staticScore === undefined) throw new Error("cache miss");
    scores[position] = scoreWithHealth(staticScore, candidate.health.snapshot(), weights);
  }
  order.sort((left, right) => (scores[right] ?? 0) - (scores[left] ?? 0));
  checksum += order[0] ?? 0;
}

for (let request = 0; request < WARMUP_REQUESTS; request++) routeOnce();
const startedAt = performance.now();
for (let request = 0; request < REQUESTS; request++) {
  if (request % 1000 === 0) clock.advance(1000);
  routeOnce();
}
const perRequestUs = ((performance.now() - startedAt) * 1000) / REQUESTS;

console.log(`loaded leaderboards + metadata + adjustments: ${loadMs.toFixed(1)} ms (once at startup)`);
console.log(`built static scores for ${CANDIDATES} candidates: ${cacheMs.toFixed(1)} ms (once per catalog)`);
console.log(
  `scored and ordered ${CANDIDATES} candidates: ${perRequestUs.toFixed(1)} µs per request ` +
    `(target < ${TARGET_US} µs) ${perRequestUs < TARGET_US ? "OK" : "OVER TARGET"} [checksum ${checksum}]`,
);
