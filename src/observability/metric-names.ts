// The name prefix and the stand-in label values every metric shares (metrics.ts, live-metrics.ts).
export const METRIC_PREFIX = "llm_gateway_";
/** The label value that stands for any name not known from the config. */
export const OTHER = "other";
/** The provider / model label of a request no upstream answered. */
export const NONE = "none";
