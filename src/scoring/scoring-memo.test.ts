import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { DEFAULT_BOARD_WEIGHTS, type LeaderboardSet, loadLeaderboards } from "./leaderboards.ts";
import { loadModelMetadata, type ModelMetadataTable } from "./model-metadata.ts";
import { type ModelProfile, profileModel, type ScoringSources, withQualityPriors } from "./model-profile.ts";
import type { FileStamp } from "./scoring-data-cache.ts";
import { MAX_FILE_CHARS, MAX_READ_BYTES, ScoringMemo } from "./scoring-memo.ts";
import { LEADERBOARD_DIR, MODEL_METADATA_PATH } from "./scoring-sources.ts";

const work = mkdtempSync(join(tmpdir(), "scoring-memo-"));
after(() => rmSync(work, { recursive: true, force: true }));

const leaderboards = loadLeaderboards(LEADERBOARD_DIR);
const metadata = await loadModelMetadata(MODEL_METADATA_PATH);
const stamps: FileStamp[] = [["/data/board.csv", 100, 1_700_000_000_000]];
const DAY_MS = 86_400_000;
const NOW_MS = Date.UTC(2026, 11, 4);

/** Sources over the shipped data that count how often the data is read, or fail when it must not be. */
function sourcesWith(memo: ScoringMemo | undefined, data: "readable" | "forbidden") {
  const reads = { count: 0 };
  const read = <T>(value: T): T => {
    if (data === "forbidden") throw new Error("the shipped data was read");
    reads.count += 1;
    return value;
  };
  const sources: ScoringSources = {
    get leaderboards(): LeaderboardSet {
      return read(leaderboards);
    },
    get metadata(): ModelMetadataTable {
      return read(metadata);
    },
    adjustments: [],
    boardWeights: DEFAULT_BOARD_WEIGHTS,
    memo,
  };
  return { sources, reads };
}

/** A catalog's worth of profiles: known models, a leaderboard name, unknown chat models (one dated), an embedding. */
function profilesOf(sources: ScoringSources, nowMs: number, extra: readonly [string, string][] = []): ModelProfile[] {
  const models: [string, string, { leaderboardName?: string; paramsB?: number }?][] = [
    ["groq", "llama-3.3-70b-versatile"],
    ["groq", "openai/gpt-oss-120b"],
    ["mistral", "my-alias", { leaderboardName: "Qwen2.5-Coder-32B-Instruct" }],
    ["groq", "acme-chat-8b"],
    ["mistral", "acme-chat-2025-01-15"],
    ["nvidia", "nvidia/nv-embed-v1"],
    ...extra,
  ];
  const profiles = models.map(([provider, model, overrides]) => profileModel(sources, provider, model, overrides));
  return withQualityPriors(profiles, sources, nowMs);
}

