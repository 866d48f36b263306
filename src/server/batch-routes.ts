// OpenAI's Files and Batch APIs (`/v1/files`, `/v1/batches`: `client.files.*` and `client.batches.*` of the SDKs), run
// by the gateway itself: an uploaded JSONL file of requests becomes a batch whose lines the batch runner
// (pipeline/batch-runner.ts) sends through the one pipeline, paced by the limits, into an output and an error file.
// Management routes (like conversations), no door of their own. A named client reaches only its own files and batches
// (404 for another's). With `state.redis_url` files and batches are shared by every replica on that Redis.
import { isUtf8 } from "node:buffer";
import type { FastifyReply, FastifyRequest } from "fastify";
import {
  ClientAbortedError,
  type GatewayError,
  InvalidRequestError,
  PayloadTooLargeError,
  RateLimitedError,
  ResourceNotFoundError,
} from "../errors/gateway-error.ts";
import { isRecord } from "../is-record.ts";
import type { Logger } from "../logger.ts";
import { type BatchBooks, ownerOf } from "../pipeline/batch-books.ts";
import { answeredBeforeFailure, type LineExecutor, unstreamed } from "../pipeline/batch-lines.ts";
import { BatchRunner } from "../pipeline/batch-runner.ts";
import { handleChatRequest } from "../pipeline/chat-request.ts";
import type { GatewayRuntime } from "../pipeline/gateway-runtime.ts";
import { parseAnswerBody } from "../pipeline/pipeline-types.ts";
import { publishRefusal } from "../pipeline/refusal.ts";
import {
  BATCH_ENDPOINTS,
  type BatchEndpoint,
  newBatch,
  pageOf,
  type StoredFile,
  toFileObject,
} from "../protocols/batches/batch-objects.ts";
import { randomIds } from "../protocols/ids.ts";
import { readMetadata } from "../protocols/metadata.ts";
import { UploadedFile } from "../upstream/multipart-payload.ts";
import { UPLOAD_OVERHEAD_BYTES } from "./batch-route-shapes.ts";
import { type RouteHandler, RouteRecorder, type RouteShape, type RouteTarget } from "./lazy-routes.ts";
import { isMultipartRequest, uploadExpected } from "./multipart-body.ts";
import type { ProtocolAdapter } from "./protocol-adapters.ts";
import { BATCHES_PATHS, FILES_PATHS } from "./protocol-paths.ts";

/** Where the batches live: the books to run them from. */
export interface BatchSetup {
  readonly books: BatchBooks;
}

/** OpenAI's largest page of files, and its default. */
const MAX_FILES_PAGE = 10_000;
/** OpenAI's page of batches: 20 by default, at most 100. */
const DEFAULT_BATCHES_PAGE = 20;
const MAX_BATCHES_PAGE = 100;

/** The routes' handlers (lazy-routes.ts), as registered (for a test), and the runner behind them, started. */
export interface BatchDoors {
  readonly handlers: ReadonlyMap<string, RouteHandler>;
  readonly shapes: readonly RouteShape[];
  readonly runner: BatchRunner;
}

/**
 * What batch-doors.ts imports at the first request to a Files or Batch route (or at start, with batches to resume).
 * `responses`: the Responses door's adapter, for `/v1/responses` lines; loaded at the first such line, as the door's
 * routes are at their first request (build-server.ts). The caller closes the runner.
 */
export function batchDoors(
  runtime: GatewayRuntime,
  setup: BatchSetup,
  responses: () => Promise<ProtocolAdapter>,
  log: Logger,
): BatchDoors {
  const recorder = new RouteRecorder();
  const runner = new BatchRunner(runtime, setup.books, log);
  runner.setExecutor("/v1/responses", adapterExecutor(runtime, responses));
  // Started: it resumes the batches the books hold unfinished.
  runner.start();
  registerBatchRoutes(recorder, runtime, runner);
  return { handlers: recorder.handlers, shapes: recorder.shapes, runner };
}

