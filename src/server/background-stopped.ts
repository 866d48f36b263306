// A background response whose run stopped without an end (its process killed, crashed or restarted): the reader that
// finds it so (its heartbeats, the run's lease, stale for BACKGROUND_STALE_MS, and no run of it in this process) writes
// it `failed`, as every reader already shows it (background.ts backgroundView), and takes out of its conversation the
// items its answer had added (StoredResponse.joining: a process killed between adding them and its final write left
// them there, the conversation holding half of a turn that never completed). The write is a compare and set against
// the state read: of several readers (replicas on one Redis, or one state file) one writes it; the others find it
// changed and read what it wrote. A run still going (on another replica) renews its lease every
// BACKGROUND_HEARTBEAT_MS, so it is never found stopped; one whose final write is still being tried past
// BACKGROUND_LATE_WRITE_MS (its heartbeats end when the final write starts) is refused it and keeps itself failed and
// out of its conversation (background-final-write.ts), as the reader acting after BACKGROUND_STALE_MS does.
import type { FastifyBaseLogger } from "fastify";
import type { GatewayRuntime } from "../pipeline/gateway-runtime.ts";
import { isTerminal, stoppedRun, stoppedRunEvents } from "../protocols/responses/background.ts";
import type { Conversations } from "../protocols/responses/conversations.ts";
import { BEFORE_WRITE } from "../protocols/responses/kept-read-options.ts";
import { type KeptResponses, keptToken } from "../protocols/responses/kept-responses.ts";
import type { StoredResponse } from "../protocols/responses/response-store.ts";
import { viewOf } from "./background-readers.ts";

/**
 * `stored` as it now is: written `failed` (and its joined items taken out) when its run is found stopped, else as
 * read. `kept` is the reader's (forClient); a store that fails is the caller's error, as its read would have been.
 */
export async function settledRun(
  runtime: GatewayRuntime,
  kept: KeptResponses,
  conversations: Conversations,
  stored: StoredResponse,
  log: FastifyBaseLogger,
): Promise<StoredResponse> {
  if (!isStopped(runtime, stored)) return stored;
  const id = stored.response.id;
  // Read whole (every event): a streamed one's kept events get the end a failed run's stream has.
  const whole = await kept.get(id, undefined, BEFORE_WRITE);
  if (whole === undefined || !isStopped(runtime, whole)) return whole ?? stored;
  const { heartbeatAtMs: _heartbeatAtMs, joining, ...rest } = whole;
  const failed: StoredResponse = {
    ...rest,
    response: { ...stoppedRun(whole.response), background: true },
    ...(whole.events === undefined
      ? {}
      : { events: [...whole.events, ...stoppedRunEvents(whole.response, whole.events.length)] }),
  };
  // The items first: a removal that fails (the store failing) leaves the row as it was, for the next reader to try
  // again; written failed first, a failed removal left the items in for good. Taking out items already gone changes
  // nothing, so two readers both doing it is harmless; the compare and set below decides which one writes.
  if (joining !== undefined) {
    const isOut = await conversations.removeAfterRefusal(joining.conversationId, whole.client ?? null, joining.itemIds);
    if (!isOut) return whole;
  }
  if ((await kept.putIfUnchanged(failed, keptToken(whole))) === undefined) {
    // Another reader (or the run, a moment late) changed it first: what it wrote stands.
    return (await kept.get(id, undefined, BEFORE_WRITE)) ?? stored;
  }
  log.warn(
    { responseId: id, conversationId: joining?.conversationId, itemsTakenOut: joining?.itemIds.length ?? 0 },
    "background response: its run stopped without an end (its gateway process died); kept as failed",
  );
  return failed;
}

/** Kept `queued`/`in_progress`, not run here, and shown failed: its lease (heartbeat) ran out. */
function isStopped(runtime: GatewayRuntime, stored: StoredResponse): boolean {
  return !isTerminal(stored.response.status) && viewOf(runtime, stored).status === "failed";
}
