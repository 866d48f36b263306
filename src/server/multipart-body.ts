// The `multipart/form-data` body parser of the audio routes (`/v1/audio/transcriptions`, `/v1/audio/translations`):
// the upload is read whole (within `server.body_limit_bytes`) and parsed by Node's own FormData parser (the one
// `Response.formData()` uses: a multipart parser written here would be one more to get wrong), into text fields and
// one UploadedFile, which the pipeline validates (`transcriptionBodySchema`) and the upstream side encodes again per
// candidate (upstream/multipart-payload.ts). Every other route refuses a multipart body as it refused it before.
import { MIMEType } from "node:util";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { MAX_UPLOAD_PART_HEADER_BYTES, MAX_UPLOAD_PARTS } from "../config/request-bounds.ts";
import { InvalidRequestError } from "../errors/gateway-error.ts";
import { ALL_FRONT_DOORS, pathsOf } from "../front-doors.ts";
import { UploadedFile } from "../upstream/multipart-payload.ts";

/** The routes whose body is a file upload. */
export const MULTIPART_PATHS: ReadonlySet<string> = new Set(
  ALL_FRONT_DOORS.filter((door) => door.isMultipart).flatMap((door) => pathsOf(door)),
);

/**
 * The gateway's fallback list (`models`, as on chat) is always a list here: one field is one name, and the SDKs send an
 * array as `models[]` fields. A single field was a string, read name by name as its characters (`w`, `h`, ...), and
 * `models[]` went to the provider as a field of its own.
 */
const FALLBACKS = "models";

/** A body of another type sent to an audio route: what to send instead (error-handler.ts). */
export const UPLOAD_EXPECTED =
  "Unsupported Content-Type: send the audio as a `multipart/form-data` upload, the file in the `file` field.";

export function registerMultipartBodyParser(app: FastifyInstance): void {
  app.addContentTypeParser("multipart/form-data", { parseAs: "buffer" }, (request, body, done) => {
    const route = request.routeOptions.url;
    // No route: Fastify parses the body before its not-found handler, which then answers 404 as for any other body.
    if (route === undefined) {
      done(null, undefined);
      return;
    }
    if (!MULTIPART_PATHS.has(route)) {
      done(
        new InvalidRequestError(
          "Unsupported Content-Type: send the body as JSON with `Content-Type: application/json`.",
          { code: "invalid_content_type" },
        ),
        undefined,
      );
      return;
    }
    const bytes = typeof body === "string" ? Buffer.from(body) : body;
    parseUpload(request, bytes).then(
      (fields) => done(null, fields),
      (error: unknown) => done(error as Error, undefined),
    );
  });
}

/**
 * Refuses, before Node's parser sees it, an upload whose parts are too many or whose part headers are too long. That
 * parser is synchronous over the whole body and counts nothing: 350,000 empty fields in an 18 MB upload held the
 * event loop (every other request) for 3 to 5 s before the field count refused them, one 18 MB `Content-Type` 2.4 s,
 * where a 20 MB file takes about 0.1 s. Counting the delimiters is a native search, stopped at the limit. A body whose
 * boundary cannot be read is left to the parser, which refuses it at once.
 */
function refuseCostlyShape(bytes: Buffer, contentType: string): void {
  let boundary: string | undefined;
  try {
    boundary = new MIMEType(contentType).params.get("boundary") ?? undefined;
  } catch {
    return;
  }
  if (boundary === undefined || boundary === "") return;
  const delimiter = Buffer.from(`--${boundary}`);
  let parts = 0;
  let at = bytes.indexOf(delimiter);
  while (at >= 0) {
    const headersAt = at + delimiter.length;
    // The closing delimiter: what follows is an epilogue the parser ignores.
    if (bytes[headersAt] === 0x2d && bytes[headersAt + 1] === 0x2d) return;
    if (++parts > MAX_UPLOAD_PARTS) {
      throw new InvalidRequestError(`The upload has more than ${MAX_UPLOAD_PARTS} fields.`, { code: "invalid_body" });
    }
    const headersEnd = bytes.indexOf(HEADERS_END, headersAt);
    if (headersEnd < 0) return; // a cut body: the parser says so
    if (headersEnd - headersAt > MAX_UPLOAD_PART_HEADER_BYTES) {
      throw new InvalidRequestError(
        `A part of the upload has headers longer than ${MAX_UPLOAD_PART_HEADER_BYTES} bytes (its name, file name or type).`,
        { code: "invalid_body" },
      );
    }
    at = bytes.indexOf(delimiter, headersEnd + HEADERS_END.length);
  }
}

const HEADERS_END = Buffer.from("\r\n\r\n");

/** Whether a request to a multipart route came as one (a JSON body there is refused by the route). */
export function isMultipartRequest(request: FastifyRequest): boolean {
  return /^multipart\/form-data\s*;/i.test(request.headers["content-type"] ?? "");
}

async function parseUpload(request: FastifyRequest, bytes: Buffer): Promise<Record<string, unknown>> {
  const contentType = request.headers["content-type"] ?? "";
  refuseCostlyShape(bytes, contentType);
  let form: FormData;
  try {
    form = await new Response(bytes, { headers: { "content-type": contentType } }).formData();
  } catch {
    throw new InvalidRequestError(
      "The request body is not valid multipart/form-data (a missing or wrong boundary, or a cut body).",
      { code: "invalid_body" },
    );
  }
  const fields: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  let count = 0;
  for (const [name, value] of form) {
    if (++count > MAX_UPLOAD_PARTS) {
      throw new InvalidRequestError(`The upload has more than ${MAX_UPLOAD_PARTS} fields.`, { code: "invalid_body" });
    }
    if (typeof value !== "string") {
      if (name !== "file" || fields.file !== undefined) {
        throw new InvalidRequestError(
          `\`${name.slice(0, 100)}\` is a file part: only \`file\` takes a file, and only one.`,
          { code: "invalid_body", param: name.slice(0, 100) },
        );
      }
      fields.file = new UploadedFile(value.name || "audio", value.type, Buffer.from(await value.arrayBuffer()));
      continue;
    }
    if (name === FALLBACKS || name === `${FALLBACKS}[]`) {
      fields[FALLBACKS] = [...((fields[FALLBACKS] as string[] | undefined) ?? []), value];
      continue;
    }
    const earlier = fields[name];
    // A repeated field (`timestamp_granularities[]`) is a list, sent again as one part per element.
    fields[name] = earlier === undefined ? value : Array.isArray(earlier) ? [...earlier, value] : [earlier, value];
  }
  // A plain object from here on: the pipeline's schema and body rules treat it as any parsed body.
  return { ...fields };
}
