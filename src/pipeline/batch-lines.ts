// A batch line's pieces (batch-runner.ts): how a line is served by a door the pipeline serves as is, and what its
// answer adds to the batch's usage.
import { GatewayError, InternalError } from "../errors/gateway-error.ts";
import { toGatewayError } from "../errors/render-error.ts";
import type { Logger } from "../logger.ts";
import type { BatchUsage } from "../protocols/batches/batch-objects.ts";
import { handleChatRequest } from "./chat-request.ts";
import type { EndpointSpec } from "./endpoints.ts";
import type { GatewayRuntime } from "./gateway-runtime.ts";
import { type CheckedLine, parseAnswerBody } from "./pipeline-types.ts";

/** One line as the pipeline gets it. */
export interface LineCall {
  readonly body: Record<string, unknown>;
  readonly client: string | undefined;
  readonly requestId: string;
  readonly batchId: string;
  readonly signal: AbortSignal;
  readonly log: Logger;
  /**
   * ms the line must wait before it is sent (0: send it now), from its plan on the body the pipeline is given (a
   * Responses line's translated one): asked by the executor once that body is known, before the pipeline has it. With
   * the body as checked and its facts, for the pipeline (RequestContext.checkedLine: not parsed and estimated twice).
   */
  readonly waitBeforeSending: (endpoint: EndpointSpec, body: unknown) => LineCheck;
  /** Its tokens are counted in a budget now (RequestContext.onReserved). */
  readonly onReserved: () => void;
}

/** What a line's look before sending says: how long to wait, and the checked body (none when it does not parse). */
export interface LineCheck {
  readonly waitMs: number;
  readonly checked: CheckedLine | undefined;
}

/** A line's answer: the status and JSON body the front door would have answered with. */
export interface LineAnswer {
  readonly status: number;
  readonly body: unknown;
}

/** A line not sent, because no candidate may serve it now (a limit): it waits this long, off its slot, and no record. */
export interface LineWait {
  readonly waitMs: number;
}

/**
 * Serves one line as its front door would, or says how long it must wait first (call.waitBeforeSending); throws a
 * GatewayError when the door would answer with an error.
 */
export type LineExecutor = (call: LineCall) => Promise<LineAnswer | LineWait>;

/** The upstream answers a line's door failed on after they came (batch-line-run.ts: the line's result is that error). */
const answeredBefore = new WeakMap<GatewayError, { readonly answer: unknown }>();

export const answeredBeforeFailure = {
  /**
   * `error`, thrown by a door's own step after the upstream answered the line (translating or keeping the answer), as
   * the line's error, final: tried again, the line was answered (and charged) again and failed alike, up to
   * MAX_SERVER_ERROR_TRIES times, as the same answer makes a translator throw again.
   */
  mark(error: unknown, answer: unknown): GatewayError {
    const failure = toGatewayError(error);
    answeredBefore.set(failure, { answer });
    return failure;
  },
  /** The upstream answer (for its usage) of an error `mark` made final, else undefined. */
  of(error: unknown): { readonly answer: unknown } | undefined {
    return error instanceof GatewayError ? answeredBefore.get(error) : undefined;
  },
};

export interface MutableUsage {
  input: number;
  output: number;
  cached: number;
  reasoning: number;
}

/** A door served by the pipeline as is (chat, completions, embeddings): the line's body is the request's. */
export function pipelineExecutor(runtime: GatewayRuntime, endpoint: EndpointSpec): LineExecutor {
  return async (call) => {
    const body = unstreamed(call.body);
    const { waitMs, checked } = call.waitBeforeSending(endpoint, body);
    if (waitMs > 0) return { waitMs };
    const result = await handleChatRequest(runtime, endpoint, body, {
      requestId: call.requestId,
      clientProtocol: endpoint.protocol,
      signal: call.signal,
      client: call.client,
      log: call.log,
      batchId: call.batchId,
      onReserved: call.onReserved,
      checkedLine: checked,
    });
    if (result.kind === "stream") {
      await result.cancel();
      throw new InternalError("A batch line was answered with a stream.");
    }
    return { status: result.status, body: parseAnswerBody(result.bodyText) };
  };
}

/** A batch line's answer is one JSON body: `stream` is dropped (OpenAI's batches do not stream either). */
export function unstreamed(body: Record<string, unknown>): Record<string, unknown> {
  const { stream: _stream, stream_options: _options, ...rest } = body;
  return rest;
}

/** Bytes of a file's part: lines are joined and encoded this many at most at a time (a few ms of the event loop). */
const FILE_PART_BYTES = 256 * 1024;

/**
 * An output or error file built a line at a time: the lines are encoded into parts of about FILE_PART_BYTES as they
 * come, never joined into one string (50,000 answers joined, then encoded, then written at once froze the event loop
 * for seconds at a batch's end).
 */
export class FileParts {
  readonly parts: Buffer[] = [];
  #lines: string[] = [];
  #pendingLength = 0;
  #count = 0;

  get count(): number {
    return this.#count;
  }

  add(line: string): void {
    this.#lines.push(line);
    this.#pendingLength += line.length + 1;
    this.#count += 1;
    if (this.#pendingLength >= FILE_PART_BYTES) this.#flush();
  }

  /** Every part, the last one included (call once every line was added). */
  finish(): readonly Buffer[] {
    this.#flush();
    return this.parts;
  }

  get bytes(): number {
    return this.parts.reduce((sum, part) => sum + part.length, 0);
  }

  #flush(): void {
    if (this.#lines.length === 0) return;
    this.parts.push(Buffer.from(`${this.#lines.join("\n")}\n`));
    this.#lines = [];
    this.#pendingLength = 0;
  }
}

/** Lets the event loop serve what waits (requests, timers) between two steps of a long piece of work. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Chat's `usage` (prompt/completion tokens) or the Responses API's (input/output tokens). */
export function addUsage(into: MutableUsage, body: unknown): void {
  if (typeof body !== "object" || body === null) return;
  const usage = (body as { usage?: unknown }).usage;
  if (typeof usage !== "object" || usage === null) return;
  const fields = usage as Record<string, unknown>;
  const number = (value: unknown): number => (typeof value === "number" && Number.isFinite(value) ? value : 0);
  into.input += number(fields.prompt_tokens ?? fields.input_tokens);
  into.output += number(fields.completion_tokens ?? fields.output_tokens);
  const promptDetails = (fields.prompt_tokens_details ?? fields.input_tokens_details) as
    | Record<string, unknown>
    | undefined;
  const outputDetails = (fields.completion_tokens_details ?? fields.output_tokens_details) as
    | Record<string, unknown>
    | undefined;
  into.cached += number(promptDetails?.cached_tokens);
  into.reasoning += number(outputDetails?.reasoning_tokens);
}

export function usageOf(before: BatchUsage, added: MutableUsage): BatchUsage {
  const input = before.input_tokens + added.input;
  const output = before.output_tokens + added.output;
  return {
    input_tokens: input,
    input_tokens_details: { cached_tokens: before.input_tokens_details.cached_tokens + added.cached },
    output_tokens: output,
    output_tokens_details: { reasoning_tokens: before.output_tokens_details.reasoning_tokens + added.reasoning },
    total_tokens: input + output,
  };
}
