import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { bigCodeBenchSizeB, DEFAULT_BOARD_WEIGHTS, type LeaderboardSet, leaderboardQuality } from "./leaderboards.ts";
import { lookupModelMetadata, type ModelMetadataTable } from "./model-metadata.ts";
import { loadShippedScoringData, type ScoringDataPaths } from "./scoring-data-cache.ts";
import { LEADERBOARD_DIR, MODEL_METADATA_PATH } from "./scoring-sources.ts";

const work = mkdtempSync(join(tmpdir(), "scoring-data-cache-"));
after(() => rmSync(work, { recursive: true, force: true }));

/** A copy of the shipped data the test may edit, with a cache path of its own. */
function copyOfShippedData(name: string): ScoringDataPaths {
  const root = join(work, name);
  cpSync(LEADERBOARD_DIR, join(root, "leaderboards"), { recursive: true });
  cpSync(MODEL_METADATA_PATH, join(root, "model-metadata.json"));
  return {
    leaderboardDir: join(root, "leaderboards"),
    metadataPath: join(root, "model-metadata.json"),
    cachePath: join(root, "cache", "scoring-data.json"),
  };
}

/** Model ids to rank: every board row and every 7th table key, as providers would name them. */
function idsToRank(set: LeaderboardSet, table: ModelMetadataTable): string[] {
  const rowNames = [...set.boards.values()].flatMap((board) => board.rows.map((row) => row.name));
  const keys = [...table.byKey.keys()].filter((_key, position) => position % 7 === 0);
  return [...rowNames, ...keys, "llama-3.3-70b-versatile", "openai/gpt-oss-120b", "gemini-2.5-flash", "no-such-model"];
}

/** What the score reads for each id, and the ids ordered best first, as the router would rank them. */
function ranking(set: LeaderboardSet, table: ModelMetadataTable | undefined, ids: readonly string[]) {
  const terms = ids.map((id) => ({
    id,
    quality: leaderboardQuality(set, id, { weights: DEFAULT_BOARD_WEIGHTS }),
    sizeB: bigCodeBenchSizeB(set, id),
    metadata: table === undefined ? undefined : lookupModelMetadata(table, id, { provider: "groq" }),
  }));
  const order = [...terms]
    .sort((left, right) => (right.quality.value ?? -1) - (left.quality.value ?? -1) || left.id.localeCompare(right.id))
    .map((term) => term.id);
  return { terms, order };
}

