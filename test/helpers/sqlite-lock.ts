// The state file's write lock held by ANOTHER process (`BEGIN IMMEDIATE` in a child), as a second gateway, an
// `sqlite3` shell or a backup would: a lock in the test's own process would not show a gateway that blocks its event
// loop waiting for it (the timer that frees it could not run).
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import type { TestContext } from "node:test";
import { closeWhenTestEnds } from "./late-start.ts";

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
  await closeWhenTestEnds(t, () => child.kill("SIGKILL"));
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

/**
 * Another process that takes the state file's write lock the moment a new entry appears in `folder` (the Files API's
 * `<state.path>.files/`: an upload's bytes, which the gateway writes before its row), and holds it `heldMs`: a lock
 * taken between the two steps of an upload. Resolves once it watches; `locked` when it has taken the lock.
 */
export async function lockWhenFileAppears(
  t: TestContext,
  path: string,
  folder: string,
  heldMs: number,
): Promise<{ locked: Promise<void>; release(): Promise<void> }> {
  const script = `
    const { DatabaseSync } = require("node:sqlite");
    const { readdirSync, watch } = require("node:fs");
    const [path, folder, heldMs] = process.argv.slice(1);
    const before = new Set(readdirSync(folder));
    const db = new DatabaseSync(path);
    let isLocked = false;
    const take = () => {
      if (isLocked || !readdirSync(folder).some((name) => !before.has(name))) return;
      try {
        db.exec("PRAGMA busy_timeout = 0; BEGIN IMMEDIATE");
      } catch {
        return; // the gateway writes at this instant: the next look tries again
      }
      isLocked = true;
      watcher.close();
      clearInterval(poll);
      process.stdout.write("locked\\n");
      setTimeout(() => { db.exec("ROLLBACK"); db.close(); }, Number(heldMs));
    };
    const watcher = watch(folder, take);
    const poll = setInterval(take, 1);
    process.stdout.write("watching\\n");`;
  const child = spawn(process.execPath, ["-e", script, path, folder, String(heldMs)], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  await closeWhenTestEnds(t, () => child.kill("SIGKILL"));
  const exited = once(child, "exit").then(() => undefined);
  let output = "";
  const saw = (word: string) =>
    new Promise<void>((resolve, reject) => {
      const look = (chunk?: Buffer) => {
        output += chunk?.toString() ?? "";
        if (!output.includes(word)) return;
        child.stdout.off("data", look);
        resolve();
      };
      child.stdout.on("data", look);
      look();
      void exited.then(() => reject(new Error(`the lock's process exited before "${word}"`)));
    });
  const locked = saw("locked");
  locked.catch(() => {}); // awaited by the test when it wants it
  await saw("watching");
  return {
    locked,
    release: () => {
      child.kill("SIGKILL");
      return exited;
    },
  };
}

export const PYTHON_MISSING = "python3 is not installed; skipping the tests that hold a state file's WAL-index locks";

let hasPython: boolean | undefined;

export function isPythonInstalled(): boolean {
  hasPython ??= spawnSync("python3", ["--version"], { stdio: "ignore" }).status === 0;
  return hasPython;
}

/**
 * Another process recovering the state file's WAL, as after a crash: the one moment a READ in WAL mode is refused
 * (SQLITE_BUSY_RECOVERY, at once). A write lock (`lockInAnotherProcess`) never refuses a reader, and exclusive
 * locking mode cannot be taken while the gateway has the file open (its connection holds a shared lock), so the
 * child takes the WAL-index's write and recover locks (POSIX locks on bytes 120-122 of `-shm`, as SQLite's unix VFS
 * does; node cannot take them, python3's fcntl can) and blanks the index's header, which sends each reader to
 * recover it and so to the lock; after `heldMs` it writes the header back ("recovered") and exits. Resolves once held.
 */
export async function holdWalRecovery(t: TestContext, path: string, heldMs: number): Promise<{ done: Promise<void> }> {
  const script = `
import fcntl, os, sys, time
fd = os.open(sys.argv[1] + "-shm", os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 3, 120)
header = os.pread(fd, 96, 0)
os.pwrite(fd, bytes(96), 0)
print("locked", flush=True)
time.sleep(int(sys.argv[2]) / 1000)
os.pwrite(fd, header, 0)`;
  const child = spawn("python3", ["-c", script, path, String(heldMs)], { stdio: ["ignore", "pipe", "inherit"] });
  await closeWhenTestEnds(t, () => child.kill("SIGKILL"));
  const exited = once(child, "exit");
  await once(child.stdout, "data");
  return { done: exited.then(() => undefined) };
}
