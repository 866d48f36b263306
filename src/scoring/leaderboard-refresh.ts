// Optional leaderboard refresh (`scoring.leaderboard_refresh_url`): fetch the same files the project ships in
// data/leaderboards/ from a URL, in the background, at startup and every interval. A refresh that fails in any
// way (offline, HTTP error, unparsable file) changes nothing: the shipped snapshot (or the last good refresh)
// stays in use, and startup never waits for it.
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { mkdir, mkdtemp, rm, writeFile } from "../async-fs.ts";
import { LEADERBOARD_FILES, loadLeaderboards } from "./leaderboards.ts";
import { replaceLeaderboards } from "./scoring-sources.ts";

/** Downloads one URL as text; throws on a non-200 answer or a network failure (upstream/fetch-text.ts). */
export type FetchText = (url: URL) => Promise<string>;

export async function refreshLeaderboardsOnce(baseUrl: string, fetchText: FetchText): Promise<number> {
  const directory = await mkdtemp(join(tmpdir(), "llm-gateway-leaderboards-"));
  try {
    await Promise.all(
      LEADERBOARD_FILES.map(async (path) => {
        const url = new URL(path, baseUrl.endsWith("/") ? baseUrl : `${baseUrl}/`);
        const text = await fetchText(url);
        await mkdir(dirname(join(directory, path)), { recursive: true });
        await writeFile(join(directory, path), text);
      }),
    );
    // Parsing throws on a malformed file: the refresh is all or nothing.
    const leaderboards = loadLeaderboards(directory);
    if (leaderboards.boards.size === 0) throw new Error("no leaderboard could be read");
    replaceLeaderboards(leaderboards);
    return leaderboards.boards.size;
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}
