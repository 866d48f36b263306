// The A/B scripts (bench/footprint-ab.ts, bench/windows-ab.ts) stop the gateways (and mock upstream) they started when they are ended by a
// signal, a gateway's start included: one left running holds the gateway core (taskset -c 1) for the next run.
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { REPO_ROOT } from "./helpers/cli-process.ts";

const isRunning = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** `script`'s children running `file`. */
function childrenOf(script: ChildProcess, file: string): number[] {
  const listed = spawnSync("pgrep", ["-P", String(script.pid), "-f", file], { encoding: "utf8" });
  return listed.stdout.split("\n").filter(Boolean).map(Number);
}

/** The processes `script` started, its mock upstream and gateways, once `count` gateways run. */
async function startedBy(script: ChildProcess, count: number): Promise<number[]> {
  const deadline = Date.now() + 45_000; // the first gateway of windows-ab.ts starts for real first
  while (Date.now() < deadline) {
    const gateways = childrenOf(script, "llm-gateway.js");
    if (gateways.length >= count) return [...childrenOf(script, "mock-upstream.ts"), ...gateways];
    await sleep(100);
  }
  throw new Error("no gateway started");
}

async function stoppedBySignal(t: TestContext, args: readonly string[], count: number): Promise<void> {
  const script = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ["ignore", "ignore", "ignore"] });
  const started = await startedBy(script, count);
  t.after(() => {
    for (const pid of started) if (isRunning(pid)) process.kill(pid, "SIGKILL");
  });
  await sleep(500);
  const exited = once(script, "exit");
  script.kill("SIGTERM");
  await exited;
  const deadline = Date.now() + 3_000;
  while (started.some(isRunning) && Date.now() < deadline) await sleep(50);
  assert.deepEqual(started.filter(isRunning), [], "a process left running");
}

// --inspect-brk: the gateway waits for a debugger, so its start never ends (as a start on a loaded machine).
test("footprint-ab.ts stops a gateway still starting when it is ended by SIGTERM", async (t) => {
  await stoppedBySignal(
    t,
    [join(REPO_ROOT, "bench/footprint-ab.ts"), "--rounds", "1", `${REPO_ROOT}::none|--inspect-brk=0`],
    1,
  );
});

test("windows-ab.ts stops its gateways (the one starting and the one started) and its mock when it is ended by SIGTERM", async (t) => {
  await stoppedBySignal(t, [join(REPO_ROOT, "bench/windows-ab.ts"), REPO_ROOT, `${REPO_ROOT}|--inspect-brk=0`], 2);
});
