// Hot reload triggers (docs/configuration.md "Reloading the config"): SIGHUP, and a change of the config file,
// `.env` or the adjustments file (fs.watch, debounced). Each loads and validates the config again through the
// runtime's config loader; an invalid config is logged with every problem and the old one keeps serving.
import { existsSync, type FSWatcher, realpathSync, statSync, watch } from "node:fs";
import { basename, dirname } from "node:path";
import type { GatewayRuntime } from "../pipeline/gateway-runtime.ts";

/** ms of quiet after the last file event before reloading: editors write a file in several steps. */
export const RELOAD_DEBOUNCE_MS = 300;

export interface ReloadLogger {
  warn(object: object, message: string): void;
}

/**
 * What a watched path reads now: the file it resolves to and that file's inode, size and mtime. A change of it
 * without an event naming the file is a symlink pointed elsewhere: a Kubernetes ConfigMap or Secret volume updates
 * by swapping its `..data` symlink, so the events name `..data_tmp` and `..data`, never `config.yaml`.
 */
function fingerprintOf(file: string): string {
  try {
    const stats = statSync(file);
    return `${realpathSync(file)}\n${stats.ino}\n${stats.size}\n${stats.mtimeMs}`;
  } catch {
    return "missing";
  }
}

/** The file a symlink resolves to (the path itself when it is none or is gone). */
function resolved(file: string): string {
  try {
    return realpathSync(file);
  } catch {
    return file;
  }
}

/**
 * Watches the directories of `files()` (not the files: an editor that saves by rename would end a file watch), and
 * for a file that is a symlink the directory of its target too (an edit there makes no event beside the link), and
 * reloads when one of those files changes: an event naming it, or any event in a watched directory after which a
 * file resolves to another target or content (a symlink swap). `files` is asked again after every reload, so a
 * reload that names another adjustments file, or a symlink now pointing elsewhere, is followed. Returns the
 * function that stops watching.
 */
export function watchConfigFiles(
  runtime: GatewayRuntime,
  files: () => readonly string[],
  logger: ReloadLogger,
  debounceMs = RELOAD_DEBOUNCE_MS,
): () => void {
  const watchers = new Map<string, FSWatcher>();
  /** Per watched directory, the names in it whose events mean a reload (a file, or a symlink's target). */
  let names = new Map<string, Set<string>>();
  /** Each file's fingerprint when the serving config was read (at start, after each reload). */
  let fingerprints = new Map<string, string>();
  let timer: NodeJS.Timeout | undefined;
  let changed = new Set<string>();
  let isStopped = false;
  const schedule = (name: string): void => {
    changed.add(name);
    clearTimeout(timer);
    timer = setTimeout(() => {
      const changedNames = [...changed].sort().join(", ");
      changed = new Set();
      void runtime.reloadFromSource(`file changed: ${changedNames}`).then(() => refresh());
    }, debounceMs);
    timer.unref();
  };
  /**
   * Other names' events are many where a watched folder holds busy files (`npm start > gateway.log` in the folder
   * of `.env`: an event per line): the fingerprints are compared once per burst, `debounceMs` after its first event.
   */
  let checkTimer: NodeJS.Timeout | undefined;
  const checkFingerprints = (): void => {
    checkTimer = undefined;
    for (const [file, fingerprint] of fingerprints) {
      if (fingerprintOf(file) !== fingerprint) schedule(basename(file));
    }
  };
  const onEvent = (dir: string, name: string | undefined): void => {
    if (name !== undefined && names.get(dir)?.has(name) === true) {
      schedule(name);
      return;
    }
    if (checkTimer !== undefined || isStopped) return;
    checkTimer = setTimeout(checkFingerprints, debounceMs);
    checkTimer.unref();
  };
  const refresh = (): void => {
    if (isStopped) return;
    names = new Map();
    fingerprints = new Map();
    for (const file of files()) {
      fingerprints.set(file, fingerprintOf(file));
      for (const path of new Set([file, resolved(file)])) {
        const dir = dirname(path);
        names.set(dir, (names.get(dir) ?? new Set()).add(basename(path)));
      }
    }
    for (const [dir, watcher] of watchers) {
      if (names.has(dir)) continue;
      watcher.close();
      watchers.delete(dir);
    }
    for (const dir of names.keys()) {
      if (watchers.has(dir)) continue;
      try {
        const watcher = watch(dir, { persistent: false }, (_event, filename) => {
          onEvent(dir, filename === null ? undefined : filename.toString());
        });
        watcher.on("error", (error) => {
          watcher.close();
          if (watchers.get(dir) === watcher) watchers.delete(dir);
          // A symlink target's folder removed by a swap (Kubernetes deletes the old `..<timestamp>` folder): the
          // reload that follows watches the new one.
          if (!existsSync(dir)) return;
          logger.warn({ dir, err: error }, "config watch failed; SIGHUP still reloads");
        });
        watchers.set(dir, watcher);
      } catch (error) {
        logger.warn({ dir, err: error }, "cannot watch the config directory; SIGHUP still reloads");
      }
    }
  };
  refresh();
  return () => {
    isStopped = true;
    clearTimeout(timer);
    clearTimeout(checkTimer);
    for (const watcher of watchers.values()) watcher.close();
    watchers.clear();
  };
}

/**
 * SIGHUP while the gateway starts (the config read, providers' models discovered: seconds with a slow provider)
 * ended the process, Node's default, since the reload handler is installed only once it is up: a `kill -HUP` from a
 * deploy script or a log rotation landing in a restart killed it. Held from the start of `serve`: one that arrives
 * meanwhile is remembered, and `stop` says whether one did (the file may have changed after it was read).
 */
export function holdSighupDuringStart(): { stop(): boolean } {
  let isAsked = false;
  const onSignal = (): void => {
    isAsked = true;
  };
  process.on("SIGHUP", onSignal);
  return {
    stop: () => {
      process.off("SIGHUP", onSignal);
      return isAsked;
    },
  };
}

/** SIGHUP reloads the config (instead of ending the process, Node's default). Returns the remover. */
export function reloadOnSighup(runtime: GatewayRuntime): () => void {
  const onSignal = (): void => {
    void runtime.reloadFromSource("SIGHUP");
  };
  process.on("SIGHUP", onSignal);
  return () => {
    process.off("SIGHUP", onSignal);
  };
}
