import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import {
  bigCodeBenchSizeB,
  DEFAULT_BOARD_WEIGHTS,
  type LeaderboardSet,
  leaderboardQuality,
  loadLeaderboards,
  parseAiderPolyglot,
  parseBigCodeBench,
  parseCsvRecords,
  parseLiveBench,
  parseLmArenaText,
} from "./leaderboards.ts";

const set = loadLeaderboards(fileURLToPath(new URL("../../data/leaderboards", import.meta.url)));

function close(actual: number | undefined, expected: number, message?: string): void {
  assert.ok(actual !== undefined && Math.abs(actual - expected) < 1e-9, message ?? `${actual} ≈ ${expected}`);
}

describe("parsers", () => {
  it("reads quoted CSV fields, doubled quotes and CRLF", () => {
    const records = parseCsvRecords('model,score\r\n"A, B",1\r\n"say ""hi""",2\r\n\r\n');
    assert.deepEqual(records, [
      { model: "A, B", score: "1" },
      { model: 'say "hi"', score: "2" },
    ]);
  });

  it("normalises LMArena as twice the expected win rate against the board's best", () => {
    const board = parseLmArenaText("rank,model,arena_score,url\n1,Top,1400,\n2,Mid,1200,\n3,Low,1000,\n");
    const byName = Object.fromEntries(board.rows.map((row) => [row.name, row.normalised]));
    close(byName.Top, 1);
    close(byName.Mid, 2 / (1 + 10 ** 0.5));
    close(byName.Low, 2 / 11);
  });

  it("averages LiveBench tasks per category, then categories, skipping missing tasks", () => {
    const categories = JSON.stringify({ Coding: ["a", "b"], Language: ["c"] });
    const board = parseLiveBench("model,a,b,c\nfull,40,60,80\nmissing,50,,\nlow,0,0,10\n", categories);
    const scores = Object.fromEntries(board.rows.map((row) => [row.name, row.score]));
    // full: (mean(40, 60) + 80) / 2; missing: only Coding has a value, so its average is Coding's.
    assert.deepEqual(scores, { full: 65, missing: 50, low: 5 });
    close(board.rows.find((row) => row.name === "missing")?.normalised, 50 / 65);
  });

  it("scores BigCodeBench instruct first, as a share of the best score of the same split", () => {
    const json = JSON.stringify({
      A: { "pass@1": { instruct: 50, complete: 60 }, size: 7 },
      B: { "pass@1": { instruct: 30, complete: 40 }, size: null },
      C: { "pass@1": { instruct: null, complete: 50 } },
      D: { "pass@1": { instruct: null, complete: null }, size: 70 },
    });
    const board = parseBigCodeBench(json, "bigcodebench_full");
    const byName = Object.fromEntries(board.rows.map((row) => [row.name, row]));
    assert.deepEqual(Object.keys(byName).sort(), ["A", "B", "C"]);
    assert.equal(byName.A?.normalised, 1);
    close(byName.B?.normalised, 30 / 50);
    // C has only a complete score: compared with the best complete score (60), not the best instruct one.
    assert.equal(byName.C?.score, 50);
    close(byName.C?.normalised, 50 / 60);
  });

  it("drops Aider architect/editor pairs and keeps the run's --model as an alias", () => {
    const board = parseAiderPolyglot(`
- model: o3 (high) + gpt-4.1
  pass_rate_2: 82.7
  command: aider --model o3 --architect
- model: Codestral 25.01
  pass_rate_2: 11.1
  command: aider --model mistral/codestral-latest
- model: Qwen3 235B A22B diff, no think, Alibaba API
  pass_rate_2: 59.6
  command: aider --model openai/qwen3-235b-a22b
`);
    assert.deepEqual(
      board.rows.map((row) => row.name),
      ["Codestral 25.01", "Qwen3 235B A22B diff, no think, Alibaba API"],
    );
    assert.deepEqual(board.rows[0]?.aliases, ["mistral/codestral-latest"]);
    assert.equal(board.rows[1]?.matchName, "Qwen3 235B A22B, no think, Alibaba API");
  });
});

