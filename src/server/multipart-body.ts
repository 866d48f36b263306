// The `multipart/form-data` body parser of the upload routes (the doors with `files`, front-doors.ts: audio
// transcriptions and translations, image edits): the upload is read whole (within `server.body_limit_bytes`) and
// parsed by Node's own FormData parser (the one `Response.formData()` uses: a multipart parser written here would be
// one more to get wrong; upload-parts.ts keeps the large contents out of it, as views of the request's bytes), into
// text fields and UploadedFiles under the door's file fields, which the pipeline
// validates (the door's schema) and the upstream side encodes again per candidate (upstream/multipart-payload.ts).
// Every other route refuses a multipart body as it refused it before.
import { MIMEType } from "node:util";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { MAX_UPLOAD_PART_HEADER_BYTES, MAX_UPLOAD_PARTS } from "../config/request-bounds.ts";
import { InvalidRequestError } from "../errors/gateway-error.ts";
import { ALL_FRONT_DOORS, type FrontDoor, pathsOf } from "../front-doors.ts";
import { formFieldPrototypeRefusal } from "../protocols/prototype-keys.ts";
import { UploadedFile } from "../upstream/multipart-payload.ts";
import { refusedBody } from "./body-refusals.ts";
import { FILES_PATHS } from "./protocol-paths.ts";
import { readUploadParts, type UploadedPart, type UploadPart } from "./upload-parts.ts";

/** What the parser needs of an upload route: its file fields. */
export type UploadDoor = Pick<FrontDoor, "files">;

/** `POST /v1/files` (the Files API, batch-routes.ts): one `file` and text fields (`purpose`). */
const FILES_UPLOAD: UploadDoor = { files: [{ name: "file", isList: false, unnamedAs: "upload.jsonl" }] };

/** The routes whose body is a file upload, and their doors (which file fields each takes). */
export const UPLOAD_DOORS: ReadonlyMap<string, UploadDoor> = new Map<string, UploadDoor>([
  ...ALL_FRONT_DOORS.filter((door) => door.isMultipart).flatMap((door) =>
    pathsOf(door).map((path): [string, UploadDoor] => [path, door]),
  ),
  ...FILES_PATHS.map((path): [string, UploadDoor] => [path, FILES_UPLOAD]),
]);

/**
 * The gateway's fallback list (`models`, as on chat) is always a list here: one field is one name, and the SDKs send an
 * array as `models[]` fields. A single field was a string, read name by name as its characters (`w`, `h`, ...), and
 * `models[]` went to the provider as a field of its own.
 */
const FALLBACKS = "models";

/** A body of another type sent to an upload route: what to send instead (error-handler.ts, forwarding-route.ts). */
export function uploadExpected(door: UploadDoor): string {
  const [first] = door.files;
  const where = first === undefined ? "" : `, the ${first.isList ? "files" : "file"} in the \`${first.name}\` field`;
  return `Unsupported Content-Type: send a \`multipart/form-data\` upload${where}.`;
}

