import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { type BoardName, loadLeaderboards } from "./leaderboards.ts";
import { buildNameIndex, isDateToken, matchName, parseModelName } from "./name-match.ts";

const boards = loadLeaderboards(fileURLToPath(new URL("../../data/leaderboards", import.meta.url)));

/**
 * Real provider ids and the row each must match on a board of the shipped snapshots, or `null` when it must
 * match nothing there (the row a naive matcher would pick is in the note). Several rows are joined with " | ".
 */
const TABLE: ReadonlyArray<readonly [providerId: string, board: BoardName, expected: string | null, note?: string]> = [
  // Groq
  ["llama-3.3-70b-versatile", "lmarena_text", "Llama-3.3-70B-Instruct"],
  ["llama-3.3-70b-versatile", "bigcodebench_hard", "Llama-3.3-70B-Instruct"],
  ["llama-3.1-8b-instant", "lmarena_text", "Meta-Llama-3.1-8B-Instruct", "not Meta-Llama-3.1-70B-Instruct"],
  ["qwen/qwen3-32b", "lmarena_text", "Qwen3-32B"],
  ["qwen/qwen3-32b", "livebench", null, "not qwen3-32b-thinking"],
  ["moonshotai/kimi-k2-instruct", "livebench", "kimi-k2-instruct", "not kimi-k2-thinking"],
  ["moonshotai/kimi-k2-instruct", "lmarena_text", "kimi-k2-0711-preview"],
  ["moonshotai/kimi-k2-instruct-0905", "livebench", null, "a dated snapshot: not the 0711 kimi-k2-instruct"],
  ["openai/gpt-oss-120b", "livebench", "gpt-oss-120b"],
  ["openai/gpt-oss-20b", "livebench", null, "not gpt-oss-120b"],
  ["meta-llama/llama-4-scout-17b-16e-instruct", "lmarena_text", "Llama-4-Scout-17B-16E-Instruct"],
  ["meta-llama/llama-4-scout-17b-16e-instruct", "bigcodebench_full", "Llama-4-Scout", "via its Hugging Face link"],
  ["meta-llama/llama-4-maverick-17b-128e-instruct", "aider_polyglot", "Llama 4 Maverick", "via the run's --model"],
  ["gemma2-9b-it", "lmarena_text", "Gemma-2-9B-it", "not Gemma-2-9B-it-SimPO"],
  ["deepseek-r1-distill-llama-70b", "bigcodebench_full", "DeepSeek-R1-Distill-Llama-70B"],
  ["deepseek-r1-distill-llama-70b", "lmarena_text", null, "not DeepSeek-R1"],
  ["meta-llama/llama-guard-4-12b", "lmarena_text", null],
  ["mixtral-8x7b-32768", "lmarena_text", "Mixtral-8x7B-Instruct-v0.1", "not Nous-Hermes-2-Mixtral-8x7B-DPO"],
  // Cerebras
  ["llama3.1-8b", "bigcodebench_hard", "Llama-3.1-8B-Instruct", "not Llama-3.1-70B-Instruct"],
  ["llama-3.3-70b", "lmarena_text", "Llama-3.3-70B-Instruct"],
  ["qwen-3-235b-a22b-instruct-2507", "lmarena_text", "Qwen3-235B-A22B-Instruct-2507", "not -Thinking-2507"],
  ["qwen-3-235b-a22b-instruct-2507", "livebench", "qwen3-235b-a22b-instruct-2507"],
  ["qwen-3-32b", "aider_polyglot", "Qwen3 32B"],
  ["gpt-oss-120b", "aider_polyglot", "gpt-oss-120b (high)"],
  ["zai-glm-4.6", "livebench", "glm-4.6", "not glm-4.6v"],
  // OpenRouter
  ["deepseek/deepseek-chat-v3-0324:free", "lmarena_text", "DeepSeek-V3-0324", "not DeepSeek-V3"],
  ["deepseek/deepseek-chat-v3-0324:free", "aider_polyglot", "DeepSeek V3 (0324)"],
  ["deepseek/deepseek-chat-v3-0324:free", "bigcodebench_full", null, "no 0324 score there; not DeepSeek-V3"],
  ["meta-llama/llama-3.3-70b-instruct:free", "bigcodebench_full", "Llama-3.3-70B-Instruct"],
  ["qwen/qwen-2.5-coder-32b-instruct:free", "bigcodebench_full", "Qwen2.5-Coder-32B-Instruct"],
  [
    "qwen/qwen-2.5-coder-32b-instruct:free",
    "aider_polyglot",
    "Qwen2.5-Coder-32B-Instruct | Qwen2.5-Coder-32B-Instruct",
  ],
  ["google/gemma-3-27b-it:free", "lmarena_text", "Gemma-3-27B-it", "not Gemma-3-12B-it"],
  ["google/gemma-3-27b-it:free", "bigcodebench_hard", "Gemma-3-27B-Instruct"],
  ["deepseek/deepseek-r1:free", "lmarena_text", "DeepSeek-R1", "not DeepSeek-R1-0528"],
  ["deepseek/deepseek-r1-0528:free", "aider_polyglot", "DeepSeek R1 (0528)", "not DeepSeek R1"],
  ["mistralai/mistral-small-3.1-24b-instruct:free", "lmarena_text", "Mistral-Small-3.1-24B-Instruct-2503"],
  ["qwen/qwq-32b:free", "lmarena_text", "QwQ-32B", "not QwQ-32B-Preview"],
  ["x-ai/grok-3-mini-beta", "lmarena_text", "Grok-3-Mini-beta", "not Grok-3-mini-high"],
  ["openai/gpt-4.1-mini", "lmarena_text", "GPT-4.1-mini-2025-04-14", "not GPT-4.1-2025-04-14"],
  ["openai/o4-mini-high", "aider_polyglot", "o4-mini (high)"],
  // Gemini API
  ["models/gemini-2.5-flash", "lmarena_text", "Gemini-2.5-Flash", "not -Preview-04-17, not -Lite"],
  ["models/gemini-2.0-flash", "lmarena_text", "Gemini-2.0-Flash-001", "the release, not -Exp; not -Lite"],
  ["models/gemini-2.5-pro", "lmarena_text", "Gemini-2.5-Pro", "not -Preview-05-06"],
  ["models/gemini-2.0-flash-lite", "lmarena_text", "Gemini-2.0-Flash-Lite"],
  ["models/gemini-2.5-flash-preview-05-20", "aider_polyglot", "gemini-2.5-flash-preview-05-20 (no think)"],
  ["models/gemini-1.5-flash-8b", "lmarena_text", "Gemini-1.5-Flash-8B-001", "not Gemini-1.5-Flash-001"],
  ["models/gemini-1.5-flash-8b", "bigcodebench_full", null, "not Gemini-1.5-Flash-API-0514"],
  ["models/gemini-exp-1206", "lmarena_text", "Gemini-Exp-1206", "not Gemini-Exp-1121"],
  ["models/gemma-3-27b-it", "aider_polyglot", "gemma-3-27b-it"],
  // Mistral
  ["mistral-large-latest", "lmarena_text", "Mistral-Large-2407 | Mistral-Large-2411 | Mistral-Large-2402"],
  ["mistral-large-2411", "lmarena_text", "Mistral-Large-2411"],
  ["codestral-latest", "aider_polyglot", "Codestral 25.01", "via the run's --model mistral/codestral-latest"],
  ["codestral-latest", "bigcodebench_full", null, "not Codestral-22B-v0.1 (a size the id does not state)"],
  ["mistral-small-2503", "lmarena_text", null, "not Mistral-Small-2506"],
  ["open-mixtral-8x22b", "bigcodebench_full", "Mixtral-8x22B-Instruct"],
  ["magistral-medium-2506", "lmarena_text", "magistral-medium-2506"],
  ["ministral-8b-2410", "lmarena_text", "Ministral-8B-2410"],
  // NVIDIA NIM
  [
    "meta/llama-3.1-405b-instruct",
    "lmarena_text",
    "Meta-Llama-3.1-405B-Instruct-bf16 | Meta-Llama-3.1-405B-Instruct-fp8",
  ],
  [
    "nvidia/llama-3.1-nemotron-70b-instruct",
    "lmarena_text",
    "Llama-3.1-Nemotron-70B-Instruct",
    "not Llama-3.1-Nemotron-51B-Instruct",
  ],
  ["nvidia/llama-3.1-nemotron-ultra-253b-v1", "lmarena_text", "Llama-3.1-Nemotron-Ultra-253B-v1"],
  ["nvidia/llama-3.3-nemotron-super-49b-v1.5", "lmarena_text", "Nvidia-Llama-3.3-Nemotron-Super-49B-v1.5", "not -v1"],
  ["deepseek-ai/deepseek-r1", "bigcodebench_hard", "DeepSeek-R1"],
  ["meta/llama-3.2-3b-instruct", "lmarena_text", "Meta-Llama-3.2-3B-Instruct", "not Meta-Llama-3.2-1B-Instruct"],
  ["microsoft/phi-3-mini-128k-instruct", "lmarena_text", "Phi-3-Mini-128k-Instruct", "not Phi-3-Mini-4k-Instruct"],
  // GitHub Models
  ["openai/gpt-4o", "lmarena_text", "GPT-4o-2024-05-13 | GPT-4o-2024-08-06", "not GPT-4o-mini, not ChatGPT-4o-latest"],
  ["openai/gpt-4o-mini", "lmarena_text", "GPT-4o-mini-2024-07-18"],
  ["openai/gpt-4o-mini", "aider_polyglot", "gpt-4o-mini-2024-07-18", "not gpt-4o-2024-11-20"],
  ["Meta-Llama-3.1-405B-Instruct", "bigcodebench_hard", "Llama-3.1-405B-Instruct"],
  ["Phi-4", "bigcodebench_full", "Phi-4"],
  ["Cohere-command-r-plus-08-2024", "lmarena_text", "Command R+ (08-2024)", "not Command R (08-2024)"],
  ["Mistral-large-2407", "bigcodebench_hard", "Mistral-Large-Instruct-2407"],
  ["AI21-Jamba-1.5-Large", "lmarena_text", "Jamba-1.5-Large", "not Jamba-1.5-Mini"],
  // Anthropic and OpenAI direct
  ["claude-3-5-sonnet-20241022", "lmarena_text", "Claude 3.5 Sonnet (20241022)", "not (20240620)"],
  ["claude-sonnet-4-20250514", "lmarena_text", "Claude Sonnet 4 (20250514)", "not (thinking-32k)"],
  ["claude-sonnet-4-20250514", "livebench", "claude-4-sonnet-20250514-base", "not -thinking-64k"],
  ["o3-mini", "lmarena_text", "o3-mini", "not o3-mini-high"],
  ["o1", "lmarena_text", "o1-2024-12-17", "not o1-preview, not o1-mini"],
  ["gpt-4.1", "aider_polyglot", "gpt-4.1", "not gpt-4.1-mini"],
  // Cloudflare Workers AI
  ["@cf/meta/llama-3.1-8b-instruct-fp8", "lmarena_text", "Meta-Llama-3.1-8B-Instruct"],
  ["@cf/mistral/mistral-7b-instruct-v0.1", "lmarena_text", "Mistral-7B-Instruct-v0.1", "not -v0.2"],
  ["@cf/mistral/mistral-7b-instruct-v0.1", "bigcodebench_full", null, "not Mistral-7B-Instruct-v0.3"],
  ["@cf/qwen/qwq-32b", "aider_polyglot", "QwQ-32B", "not QwQ-32B + Qwen 2.5 Coder Instruct"],
];

