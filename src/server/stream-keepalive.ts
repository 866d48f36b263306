// Keep-alives for streams (`server.stream_keepalive_ms`, docs/streaming.md "Keep-alives"): reverse proxies and load
// balancers cut a connection that carried no byte for a while (nginx's `proxy_read_timeout` and AWS ALB 60 s,
// Cloudflare 100 s), and the client then loses an answer the gateway would still have served. A stream may be
// silent that long before its answer starts (queued for a rate limit, failing over, waiting for a first token) and
// after it (hidden reasoning, a slow upstream).
import type { ServerResponse } from "node:http";
import type { FastifyRequest } from "fastify";
import { ClientAbortedError, type GatewayError } from "../errors/gateway-error.ts";
import { toGatewayError } from "../errors/render-error.ts";
import { namedEvent } from "../protocols/sse.ts";
import { type RequestTimer, requestTimers } from "../request-timers.ts";
import { logRequestError } from "./error-handler.ts";
import { toHeaderValue } from "./header-value.ts";

/** What the OpenAI-dialect streams (Chat Completions, legacy completions, Responses) get: an SSE comment, skipped by every SSE parser. */
export const SSE_KEEP_ALIVE = ": keep-alive\n\n";
/** What Anthropic's API sends, and its SDK skips: an `event: ping`. */
export const MESSAGES_KEEP_ALIVE = namedEvent("ping", { type: "ping" });

/**
 * Writes `text` whenever the client has had nothing for `intervalMs`. Writers call `wrote()` after each write; a
 * client whose socket is full (backpressure) gets no keep-alive, as it is not reading what it has. One timer per
 * interval, not per write: a busy stream pays a clock read per batch.
 */
export class KeepAlive {
  readonly #response: ServerResponse;
  readonly #intervalMs: number;
  readonly #text: string;
  #lastWriteAtMs = 0;
  #timer: RequestTimer | undefined;

  constructor(response: ServerResponse, intervalMs: number, text: string) {
    this.#response = response;
    this.#intervalMs = intervalMs;
    this.#text = text;
  }

  /** From now on (the head is written); idempotent. */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#lastWriteAtMs = Date.now();
    this.#arm(this.#intervalMs);
  }

  wrote(): void {
    this.#lastWriteAtMs = Date.now();
  }

  /** Sends one keep-alive now: the early head's first bytes (Node holds a head until the body's first write). */
  send(): void {
    if (this.#response.destroyed || this.#response.writableEnded) return;
    this.#response.write(this.#text);
    this.wrote();
  }

  stop(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
  }

  #arm(delayMs: number): void {
    // Never holds the process (request-timers.ts): the request itself does (open connection, pending pipeline).
    this.#timer = requestTimers.after(delayMs, () => this.#tick());
  }

  #tick(): void {
    const response = this.#response;
    if (response.destroyed || response.writableEnded) {
      this.#timer = undefined;
      return;
    }
    const silentMs = Date.now() - this.#lastWriteAtMs;
    if (silentMs >= this.#intervalMs) {
      if (!response.writableNeedDrain) this.send();
      else this.wrote();
      this.#arm(this.#intervalMs);
      return;
    }
    this.#arm(this.#intervalMs - silentMs);
  }
}

/** Whether the request, as sent, asks for an SSE answer (the endpoint's rule: `stream: true`, speech's `stream_format: "sse"`). */
export function asksForEvents(
  endpoint: { readonly supportsStream: boolean; readonly isStreamAsked?: (body: Record<string, unknown>) => boolean },
  body: unknown,
): boolean {
  if (!endpoint.supportsStream || typeof body !== "object" || body === null || Array.isArray(body)) return false;
  const fields = body as Record<string, unknown>;
  return endpoint.isStreamAsked?.(fields) ?? fields.stream === true;
}

/**
 * The early head of a stream still waiting for its answer. `wait` resolves or rejects as `pending` does; if that
 * takes `intervalMs`, `commit` is called first (it writes the status line and headers), then a keep-alive goes out
 * at once and every interval until the answer is there (and on through `keepAlive`, which the stream's writer goes on
 * using). `committedAtMs` is read by the pipeline when it completes the request's record (RequestContext.earlyCommit).
 */
export class EarlyCommit {
  readonly keepAlive: KeepAlive;
  readonly #response: ServerResponse;
  readonly #intervalMs: number;
  #committedAtMs: number | undefined;
  #knownHeaders: Record<string, string> = {};
  /** The lookup whose finding the head should say (tracksLookup): none asked, under way, or settled. */
  #lookup: "none" | "pending" | "settled" = "none";

