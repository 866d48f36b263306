// The body of an upload request (audio transcriptions and translations, image edits): files and text fields, sent to
// each candidate as `multipart/form-data` with its own `model`. The client's upload is parsed once by the server
// (server/multipart-body.ts) into fields and UploadedFiles; every candidate of the failover gets the same bytes.
import { randomBytes } from "node:crypto";

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

/** A multipart body and its content type (the boundary is in it). */
export interface MultipartPayload {
  readonly body: Buffer;
  readonly contentType: string;
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
  const text = (name: string, value: string): void => {
    parts.push(
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${escapeName(name)}"\r\n\r\n${value}\r\n`),
    );
  };
  for (const [name, value] of Object.entries(fields)) {
    for (const item of Array.isArray(value) ? value : [value]) {
      if (item === undefined || item === null) continue;
      if (item instanceof UploadedFile) {
        parts.push(
          Buffer.from(
            `--${boundary}\r\nContent-Disposition: form-data; name="${escapeName(name)}"; filename="${escapeName(item.filename)}"\r\n` +
              `Content-Type: ${plainContentType(item.contentType)}\r\n\r\n`,
          ),
          item.bytes,
          Buffer.from("\r\n"),
        );
      } else text(name, typeof item === "object" ? JSON.stringify(item) : String(item));
    }
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(parts), contentType: `multipart/form-data; boundary=${boundary}` };
}

/** A name or file name inside a quoted header parameter, escaped as browsers do (the WHATWG multipart encoding). */
function escapeName(name: string): string {
  return name.replaceAll('"', "%22").replaceAll("\r", "%0D").replaceAll("\n", "%0A");
}

/** The client's file type when it is a plain `type/subtype` (with parameters), else the generic one. */
function plainContentType(contentType: string): string {
  return /^[\w.+-]+\/[\w.+-]+(?:\s*;[\x20-\x7e]*)?$/.test(contentType) ? contentType : "application/octet-stream";
}
