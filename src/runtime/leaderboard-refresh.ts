// Optional leaderboard refresh (`scoring.leaderboard_refresh_url`): fetch the same files the project ships in
// data/leaderboards/ from a URL, in the background, at startup and every interval. A refresh that fails in any
// way (offline, HTTP error, unparsable file) changes nothing: the shipped snapshot (or the last good refresh)
// stays in use, and startup never waits for it.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { Dispatcher } from "undici";
import { LEADERBOARD_FILES, loadLeaderboards } from "../scoring/leaderboards.ts";
import type { GatewayRuntime, Logger } from "./gateway-runtime.ts";
import { replaceLeaderboards } from "./scoring-sources.ts";

/** ms one file download may take. */
const FETCH_TIMEOUT_MS = 15_000;

export async function refreshLeaderboardsOnce(baseUrl: string, dispatcher: Dispatcher): Promise<number> {
  const directory = await mkdtemp(join(tmpdir(), "llm-gateway-leaderboards-"));
  try {
    await Promise.all(
      LEADERBOARD_FILES.map(async (path) => {
        const url = new URL(path, baseUrl.endsWith("/") ? baseUrl : `${baseUrl}/`);
        const response = await dispatcher.request({
          origin: url.origin,
          path: `${url.pathname}${url.search}`,
          method: "GET",
          headersTimeout: FETCH_TIMEOUT_MS,
          bodyTimeout: FETCH_TIMEOUT_MS,
          signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
        });
        const text = await response.body.text();
        if (response.statusCode !== 200) throw new Error(`${url.href}: HTTP ${response.statusCode}`);
        await mkdir(dirname(join(directory, path)), { recursive: true });
        await writeFile(join(directory, path), text);
      }),
    );
    // Parsing throws on a malformed file: the refresh is all or nothing.
    const leaderboards = await loadLeaderboards(directory);
    if (leaderboards.boards.size === 0) throw new Error("no leaderboard could be read");
    replaceLeaderboards(leaderboards);
    return leaderboards.boards.size;
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

/** Starts the background refresh loop; returns a function that stops it. */
export function startLeaderboardRefresh(runtime: GatewayRuntime, logger: Logger): () => void {
  const { leaderboardRefreshUrl: url, leaderboardRefreshIntervalMs: intervalMs } = runtime.snapshot.scoring;
  if (url === undefined) return () => {};
  let isStopped = false;
  const refresh = async (): Promise<void> => {
    try {
      const boards = await refreshLeaderboardsOnce(url, runtime.dispatcher);
      if (isStopped) return;
      await runtime.reload(runtime.snapshot.config);
      logger.info({ url, boards }, "leaderboards refreshed");
    } catch (error) {
      logger.warn(
        { url, error: error instanceof Error ? error.message : String(error) },
        "leaderboard refresh failed; keeping the current snapshot",
      );
    }
  };
  void refresh();
  const timer = setInterval(() => void refresh(), intervalMs);
  timer.unref();
  return () => {
    isStopped = true;
    clearInterval(timer);
  };
}
