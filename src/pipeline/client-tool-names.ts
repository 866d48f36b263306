// The Chat Completions door's long tool names (protocols/chat-tool-names.ts) on the way out: the answer the pipeline
// got under the shortened names, JSON or streamed (served, continued or cached alike), under the client's own.

import { clientNamedAnswer, restoreChunkToolNames } from "../protocols/chat-tool-names.ts";
import type { LongToolNames } from "../protocols/long-tool-names.ts";
import type { StreamChunk } from "../streaming/relay-types.ts";
import type { PipelineResult, StreamAnswer, StreamEnding } from "./pipeline-types.ts";

export function withClientToolNames(result: PipelineResult, names: LongToolNames): PipelineResult {
  if (result.kind === "audio" || result.api !== "chat") return result;
  if (result.kind === "json") return { ...result, bodyText: clientNamedAnswer(result.bodyText, names) };
  return { ...result, events: clientNamedEvents(result.events, names) };
}

/** As keepingStream (cached-answers.ts): the adapter's `cancel` settles the inner stream when it stops early. */
async function* clientNamedEvents(
  inner: StreamAnswer["events"],
  names: LongToolNames,
): AsyncGenerator<readonly StreamChunk[], StreamEnding, void> {
  for (;;) {
    const next = await inner.next();
    if (next.done === true) return next.value;
    yield next.value.map((chunk) =>
      restoreChunkToolNames(chunk.json, names) ? { data: JSON.stringify(chunk.json), json: chunk.json } : chunk,
    );
  }
}