describe("the scoring data cache", () => {
  it("gives the same boards, table and rankings from the compact file as from parsing the sources", async () => {
    const paths = copyOfShippedData("same");
    const parsed = loadShippedScoringData(paths);
    assert.equal(parsed.source, "rebuilt");
    const cached = loadShippedScoringData(paths);
    assert.equal(cached.source, "cached");

    assert.equal(cached.leaderboards.boards.size, 5);
    assert.ok(cached.metadata !== undefined && cached.metadata.byKey.size > 1_000);
    assert.deepStrictEqual(cached.leaderboards, parsed.leaderboards);
    assert.deepStrictEqual(cached.metadata, parsed.metadata);

    assert.ok(parsed.metadata !== undefined);
    const ids = idsToRank(parsed.leaderboards, parsed.metadata);
    const fromSources = ranking(parsed.leaderboards, parsed.metadata, ids);
    const fromCache = ranking(cached.leaderboards, cached.metadata, ids);
    assert.ok(fromSources.terms.filter((term) => term.quality.value !== undefined).length > 500);
    assert.deepStrictEqual(fromCache.terms, fromSources.terms);
    assert.deepStrictEqual(fromCache.order, fromSources.order);
  });

  it("rebuilds a stale file when a source changes, and uses the rebuilt one on the next start", async () => {
    const paths = copyOfShippedData("stale");
    assert.equal(loadShippedScoringData(paths).source, "rebuilt");
    const staleFile = readFileSync(paths.cachePath, "utf8");

    // LMArena's best row falls far behind: its normalised score changes, which only a re-parse can know.
    const csvPath = join(paths.leaderboardDir, "lmarena", "lmarena_text.csv");
    const [header, first, ...rest] = readFileSync(csvPath, "utf8").split("\n");
    if (header === undefined || first === undefined) throw new Error("the LMArena snapshot has no rows");
    const columns = header.split(",");
    const cells = first.split(",");
    const scoreColumn = columns.indexOf("arena_score");
    const modelColumn = columns.indexOf("model");
    const topModel = cells[modelColumn] ?? "";
    cells[scoreColumn] = "500";
    writeFileSync(csvPath, [header, cells.join(","), ...rest].join("\n"));

    const rebuilt = loadShippedScoringData(paths);
    assert.equal(rebuilt.source, "rebuilt");
    const row = rebuilt.leaderboards.boards.get("lmarena_text")?.rows.find((candidate) => candidate.name === topModel);
    assert.equal(row?.score, 500);
    assert.notEqual(readFileSync(paths.cachePath, "utf8"), staleFile);

    const next = loadShippedScoringData(paths);
    assert.equal(next.source, "cached");
    assert.deepStrictEqual(next.leaderboards, rebuilt.leaderboards);
  });

  it("trusts the recorded sizes and times of the sources, re-hashes them when only the times change", async () => {
    const paths = copyOfShippedData("stamps");
    // A whole-second time, which utimes sets exactly (what the test restores below).
    const whole = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);
    utimesSync(paths.metadataPath, whole, whole);
    assert.equal(loadShippedScoringData(paths).source, "rebuilt");
    const recorded = JSON.parse(readFileSync(paths.cachePath, "utf8")) as { stamps?: [string, number, number][] };
    assert.ok(
      recorded.stamps?.some(([path]) => path === paths.metadataPath),
      "the table's stamp is recorded",
    );

    // Same size and the old time restored: taken as unchanged without reading it (the documented blind spot), so
    // the fast path really does not read the sources.
    const boardPath = paths.metadataPath;
    const original = readFileSync(boardPath);
    writeFileSync(boardPath, Buffer.from(original).fill(0x20));
    utimesSync(boardPath, whole, whole);
    assert.equal(loadShippedScoringData(paths).source, "cached");

    // The same contents with a new time: hashed, found equal, the new time recorded.
    writeFileSync(boardPath, original);
    const later = new Date(whole.getTime() + 5_000);
    utimesSync(boardPath, later, later);
    assert.equal(loadShippedScoringData(paths).source, "cached");
    const restamped = JSON.parse(readFileSync(paths.cachePath, "utf8")) as { stamps: [string, number, number][] };
    assert.equal(restamped.stamps.find(([path]) => path === boardPath)?.[2], statSync(boardPath).mtimeMs);

    // Other contents with a new time: rebuilt.
    writeFileSync(boardPath, Buffer.concat([original, Buffer.from("\n")]));
    assert.equal(loadShippedScoringData(paths).source, "rebuilt");
  });

  it("ignores a broken or foreign file and rebuilds it", async () => {
    const paths = copyOfShippedData("broken");
    const reference = loadShippedScoringData(paths);
    for (const content of ["{not json", JSON.stringify({ version: 1, fingerprint: "0".repeat(64) }), "[]"]) {
      writeFileSync(paths.cachePath, content);
      const loaded = loadShippedScoringData(paths);
      assert.equal(loaded.source, "rebuilt");
      assert.deepStrictEqual(loaded.leaderboards, reference.leaderboards);
      assert.equal(loadShippedScoringData(paths).source, "cached");
    }
  });

  it("still loads when the cache cannot be written, and without the table when it is broken or missing", async () => {
    const paths = copyOfShippedData("unwritable");
    const blocked = { ...paths, cachePath: join(paths.metadataPath, "cannot", "be", "a", "folder.json") };
    const loaded = loadShippedScoringData(blocked);
    assert.equal(loaded.source, "rebuilt");
    assert.equal(loaded.leaderboards.boards.size, 5);

    writeFileSync(paths.metadataPath, "{ not json");
    const brokenTable = loadShippedScoringData(paths);
    assert.equal(brokenTable.metadata, undefined);
    assert.equal(brokenTable.leaderboards.boards.size, 5);

    rmSync(paths.metadataPath);
    const withoutTable = loadShippedScoringData(paths);
    assert.equal(withoutTable.metadata, undefined);
    assert.equal(withoutTable.leaderboards.boards.size, 5);
  });
});
