// The name prefix and the stand-in label values every metric shares (metrics.ts, live-metrics.ts, token-metrics.ts).
export const METRIC_PREFIX = "llm_gateway_";
/** The label value that stands for any name not known from the config. */
export const OTHER = "other";
/** The provider / model label of a request no upstream answered. */
export const NONE = "none";

/** A name as a label value: itself when the config knows it, else OTHER (no client can grow the number of series). */
export function oneOf(value: string, known: ReadonlySet<string>): string {
  return known.has(value) ? value : OTHER;
}
