// OpenAI's Files and Batch APIs as data: the file and batch objects clients read (field for field as OpenAI's, the
// `openai` SDK's resources/files and resources/batches), the checks of a batch's input file (OpenAI's validation: one
// JSON request per line, each with a unique `custom_id`, `method: POST` and the batch's `url`), and the lines of the
// output and error files. Pure: ids and times are passed in.
import { DistinctStrings } from "./distinct-strings.ts";
import { LineScanner, lineEndFrom, trimmingLine } from "./line-scan.ts";

/** The endpoints a batch may run (OpenAI's list, less those this gateway has no door for). */
export const BATCH_ENDPOINTS = ["/v1/chat/completions", "/v1/embeddings", "/v1/completions", "/v1/responses"] as const;
export type BatchEndpoint = (typeof BATCH_ENDPOINTS)[number];

export type BatchStatus =
  | "validating"
  | "failed"
  | "in_progress"
  | "finalizing"
  | "completed"
  | "expired"
  | "cancelling"
  | "cancelled";

/** A status a batch never leaves. */
export function isFinished(status: BatchStatus): boolean {
  return status === "failed" || status === "completed" || status === "expired" || status === "cancelled";
}

export type FilePurpose = "batch" | "batch_output";

/** A stored file's facts (its bytes are stored apart); `owner`: the named client that uploaded it, "" for none. */
export interface StoredFile {
  readonly id: string;
  readonly owner: string;
  readonly bytes: number;
  /** Unix seconds, as OpenAI's. */
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly filename: string;
  readonly purpose: FilePurpose;
}

export interface FileObject {
  readonly id: string;
  readonly object: "file";
  readonly bytes: number;
  readonly created_at: number;
  readonly expires_at: number;
  readonly filename: string;
  readonly purpose: FilePurpose;
  readonly status: "processed";
  readonly status_details: null;
}

export function toFileObject(file: StoredFile): FileObject {
  return {
    id: file.id,
    object: "file",
    bytes: file.bytes,
    created_at: file.createdAt,
    expires_at: file.expiresAt,
    filename: file.filename,
    purpose: file.purpose,
    status: "processed",
    status_details: null,
  };
}

export interface BatchErrorEntry {
  readonly code: string;
  readonly message: string;
  readonly param: string | null;
  readonly line: number | null;
}

export interface BatchObject {
  readonly id: string;
  readonly object: "batch";
  readonly endpoint: BatchEndpoint;
  readonly errors: { readonly object: "list"; readonly data: readonly BatchErrorEntry[] } | null;
  readonly input_file_id: string;
  readonly completion_window: "24h";
  readonly status: BatchStatus;
  readonly output_file_id: string | null;
  readonly error_file_id: string | null;
  readonly created_at: number;
  readonly in_progress_at: number | null;
  readonly expires_at: number;
  readonly finalizing_at: number | null;
  readonly completed_at: number | null;
  readonly failed_at: number | null;
  readonly expired_at: number | null;
  readonly cancelling_at: number | null;
  readonly cancelled_at: number | null;
  readonly request_counts: { readonly total: number; readonly completed: number; readonly failed: number };
  readonly usage: BatchUsage;
  readonly metadata: Readonly<Record<string, string>> | null;
  /** The `model` of the input's lines when they all name one (OpenAI: the model the batch ran). */
  readonly model: string | null;
}

export interface BatchUsage {
  readonly input_tokens: number;
  readonly input_tokens_details: { readonly cached_tokens: number };
  readonly output_tokens: number;
  readonly output_tokens_details: { readonly reasoning_tokens: number };
  readonly total_tokens: number;
}

export const NO_USAGE: BatchUsage = {
  input_tokens: 0,
  input_tokens_details: { cached_tokens: 0 },
  output_tokens: 0,
  output_tokens_details: { reasoning_tokens: 0 },
  total_tokens: 0,
};

/** A batch as stored: its object and who owns it ("" for an unnamed key). */
export interface StoredBatch {
  readonly batch: BatchObject;
  readonly owner: string;
}

export function newBatch(
  id: string,
  inputFileId: string,
  endpoint: BatchEndpoint,
  metadata: Readonly<Record<string, string>> | null,
  nowSeconds: number,
  windowSeconds: number,
): BatchObject {
  return {
    id,
    object: "batch",
    endpoint,
    errors: null,
    input_file_id: inputFileId,
    completion_window: "24h",
    status: "validating",
    output_file_id: null,
    error_file_id: null,
    created_at: nowSeconds,
    in_progress_at: null,
    expires_at: nowSeconds + windowSeconds,
    finalizing_at: null,
    completed_at: null,
    failed_at: null,
    expired_at: null,
    cancelling_at: null,
    cancelled_at: null,
    request_counts: { total: 0, completed: 0, failed: 0 },
    usage: NO_USAGE,
    metadata,
    model: null,
  };
}

