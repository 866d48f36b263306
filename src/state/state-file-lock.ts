// One gateway per state file (docs/configuration.md `state.path`): two processes on one file do not share budgets
// through it (each counts in memory, the file keeps whichever wrote a scope last) and their request log appends and
// rotations tangle. Two at once is also what a restart that starts the new process before the old one has exited
// looks like, so it is told, not refused. The lock is an SQLite exclusive lock on `<path>.lock` held by an open
// transaction: the OS drops it when its process ends, however it ends (a crash, SIGKILL), so no stale lock is left.
import { DatabaseSync } from "node:sqlite";
import { isBusyError } from "../sqlite-file.ts";

export class StateFileLock {
  readonly path: string;
  #db: DatabaseSync | undefined;
  /** The lock file cannot be made (a read-only folder): nothing is known about other processes, nothing claimed. */
  #isUnavailable = false;

  constructor(statePath: string) {
    this.path = `${statePath}.lock`;
  }

  /** Takes the lock when it is free. False only when another process (or connection) holds it now. */
  tryTake(): boolean {
    if (this.#isUnavailable || this.#db?.isTransaction === true) return true;
    try {
      this.#db ??= new DatabaseSync(this.path);
      this.#db.exec("PRAGMA busy_timeout = 0; BEGIN EXCLUSIVE");
      return true;
    } catch (error) {
      if (isBusyError(error)) return false;
      this.#isUnavailable = true;
      this.release();
      return true;
    }
  }

  release(): void {
    if (this.#db?.isOpen === true) this.#db.close();
    this.#db = undefined;
  }
}
