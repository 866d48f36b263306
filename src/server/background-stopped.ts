// A background response whose run stopped without an end (its process killed, crashed or restarted): the reader that
// finds it so (its heartbeats, the run's lease, stale for BACKGROUND_STALE_MS, and no run of it in this process) writes
// it `failed`, as every reader already shows it (background.ts backgroundView), and takes out of its conversation the
// items its answer had added (StoredResponse.joining: a process killed between adding them and its final write left
// them there, the conversation holding half of a turn that never completed). The write is a compare and set against
// the state read: of several readers (replicas on one Redis, or one state file) one writes it and takes the items
// out; the others find it changed and read what it wrote. A run still going (on another replica) renews its lease
// every BACKGROUND_HEARTBEAT_MS, so it is never found stopped.
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
  if ((await kept.putIfUnchanged(failed, keptToken(whole))) === undefined) {
    // Another reader (or the run, a moment late) changed it first: what it wrote stands.
    return (await kept.get(id, undefined, BEFORE_WRITE)) ?? stored;
  }
  log.warn(
    { responseId: id, conversationId: joining?.conversationId, itemsTakenOut: joining?.itemIds.length ?? 0 },
    "background response: its run stopped without an end (its gateway process died); kept as failed",
  );
  if (joining !== undefined) {
    // Failing here is said (the answer's items stay); the response reads failed all the same.
    await conversations.removeAfterRefusal(joining.conversationId, whole.client ?? null, joining.itemIds);
  }
  return failed;
}

/** Kept `queued`/`in_progress`, not run here, and shown failed: its lease (heartbeat) ran out. */
function isStopped(runtime: GatewayRuntime, stored: StoredResponse): boolean {
  return !isTerminal(stored.response.status) && viewOf(runtime, stored).status === "failed";
}
