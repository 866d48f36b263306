import assert from "node:assert/strict";
import { test } from "node:test";
import { readUploadParts, type UploadPart } from "./upload-parts.ts";

const BOUNDARY = "----gatewayTestBoundary7MA4YWxkTrZu0gW";
const TYPE = `multipart/form-data; boundary=${BOUNDARY}`;
const BIG = 200 * 1024;

/** A body from raw part texts (headers, empty line, content), delimited as clients do. */
function body(parts: readonly (string | Buffer)[], options: { preamble?: string; epilogue?: string } = {}): Buffer {
  const pieces: Buffer[] = [Buffer.from(options.preamble ?? "")];
  for (const part of parts) pieces.push(Buffer.from(`--${BOUNDARY}\r\n`), Buffer.from(part), Buffer.from("\r\n"));
  pieces.push(Buffer.from(`--${BOUNDARY}--\r\n${options.epilogue ?? ""}`));
  return Buffer.concat(pieces);
}

function filePart(name: string, filename: string, content: Buffer | string, type = "application/octet-stream"): Buffer {
  const head = `Content-Disposition: form-data; name="${name}"; filename="${filename}"\r\nContent-Type: ${type}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head), Buffer.from(content)]);
}

function textPart(name: string, content: Buffer | string): Buffer {
  return Buffer.concat([Buffer.from(`Content-Disposition: form-data; name="${name}"\r\n\r\n`), Buffer.from(content)]);
}

/** What Node's own parser reads from the whole body: the reference every answer here must equal. */
async function nodeParts(bytes: Buffer): Promise<UploadPart[] | "refused"> {
  try {
    const form = await new Response(bytes, { headers: { "content-type": TYPE } }).formData();
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
  } catch {
    return "refused";
  }
}

async function ourParts(bytes: Buffer): Promise<UploadPart[] | "refused"> {
  try {
    return await readUploadParts(bytes, TYPE, BOUNDARY);
  } catch {
    return "refused";
  }
}

const big = (fill: number): Buffer => Buffer.alloc(BIG, fill);
/** The boundary's text inside a file, without the line break and dashes of a delimiter. */
const boundaryInside = Buffer.concat([big(1), Buffer.from(`x--${BOUNDARY}y\n${BOUNDARY}`), big(2)]);

const CASES: Record<string, Buffer> = {
  "a large file and small fields": body([
    textPart("model", "whisper-1"),
    filePart("file", "a.mp3", big(7), "audio/mpeg"),
  ]),
  "two large files, a field between them": body([
    filePart("image[]", "a.png", big(3), "image/png"),
    textPart("prompt", "edit"),
    filePart("image[]", "b.png", big(4), "image/png"),
  ]),
  "a large text field starting with a BOM": body([
    textPart("prompt", Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from("é".repeat(BIG))])),
  ]),
  "the boundary's text inside a large file": body([filePart("file", "a.bin", boundaryInside)]),
  "a large file ending in CRLF and dashes": body([
    filePart("file", "a.bin", Buffer.concat([big(5), Buffer.from("\r\n--")])),
  ]),
  "a preamble and an epilogue": body([filePart("file", "a.bin", big(6))], {
    preamble: "ignored\r\n",
    epilogue: "junk",
  }),
  "a UTF-8 file name (filename*) and odd header case": body([
    Buffer.concat([
      Buffer.from(
        `content-disposition: form-data; name="file"; filename="plain.txt"; filename*=utf-8''%C3%A9t%C3%A9.txt\r\nCONTENT-TYPE: text/plain\r\n\r\n`,
      ),
      big(0x61),
    ]),
  ]),
  "a base64 transfer encoding": body([
    Buffer.concat([
      Buffer.from(
        `Content-Disposition: form-data; name="file"; filename="a.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n`,
      ),
      Buffer.from(big(9).toString("base64")),
    ]),
  ]),
  "no closing delimiter (a cut body)": Buffer.concat([
    Buffer.from(`--${BOUNDARY}\r\n`),
    filePart("file", "a.bin", big(1)),
    Buffer.from(`\r\n--${BOUNDARY}\r\n`),
  ]),
  "a delimiter without its line break": Buffer.concat([
    Buffer.from(`--${BOUNDARY}\r\n`),
    filePart("file", "a.bin", big(1)),
    Buffer.from(`--${BOUNDARY}--\r\n`),
  ]),
  "a part without headers": body([Buffer.concat([Buffer.from("\r\n"), big(1)])]),
  "a part without a name": body([
    Buffer.concat([Buffer.from('Content-Disposition: form-data; filename="a"\r\n\r\n'), big(1)]),
  ]),
  "an empty large-looking body": body([]),
};

