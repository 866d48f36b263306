// A chunk that carries output and fails the answer in place (`finish_reason: "error"`, OpenRouter's documented
// mid-stream failure, often with an `error` object beside the choices): its output is the client's, its failure is
// not relayed as it came but ends the segment (relay-segment.ts).

/**
 * Makes the chunk a plain one and returns its failure, as an error event would carry it (`{ error }`, read by
 * SegmentProgress.endAtUpstreamError: a 429 named there is a rate limit). Each choice's `finish_reason` is set to
 * null, as in a chunk that does not finish (the client would otherwise take the answer for whole), and the `error`
 * object is taken off: the OpenAI SDK throws at a chunk carrying one, and the chunk's text was lost with the upstream's
 * error in place of the gateway's final in-band error (or of a continuation).
 */
export function takeFailure(json: Record<string, unknown>): { readonly error: unknown } {
  const error = json.error;
  delete json.error;
  const choices = json.choices;
  if (!Array.isArray(choices)) return { error };
  for (const choice of choices as unknown[]) {
    if (choice !== null && typeof choice === "object" && "finish_reason" in choice) {
      (choice as { finish_reason: unknown }).finish_reason = null;
    }
  }
  return { error };
}