export function registerMultipartBodyParser(app: FastifyInstance): void {
  app.addContentTypeParser("multipart/form-data", { parseAs: "buffer" }, (request, body, done) => {
    const route = request.routeOptions.url;
    // No route: Fastify parses the body before its not-found handler, which then answers 404 as for any other body.
    if (route === undefined) {
      done(null, undefined);
      return;
    }
    const door = UPLOAD_DOORS.get(route);
    if (door === undefined) {
      done(
        refusedBody(
          new InvalidRequestError(
            "Unsupported Content-Type: send the body as JSON with `Content-Type: application/json`.",
            { code: "invalid_content_type" },
          ),
        ),
        undefined,
      );
      return;
    }
    const bytes = typeof body === "string" ? Buffer.from(body) : body;
    parseUpload(request, bytes, door).then(
      (fields) => done(null, fields),
      (error: unknown) => done(refusedBody(error as Error), undefined),
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
function refuseCostlyShape(bytes: Buffer, boundary: string): void {
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

/** The upload's boundary (undefined when the type has none that can be read: the parser refuses such a body). */
function boundaryOf(contentType: string): string | undefined {
  try {
    return new MIMEType(contentType).params.get("boundary") || undefined;
  } catch {
    return undefined;
  }
}

async function parseUpload(request: FastifyRequest, bytes: Buffer, door: UploadDoor): Promise<Record<string, unknown>> {
  const contentType = request.headers["content-type"] ?? "";
  const boundary = boundaryOf(contentType);
  if (boundary !== undefined) refuseCostlyShape(bytes, boundary);
  let parts: UploadPart[];
  try {
    parts = await readUploadParts(bytes, contentType, boundary ?? "");
  } catch {
    throw new InvalidRequestError(
      "The request body is not valid multipart/form-data (a missing or wrong boundary, or a cut body).",
      { code: "invalid_body" },
    );
  }
  const fields: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  let count = 0;
  for (const [name, value] of parts) {
    if (++count > MAX_UPLOAD_PARTS) {
      throw new InvalidRequestError(`The upload has more than ${MAX_UPLOAD_PARTS} fields.`, { code: "invalid_body" });
    }
    const refusal = formFieldPrototypeRefusal(name);
    if (refusal !== undefined) throw refusal;
    if (typeof value !== "string") {
      addFile(fields, name, value, door);
      continue;
    }
    if (name === FALLBACKS || name === `${FALLBACKS}[]`) {
      fields[FALLBACKS] = [...((fields[FALLBACKS] as string[] | undefined) ?? []), value];
      continue;
    }
    const earlier = fields[name];
    // Kept as a list, it was refused as "`model` is required and must be a string": true, but not what was wrong.
    if (name === "model" && earlier !== undefined) {
      throw new InvalidRequestError("`model` is given more than once in the form: send it once.", {
        param: "model",
        code: "invalid_value",
      });
    }
    // A repeated field (`timestamp_granularities[]`) is a list, sent again as one part per element.
    fields[name] = earlier === undefined ? value : Array.isArray(earlier) ? [...earlier, value] : [earlier, value];
  }
  // A plain object from here on: the pipeline's schema and body rules treat it as any parsed body.
  return { ...fields };
}

/**
 * Adds a file part under the name it came as (`image` or `image[]`: sent on under it), refused unless the door takes
 * a file there: a field of one file takes one, a list field (`image`) several, one file staying a file and more a list.
 */
function addFile(fields: Record<string, unknown>, name: string, part: UploadedPart, door: UploadDoor): void {
  const field = door.files.find((known) => known.name === name || (known.isList && `${known.name}[]` === name));
  const param = name.slice(0, 100);
  const earlier = fields[name];
  // A text part came first under this name: refused here, as one error. Spread as a list, a text `image[]` of 1 MB
  // became a million one-character elements, each a schema issue: 9 s of a held event loop and 800 MB.
  const earlierFiles = earlier === undefined ? [] : Array.isArray(earlier) ? earlier : [earlier];
  if (field !== undefined && !earlierFiles.every((value) => value instanceof UploadedFile)) {
    throw new InvalidRequestError(`\`${param}\` came as a text part and as a file part: send only file parts there.`, {
      code: "invalid_value",
      param,
    });
  }
  if (field === undefined || (!field.isList && earlier !== undefined)) {
    throw new InvalidRequestError(`\`${param}\` is a file part: ${takesFiles(door)}.`, { code: "invalid_body", param });
  }
  // An empty file is nothing any provider can transcribe or edit: refused here rather than spending one of the
  // provider's requests (a free tier's budget) on its certain 400.
  if (part.bytes.length === 0) {
    throw new InvalidRequestError(`\`${name.slice(0, 100)}\` is an empty file: send the file's bytes.`, {
      code: "invalid_value",
      param: name.slice(0, 100),
    });
  }
  const file = new UploadedFile(part.filename || field.unnamedAs, part.type, part.bytes);
  if (name.endsWith("[]")) fields[name] = [...earlierFiles, file];
  else fields[name] = earlier === undefined ? file : [...earlierFiles, file];
}

/** Which fields of the door take files: "only `file` takes a file, and only one". */
function takesFiles(door: UploadDoor): string {
  const described = door.files.map((field) =>
    field.isList ? `\`${field.name}\` (one or several, or \`${field.name}[]\`)` : `\`${field.name}\` (only one)`,
  );
  if (door.files.length === 1 && door.files[0]?.isList === false) {
    return `only \`${door.files[0].name}\` takes a file, and only one`;
  }
  return `only ${described.join(" and ")} take files`;
}