  /** `knownHeaders`: the answer's headers the door knows before any candidate answers (its own, the request id's). */
  constructor(response: ServerResponse, intervalMs: number, text: string, knownHeaders: Record<string, string> = {}) {
    this.#response = response;
    this.#intervalMs = intervalMs;
    this.keepAlive = new KeepAlive(response, intervalMs, text);
    this.knows(knownHeaders);
  }

  /**
   * Headers the answer will carry whoever serves it, learned before the commit (the pipeline's cache miss): the early
   * head carries them. Made safe to write here, as the head is written in a timer where nothing would catch a throw.
   */
  knows(headers: Readonly<Record<string, string>>): void {
    if (this.isCommitted) return;
    for (const [name, value] of Object.entries(headers)) this.#knownHeaders[name] = toHeaderValue(value);
  }

  /**
   * `settled` finds what the head should say (the answer cache's lookup in Redis: `x-gateway-cache`, a hit or a miss).
   * Settled by the time the head is due, the head says it (wait). Still under way, it does not hold the head: the
   * keep-alive interval is the longest the operator lets a client go without a byte, and the lookup's own timeout
   * (state.redis_command_timeout_ms) may be longer (until 2026-12-07 the head waited for it, and a proxy whose idle
   * timeout lay between the two cut the connection). The head then goes out without `x-gateway-cache`.
   */
  tracksLookup(settled: Promise<unknown>): void {
    if (this.isCommitted) return;
    this.#lookup = "pending";
    const release = (): void => {
      this.#lookup = "settled";
    };
    void settled.then(release, release);
  }

  /**
   * What the answer's head (`headers`) says that the early head could not: its `x-gateway-cache` found after the head
   * went out (a lookup in Redis still under way when it was due), as an SSE comment for the stream to begin with
   * (every SSE parser skips comments, as the keep-alives). Empty when nothing was left unsaid.
   */
  unsaid(headers: Readonly<Record<string, string>>): string {
    const cache = headers["x-gateway-cache"];
    if (!this.isCommitted || cache === undefined || this.#knownHeaders["x-gateway-cache"] !== undefined) return "";
    return `: x-gateway-cache: ${toHeaderValue(cache)}\n\n`;
  }

  get committedAtMs(): number | undefined {
    return this.#committedAtMs;
  }

  get isCommitted(): boolean {
    return this.#committedAtMs !== undefined;
  }

  /**
   * Ends the stream of a request that failed after its head went out, the one way for every door: the keep-alives
   * stop; a client gone (the pipeline's ClientAbortedError) gets the connection cut; any other failure is logged as
   * its HTTP error would have been (a thrown value that is no GatewayError as a 500 hiding its internals,
   * toGatewayError) and written as the door's in-stream error, `lastEvent`, which ends the response. A door that
   * cannot even write its error (`lastEvent` throws: the bug that failed the request) gets the connection cut: the
   * reply is hijacked and nothing else would end it.
   */
  fail(request: FastifyRequest, error: unknown, lastEvent: (failure: GatewayError) => string): void {
    this.keepAlive.stop();
    const response = this.#response;
    if (error instanceof ClientAbortedError) {
      response.destroy();
      return;
    }
    const failure = toGatewayError(error);
    logRequestError(request, failure);
    // Ended already (a second failure): a write after the end is an `error` event nothing on a hijacked reply hears.
    if (response.destroyed || response.writableEnded) return;
    let text: string;
    try {
      text = lastEvent(failure);
    } catch (cause) {
      request.log.error({ err: cause }, "The stream's in-stream error could not be written; its connection is cut.");
      response.destroy();
      return;
    }
    response.end(text);
  }

  /** `commit` writes the head with the headers known by then (`knows`). */
  async wait<T>(
    pending: Promise<T>,
    commit: (knownHeaders: Record<string, string>) => void,
    nowMs: () => number,
  ): Promise<T> {
    let isAnswered = false;
    const commitNow = (): void => {
      // Answered meanwhile (a held head's lookup found the answer), or a client already gone: no early head.
      if (isAnswered || this.#response.destroyed) return;
      this.#committedAtMs = nowMs();
      try {
        commit(this.#knownHeaders);
      } catch {
        // In a timer nothing would catch it: the head could not go out, so the connection is cut (the client is then
        // gone to the pipeline, which ends and records the request).
        this.#response.destroy();
        return;
      }
      this.keepAlive.send();
      this.keepAlive.start();
    };
    const timer = requestTimers.after(this.#intervalMs, () => {
      // A lookup settled: a macrotask later, its miss is known (knows), or its hit has answered `pending` (a chain of
      // promise callbacks), which then has its own head with `x-gateway-cache: hit`. One under way is not waited for
      // (tracksLookup): a hit it finds later is given in this head's stream.
      if (this.#lookup === "settled") setImmediate(commitNow);
      else commitNow();
    });
    try {
      return await pending;
    } finally {
      isAnswered = true;
      timer.cancel();
    }
  }
}
