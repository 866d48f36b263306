// The CLI piped into a reader that stops early (`check | head -2`, `route best --explain | head -1`): once the
// reader is gone the rest of the output is dropped and the command ends with its own exit code, without the
// "Unhandled 'error' event ... EPIPE" crash.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { describe, test } from "node:test";
import { MAIN, tempDir, writeFiles } from "../helpers/cli-process.ts";

const CONFIG = `providers:
  - name: strong
    base_url: http://127.0.0.1:9/v1
    api_key: sk-strong
    models:
      llama-3.3-70b-versatile: {}
  - name: weak
    base_url: http://127.0.0.1:9/v1
    api_key: sk-weak
    models:
      llama-3.1-8b-instant: { context: 8000 }
meta_models:
  best: [llama-3.3-70b-versatile, llama-3.1-8b-instant]
state:
  path: ":memory:"
`;

/** Runs the CLI with the read end of `closed` shut before it writes anything (a `head -0` that left at once). */
async function runWithClosedReader(
  args: readonly string[],
  cwd: string,
  closed: "stdout" | "stderr",
): Promise<{ code: number | null; other: string }> {
  const child = spawn(process.execPath, [MAIN, ...args], {
    cwd,
    stdio: ["ignore", "pipe", "pipe"],
    env: { PATH: process.env.PATH ?? "", NODE_NO_WARNINGS: "1" },
  });
  const [gone, kept] = closed === "stdout" ? [child.stdout, child.stderr] : [child.stderr, child.stdout];
  gone.destroy();
  let other = "";
  kept.on("data", (chunk: Buffer) => {
    other += chunk.toString();
  });
  const [code] = (await once(child, "close")) as [number | null];
  return { code, other };
}

describe("output into a reader that stopped", () => {
  for (const args of [["check"], ["route", "best", "--explain"], ["models"]]) {
    test(`\`${args.join(" ")}\` with stdout closed: its exit code (0), nothing on stderr`, async (t) => {
      const dir = tempDir(t);
      const path = writeFiles(dir, { "gateway.yaml": CONFIG });
      const result = await runWithClosedReader([...args, "--config", path], dir, "stdout");
      assert.equal(result.other, "", "stderr");
      assert.equal(result.code, 0);
    });
  }

  test("a config error with stderr closed: still exit 2, no crash on stdout", async (t) => {
    const dir = tempDir(t);
    const result = await runWithClosedReader(["check", "--config", "missing.yaml"], dir, "stderr");
    assert.equal(result.other, "", "stdout");
    assert.equal(result.code, 2);
  });
});
