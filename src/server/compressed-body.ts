// Request bodies sent with `Content-Encoding: gzip | deflate | br | zstd` (clients that compress large prompts, proxies
// that do it for them) are decoded before any body parser sees them, under the same `server.body_limit_bytes` as a
// plain body, counted on the DECODED bytes: a few hundred kilobytes of zstd or gzip can inflate to gigabytes. The
// inflate is streamed (zlib works on the thread pool, a chunk at a time) and stopped at the bound, so a bomb costs
// the bound and no more, and never holds the event loop.
import type { IncomingMessage } from "node:http";
import { Transform, type TransformCallback } from "node:stream";
import type { FastifyInstance } from "fastify";
import {
  type GatewayError,
  InvalidRequestError,
  PayloadTooLargeError,
  UnsupportedMediaTypeError,
} from "../errors/gateway-error.ts";
import { refusedBody } from "./body-refusals.ts";

/** The codings decoded, as named in `Content-Encoding` (RFC 9110 8.4.1; `x-gzip` is gzip's old alias). */
const DECODERS = {
  gzip: "gzip",
  "x-gzip": "gzip",
  deflate: "deflate",
  br: "br",
  zstd: "zstd",
} as const;

type Coding = (typeof DECODERS)[keyof typeof DECODERS];

/** What a `Content-Encoding` asks for: nothing to do, one coding to decode, or a refusal. */
export function codingOf(header: string | undefined): Coding | "identity" | { readonly refused: string } {
  if (header === undefined) return "identity";
  const codings = header
    .split(",")
    .map((coding) => coding.trim().toLowerCase())
    .filter((coding) => coding !== "" && coding !== "identity");
  if (codings.length === 0) return "identity";
  const [only] = codings;
  // Stacked codings (`gzip, br`) are legal but no client sends them; one layer keeps the bound's accounting simple.
  if (codings.length > 1 || only === undefined) return { refused: header };
  return Object.hasOwn(DECODERS, only) ? DECODERS[only as keyof typeof DECODERS] : { refused: only };
}

/**
 * The decoded body as Fastify's body reader takes it: a readable that fails with a GatewayError (413 past the bound,
 * 400 for a corrupt stream). `receivedEncodedLength` is what Fastify compares with `Content-Length` (the bytes on
 * the wire, not the decoded ones).
 */
class BoundedBody extends Transform {
  receivedEncodedLength = 0;
  #decodedBytes = 0;
  readonly #limitBytes: number;

  constructor(limitBytes: number) {
    super();
    this.#limitBytes = limitBytes;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#decodedBytes += chunk.byteLength;
    // Checked before the chunk is passed on: Fastify's own check only stops listening, and the inflate would go on.
    if (this.#decodedBytes > this.#limitBytes) {
      callback(tooLarge(this.#limitBytes));
      return;
    }
    callback(null, chunk);
  }
}

function tooLarge(limitBytes: number): GatewayError {
  return refusedBody(
    new PayloadTooLargeError(
      `The request body is larger than the limit of ${limitBytes} bytes (counted decoded, after its Content-Encoding).`,
    ),
  );
}

function decoderFor(coding: Coding): Transform {
  const zlib = process.getBuiltinModule("node:zlib");
  switch (coding) {
    case "gzip":
      return zlib.createGunzip();
    // `deflate` is zlib-wrapped by the RFC, raw by some clients (old IE, some proxies): inflate takes either.
    case "deflate":
      return zlib.createInflate();
    case "br":
      return zlib.createBrotliDecompress();
    case "zstd":
      return zlib.createZstdDecompress();
  }
}

/** The body decoded, bounded: the raw request is read through the decoder and the counter. */
function decodedBody(raw: IncomingMessage, coding: Coding, limitBytes: number): BoundedBody {
  const decoder = decoderFor(coding);
  const body = new BoundedBody(limitBytes);
  const stop = (error: GatewayError): void => {
    raw.unpipe(decoder);
    decoder.destroy();
    // The rest of the raw body is left to the error answer (sendError reads and discards it, then closes).
    body.destroy(error);
  };
  raw.on("data", (chunk: Buffer) => {
    body.receivedEncodedLength += chunk.byteLength;
    if (body.receivedEncodedLength > limitBytes) stop(tooLarge(limitBytes));
  });
  decoder.on("error", (error: Error) => {
    stop(
      refusedBody(
        new InvalidRequestError(`The request body is not valid ${coding} (its Content-Encoding): ${error.message}`, {
          code: "invalid_body",
          cause: error,
        }),
      ),
    );
  });
  body.on("error", () => {
    raw.unpipe(decoder);
    decoder.destroy();
  });
  // A client gone mid-body: the decoder would wait for the rest forever, and the body reader with it. No body refusal
  // (body-refusals.ts): its client left or got Node's 408, never this 400, and a plain body cut short has no record.
  raw.once("close", () => {
    if (!raw.complete) stop(new InvalidRequestError("The request body was cut short.", { code: "invalid_body" }));
  });
  raw.pipe(decoder).pipe(body);
  return body;
}

/** Whether bytes follow the headers: a `Content-Length` above 0, or a chunked body (RFC 9112 6.3). */
function hasBody(raw: IncomingMessage): boolean {
  if (raw.headers["transfer-encoding"] !== undefined) return true;
  const length = raw.headers["content-length"];
  return length !== undefined && Number(length) > 0;
}

/** Decodes compressed request bodies (see the header); a coding it does not know is a 415. */
export function registerCompressedBodies(app: FastifyInstance, limitBytes: number): void {
  app.addHook("preParsing", (request, _reply, payload, done) => {
    const coding = codingOf(request.headers["content-encoding"]);
    // GET and HEAD bodies are never read (Fastify parses none). A request without a body (a DELETE, an empty POST)
    // has nothing encoded: a 415 for its header, or gzip's "unexpected end of file", would refuse a request the route
    // serves (a proxy may add the header to every request).
    if (coding === "identity" || request.method === "GET" || request.method === "HEAD" || !hasBody(request.raw)) {
      done(null, payload);
      return;
    }
    if (typeof coding === "object") {
      done(
        refusedBody(
          new UnsupportedMediaTypeError(
            `Unsupported Content-Encoding \`${coding.refused.slice(0, 100)}\`: send the body as is, or in one of gzip, deflate, br, zstd.`,
          ),
        ),
      );
      return;
    }
    done(null, decodedBody(request.raw, coding, limitBytes));
  });
}