for (const [name, bytes] of Object.entries(CASES)) {
  test(`${name}: read as Node's parser reads it`, async () => {
    assert.deepEqual(await ourParts(bytes), await nodeParts(bytes));
  });
}

test("a large file's bytes are a view of the request's, not a copy (a 20 MB upload was copied five times at once)", async () => {
  const audio = Buffer.alloc(2 * 1024 * 1024, 0x42);
  const bytes = body([textPart("model", "whisper-1"), filePart("file", "a.mp3", audio, "audio/mpeg")]);
  const parts = await readUploadParts(bytes, TYPE, BOUNDARY);
  const file = parts[1]?.[1];
  assert.ok(file !== undefined && typeof file !== "string");
  assert.equal(file.bytes.buffer, bytes.buffer);
  assert.deepEqual(file.bytes, audio);
  assert.deepEqual(parts[0], ["model", "whisper-1"]);
});

/** A small deterministic generator (an LCG): the same framings on every run, so a failure can be replayed. */
function randomOf(seed: number): <T>(choices: readonly T[], usualFirst?: boolean) => T {
  let state = seed;
  const next = (): number => {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    return state / 0x7fffffff;
  };
  return <T>(choices: readonly T[], usualFirst = false): T =>
    (usualFirst && next() < 0.85 ? choices[0] : choices[Math.floor(next() * choices.length)]) as T;
}

/**
 * A body of 1 to 3 parts, mostly framed as clients frame them, each choice sometimes another: a bare LF or CR for a
 * CRLF, a delimiter with a trailing space or none of its line break, the boundary's text (with and without its
 * dashes and line break) inside a content, header lines folded, repeated, with a CR inside a name, a `filename*`,
 * a transfer encoding, a preamble, an epilogue, no closing `--`.
 */
function randomFraming(pick: ReturnType<typeof randomOf>): Buffer {
  const inContent = [`\r\n--${BOUNDARY}`, BOUNDARY, "\r\n--", `--${BOUNDARY}--`, "\r\n\r\n", "\r", "é", "x"];
  const dispositions = [
    'Content-Disposition: form-data; name="f"; filename="a.bin"',
    'Content-Disposition: form-data; name="f"',
    'content-disposition:form-data; name="f"; filename*="x"',
    'Content-Disposition: form-data; name="f\r\n\r\nx"',
    'Content-Disposition: form-data; name="f"X\n',
    'Content-Disposition: form-data; name="f"\r',
    // A CR and another byte ending a header line: an older undici stepped over both (its content started 2 bytes early).
    'Content-Disposition: form-data; name="f"\rX',
    "Content-Disposition: form-data; name=f",
  ];
  const moreHeaders = ["Content-Type: text/plain", "Content-Type: é", "Content-Transfer-Encoding: base64", " folded"];
  const pieces: Buffer[] = [Buffer.from(pick(["", "", "", "\r\n", "preamble\r\n"]))];
  const partCount = pick([1, 2, 3]);
  for (let part = 0; part < partCount; part++) {
    const headers = [pick(dispositions, true), ...(pick([false, false, true]) ? [pick(moreHeaders)] : [])];
    pieces.push(Buffer.from(`--${BOUNDARY}${pick(["\r\n", "\n", " \r\n", ""], true)}`));
    pieces.push(Buffer.from(`${headers.join(pick(["\r\n", "\n", "\r"], true))}${pick(["\r\n\r\n", "\n\n"], true)}`));
    const content = [Buffer.alloc(BIG / 2 + pick([0, 1, 7]), pick([0x61, 0x0d, 0x2d]))];
    for (let piece = pick([0, 0, 0, 1, 2]); piece > 0; piece--) {
      content.splice(pick([0, content.length]), 0, Buffer.from(pick(inContent)));
    }
    pieces.push(...content, Buffer.from(pick(["\r\n", "\n", ""], true)));
  }
  pieces.push(Buffer.from(`--${BOUNDARY}${pick(["--", "--\r\n", "--\r\n\r\n", "", "--junk"], true)}`));
  return Buffer.concat(pieces);
}

test("random framings, 300 of them: every one read exactly as Node's parser reads it (or refused as it refuses)", async () => {
  const pick = randomOf(20261206);
  let read = 0;
  for (let at = 0; at < 300; at++) {
    const bytes = randomFraming(pick);
    const expected = await nodeParts(bytes);
    if (expected !== "refused") read += 1;
    assert.deepEqual(
      await ourParts(bytes),
      expected,
      `framing ${at}: ${JSON.stringify(bytes.toString("latin1", 0, 300))}`,
    );
  }
  // Most are read: the check is of real parts, not of two refusals.
  assert.ok(read >= 90, `${read} of 300 read`);
});
