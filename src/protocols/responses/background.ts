// Responses background mode (`background: true`), the protocol's side: the queued answer, the stream events kept
// for a reconnecting client (`GET /v1/responses/{id}?stream=true&starting_after=N`), and how a kept response whose
// run stopped without an end (its process gone) reads. The run itself is the server's (background-responses.ts).
import { type GatewayError, InternalError } from "../../errors/gateway-error.ts";
import { isRecord, parseJsonRecord } from "../../is-record.ts";
import { namedEvent } from "../sse.ts";
import { errorEventOf, type ResponseObject, type ResponseStatus, responseErrorOf } from "./response-object.ts";
import type { StoredResponse } from "./response-store.ts";

/**
 * ms between the writes a running background response makes of its state (its events so far, and that it is still
 * running): what another replica reads when it is asked for it, and how a cancel made there reaches the run.
 */
export const BACKGROUND_HEARTBEAT_MS = 1_000;
/**
 * ms after its last heartbeat a kept `queued`/`in_progress` response whose run is not in this process is shown as
 * failed: the process that ran it is gone (a crash, a kill); a live run writes every BACKGROUND_HEARTBEAT_MS.
 */
export const BACKGROUND_STALE_MS = 15_000;
/**
 * ms after its last write landed a run may no longer write its response as running or finished (a store shared with
 * other processes refuses the write): past BACKGROUND_STALE_MS a reader elsewhere shows it failed, and a process only
 * paused (SIGSTOP, a VM frozen, a debugger) that wrote it back as in_progress or completed would undo what was shown.
 * Such a run stops and keeps the failure that was (or may have been) shown. The 5 s below the stale mark cover two
 * hosts' clocks and a write in flight; a live run writes every BACKGROUND_HEARTBEAT_MS.
 */
export const BACKGROUND_LATE_WRITE_MS = 10_000;

export function isTerminal(status: ResponseStatus): boolean {
  return status !== "queued" && status !== "in_progress";
}

/** SSE text (one or more `event:`/`data:` blocks) as single events, their response snapshots marked `background`. */
export function backgroundEvents(text: string): string[] {
  const events: string[] = [];
  for (const block of text.split("\n\n")) {
    if (block.trim() === "") continue;
    events.push(markBackground(block));
  }
  return events;
}

/** The events that end a response's stream (one per stream, its last). */
const ENDING_EVENTS = new Set(["response.completed", "response.incomplete", "response.failed"]);

export function isEndingEvent(event: string): boolean {
  return ENDING_EVENTS.has(/^event: (.*)$/m.exec(event)?.[1] ?? "");
}

/**
 * The events a running response's heartbeat keeps: those before its ending event. Only the final write (a compare
 * and set, which a cancel that landed first refuses) keeps the ending; a heartbeat running just after the stream
 * ended would otherwise keep `response.completed` beside a row that may yet be cancelled.
 */
export function runningEvents(events: readonly string[]): readonly string[] {
  const end = events.findIndex(isEndingEvent);
  return end === -1 ? events : events.slice(0, end);
}

/**
 * A run's events as its heartbeats keep them (`runningEvents`), gathered as they come: each heartbeat hands over only
 * the events since the one before (`seen` on), and gets one list, extended in place. runningEvents over a copy of
 * every event each second was O(n^2) over a long run (a regular expression per event, each time). The list must be
 * used before the next `add` (a run's writes go one at a time; a store that keeps events copies them).
 */
export class RunningEvents {
  readonly #list: string[] = [];
  #seen = 0;
  #hasEnded = false;

  /** How many of the run's events were handed over so far. */
  get seen(): number {
    return this.#seen;
  }

  /** The run's events from `seen` on; returns those before its ending, so far (the same list each time). */
  add(events: readonly string[]): readonly string[] {
    this.#seen += events.length;
    for (const event of events) {
      if (this.#hasEnded || isEndingEvent(event)) {
        this.#hasEnded = true;
        break;
      }
      this.#list.push(event);
    }
    return this.#list;
  }
}