describe("the shipped snapshots", () => {
  it("load every board with scores in 0..1", () => {
    const counts = Object.fromEntries([...set.boards].map(([name, board]) => [name, board.rows.length]));
    // BigCodeBench: the 202 models less those with neither an instruct nor a complete score. Aider: 69 runs less
    // 3 architect/editor pairs.
    assert.deepEqual(counts, {
      bigcodebench_full: 156,
      bigcodebench_hard: 202,
      aider_polyglot: 66,
      lmarena_text: 266,
      livebench: 127,
    });
    for (const board of set.boards.values()) {
      assert.ok(
        board.rows.every((row) => row.normalised >= 0 && row.normalised <= 1),
        board.name,
      );
      assert.ok(
        board.rows.some((row) => row.normalised === 1),
        board.name,
      );
    }
  });

  it("puts the top LMArena model at 1", () => {
    const top = set.boards.get("lmarena_text")?.rows.find((row) => row.name === "Gemini-2.5-Pro");
    assert.equal(top?.score, 1470);
    assert.equal(top?.normalised, 1);
  });
});

describe("leaderboardQuality", () => {
  it("is the weighted mean over the boards that matched", () => {
    const quality = leaderboardQuality(set, "llama-3.3-70b-versatile", { weights: DEFAULT_BOARD_WEIGHTS });
    assert.deepEqual(
      quality.matches.map((match) => [match.board, match.row]),
      [
        ["bigcodebench_full", "Llama-3.3-70B-Instruct"],
        ["bigcodebench_hard", "Llama-3.3-70B-Instruct"],
        ["lmarena_text", "Llama-3.3-70B-Instruct"],
      ],
    );
    const [full, hard, arena] = quality.matches.map((match) => match.normalised);
    assert.ok(full !== undefined && hard !== undefined && arena !== undefined);
    close(quality.value, (0.25 * full + 0.25 * hard + 1 * arena) / 1.5);
  });

  it("consults only boards with a positive weight", () => {
    const quality = leaderboardQuality(set, "llama-3.3-70b-versatile", { weights: { lmarena_text: 1, livebench: 0 } });
    assert.deepEqual(
      quality.matches.map((match) => match.board),
      ["lmarena_text"],
    );
    assert.equal(quality.value, quality.matches[0]?.normalised);
  });

  it("is undefined when no board knows the model", () => {
    const quality = leaderboardQuality(set, "acme/unheard-of-13b", { weights: DEFAULT_BOARD_WEIGHTS });
    assert.deepEqual(quality, { value: undefined, matches: [] });
  });

  it("matches leaderboard_name instead of the id when given", () => {
    const quality = leaderboardQuality(set, "my-private-deployment", {
      leaderboardName: "Mistral-Small-3.1-24B-Instruct-2503",
      weights: { lmarena_text: 1 },
    });
    assert.equal(quality.matches[0]?.row, "Mistral-Small-3.1-24B-Instruct-2503");
  });

  it("ranks a stronger model above a weaker sibling", () => {
    const value = (id: string): number => leaderboardQuality(set, id, { weights: DEFAULT_BOARD_WEIGHTS }).value ?? 0;
    assert.ok(value("llama-3.3-70b") > value("llama-3.1-8b"));
    assert.ok(value("gpt-4o") > value("gpt-4o-mini"));
  });
});

describe("bigCodeBenchSizeB", () => {
  const sizeOf = (id: string, board: LeaderboardSet = set): number | undefined => bigCodeBenchSizeB(board, id);
  it("reads total parameters of the matched row", () => {
    assert.equal(sizeOf("deepseek-ai/deepseek-r1"), 671);
    assert.equal(sizeOf("meta-llama/llama-4-scout-17b-16e-instruct"), 109);
    assert.equal(sizeOf("llama-3.3-70b-versatile"), 70);
    assert.equal(sizeOf("gpt-4o"), undefined);
  });
});
