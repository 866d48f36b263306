// What a success tells the book of refused features (limits/refused-features.ts): the request's features, with
// their sizes, that the deployment has just taken, so that a lesson it no longer holds to ends.
import type { FeatureSizes } from "../limits/refused-features.ts";
import { featureSizesOf, INPUTS_FEATURE, type RequestFeature } from "../router/request-features.ts";
import type { ForwardRequest } from "./forward-types.ts";

/**
 * What an answered request shows the deployment takes: its features, with their sizes; an embeddings batch also its
 * number of inputs (INPUTS_FEATURE, not a feature the router reads: the lesson pipeline/embeddings-chunks.ts splits
 * batches by), so that a batch above a learned input limit that is answered ends that lesson.
 */
export function acceptedOf(
  request: ForwardRequest,
  features: readonly RequestFeature[],
): { readonly features: readonly RequestFeature[]; readonly sizes: FeatureSizes } {
  const sizes = featureSizesOf(request.body);
  const input = request.endpointPath === "/embeddings" ? request.body.input : undefined;
  if (!Array.isArray(input) || input.length < 2) return { features, sizes };
  // One list of token ids is one input (as pipeline/embeddings-chunks.ts reads it): its ids, counted as inputs, ended
  // a lesson of fewer inputs than the ids (before 2026-12-07), and the next batch above it was sent to be refused.
  if (input.every((item) => typeof item === "number")) return { features, sizes };
  return { features: [...features, INPUTS_FEATURE], sizes: new Map([...sizes, [INPUTS_FEATURE, input.length]]) };
}
