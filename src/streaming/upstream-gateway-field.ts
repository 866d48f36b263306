// An upstream's own `x_gateway` (another LLM Gateway used as a provider, or a hostile upstream) is not this gateway's
// word: it is taken off every answer and chunk before any door reads it. Left on, a Responses or Messages door read
// its `usage_estimated` as this gateway's own mark (the client was told "estimated" while the record said reported),
// and the chat door passed its `continuation` marker on as if this gateway had continued the stream.
import { isRecord } from "../is-record.ts";

/**
 * Takes an upstream's `x_gateway` off `json` (a chat answer or chunk, a Responses object; on a Responses stream
 * event, off its `response` too). `hasUsage`: `json` carries the usage the gateway reads. When the upstream marked
 * that usage `usage_estimated` (an upstream gateway's estimate: the tokens are an estimate either way), the mark is
 * put back as this gateway's own, and the caller records the usage as estimated. Returns undefined when there was no
 * `x_gateway` (nothing changed, the event's text may be passed on as it came).
 */
export function takeUpstreamGatewayField(
  json: Record<string, unknown>,
  hasUsage: boolean,
): { readonly isUsageEstimated: boolean } | undefined {
  const response = json.response;
  const holder = isRecord(response) && "x_gateway" in response ? response : "x_gateway" in json ? json : undefined;
  if (holder === undefined) return undefined;
  // Both places are cleared: a hostile event may carry both.
  const isUsageEstimated =
    hasUsage && (isEstimatedMark(json.x_gateway) || (isRecord(response) && isEstimatedMark(response.x_gateway)));
  delete json.x_gateway;
  if (isRecord(response)) delete response.x_gateway;
  if (isUsageEstimated) holder.x_gateway = { usage_estimated: true };
  return { isUsageEstimated };
}

function isEstimatedMark(value: unknown): boolean {
  return isRecord(value) && value.usage_estimated === true;
}
