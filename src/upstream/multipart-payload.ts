// The body of an upload request (audio transcriptions and translations, image edits and variations): files and text
// fields, sent to each candidate as `multipart/form-data` with its own `model`. The client's upload is parsed once by
// the server (server/multipart-body.ts) into fields and UploadedFiles; every candidate of the failover is sent those
// same Buffers: only its small text parts (its model id, its body rules) are encoded per attempt.
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";

/** The uploaded file of a multipart request: its bytes, held in memory for every candidate of the failover. */
export class UploadedFile {
  readonly filename: string;
  readonly contentType: string;
  readonly bytes: Buffer;

  constructor(filename: string, contentType: string, bytes: Buffer) {
    this.filename = filename;
    this.contentType = contentType;
    this.bytes = bytes;
  }

  /** A record or log that serialises the body must never carry the audio or image: a summary stands for it. */
  toJSON(): { filename: string; content_type: string; bytes: number } {
    return { filename: this.filename, content_type: this.contentType, bytes: this.bytes.length };
  }
}

/**
 * A multipart body and its content type (the boundary is in it). The body is its parts in order, the file's part the
 * UploadedFile's own Buffer, not a copy: joined into one Buffer, each attempt of a 20 MB upload's failover held 20 MB
 * more (docs/protocols.md "Audio").
 */
export interface MultipartPayload {
  readonly parts: readonly Buffer[];
  /** The body's length, sent as `content-length` (a body sent in parts would otherwise go chunked). */
  readonly byteLength: number;
  readonly contentType: string;
}

/** The body of one send: a stream over the parts (undici reads each part as it is, and one stream per attempt). */
export function multipartBody(payload: MultipartPayload): Readable {
  return Readable.from(payload.parts, { objectMode: false });
}

/** The `response_format`s of a transcription answered in plain text rather than JSON (`json`, `verbose_json`). */
const TEXT_FORMATS: ReadonlySet<unknown> = new Set(["text", "srt", "vtt"]);

/** Whether an upload's fields (as sent: after the body rules) ask for a plain-text answer. */
export function asksForText(fields: Readonly<Record<string, unknown>>): boolean {
  return TEXT_FORMATS.has(fields.response_format);
}

/**
 * Encodes `fields` as `multipart/form-data`: a string as it is, a number or boolean as its text, an array as one
 * part per element under the same name (`timestamp_granularities[]`), an object as JSON (a `body:` rule may set
 * one), an UploadedFile as a file part. Undefined and null fields are left out.
 */
export function encodeMultipart(fields: Readonly<Record<string, unknown>>): MultipartPayload {
  // 24 random hex characters: a boundary that occurs inside the audio by chance is out of reach (2^-96 per offset).
  const boundary = `----llm-gateway-${randomBytes(12).toString("hex")}`;
  const parts: Buffer[] = [];
  // The text around the files, gathered as one string and turned into one Buffer before each file part.
  let pending = "";
  const flush = (): void => {
    if (pending !== "") parts.push(Buffer.from(pending));
    pending = "";
  };
  const text = (name: string, value: string): void => {
    pending += `--${boundary}\r\nContent-Disposition: form-data; name="${escapeName(name)}"\r\n\r\n${value}\r\n`;
  };
  for (const [name, value] of Object.entries(fields)) {
    for (const item of Array.isArray(value) ? value : [value]) {
      if (item === undefined || item === null) continue;
      if (item instanceof UploadedFile) {
        pending +=
          `--${boundary}\r\nContent-Disposition: form-data; name="${escapeName(name)}"; filename="${escapeName(item.filename)}"\r\n` +
          `Content-Type: ${plainContentType(item.contentType)}\r\n\r\n`;
        flush();
        parts.push(item.bytes);
        pending += "\r\n";
      } else text(name, typeof item === "object" ? JSON.stringify(item) : String(item));
    }
  }
  pending += `--${boundary}--\r\n`;
  flush();
  let byteLength = 0;
  for (const part of parts) byteLength += part.length;
  return { parts, byteLength, contentType: `multipart/form-data; boundary=${boundary}` };
}

/** A name or file name inside a quoted header parameter, escaped as browsers do (the WHATWG multipart encoding). */
function escapeName(name: string): string {
  return name.replaceAll('"', "%22").replaceAll("\r", "%0D").replaceAll("\n", "%0A");
}

/** The client's file type when it is a plain `type/subtype` (with parameters), else the generic one. */
function plainContentType(contentType: string): string {
  return /^[\w.+-]+\/[\w.+-]+(?:\s*;[\x20-\x7e]*)?$/.test(contentType) ? contentType : "application/octet-stream";
}
