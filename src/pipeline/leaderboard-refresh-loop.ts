// The background loop of the optional leaderboard refresh (`scoring.leaderboard_refresh_url`): at startup and
// every interval, download the boards (scoring/leaderboard-refresh.ts) and rebuild the snapshot.
import { refreshLeaderboardsOnce } from "../scoring/leaderboard-refresh.ts";
import { fetchText } from "../upstream/fetch-text.ts";
import type { GatewayRuntime, Logger } from "./gateway-runtime.ts";

/** Starts the background refresh loop; returns a function that stops it. */
export function startLeaderboardRefresh(runtime: GatewayRuntime, logger: Logger): () => void {
  const { leaderboardRefreshUrl: url, leaderboardRefreshIntervalMs: intervalMs } = runtime.snapshot.scoring;
  if (url === undefined) return () => {};
  let isStopped = false;
  const refresh = async (): Promise<void> => {
    try {
      const boards = await refreshLeaderboardsOnce(url, (fileUrl) => fetchText(runtime.dispatcher, fileUrl));
      if (isStopped) return;
      await runtime.rebuild();
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
