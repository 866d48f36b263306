// A raw SSE client for e2e tests: exact bytes and arrival times of a streamed gateway answer, without any SDK
// in between (the SDKs hide the framing: a lost `[DONE]`, an extra newline or an error event).
import type { IncomingHttpHeaders } from "node:http";
import { type Dispatcher, request } from "undici";

export interface TimedChunk {
  readonly text: string;
  /** `performance.now()` when the chunk arrived. */
  readonly atMs: number;
}

export interface StreamAnswer {
  readonly statusCode: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Dispatcher.ResponseData["body"];
}

/** POSTs a JSON body to the gateway and returns as soon as the response headers are in. */
export async function postJson(
  url: string,
  payload: unknown,
  options: { dispatcher?: Dispatcher; signal?: AbortSignal } = {},
): Promise<StreamAnswer> {
  const response = await request(url, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer test-client" },
    body: JSON.stringify(payload),
    ...(options.dispatcher === undefined ? {} : { dispatcher: options.dispatcher }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  });
  return { statusCode: response.statusCode, headers: response.headers, body: response.body };
}

/** Reads a body to its end, keeping every chunk with its arrival time. Rejects if the body fails. */
export async function readTimed(body: AsyncIterable<Uint8Array>): Promise<{ text: string; chunks: TimedChunk[] }> {
  const decoder = new TextDecoder();
  const chunks: TimedChunk[] = [];
  for await (const bytes of body) {
    chunks.push({ text: decoder.decode(bytes, { stream: true }), atMs: performance.now() });
  }
  const tail = decoder.decode();
  if (tail !== "") chunks.push({ text: tail, atMs: performance.now() });
  return { text: chunks.map((chunk) => chunk.text).join(""), chunks };
}

/**
 * The `data:` payloads of a stream the gateway wrote, checking the framing strictly on the way: the body must
 * be a sequence of `data: <payload>\n\n` events and nothing else (no other fields, no comments, no CRLF, no
 * multi-line events, no trailing partial event). Throws with the offending part otherwise.
 */
export function strictSseData(text: string): string[] {
  if (text === "") return [];
  if (!text.endsWith("\n\n"))
    throw new Error(`SSE body does not end with a blank line: ${JSON.stringify(text.slice(-80))}`);
  const blocks = text.slice(0, -2).split("\n\n");
  return blocks.map((block) => {
    if (!block.startsWith("data: ") || block.includes("\n") || block.includes("\r")) {
      throw new Error(`not a single-line data event: ${JSON.stringify(block.slice(0, 120))}`);
    }
    return block.slice("data: ".length);
  });
}

/** `data: <json>\n\n` per payload, the way the mock upstream (and the OpenAI API) frames events. */
export function sseFrames(payloads: readonly unknown[]): string {
  return payloads
    .map((payload) => `data: ${typeof payload === "string" ? payload : JSON.stringify(payload)}\n\n`)
    .join("");
}

/** Polls `condition` every 10 ms; rejects with `what` after `timeoutMs`. */
export async function waitUntil(condition: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
