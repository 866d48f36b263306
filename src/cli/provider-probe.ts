// `providers`: one GET /models per configured key, with the gateway's own HTTP client, said the way a person
// checking their keys needs it (ok / invalid key / rate-limited / unreachable).
import type { Dispatcher } from "undici";
import type { ProviderSettings } from "../config/types.ts";
import { isRecord } from "../is-record.ts";
// Not `import("undici")`: in the bundle (bin/build.js) that namespace has only `default`, so every probe failed
// with a TypeError reported as "unreachable". The agent is what the gateway itself sends with, and the bundle holds it.
import { createUpstreamAgent } from "../pipeline/undici-agent.ts";
import { boundedText, modelListUrl, parseModelList } from "../providers/discovery.ts";

export type ProbeStatus = "ok" | "invalid key" | "rate-limited" | "unreachable" | "error";

export interface ProbeResult {
  readonly provider: string;
  readonly status: ProbeStatus;
  readonly detail: string;
  readonly ms: number;
}

/** `discovery.timeout_ms` and `upstream_limits.max_response_bytes`: what discovery itself would wait and read. */
export interface ProbeBounds {
  readonly timeoutMs: number;
  readonly maxBytes: number;
}

/** Probes every provider at once; `onDone` after each (progress). */
export async function probeProviders(
  providers: readonly ProviderSettings[],
  bounds: ProbeBounds,
  onDone: () => void,
): Promise<ProbeResult[]> {
  const agent = createUpstreamAgent();
  const results: ProbeResult[] = [];
  try {
    await Promise.all(
      providers.map(async (provider) => {
        results.push({ provider: provider.name, ...(await probe(agent, provider, bounds)) });
        onDone();
      }),
    );
  } finally {
    // Kept-alive sockets would hold the process open until they time out.
    await agent.destroy();
  }
  return results;
}

async function probe(
  agent: Dispatcher,
  provider: ProviderSettings,
  { timeoutMs, maxBytes }: ProbeBounds,
): Promise<{ status: ProbeStatus; detail: string; ms: number }> {
  const startedAt = performance.now();
  const elapsed = () => Math.round(performance.now() - startedAt);
  try {
    // The same list URL discovery uses (Cohere's and Cloudflare's model_url already name the list).
    const url = modelListUrl(provider.modelUrl);
    const response = await agent.request({
      origin: url.origin,
      path: `${url.pathname}${url.search}`,
      method: "GET",
      headers: {
        ...provider.headers,
        authorization: `Bearer ${provider.apiKeys[0] ?? ""}`,
        accept: "application/json",
      },
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
    });
    // Bounded as discovery reads the list (upstream_limits.max_response_bytes): a list without end is an error.
    const text = await boundedText(response.body, maxBytes);
    const status = response.statusCode;
    if (status === 200) {
      let count = "?";
      try {
        count = String(parseModelList(JSON.parse(text), provider.discoveryIdField).length);
      } catch {
        // a 200 that is not a model list still proves the key works
      }
      return { status: "ok", detail: `${count} models`, ms: elapsed() };
    }
    if (status === 401 || status === 403) return { status: "invalid key", detail: `HTTP ${status}`, ms: elapsed() };
    if (status === 429) return { status: "rate-limited", detail: "HTTP 429", ms: elapsed() };
    return { status: "error", detail: `HTTP ${status}`, ms: elapsed() };
  } catch (error) {
    // Connection failures carry a code (ECONNREFUSED, ENOTFOUND, UND_ERR_...); the signal's timeout is a
    // TimeoutError whose `code` is a number. Anything else is a fault of ours, not the provider's: said as it is.
    if (isRecord(error) && typeof error.code === "string")
      return { status: "unreachable", detail: error.code, ms: elapsed() };
    if (error instanceof Error && error.name === "TimeoutError")
      return { status: "unreachable", detail: `no answer in ${timeoutMs} ms`, ms: elapsed() };
    return {
      status: "error",
      detail: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
      ms: elapsed(),
    };
  }
}
