// One kept answer, as the answer cache holds it and as a shared row (Redis) is read back into it.
import { parseJsonRecord } from "../is-record.ts";
import type { UpstreamApi } from "../upstream/forward-types.ts";

export interface CachedAnswer {
  /** Always `chat` today (a native Responses answer is not kept); the adapters translate it as any chat answer. */
  readonly api: UpstreamApi;
  /** `json`: `bodyText` is the answer's body; `sse`: a JSON array of the streamed chunks' data, as they were sent. */
  readonly form: "json" | "sse";
  readonly bodyText: string;
  readonly status: number;
  readonly provider: string;
  /** The upstream model id that answered. */
  readonly model: string;
  /** What the first answer cost; a hit itself costs nothing (its `x-gateway-cost` is `free`). */
  readonly cost: "free" | "paid";
  readonly storedAtMs: number;
  /**
   * The request's own time to live (`x-gateway-cache-ttl`), in ms, when shorter than `cache.ttl_ms`: the answer is
   * not given after it, and freed at the next lookup or put after it (AnswerCache `#ownExpiries`).
   */
  readonly keptForMs?: number;
  readonly bytes: number;
}

/** A shared row as an answer; anything else (another version's row, a damaged one) is no answer. */
export function parseAnswer(json: string): CachedAnswer | undefined {
  const row = parseJsonRecord(json);
  if (row === undefined) return undefined;
  const { api, form, bodyText, status, provider, model, cost, storedAtMs, bytes, keptForMs } = row;
  if (api !== "chat" && api !== "responses") return undefined;
  if (form !== "json" && form !== "sse") return undefined;
  if (cost !== "free" && cost !== "paid") return undefined;
  if (typeof bodyText !== "string" || typeof provider !== "string" || typeof model !== "string") return undefined;
  if (typeof storedAtMs !== "number" || typeof bytes !== "number") return undefined;
  // Only a 200 is kept (cached-answers.ts): any other status is a damaged row, and would be answered as that status.
  if (status !== 200) return undefined;
  // Written by this version when the request asked for a shorter time to live; a row without it lives `ttl_ms`.
  if (keptForMs !== undefined && typeof keptForMs !== "number") return undefined;
  const answer: CachedAnswer = { api, form, bodyText, status, provider, model, cost, storedAtMs, bytes };
  return keptForMs === undefined ? answer : { ...answer, keptForMs };
}