/**
 * A cancelled run's events: those before its own ending (if it had one), then `response.incomplete` carrying the
 * cancelled response, as a cancel mid-stream ends (stream-mapping.ts `cancel`). A cancel that landed between the
 * run's last heartbeat and its end wins: the events then agree with the status instead of ending `completed`. Its
 * sequence number is its index, as a replay from `starting_after` counts.
 */
export function cancelledEvents(events: readonly string[], cancelled: ResponseObject): string[] {
  const before = [...runningEvents(events)];
  const response = { ...cancelled, background: true };
  const sequence = before.length;
  return [
    ...before,
    namedEvent("response.incomplete", { type: "response.incomplete", sequence_number: sequence, response }),
  ];
}

function markBackground(block: string): string {
  const name = /^event: (.*)$/m.exec(block)?.[1];
  const data = /^data: (.*)$/m.exec(block)?.[1];
  if (name === undefined || data === undefined) return `${block}\n\n`;
  const parsed = parseJsonRecord(data);
  if (parsed === undefined || !isRecord(parsed.response)) return `${block}\n\n`;
  return namedEvent(name, { ...parsed, response: { ...parsed.response, background: true } });
}

/**
 * The kept response as a reader sees it: one still `queued`/`in_progress` that no process here runs and whose
 * heartbeat is older than BACKGROUND_STALE_MS is failed (never `in_progress` forever after a crash or restart).
 */
export function backgroundView(stored: StoredResponse, isRunHere: boolean, nowMs: number): ResponseObject {
  const { response } = stored;
  if (response.background !== true || isTerminal(response.status) || isRunHere) return response;
  if (nowMs - (stored.heartbeatAtMs ?? 0) <= BACKGROUND_STALE_MS) return response;
  return stoppedRun(response);
}

/** Why a run is failed when its process stopped writing it (killed, crashed, or paused past BACKGROUND_LATE_WRITE_MS). */
export function runStoppedError(): InternalError {
  return new InternalError(
    "The gateway instance running this background response stopped before it finished (it was restarted, killed or paused); create it again.",
  );
}

/** The response as failed by runStoppedError (OpenAI's code for it, responseErrorOf: `server_error`). */
export function stoppedRun(response: ResponseObject): ResponseObject {
  return { ...response, status: "failed", error: responseErrorOf(runStoppedError()) };
}

/**
 * The end of a stream whose run stopped without one (a reader elsewhere found it stale, backgroundView): the `error`
 * event and `response.failed` carrying the response as GET shows it, numbered on from `sequence` (the run's events
 * before them), as a run that failed itself ends its stream (stream-mapping.ts `fail`).
 */
export function stoppedRunEvents(response: ResponseObject, sequence: number): string[] {
  const failed = { ...stoppedRun(response), background: true };
  return [
    namedEvent("error", { type: "error", sequence_number: sequence, ...errorEventOf(runStoppedError()) }),
    namedEvent("response.failed", { type: "response.failed", sequence_number: sequence + 1, response: failed }),
  ];
}

/**
 * The end of a followed stream whose response can no longer be read (its store unreachable: a 503; deleted or
 * evicted meanwhile: a 404): the `error` event alone, numbered on from `sequence`, as a GET would have been refused.
 * No `response.failed`: the run may still be going (a follower may resume with `starting_after` once it can read).
 */
export function unreadableRunEvent(error: GatewayError, sequence: number): string {
  return namedEvent("error", { type: "error", sequence_number: sequence, ...errorEventOf(error) });
}

/**
 * The end of a followed stream whose kept response is `cancelled` while its events have no end: cancelled from
 * another replica (a run elsewhere is marked cancelled in the store) before its run wrote its own end, or when its
 * run will never write one (its replica died). `response.incomplete` carrying the cancelled response, numbered on
 * from `sequence`, as cancelledEvents ends a cancelled run's events.
 */
export function cancelledEndEvent(cancelled: ResponseObject, sequence: number): string {
  const response = { ...cancelled, background: true };
  return namedEvent("response.incomplete", { type: "response.incomplete", sequence_number: sequence, response });
}