describe("name matching against the shipped leaderboards", () => {
  it("has at least 40 distinct provider ids", () => {
    assert.ok(new Set(TABLE.map(([id]) => id)).size >= 40);
  });

  for (const [providerId, boardName, expected, note] of TABLE) {
    it(`${providerId} on ${boardName} -> ${expected ?? "no match"}${note === undefined ? "" : ` (${note})`}`, () => {
      const board = boards.boards.get(boardName);
      assert.ok(board !== undefined);
      if (expected !== null) {
        const names = expected.split(" | ");
        for (const name of names)
          assert.ok(
            board.rows.some((row) => row.name === name),
            `row ${name} exists`,
          );
      }
      const match = matchName(board.index, providerId);
      assert.equal(match?.rows.map((row) => row.name).join(" | ") ?? null, expected);
    });
  }
});

describe("parseModelName", () => {
  it("keeps sizes and versions in the family key", () => {
    assert.notEqual(parseModelName("llama-3.1-8b").familyKey, parseModelName("llama-3.1-70b").familyKey);
    assert.notEqual(parseModelName("gpt-4o-mini").familyKey, parseModelName("gpt-4o").familyKey);
    assert.notEqual(parseModelName("llama-3.1-8b").familyKey, parseModelName("llama-3.2-8b").familyKey);
  });

  it("takes dates out of the family key, in every spelling", () => {
    const family = parseModelName("gpt-4o").familyKey;
    for (const name of ["gpt-4o-2024-08-06", "GPT-4o-20240806", "gpt-4o (2024-08-06)", "gpt-4o-0806"]) {
      assert.equal(parseModelName(name).familyKey, family, name);
    }
    assert.equal(parseModelName("gemini-2.0-pro-exp-02-05").snapshot, "0205");
    assert.equal(parseModelName("Command R+ (08-2024)").snapshot, "202408");
  });

  it("treats word order, case and separators alike", () => {
    assert.equal(parseModelName("claude-4-sonnet").tokenKey, parseModelName("Claude Sonnet 4").tokenKey);
    assert.equal(parseModelName("Llama_3.1 8B").exactKey, parseModelName("llama-3.1-8b").exactKey);
  });

  it("marks effort and thinking-budget settings, and keeps thinking models apart", () => {
    assert.equal(parseModelName("o3-mini (high)").isQualified, true);
    assert.equal(parseModelName("claude-sonnet-4-20250514 (no thinking)").isQualified, false);
    assert.equal(parseModelName("claude-4-sonnet-20250514-thinking-64k").isQualified, true);
    assert.equal(
      parseModelName("claude-opus-4-5-20251101-medium-effort", { hasSettingSuffixes: true }).isQualified,
      true,
    );
    assert.equal(parseModelName("Mistral Medium").exactKey, "mistral-medium");
    assert.equal(parseModelName("kimi-k2-thinking").exactKey, "kimi-k2-thinking");
  });

  it("recognises dates but not sizes, versions or context lengths", () => {
    for (const token of ["20240806", "202408", "0125", "1206", "2507", "001"])
      assert.equal(isDateToken(token), true, token);
    for (const token of ["4096", "2048", "8192", "3.5", "70b", "2025", "1500"])
      assert.equal(isDateToken(token), false, token);
  });
});

