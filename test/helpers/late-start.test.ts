// The late-start guard (late-start.ts), for every helper that starts a process, a server or a connection: a test
// file whose test timed out while a helper was starting still exits, with nothing left running. Each helper is
// started late in a file of its own (test/fixtures/late-start/start-after-timeout.ts), run as a child process in a
// process group of its own, so that whatever it leaves behind is found (and killed after the check).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { REPO_ROOT } from "./cli-process.ts";
import { isRedisClusterAvailable, REDIS_CLUSTER_MISSING } from "./redis-cluster.ts";
import { isRedisInstalled, REDIS_MISSING } from "./redis-server.ts";

const FIXTURE = join(REPO_ROOT, "test", "fixtures", "late-start", "start-after-timeout.ts");
/** Far longer than any of these starts takes on a loaded machine; a file still running then is hung. */
const EXIT_DEADLINE_MS = 45_000;

/** Whether any process of the group `pgid` is still there (signal 0 checks without sending anything). */
function isGroupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

const CASES: readonly { readonly helper: string; readonly skip: string | false }[] = [
  { helper: "mock", skip: false },
  { helper: "gateway", skip: false },
  { helper: "two-providers", skip: false },
  { helper: "gateway-process", skip: false },
  { helper: "served-entry", skip: false },
  { helper: "sqlite-lock", skip: false },
  { helper: "sqlite-lock-on-file", skip: false },
  { helper: "redis-proxy", skip: isRedisInstalled() ? false : REDIS_MISSING },
  { helper: "redis-server", skip: isRedisInstalled() ? false : REDIS_MISSING },
  { helper: "redis-state", skip: isRedisInstalled() ? false : REDIS_MISSING },
  { helper: "redis-cluster", skip: isRedisClusterAvailable() ? false : REDIS_CLUSTER_MISSING },
];

describe("a helper started after its test timed out closes what it started", { concurrency: 2 }, () => {
  for (const { helper, skip } of CASES) {
    test(helper, { skip }, async (t) => {
      const child = spawn(process.execPath, [FIXTURE], {
        cwd: REPO_ROOT,
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
        env: { PATH: process.env.PATH ?? "", NODE_NO_WARNINGS: "1", LATE_START: helper },
      });
      const pgid = child.pid;
      assert.ok(pgid !== undefined, "the fixture did not start");
      t.after(() => {
        if (isGroupAlive(pgid)) process.kill(-pgid, "SIGKILL");
      });
      let output = "";
      child.stdout.on("data", (chunk: Buffer) => {
        output += chunk.toString();
      });
      child.stderr.on("data", (chunk: Buffer) => {
        output += chunk.toString();
      });
      const exited = once(child, "exit").then(() => true);
      // Cancelled once decided: a pending deadline would keep this file open for its whole length.
      const deadline = new AbortController();
      const late = sleep(EXIT_DEADLINE_MS, false, { signal: deadline.signal }).catch(() => false);
      const isExited = await Promise.race([exited, late]);
      deadline.abort();
      assert.ok(isExited, `the file did not exit within ${EXIT_DEADLINE_MS} ms: what ${helper} started kept it open`);
      assert.match(output, /test timed out after 100ms/, output);
      assert.match(output, /LATE START: the test ended while this was starting: closed/, output);
      // Killed children are gone a moment after the file ends (their parent reaps them, or init does).
      for (let tries = 0; tries < 50 && isGroupAlive(pgid); tries++) await sleep(100);
      assert.equal(isGroupAlive(pgid), false, `a process ${helper} started outlived the file`);
    });
  }
});
