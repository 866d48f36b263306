// The paths below a provider's base URL that a provider's `served_paths` may name.

/**
 * Every path below a base URL the gateway sends requests to (pipeline/endpoints.ts EndpointSpec `upstreamPath`; a
 * test keeps the two in step): what `served_paths` may name, so that a typo is an error, not a provider left out.
 */
export const UPSTREAM_PATHS = [
  "/chat/completions",
  "/completions",
  "/embeddings",
  "/audio/transcriptions",
  "/audio/translations",
  "/audio/speech",
  "/images/generations",
  "/images/edits",
  "/images/variations",
  "/rerank",
  "/moderations",
] as const;