function registerBatchRoutes(app: RouteTarget, runtime: GatewayRuntime, runner: BatchRunner): void {
  const books = (): BatchBooks => runner.books;
  const settings = () => runtime.snapshot.config.batches;
  // Read once at startup, as Fastify fixes a route's body limit when it registers it (batch-doors.ts, at start).
  const uploadLimitBytes = settings().maxFileBytes + UPLOAD_OVERHEAD_BYTES;
  for (const base of FILES_PATHS) {
    app.post(base, { bodyLimit: uploadLimitBytes }, async (request) => {
      const file = uploadedFile(request, settings().maxFileBytes);
      const nowSeconds = Math.floor(runtime.clock.now() / 1000);
      const stored: StoredFile = {
        id: randomIds("file-"),
        owner: ownerOf(request.clientName),
        bytes: file.bytes.length,
        createdAt: nowSeconds,
        expiresAt: nowSeconds + Math.floor(settings().retentionMs / 1000),
        filename: file.filename.slice(0, 256),
        purpose: "batch",
      };
      if (!(await books().addFile(stored, file.bytes))) throw tooManyFiles(settings().maxFiles);
      return toFileObject(stored);
    });
    app.get(base, async (request) => {
      const query = queryOf(request);
      const limit = limitOf(query.limit, MAX_FILES_PAGE, MAX_FILES_PAGE);
      const order = query.order ?? "desc";
      if (order !== "asc" && order !== "desc") {
        throw new InvalidRequestError("`order` must be `asc` or `desc`.", { param: "order", code: "invalid_value" });
      }
      let files = (await books().files(request.clientName))
        .filter((file) => query.purpose === undefined || file.purpose === query.purpose)
        .map(toFileObject);
      if (order === "desc") files = files.reverse();
      return pageOf(files, query.after, limit);
    });
    app.get(`${base}/:id`, async (request) => toFileObject(await foundFile(books(), request)));
    app.get(`${base}/:id/content`, async (request, reply: FastifyReply) => {
      const file = await foundFile(books(), request);
      const content = await books().fileContent(file.id, request.clientName);
      if (content === undefined) throw fileNotFound(file.id);
      return reply.type("application/octet-stream").send(content);
    });
    app.delete(`${base}/:id`, async (request) => {
      const id = idOf(request);
      // Its batch reads it again after a restart: deleted under it, the batch would fail with the lines it had done.
      const running =
        (await books().file(id, request.clientName)) === undefined ? undefined : await books().runningBatchOf(id);
      if (running !== undefined) {
        throw new InvalidRequestError(
          `File '${id}' is the input of batch '${running}', still running: delete it once the batch has ended (or cancel it).`,
          { param: "file_id", code: "invalid_request" },
        );
      }
      if (!(await books().deleteFile(id, request.clientName))) throw fileNotFound(id);
      return { id, object: "file", deleted: true };
    });
  }
  for (const base of BATCHES_PATHS) {
    app.post(base, async (request) => {
      const body = bodyOf(request);
      const inputFileId = body.input_file_id;
      if (typeof inputFileId !== "string" || inputFileId === "") {
        throw new InvalidRequestError("`input_file_id` is required: the id of an uploaded file (purpose `batch`).", {
          param: "input_file_id",
          code: "invalid_value",
        });
      }
      const endpoint = body.endpoint;
      if (!BATCH_ENDPOINTS.includes(endpoint as BatchEndpoint)) {
        throw new InvalidRequestError(`\`endpoint\` must be one of ${BATCH_ENDPOINTS.join(", ")}.`, {
          param: "endpoint",
          code: "invalid_value",
        });
      }
      if (body.completion_window !== "24h") {
        throw new InvalidRequestError('`completion_window` must be "24h".', {
          param: "completion_window",
          code: "invalid_value",
        });
      }
      const metadata = body.metadata === undefined || body.metadata === null ? null : readMetadata(body.metadata);
      const own = books();
      const input = await own.file(inputFileId, request.clientName);
      if (input === undefined) throw fileNotFound(inputFileId, "input_file_id");
      if (input.purpose !== "batch") {
        throw new InvalidRequestError(
          `File '${inputFileId}' is not a batch input file (its purpose is ${input.purpose}).`,
          {
            param: "input_file_id",
            code: "invalid_value",
          },
        );
      }
      const batch = newBatch(
        randomIds("batch_"),
        inputFileId,
        endpoint as BatchEndpoint,
        metadata,
        Math.floor(runtime.clock.now() / 1000),
        Math.floor(settings().completionWindowMs / 1000),
      );
      const added = await own.addBatch({ batch, owner: ownerOf(request.clientName) });
      if (added === "batches") {
        throw new RateLimitedError(
          `Too many batches running (batches.max_batches: ${settings().maxBatches}); retry once one has finished.`,
        );
      }
      if (added === "files") throw tooManyFiles(settings().maxFiles);
      runner.submitLater(batch.id);
      return (await own.batch(batch.id))?.batch ?? batch;
    });
    app.get(base, async (request) => {
      const query = queryOf(request);
      const limit = limitOf(query.limit, DEFAULT_BATCHES_PAGE, MAX_BATCHES_PAGE);
      const batches = (await books().batches(request.clientName)).map((stored) => stored.batch).reverse();
      return pageOf(batches, query.after, limit);
    });
    app.get(`${base}/:id`, async (request) => {
      const id = idOf(request);
      const stored = await books().batch(id, request.clientName);
      if (stored === undefined) throw batchNotFound(id);
      return stored.batch;
    });
    app.post(`${base}/:id/cancel`, async (request) => {
      const id = idOf(request);
      if ((await books().batch(id, request.clientName)) === undefined) throw batchNotFound(id);
      const batch = await runner.cancel(id);
      if (batch === undefined) throw batchNotFound(id);
      return batch;
    });
  }
}

