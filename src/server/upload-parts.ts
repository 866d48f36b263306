// The parts of a `multipart/form-data` upload, read by Node's own FormData parser (the one `Response.formData()` uses)
// without handing it the large contents. Given a whole upload, that parser copies every file's bytes about five times,
// synchronously (into the Response, its stream, the joined body, the File, the File's arrayBuffer): a 20 MB audio
// file held the event loop, every other request, for 1 to 3 s on a busy machine, a 100 MB batch file five times that,
// and each upload briefly took five times its size in memory. Here the large contents are cut out (each found by a
// native search for the boundary), the parser reads what is left (the part headers and small fields: their names,
// file names and types keep its exact reading), and each cut content comes back as a view of the request's own
// bytes, never copied. An upload whose framing is not the plain one is parsed whole, as before.

/** One part of an upload: a text field's value, or a file (its name and type as the client sent them). */
export type UploadPart = readonly [name: string, value: string | UploadedPart];

export interface UploadedPart {
  readonly filename: string;
  readonly type: string;
  readonly bytes: Buffer;
}

/** Contents shorter than this are left in the body the parser reads: cutting them saves nothing worth the bookkeeping. */
const CUT_FROM_BYTES = 64 * 1024;

const CRLF = Buffer.from("\r\n");
const HEADERS_END = Buffer.from("\r\n\r\n");
/** Before every delimiter but the first: the line break that belongs to it, and its `--`. */
const BEFORE_DELIMITER = Buffer.from("\r\n--");
/** A text field is UTF-8 without dropping a BOM, as the parser decodes it. */
const TEXT = new TextDecoder("utf-8", { ignoreBOM: true });

/** Thrown (rejected) when the parser refuses the body: not multipart/form-data it can read. */
export async function readUploadParts(bytes: Buffer, contentType: string, boundary: string): Promise<UploadPart[]> {
  const cuts = contentCuts(bytes, boundary);
  if (cuts.length > 0) {
    // Refused or read otherwise without the contents, the whole body is the parser's to judge: same answer as before.
    const parts = await partsOf(withoutCuts(bytes, cuts), contentType).catch(() => undefined);
    const restored = parts === undefined ? undefined : restoreCuts(parts, cuts);
    if (restored !== undefined) return restored;
  }
  return partsOf(bytes, contentType);
}

/** A large content cut out of the body: which part (its index) and where its bytes are. */
interface Cut {
  readonly partIndex: number;
  readonly start: number;
  readonly end: number;
  /** The content: a view of the request's bytes. */
  readonly content: Buffer;
}

/**
 * Where the large contents are: each part is `--boundary CRLF`, header lines, an empty line, the content, then
 * `CRLF --boundary` (the next part, or `--` closing the body). Anything else (a part headed by a content transfer
 * encoding, a delimiter without its line break, a cut body) gives no cuts: the parser reads the whole body and says
 * what is wrong with it, as it did before.
 */
function contentCuts(bytes: Buffer, boundary: string): Cut[] {
  const delimiter = Buffer.from(`--${boundary}`);
  const cuts: Cut[] = [];
  let at = bytes.indexOf(delimiter);
  for (let partIndex = 0; at >= 0; partIndex++) {
    const afterDelimiter = at + delimiter.length;
    if (bytes[afterDelimiter] === 0x2d && bytes[afterDelimiter + 1] === 0x2d) return cuts; // the closing delimiter
    if (!bytes.subarray(afterDelimiter, afterDelimiter + 2).equals(CRLF)) return [];
    // The empty line ending the headers (the delimiter's own line break begins it when the part has no headers).
    const headersEnd = bytes.indexOf(HEADERS_END, afterDelimiter);
    if (headersEnd < 0) return [];
    const contentStart = headersEnd + HEADERS_END.length;
    // The parser ends a content where the boundary's text next occurs, 4 bytes before it: the same search here.
    const next = bytes.indexOf(boundary, contentStart);
    if (next < contentStart + BEFORE_DELIMITER.length) return [];
    if (!bytes.subarray(next - BEFORE_DELIMITER.length, next).equals(BEFORE_DELIMITER)) return [];
    const contentEnd = next - BEFORE_DELIMITER.length;
    if (/content-transfer-encoding/i.test(bytes.toString("latin1", afterDelimiter, headersEnd))) return [];
    if (contentEnd - contentStart >= CUT_FROM_BYTES) {
      cuts.push({ partIndex, start: contentStart, end: contentEnd, content: bytes.subarray(contentStart, contentEnd) });
    }
    at = next - 2;
  }
  return []; // no closing delimiter: a cut body
}

/** The body with every cut content left out (each part then has an empty content). */
function withoutCuts(bytes: Buffer, cuts: readonly Cut[]): Buffer {
  const pieces: Buffer[] = [];
  let from = 0;
  for (const cut of cuts) {
    pieces.push(bytes.subarray(from, cut.start));
    from = cut.end;
  }
  pieces.push(bytes.subarray(from));
  return Buffer.concat(pieces);
}

/**
 * The parser's parts with each cut content put back; undefined when they do not line up with the cuts (the parser
 * read the framing otherwise than the search did): the caller then parses the whole body.
 */
function restoreCuts(parts: readonly UploadPart[], cuts: readonly Cut[]): UploadPart[] | undefined {
  const restored = [...parts];
  for (const cut of cuts) {
    const part = restored[cut.partIndex];
    if (part === undefined) return undefined;
    const [name, value] = part;
    const content = cutContent(cut, value);
    if (content === undefined) return undefined;
    restored[cut.partIndex] = [name, content];
  }
  return restored;
}

function cutContent(cut: Cut, value: string | UploadedPart): string | UploadedPart | undefined {
  if (typeof value === "string") return value === "" ? TEXT.decode(cut.content) : undefined;
  return value.bytes.length === 0 ? { ...value, bytes: cut.content } : undefined;
}

async function partsOf(bytes: Buffer, contentType: string): Promise<UploadPart[]> {
  const form = await new Response(bytes, { headers: { "content-type": contentType } }).formData();
  const parts: UploadPart[] = [];
  for (const [name, value] of form) {
    parts.push([
      name,
      typeof value === "string"
        ? value
        : { filename: value.name, type: value.type, bytes: Buffer.from(await value.arrayBuffer()) },
    ]);
  }
  return parts;
}