/**
 * One request of a batch's input file: where it is, not its body (read again by batch-line-body.ts lineBody when it runs): parsed bodies
 * cost a running batch about its file's size in heap each time, and one 100 MB file can be the input of many batches.
 */
export interface BatchLine {
  /** 0-based; error entries name it 1-based, as OpenAI's `line`. */
  readonly index: number;
  readonly customId: string;
  /** Its JSON's bytes in the input file, [start, end): without its line end, a BOM or spaces around it. */
  readonly start: number;
  readonly end: number;
}

export type InputCheck =
  | { readonly isValid: true; readonly lines: readonly BatchLine[]; readonly model: string | null }
  | { readonly isValid: false; readonly errors: readonly BatchErrorEntry[] };

/** Error entries kept for one invalid input file (OpenAI lists a few, not one per bad line of 50,000). */
const MAX_INPUT_ERRORS = 10;

/** The bounds of one line's `body`: a live request's (config/request-bounds.ts), given by the runner. */
export interface JsonBounds {
  readonly maxDepth: number;
  readonly maxMembers: number;
}

/** For checkBatchInput's callers that check a file's framing only (tests of the validation's other rules). */
const UNBOUNDED: JsonBounds = { maxDepth: Number.POSITIVE_INFINITY, maxMembers: Number.POSITIVE_INFINITY };

/** Lines checked between two yields of checkingBatchInput (a few ms of work: the event loop stays free). */
export const LINES_PER_CHECK_STEP = 500;
/**
 * Bytes read between two yields of checkingBatchInput, whatever their lines: a 60 MB line is read in slices. One of a
 * long string takes well under a millisecond; one of dense JSON (numbers, small objects) a few ms, ten times that on
 * a loaded 2-core machine (1 MiB slices of a 13 MB line of objects took up to 200 ms there).
 */
export const BYTES_PER_CHECK_STEP = 256 * 1024;

/**
 * OpenAI's validation of a batch's input file: every non-empty line a JSON object with a string `custom_id` unique in
 * the file, `method: "POST"`, `url` the batch's endpoint and an object `body`; at most `maxLines` requests. All
 * problems found are named (up to MAX_INPUT_ERRORS), each with its 1-based line.
 */
export function checkBatchInput(
  input: string | Buffer,
  endpoint: BatchEndpoint,
  maxLines: number,
  lineBounds: JsonBounds = UNBOUNDED,
): InputCheck {
  const steps = checkingBatchInput(
    typeof input === "string" ? Buffer.from(input) : input,
    endpoint,
    maxLines,
    lineBounds,
  );
  for (;;) {
    const step = steps.next();
    if (step.done === true) return step.value;
  }
}

/**
 * checkBatchInput in steps: it yields after every LINES_PER_CHECK_STEP lines and every BYTES_PER_CHECK_STEP bytes
 * read, so a caller can let the event loop run between them (50,000 lines of 2 KB took ~2 s of JSON.parse; one line of
 * 60 MB took 0.6-1 s to decode and parse, and a parse cannot be cut). No line is parsed: line-scan.ts reads the fields
 * checked, a slice at a time, and checks the JSON grammar as JSON.parse does. Past `maxLines` requests nothing more is
 * read (a 100 MB file of 700,000 tiny lines took 8 s to be refused): the lines left are only counted, for the message.
 */