/** The upload's file, checked: a `batch` purpose, a UTF-8 text within `batches.max_file_bytes`. */
function uploadedFile(request: FastifyRequest, maxFileBytes: number): UploadedFile {
  if (!isMultipartRequest(request)) {
    throw new InvalidRequestError(uploadExpected({ files: [{ name: "file", isList: false, unnamedAs: "" }] }), {
      code: "invalid_content_type",
    });
  }
  const fields = isRecord(request.body) ? request.body : {};
  const purpose = fields.purpose;
  if (purpose !== "batch") {
    throw new InvalidRequestError(
      `\`purpose\` must be "batch": this gateway keeps files for its Batch API only (got ${describePurpose(purpose)}).`,
      { param: "purpose", code: "invalid_value" },
    );
  }
  const file = fields.file;
  if (!(file instanceof UploadedFile)) {
    throw new InvalidRequestError("`file` is required: the JSONL file, as a file part.", {
      param: "file",
      code: "invalid_value",
    });
  }
  if (file.bytes.length > maxFileBytes) {
    throw new PayloadTooLargeError(
      `The file is larger than the limit of ${maxFileBytes} bytes (batches.max_file_bytes).`,
      { param: "file" },
    );
  }
  // Checked in place: decoded, a 100 MB file became a 100 MB string, built and dropped while every request waited.
  if (!isUtf8(file.bytes)) {
    throw new InvalidRequestError("`file` must be a JSONL text file (UTF-8): one JSON request per line.", {
      param: "file",
      code: "invalid_value",
    });
  }
  return file;
}

/** What came as `purpose`, for its error: a field sent twice is a list, not "none". */
function describePurpose(purpose: unknown): string {
  if (typeof purpose === "string") return `"${purpose.slice(0, 50)}"`;
  return Array.isArray(purpose) ? "the field more than once" : "none";
}

/**
 * A door with a protocol adapter (Responses): the line translated as its door translates a request, served by the
 * pipeline, its answer translated back (and kept, as a Responses request with `store` is).
 */
