// `check` names the configured chat models no leaderboard row matches (their quality is only estimated), so a user
// can add `leaderboard_name`.
import assert from "node:assert/strict";
import { test } from "node:test";
import { runCli, tempDir, writeFiles } from "../helpers/cli-process.ts";

const CONFIG = `
providers:
  - name: alpha
    base_url: http://127.0.0.1:9/v1
    api_key: sk-alpha
    models:
      known: { id: llama-3.3-70b-versatile }
      custom: { id: acme-private-finetune-7 }
      pinned: { id: acme-other, leaderboard_name: Llama-3.3-70B-Instruct }
      vectors: { id: text-embedding-3-small }
`;

test("check lists unmatched chat models, not matched, pinned or non-chat ones", async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, { "gateway.yaml": CONFIG });
  const text = await runCli(["check", "--config", "gateway.yaml"], { cwd: dir });
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /no leaderboard row matches these models/);
  assert.match(text.stdout, /alpha\/custom \(acme-private-finetune-7\)/);
  assert.doesNotMatch(text.stdout, /alpha\/known|alpha\/pinned|alpha\/vectors/);

  const json = await runCli(["check", "--config", "gateway.yaml", "--json"], { cwd: dir });
  assert.equal(json.code, 0, json.stderr);
  assert.deepEqual((JSON.parse(json.stdout) as { unmatched_models: string[] }).unmatched_models, [
    "alpha/custom (acme-private-finetune-7)",
  ]);
});
