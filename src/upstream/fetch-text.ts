// A plain GET of a small text file (leaderboard refresh), bounded in time; not for provider traffic.
import type { Dispatcher } from "undici";

/** ms one file download may take. */
const FETCH_TIMEOUT_MS = 15_000;

export async function fetchText(dispatcher: Dispatcher, url: URL): Promise<string> {
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
  return text;
}