function adapterExecutor(runtime: GatewayRuntime, loadAdapter: () => Promise<ProtocolAdapter>): LineExecutor {
  return async (call) => {
    const adapter = await loadAdapter();
    const { background: _background, ...body } = unstreamed(call.body);
    const startedAtMs = runtime.clock.now();
    let exchange: Awaited<ReturnType<ProtocolAdapter["begin"]>>;
    try {
      exchange = await adapter.begin(body, call.client ?? null);
    } catch (error) {
      throw publishRefusal(
        runtime,
        {
          requestId: call.requestId,
          endpoint: adapter.endpoint.name,
          clientProtocol: adapter.endpoint.protocol,
          startedAtMs,
          body,
          supportsStream: false,
          client: call.client,
        },
        error,
      );
    }
    // Planned on the chat body the pipeline gets: its prompt's tokens are those of the translated conversation.
    const { waitMs, checked } = call.waitBeforeSending(adapter.endpoint, exchange.chatBody);
    if (waitMs > 0) return { waitMs };
    const result = await handleChatRequest(runtime, adapter.endpoint, exchange.chatBody, {
      requestId: call.requestId,
      clientProtocol: adapter.endpoint.protocol,
      receivedAtMs: startedAtMs,
      signal: call.signal,
      client: call.client,
      log: call.log,
      batchId: call.batchId,
      onReserved: call.onReserved,
      native: exchange.native,
      recallToolCallExtras: exchange.recallToolCallExtras,
      checkedLine: checked,
      truncatesToFit: exchange.truncatesToFit,
      // The line's record waits for the door's keeping, as a live request's does: it says whether it was kept.
      holdsRecord: exchange.answered !== undefined,
      // Else it waits for the translation: published by the release below, with what the line's output says.
      writesBeforeRecord: true,
    });
    if (result.kind === "stream") {
      await result.cancel();
      throw new InvalidRequestError("A batch line was answered with a stream.");
    }
    let isAnswerNotKept = false;
    let failure: GatewayError | undefined;
    let upstreamAnswer: unknown;
    try {
      upstreamAnswer = parseAnswerBody(result.bodyText);
      const answer = exchange.answer(upstreamAnswer, result.headers["x-gateway-model"] ?? "", result.api);
      // Keeping that throws fails the line (as before), and its answer was not kept.
      isAnswerNotKept = true;
      await exchange.answered?.(answer);
      isAnswerNotKept = exchange.isAnswerNotKept?.() === true;
      return { status: result.status, body: answer };
    } catch (error) {
      // The line's output is that error's line (batch-line-run.ts), not the answer: its record says the same. It said
      // 200 `success` when the answer could not be translated (or kept). Final for the line: the upstream answered.
      if (error instanceof ClientAbortedError) throw error;
      failure = answeredBeforeFailure.mark(error, upstreamAnswer);
      throw failure;
    } finally {
      result.releaseRecord?.({ isAnswerNotKept, failure });
    }
  };
}

interface ListQuery {
  readonly limit?: string;
  readonly after?: string;
  readonly order?: string;
  readonly purpose?: string;
}

function queryOf(request: FastifyRequest): ListQuery {
  return isRecord(request.query) ? (request.query as ListQuery) : {};
}

function limitOf(value: string | undefined, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  const limit = Number(value);
  if (!Number.isInteger(limit) || limit < 1 || limit > max) {
    throw new InvalidRequestError(`\`limit\` must be an integer from 1 to ${max}.`, {
      param: "limit",
      code: "invalid_value",
    });
  }
  return limit;
}

async function foundFile(books: BatchBooks, request: FastifyRequest): Promise<StoredFile> {
  const id = idOf(request);
  const file = await books.file(id, request.clientName);
  if (file === undefined) throw fileNotFound(id);
  return file;
}

function idOf(request: FastifyRequest): string {
  return (request.params as { id: string }).id;
}

function bodyOf(request: FastifyRequest): Record<string, unknown> {
  if (!isRecord(request.body)) {
    throw new InvalidRequestError("The request body must be a JSON object.", { code: "invalid_body" });
  }
  return request.body;
}

function fileNotFound(id: string, param = "file_id"): ResourceNotFoundError {
  return new ResourceNotFoundError(`No such File object: ${id.slice(0, 200)}`, { param, code: "file_not_found" });
}

/**
 * `batches.max_files` has no room: every file kept is a running batch's input or the room its end's output and error
 * files need (the oldest other files were removed to make room already). A 429, as `max_batches`: room comes back
 * once a batch ends.
 */
function tooManyFiles(maxFiles: number): RateLimitedError {
  return new RateLimitedError(
    `Too many files kept (batches.max_files: ${maxFiles}): the others are running batches' input files and the room their output and error files need; retry once a batch has finished, or delete a file.`,
  );
}

function batchNotFound(id: string): ResourceNotFoundError {
  return new ResourceNotFoundError(`No such Batch object: ${id.slice(0, 200)}`, {
    param: "batch_id",
    code: "batch_not_found",
  });
}
