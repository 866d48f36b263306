// Reading an upstream body with a bound: an upstream may send a body of any size (a 600 MB JSON answer, a
// 300 MB error page), and reading it whole would cost the gateway several times that in memory.
import type { Dispatcher } from "undici";

export interface BoundedBody {
  /** The body's text; when truncated, only its first `maxBytes` bytes (a split character becomes U+FFFD). */
  readonly text: string;
  /** The body was longer than `maxBytes`; the rest was not read (the caller closes the connection). */
  readonly isTruncated: boolean;
}

export async function readBodyBounded(body: Dispatcher.ResponseData["body"], maxBytes: number): Promise<BoundedBody> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    if (bytes + chunk.byteLength > maxBytes) {
      chunks.push(chunk.subarray(0, maxBytes - bytes));
      return { text: Buffer.concat(chunks).toString("utf8"), isTruncated: true };
    }
    chunks.push(chunk);
    bytes += chunk.byteLength;
  }
  return { text: Buffer.concat(chunks).toString("utf8"), isTruncated: false };
}