describe("matchName", () => {
  const rows = [
    { name: "Llama-3.1-70B-Instruct" },
    { name: "Widget-2-Pro-2024-05-01" },
    { name: "Widget-2-Pro-2024-09-01" },
    { name: "Gadget-7B (reasoning=high)" },
    { name: "Gadget-7B" },
  ];
  const index = buildNameIndex(rows);

  it("never matches another size", () => {
    assert.equal(matchName(index, "llama-3.1-8b"), undefined);
    assert.equal(matchName(index, "llama-3.1-405b-instruct"), undefined);
  });

  it("lets an undated id stand for every snapshot, and a dated id only for its own", () => {
    assert.deepEqual(
      matchName(index, "widget-2-pro")?.rows.map((row) => row.name),
      ["Widget-2-Pro-2024-05-01", "Widget-2-Pro-2024-09-01"],
    );
    assert.deepEqual(
      matchName(index, "widget-2-pro-2024-09-01")?.rows.map((row) => row.name),
      ["Widget-2-Pro-2024-09-01"],
    );
    assert.equal(matchName(index, "widget-2-pro-2025-01-01"), undefined);
  });

  it("prefers the default run over an effort variant", () => {
    assert.deepEqual(
      matchName(index, "gadget-7b")?.rows.map((row) => row.name),
      ["Gadget-7B"],
    );
  });

  it("uses an alias only when it is unambiguous", () => {
    const aliased = buildNameIndex([
      { name: "DeepSeek V2.5", aliases: ["deepseek/deepseek-chat"] },
      { name: "DeepSeek V3", aliases: ["deepseek/deepseek-chat"] },
      { name: "Codestral 25.01", aliases: ["mistral/codestral-latest"] },
    ]);
    assert.equal(matchName(aliased, "deepseek-chat"), undefined);
    assert.equal(matchName(aliased, "codestral-latest")?.rows[0]?.name, "Codestral 25.01");
    assert.equal(matchName(aliased, "codestral-latest")?.level, "alias");
  });
});
