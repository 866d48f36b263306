// Writing a pipeline stream to a client socket, with backpressure: the next batch is pulled from the pipeline
// only when the socket has taken the last one, so a slow client slows the upstream instead of growing memory.
import type { ServerResponse } from "node:http";
import type { StreamChunk } from "../streaming/relay-types.ts";

export const SSE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache",
  connection: "keep-alive",
  "x-accel-buffering": "no",
});

/** Drives `events` to its end (the pipeline settles the request there), writing each batch as `render` says. */
export async function pumpStream<T>(
  response: ServerResponse,
  events: AsyncGenerator<readonly StreamChunk[], T, void>,
  render: (chunks: readonly StreamChunk[]) => string,
): Promise<T> {
  for (;;) {
    const next = await events.next();
    if (next.done === true) return next.value;
    // A gone client: keep pulling so the relay notices the abort and settles; nothing is written.
    if (response.destroyed) continue;
    const text = render(next.value);
    if (text !== "" && !response.write(text)) await drained(response);
  }
}

/** An AbortSignal that fires when the client goes away before its response is complete. */
export function clientGoneSignal(response: ServerResponse): { readonly signal: AbortSignal; stop(): void } {
  const controller = new AbortController();
  const onClose = (): void => {
    if (!response.writableFinished) controller.abort();
  };
  response.on("close", onClose);
  return { signal: controller.signal, stop: () => response.off("close", onClose) };
}

function drained(response: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      response.off("drain", done);
      response.off("close", done);
      resolve();
    };
    response.on("drain", done);
    response.on("close", done);
  });
}
