// The state file's write lock held by ANOTHER process (`BEGIN IMMEDIATE` in a child), as a second gateway, an
// `sqlite3` shell or a backup would: a lock in the test's own process would not show a gateway that blocks its event
// loop waiting for it (the timer that frees it could not run).
import { spawn } from "node:child_process";
import { once } from "node:events";
import type { TestContext } from "node:test";

/** Resolves once the lock is held; `done` when it is freed (after `heldMs`), `release()` frees it at once. */
export async function lockInAnotherProcess(
  t: TestContext,
  path: string,
  heldMs: number,
): Promise<{ done: Promise<void>; release(): Promise<void> }> {
  const script = `
    const { DatabaseSync } = require("node:sqlite");
    const db = new DatabaseSync(process.argv[1]);
    db.exec("PRAGMA busy_timeout = 0; BEGIN IMMEDIATE");
    process.stdout.write("locked\\n");
    setTimeout(() => { db.exec("ROLLBACK"); db.close(); }, Number(process.argv[2]));`;
  const child = spawn(process.execPath, ["-e", script, path, String(heldMs)], { stdio: ["ignore", "pipe", "inherit"] });
  t.after(() => child.kill("SIGKILL"));
  const exited = once(child, "exit");
  await once(child.stdout, "data");
  const done = exited.then(() => undefined);
  return {
    done,
    release: () => {
      child.kill("SIGKILL");
      return done;
    },
  };
}
