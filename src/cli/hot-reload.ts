// Hot reload triggers (docs/configuration.md "Reloading the config"): SIGHUP, and a change of the config file,
// `.env` or the adjustments file (fs.watch, debounced). Each loads and validates the config again through the
// runtime's config loader; an invalid config is logged with every problem and the old one keeps serving.
import { type FSWatcher, watch } from "node:fs";
import { basename, dirname } from "node:path";
import type { GatewayRuntime } from "../pipeline/gateway-runtime.ts";

/** ms of quiet after the last file event before reloading: editors write a file in several steps. */
export const RELOAD_DEBOUNCE_MS = 300;

export interface ReloadLogger {
  warn(object: object, message: string): void;
}

/**
 * Watches the directories of `files()` (not the files: an editor that saves by rename would end a file watch)
 * and reloads when one of those files changes. `files` is asked on every event, so a reload that names another
 * adjustments file is followed. Returns the function that stops watching.
 */
export function watchConfigFiles(
  runtime: GatewayRuntime,
  files: () => readonly string[],
  logger: ReloadLogger,
  debounceMs = RELOAD_DEBOUNCE_MS,
): () => void {
  const watchers = new Map<string, FSWatcher>();
  let timer: NodeJS.Timeout | undefined;
  let changed = new Set<string>();
  const schedule = (name: string): void => {
    changed.add(name);
    clearTimeout(timer);
    timer = setTimeout(() => {
      const names = [...changed].sort().join(", ");
      changed = new Set();
      void runtime.reloadFromSource(`file changed: ${names}`).then(() => refresh());
    }, debounceMs);
    timer.unref();
  };
  const refresh = (): void => {
    const wanted = new Set(files().map((file) => dirname(file)));
    for (const [dir, watcher] of watchers) {
      if (wanted.has(dir)) continue;
      watcher.close();
      watchers.delete(dir);
    }
    for (const dir of wanted) {
      if (watchers.has(dir)) continue;
      try {
        const watcher = watch(dir, { persistent: false }, (_event, filename) => {
          if (filename === null) return;
          const name = filename.toString();
          if (files().some((file) => dirname(file) === dir && basename(file) === name)) schedule(name);
        });
        watcher.on("error", (error) => logger.warn({ dir, err: error }, "config watch failed; SIGHUP still reloads"));
        watchers.set(dir, watcher);
      } catch (error) {
        logger.warn({ dir, err: error }, "cannot watch the config directory; SIGHUP still reloads");
      }
    }
  };
  refresh();
  return () => {
    clearTimeout(timer);
    for (const watcher of watchers.values()) watcher.close();
    watchers.clear();
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