export function* checkingBatchInput(
  input: Buffer,
  endpoint: BatchEndpoint,
  maxLines: number,
  lineBounds: JsonBounds,
): Generator<void, InputCheck, void> {
  const errors: BatchErrorEntry[] = [];
  const lines: BatchLine[] = [];
  const seen = new DistinctStrings();
  const models = new DistinctStrings();
  const problem = (line: number, code: string, message: string, param: string | null): void => {
    if (errors.length < MAX_INPUT_ERRORS) errors.push({ code, message, param, line });
  };
  let requests = 0;
  let start = 0;
  const budget = { bytesLeft: BYTES_PER_CHECK_STEP };
  for (let at = 0; start <= input.length; at++) {
    if (at > 0 && at % LINES_PER_CHECK_STEP === 0) {
      yield;
      budget.bytesLeft = BYTES_PER_CHECK_STEP;
    }
    const lineEnd = yield* lineEndFrom(input, start, budget, BYTES_PER_CHECK_STEP);
    // A BOM, a CRLF's CR and spaces around the JSON are not the line's (its length is measured without them).
    const trimmed = yield* trimmingLine(input, start, lineEnd, budget, BYTES_PER_CHECK_STEP);
    start = lineEnd + 1;
    if (trimmed.start === trimmed.end) continue;
    requests += 1;
    if (requests > maxLines) continue;
    const lineNumber = at + 1;
    // A live request's bounds (config/request-bounds.ts), counted in the scan as the JSON door counts them before it
    // parses: a line nested 200,000 deep overflowed the stack when the runner measured it, and its result was never
    // written (the batch ended `completed` with the line neither completed nor failed); one of 300,000 members held
    // the event loop for seconds, here and again when it was sent upstream.
    // The line's own object is one level above its body's: a body the live door takes at exactly maxDepth was refused.
    const scanner = new LineScanner(input, trimmed.start, trimmed.end, lineBounds.maxDepth + 1, lineBounds.maxMembers);
    for (;;) {
      budget.bytesLeft -= scanner.step(budget.bytesLeft);
      if (scanner.isDone) break;
      yield;
      budget.bytesLeft = BYTES_PER_CHECK_STEP;
    }
    const scanned = yield* scanner.reading(budget, BYTES_PER_CHECK_STEP);
    if (scanned.overBounds !== undefined) {
      problem(
        lineNumber,
        "invalid_value",
        scanned.overBounds === "deep"
          ? `Line ${lineNumber} nests objects and arrays deeper than ${lineBounds.maxDepth} levels (MAX_JSON_DEPTH).`
          : `Line ${lineNumber} has an object of more than ${lineBounds.maxMembers} members (MAX_JSON_OBJECT_MEMBERS).`,
        null,
      );
      continue;
    }
    if (!scanned.isJson) {
      problem(lineNumber, "invalid_json_line", `Line ${lineNumber} is not valid JSON.`, null);
      continue;
    }
    if (!scanned.isObject) {
      problem(lineNumber, "invalid_json_line", `Line ${lineNumber} is not a JSON object.`, null);
      continue;
    }
    const customId = scanned.customId;
    if (customId === undefined || customId === "") {
      problem(
        lineNumber,
        "missing_required_parameter",
        `Line ${lineNumber} has no \`custom_id\` (a string).`,
        "custom_id",
      );
      continue;
    }
    if (!(yield* seen.adding(customId, budget, BYTES_PER_CHECK_STEP))) {
      problem(
        lineNumber,
        "duplicate_custom_id",
        `The custom_id '${customId.slice(0, 200)}' of line ${lineNumber} is not unique in this batch.`,
        "custom_id",
      );
      continue;
    }
    if (scanned.method !== "POST") {
      problem(lineNumber, "invalid_method", `Line ${lineNumber}: \`method\` must be "POST".`, "method");
      continue;
    }
    if (scanned.url !== endpoint) {
      problem(
        lineNumber,
        "mismatched_url",
        `Line ${lineNumber}: \`url\` must be the batch's endpoint '${endpoint}'.`,
        "url",
      );
      continue;
    }
    if (!scanned.isBodyObject) {
      problem(lineNumber, "invalid_request", `Line ${lineNumber}: \`body\` must be a JSON object.`, "body");
      continue;
    }
    if (scanned.model !== undefined) yield* models.adding(scanned.model, budget, BYTES_PER_CHECK_STEP);
    lines.push({ index: lines.length, customId, start: trimmed.start, end: trimmed.end });
  }
  if (lines.length + errors.length === 0) {
    problem(1, "empty_file", "The input file has no requests.", null);
  }
  if (requests > maxLines) {
    const tooMany = "too_many_requests";
    errors.push({
      code: tooMany,
      message: `The input file has ${requests} requests: a batch takes at most ${maxLines} (batches.max_lines).`,
      param: null,
      line: null,
    });
  }
  if (errors.length > 0) return { isValid: false, errors };
  return { isValid: true, lines, model: models.size === 1 ? (models.first ?? null) : null };
}

/** A line of the output file (a 2xx answer) or of the error file (an error answer): OpenAI's shape. */
export function answeredLine(
  lineId: string,
  customId: string,
  statusCode: number,
  requestId: string,
  body: unknown,
): string {
  return JSON.stringify({
    id: lineId,
    custom_id: customId,
    response: { status_code: statusCode, request_id: requestId, body },
    error: null,
  });
}

/** An error-file line for a request that was never answered (`batch_expired`, `batch_cancelled`). */
export function unansweredLine(lineId: string, customId: string, errorCode: string, message: string): string {
  return JSON.stringify({ id: lineId, custom_id: customId, response: null, error: { code: errorCode, message } });
}

/** OpenAI's code (and message) for a request not run before the batch's window ended. */
export const BATCH_EXPIRED_CODE = "batch_expired";
export const BATCH_EXPIRED_MESSAGE = "This request could not be executed before the completion window expired.";

/** A cursor page as OpenAI's lists are (`after`: the last id of the page before). */
export interface ListPage<T> {
  readonly object: "list";
  readonly data: readonly T[];
  readonly first_id: string | null;
  readonly last_id: string | null;
  readonly has_more: boolean;
}

export function pageOf<T extends { readonly id: string }>(
  items: readonly T[],
  after: string | undefined,
  limit: number,
): ListPage<T> {
  let start = 0;
  if (after !== undefined) {
    const at = items.findIndex((item) => item.id === after);
    start = at < 0 ? items.length : at + 1;
  }
  const data = items.slice(start, start + limit);
  return {
    object: "list",
    data,
    first_id: data[0]?.id ?? null,
    last_id: data.at(-1)?.id ?? null,
    has_more: start + limit < items.length,
  };
}