describe("the scoring memo", () => {
  it("builds the same profiles from the file without reading the data, with today's age discount", () => {
    const path = join(work, "same.json");
    const first = sourcesWith(ScoringMemo.open(path, stamps), "readable");
    const computed = profilesOf(first.sources, NOW_MS);
    assert.ok(first.reads.count > 0);
    first.sources.memo?.persist();

    const later = NOW_MS + 400 * DAY_MS;
    const fromFile = profilesOf(sourcesWith(ScoringMemo.open(path, stamps), "forbidden").sources, later);
    // The file's profiles are those a start without it builds, down to the absent `undefined` properties...
    const withoutFile = profilesOf(
      sourcesWith(ScoringMemo.open(join(work, "none.json"), stamps), "readable").sources,
      later,
    );
    assert.deepStrictEqual(fromFile, withoutFile);
    // ...and hold what the lookups give without a memo at all.
    const withoutMemo = profilesOf(sourcesWith(undefined, "readable").sources, later);
    assert.deepStrictEqual(JSON.parse(JSON.stringify(fromFile)), JSON.parse(JSON.stringify(withoutMemo)));
    // The known models kept their leaderboard matches; the unknown chat models got priors; the embedding none.
    assert.ok((fromFile[0]?.leaderboard.value ?? 0) > 0);
    assert.ok(fromFile[2]?.leaderboard.matches.some((match) => /qwen2\.5-coder-32b/i.test(match.row)));
    assert.ok(fromFile[3]?.prior !== undefined && fromFile[4]?.prior !== undefined);
    assert.equal(fromFile[5]?.prior, undefined);
    // The age discount moves with the clock, not with the file: a dated id (2025-01) loses more 400 days later.
    const dated = (profiles: readonly ModelProfile[]) => profiles[4]?.prior?.value ?? Number.NaN;
    assert.ok(dated(fromFile) < dated(computed));
    assert.ok(fromFile[4]?.prior?.basis.some((line) => line.includes("for age")));
  });

  it("keeps a snapshot's results the same whether they came from the file or were computed", () => {
    const path = join(work, "shapes.json");
    const memo = ScoringMemo.open(path, stamps);
    const computed = memo.remember(["shape"], () => ({ value: undefined, list: [1, 2] }));
    memo.persist();
    const stored = ScoringMemo.open(path, stamps).remember(["shape"], () => assert.fail("not from the file"));
    assert.deepStrictEqual(computed, { list: [1, 2] });
    assert.deepStrictEqual(stored, computed);
    // An undefined result is kept as such.
    const none = ScoringMemo.open(path, stamps);
    assert.equal(
      none.remember(["none"], () => undefined),
      undefined,
    );
    none.persist();
    assert.equal(
      ScoringMemo.open(path, stamps).remember(["none"], () => assert.fail("not from the file")),
      undefined,
    );
  });

  it("recomputes what the file does not hold: another model, another population, other weights", () => {
    const path = join(work, "misses.json");
    const first = sourcesWith(ScoringMemo.open(path, stamps), "readable");
    profilesOf(first.sources, NOW_MS);
    first.sources.memo?.persist();

    // A new unknown model: its profile and prior are computed from the data, the others still come from the file.
    const withNewModel = sourcesWith(ScoringMemo.open(path, stamps), "readable");
    const profiles = profilesOf(withNewModel.sources, NOW_MS, [["groq", "another-unknown-model"]]);
    assert.ok(withNewModel.reads.count > 0);
    assert.ok(profiles[6]?.prior !== undefined);

    // One more measured deployment changes every prior's population: the priors are estimated again.
    const second = sourcesWith(ScoringMemo.open(path, stamps), "readable");
    profilesOf(second.sources, NOW_MS, [["cerebras", "qwen-3-32b"]]);
    second.sources.memo?.persist();
    const reopened = sourcesWith(ScoringMemo.open(path, stamps), "readable");
    const expected = profilesOf(sourcesWith(undefined, "readable").sources, NOW_MS, [["cerebras", "qwen-3-32b"]]);
    assert.deepStrictEqual(
      JSON.parse(JSON.stringify(profilesOf(reopened.sources, NOW_MS, [["cerebras", "qwen-3-32b"]]))),
      JSON.parse(JSON.stringify(expected)),
    );
    assert.equal(reopened.reads.count, 0);

    // Other board weights: other keys.
    const weighted = sourcesWith(ScoringMemo.open(path, stamps), "readable");
    profileModel({ ...weighted.sources, boardWeights: { lmarena_text: 1 } }, "groq", "llama-3.3-70b-versatile");
    assert.ok(weighted.reads.count > 0);
  });

  it("trusts the file only under the stamps it was written with, and never fails a start over it", () => {
    const path = join(work, "stamps.json");
    const memo = ScoringMemo.open(path, stamps);
    memo.remember(["key"], () => 1);
    memo.persist();
    assert.equal(
      ScoringMemo.open(path, stamps).remember(["key"], () => 2),
      1,
    );
    const touched: FileStamp[] = [["/data/board.csv", 100, 1_700_000_000_001]];
    assert.equal(
      ScoringMemo.open(path, touched).remember(["key"], () => 2),
      2,
    );
    // No stamps (a data file is missing): memoised in the process only, nothing written.
    const unstamped = join(work, "unstamped.json");
    const inProcess = ScoringMemo.open(unstamped, undefined);
    inProcess.remember(["key"], () => 3);
    inProcess.persist();
    assert.throws(() => readFileSync(unstamped));
    // A broken file is an empty memo; a folder that cannot be written costs the file, not the start.
    writeFileSync(path, "{not json");
    assert.equal(
      ScoringMemo.open(path, stamps).remember(["key"], () => 4),
      4,
    );
    const blocked = join(work, "file-not-folder");
    writeFileSync(blocked, "");
    const unwritable = ScoringMemo.open(join(blocked, "memo.json"), stamps);
    assert.equal(
      unwritable.remember(["key"], () => 5),
      5,
    );
    assert.doesNotThrow(() => unwritable.persist());
  });

  it("takes an entry of the wrong shape (a corrupted or hostile file under the right stamps) as a miss: never a throw, never its value in a score", () => {
    const path = join(work, "shapes-wrong.json");
    const first = sourcesWith(ScoringMemo.open(path, stamps), "readable");
    profilesOf(first.sources, NOW_MS);
    first.sources.memo?.persist();
    const good = JSON.parse(readFileSync(path, "utf8")) as { entries: Record<string, unknown> };
    const expected = JSON.parse(JSON.stringify(profilesOf(sourcesWith(undefined, "readable").sources, NOW_MS)));
    const profileKey = Object.keys(good.entries).find((key) => key.startsWith('["profile","groq","llama-3.3-70b'));
    const priorKey = Object.keys(good.entries).find((key) => key.startsWith('["prior","groq","acme-chat-8b"'));
    assert.ok(profileKey !== undefined && priorKey !== undefined);
    const known = good.entries[profileKey] as { leaderboard: { matches: object[] } };
    const wrongProfiles: unknown[] = [
      null,
      "garbage",
      7,
      [],
      { leaderboard: null },
      { ...known, leaderboard: { value: "0.9", matches: known.leaderboard.matches } },
      { ...known, leaderboard: { value: 50, matches: known.leaderboard.matches } },
      { ...known, leaderboard: { value: 0.5, matches: [null] } },
      { ...known, metadata: { key: 1 } },
      { ...known, bigCodeBenchSizeB: "70" },
    ];
    const wrongPriors: unknown[] = [
      "garbage",
      { value: 0.5 },
      { value: 0.5, basis: "x", cap: 0.5 },
      { value: 9, basis: [], cap: 9 },
    ];
    const cases = [
      ...wrongProfiles.map((value) => [profileKey, value] as const),
      ...wrongPriors.map((value) => [priorKey, value] as const),
    ];
    for (const [key, value] of cases) {
      writeFileSync(path, JSON.stringify({ ...good, entries: { ...good.entries, [key]: value } }));
      const start = sourcesWith(ScoringMemo.open(path, stamps), "readable");
      const profiles = profilesOf(start.sources, NOW_MS);
      assert.deepStrictEqual(JSON.parse(JSON.stringify(profiles)), expected, `${key} = ${JSON.stringify(value)}`);
      // Recomputed, and the file repaired by the start that did.
      start.sources.memo?.persist();
      assert.deepStrictEqual(
        (JSON.parse(readFileSync(path, "utf8")) as { entries: Record<string, unknown> }).entries[key],
        good.entries[key],
      );
    }
  });

  it("does not read a file larger than MAX_READ_BYTES (a runaway or hostile file: seconds and hundreds of MB per start, or a heap-limit crash): a miss", () => {
    const path = join(work, "huge.json");
    const memo = ScoringMemo.open(path, stamps);
    memo.remember(["key"], () => 1);
    memo.persist();
    const file = JSON.parse(readFileSync(path, "utf8")) as { entries: Record<string, unknown> };
    // The same valid file, its entry still there, padded past the bound with entries of no lookup.
    const padding = "p".repeat(1_000);
    for (let entry = 0; (entry - 1) * padding.length < MAX_READ_BYTES; entry += 1)
      file.entries[`pad ${entry}`] = padding;
    writeFileSync(path, JSON.stringify(file));
    assert.ok(statSync(path).size > MAX_READ_BYTES);
    const huge = ScoringMemo.open(path, stamps);
    assert.equal(
      huge.remember(["key"], () => 2),
      2,
    );
    // Its write (read again at the write: not this time) brings the file back within the bound.
    huge.persist();
    assert.ok(statSync(path).size < MAX_FILE_CHARS);
    assert.equal(
      ScoringMemo.open(path, stamps).remember(["key"], () => 3),
      2,
    );
  });

  it("keeps several configs: after A's start and then B's, the next starts of A and of B read no data", () => {
    const path = join(work, "configs.json");
    // B: two more models, one of them measured on a board, so that every prior of B has another population.
    const configB: [string, string][] = [
      ["cerebras", "qwen-3-32b"],
      ["groq", "another-unknown-model"],
    ];
    const startA = sourcesWith(ScoringMemo.open(path, stamps), "readable");
    profilesOf(startA.sources, NOW_MS);
    startA.sources.memo?.persist();
    const startB = sourcesWith(ScoringMemo.open(path, stamps), "readable");
    profilesOf(startB.sources, NOW_MS, configB);
    assert.ok(startB.reads.count > 0, "B's start computed its own entries");
    startB.sources.memo?.persist();

    // A hit opens no data at all ("forbidden" throws at the first read), and does not write the file again.
    const written = statSync(path).mtimeMs;
    const againA = sourcesWith(ScoringMemo.open(path, stamps), "forbidden");
    profilesOf(againA.sources, NOW_MS);
    againA.sources.memo?.persist();
    const againB = sourcesWith(ScoringMemo.open(path, stamps), "forbidden");
    profilesOf(againB.sources, NOW_MS, configB);
    againB.sources.memo?.persist();
    assert.equal(statSync(path).mtimeMs, written);
    // Newest first: B's entries, then A's that B did not use (the dated model's prior under A's population).
    const keys = Object.keys(JSON.parse(readFileSync(path, "utf8")).entries as object);
    const priors = keys.filter((key) => key.startsWith('["prior","mistral","acme-chat-2025-01-15"'));
    assert.equal(priors.length, 2, "the dated model's prior under A's population and under B's");
    assert.equal(keys.at(-1), priors[1]);
  });

  it("stays within its bound, dropping the oldest configs' entries first, and always keeps this start's", () => {
    const path = join(work, "bound.json");
    const value = { basis: ["x".repeat(400)] };
    const entryChars = JSON.stringify(JSON.stringify(["config", 0, 0])).length + JSON.stringify(value).length + 2;
    const perFile = Math.floor(MAX_FILE_CHARS / entryChars);
    // Configs of 4 entries each, started in turn until the file has held twice what it may.
    const configs = Math.ceil((2 * perFile) / 4);
    for (let config = 0; config < configs; config += 1) {
      const memo = ScoringMemo.open(path, stamps);
      for (let entry = 0; entry < 4; entry += 1) memo.remember(["config", config, entry], () => value);
      memo.persist();
    }
    const entriesOf = () => Object.keys(JSON.parse(readFileSync(path, "utf8")).entries as object);
    const entries = entriesOf();
    assert.ok(entries.length <= perFile && entries.length >= perFile - 4, `${entries.length} of ${perFile}`);
    assert.ok(statSync(path).size < MAX_FILE_CHARS + 4_096, `${statSync(path).size} bytes`);
    // The newest first; the first configs gone.
    assert.equal(entries[0], JSON.stringify(["config", configs - 1, 0]));
    assert.ok(!entries.includes(JSON.stringify(["config", 0, 0])));
    // A config larger than the bound is written whole, alone.
    const large = ScoringMemo.open(path, stamps);
    for (let entry = 0; entry < perFile + 10; entry += 1) large.remember(["large", entry], () => value);
    large.persist();
    const kept = entriesOf();
    assert.equal(kept.length, perFile + 10);
    assert.ok(kept.every((key) => key.startsWith('["large"')));
  });

  it("a long-running process's reloads: each writes its own entries whole, earlier snapshots' only within the bound", () => {
    const path = join(work, "reloads.json");
    const value = { basis: ["x".repeat(400)] };
    const entryChars = JSON.stringify(JSON.stringify(["reload", 0, 0])).length + JSON.stringify(value).length + 2;
    const perSnapshot = Math.ceil(MAX_FILE_CHARS / entryChars / 2);
    const memo = ScoringMemo.open(path, stamps);
    const entriesOf = () => Object.keys(JSON.parse(readFileSync(path, "utf8")).entries as object);
    // Eight reloads, each with models of its own (discovered lists that changed): until 2026-12-08 every entry used
    // since start was "this start's", written whatever the size, so the file grew by a snapshot's entries each time.
    for (let reload = 0; reload < 8; reload += 1) {
      for (let entry = 0; entry < perSnapshot; entry += 1) memo.remember(["reload", reload, entry], () => value);
      memo.persist();
    }
    const entries = entriesOf();
    assert.ok(statSync(path).size < 2 * MAX_FILE_CHARS + 4_096, `${statSync(path).size} bytes`);
    assert.equal(entries[0], JSON.stringify(["reload", 7, 0]), "the current snapshot's entries first");
    assert.ok(!entries.includes(JSON.stringify(["reload", 0, 0])), "the first snapshot's entries still written");
    // A reload with the last snapshot's models again computes nothing and writes nothing.
    rmSync(path);
    let computed = 0;
    for (let entry = 0; entry < perSnapshot; entry += 1) {
      memo.remember(["reload", 7, entry], () => {
        computed += 1;
        return value;
      });
    }
    memo.persist();
    assert.equal(computed, 0);
    assert.throws(() => statSync(path), /ENOENT/);
  });

  it("keeps what another process wrote since it opened the file, and two writers at once never leave a torn file", async () => {
    const path = join(work, "writers.json");
    const first = ScoringMemo.open(path, stamps);
    const second = ScoringMemo.open(path, stamps);
    first.remember(["first"], () => 1);
    second.remember(["second"], () => 2);
    first.persist();
    second.persist();
    const reopened = ScoringMemo.open(path, stamps);
    assert.equal(
      reopened.remember(["first"], () => assert.fail("first's entry lost")),
      1,
    );
    assert.equal(
      reopened.remember(["second"], () => assert.fail("second's entry lost")),
      2,
    );

    // Two processes persisting in a loop (each a new entry every time) while this one reads the file.
    const script = `import { ScoringMemo } from ${JSON.stringify(new URL("./scoring-memo.ts", import.meta.url).href)};
      for (let round = 0; round < 150; round += 1) {
        const memo = ScoringMemo.open(process.argv[1], ${JSON.stringify(stamps)});
        memo.remember([process.pid, round], () => ({ text: "y".repeat(2000) }));
        memo.persist();
      }`;
    const writers = [0, 1].map(() =>
      spawn(process.execPath, ["--input-type=module", "-e", script, path], { stdio: "inherit" }),
    );
    const exits = Promise.all(writers.map((child) => once(child, "exit")));
    let isDone = false;
    void exits.then(() => {
      isDone = true;
    });
    let reads = 0;
    while (!isDone) {
      const file = JSON.parse(readFileSync(path, "utf8")) as { entries: object };
      assert.ok(Object.keys(file.entries).length > 0);
      reads += 1;
      await new Promise((resolve) => setImmediate(resolve));
    }
    for (const [code] of await exits) assert.equal(code, 0);
    assert.ok(reads > 0);
    // The last rename wins: the file holds its writer's last entry.
    const keys = Object.keys(JSON.parse(readFileSync(path, "utf8")).entries as object);
    assert.ok(writers.some((child) => keys.includes(JSON.stringify([child.pid, 149]))));
  });
});
