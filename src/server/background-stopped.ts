// A background response whose run stopped without an end (its process killed, crashed or restarted): the reader that
// finds it so (its heartbeats, the run's lease, stale for BACKGROUND_STALE_MS, and no run of it in this process) writes
// it `failed`, as every reader already shows it (background.ts backgroundView), and takes out of its conversation the
// items its answer had added (StoredResponse.joining: a process killed between adding them and its final write left
// them there, the conversation holding half of a turn that never completed). The write is a compare and set against
// the state read: of several readers (replicas on one Redis, or one state file) one writes it; the others find it
// changed and read what it wrote. The items are taken out after that write (the row names them until they are out:
// a removal that fails is tried again by the next reader). A run still going (on another replica) renews its lease
// every BACKGROUND_HEARTBEAT_MS, so it is never found stopped while the gateways' clocks agree (its heartbeat is
// stamped by the run's clock, read against the reader's); one whose final write is still being tried past
// BACKGROUND_LATE_WRITE_MS (its heartbeats end when the final write starts) is refused it and keeps itself failed and
// out of its conversation (background-final-write.ts), as the reader acting after BACKGROUND_STALE_MS does.
import type { FastifyBaseLogger } from "fastify";
import { ServiceUnavailableError } from "../errors/gateway-error.ts";
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
  if (hasItemsLeft(runtime, stored)) return await takenOut(kept, conversations, stored);
  if (!isStopped(runtime, stored)) return stored;
  const id = stored.response.id;
  // Read whole (every event): a streamed one's kept events get the end a failed run's stream has.
  const whole = await kept.get(id, undefined, BEFORE_WRITE);
  if (whole === undefined || !isStopped(runtime, whole)) return whole ?? stored;
  const { heartbeatAtMs: _heartbeatAtMs, ...rest } = whole;
  // Still naming its items (`joining`): taken out only once this write won. The items went first before (2026-12-08,
  // eda99ae5): a reader that then lost the compare and set to the run's own final write (completed: a run alive on a
  // replica whose clock is behind this one's, so that its last heartbeat looks older here) had taken a completed
  // answer's items out of its conversation. Failed and still naming them, the row tells the next reader to try again
  // when the removal below fails (or this process dies before it).
  const failed: StoredResponse = {
    ...rest,
    response: { ...stoppedRun(whole.response), background: true },
    ...(whole.events === undefined
      ? {}
      : { events: [...whole.events, ...stoppedRunEvents(whole.response, whole.events.length)] }),
  };
  if ((await kept.putIfUnchanged(failed, keptToken(whole))) === undefined) {
    // Another reader (or the run, a moment late) changed it first: what it wrote stands.
    const now = (await kept.get(id, undefined, BEFORE_WRITE)) ?? stored;
    return hasItemsLeft(runtime, now) ? await takenOut(kept, conversations, now) : now;
  }
  log.warn(
    {
      responseId: id,
      conversationId: whole.joining?.conversationId,
      itemsTakenOut: whole.joining?.itemIds.length ?? 0,
    },
    "background response: its run stopped without an end (its gateway process died); kept as failed",
  );
  return whole.joining === undefined ? failed : await takenOut(kept, conversations, failed);
}

/**
 * `stored` (kept failed or cancelled, still naming the items its answer added) with those items taken out of its
 * conversation and no longer named; as it is when the removal fails (the next reader tries again). Taking out items
 * already gone changes nothing, so two readers both doing it is harmless; the compare and set that drops `joining` is
 * against the row as read whole (a streamed one's events are written with it).
 */
async function takenOut(
  kept: KeptResponses,
  conversations: Conversations,
  stored: StoredResponse,
): Promise<StoredResponse> {
  const { joining } = stored;
  if (joining === undefined) return stored;
  if (!(await conversations.removeAfterRefusal(joining.conversationId, stored.client ?? null, joining.itemIds))) {
    return stored;
  }
  const whole = await kept.get(stored.response.id, undefined, BEFORE_WRITE);
  if (whole?.joining === undefined) return whole ?? stored;
  const { joining: _joining, ...left } = whole;
  // Lost: another reader dropped it first, or the run (alive after all) wrote its own end, which names none.
  if ((await kept.putIfUnchanged(left, keptToken(whole))) === undefined) {
    return (await kept.get(stored.response.id, undefined, BEFORE_WRITE)) ?? stored;
  }
  return left;
}

/**
 * Before a DELETE of `stored` (read by it): the items its run named as joining its conversation taken out, as the
 * run's own final write takes them out when it finds its response deleted. Nobody else can once the row is gone: a
 * run whose process died before its lease ran out (no reader could yet tell it stopped) left them in for good. Not
 * for a run here (the DELETE cancels it first, and its final write decides). Throws when the removal fails, before
 * anything is deleted: the row still names them, and the client tries the DELETE again.
 */
export async function joinedItemsOutBeforeDelete(
  runtime: GatewayRuntime,
  conversations: Conversations,
  stored: StoredResponse,
): Promise<void> {
  const { joining } = stored;
  if (joining === undefined || runtime.backgroundRuns.has(stored.response.id)) return;
  if (!(await conversations.removeAfterRefusal(joining.conversationId, stored.client ?? null, joining.itemIds))) {
    throw new ServiceUnavailableError(
      `Response '${stored.response.id}' was not deleted: the items its answer added to its conversation could not be taken out (the store failed); try again.`,
    );
  }
}

/**
 * Kept failed or cancelled (its answer is not what was kept: it joins no conversation) and still naming the items its
 * answer added, not run here: a reader that wrote it failed and could not take them out (the store failing, or its
 * process dying), or a cancel from another replica that landed while its run was adding them (a cancel keeps the
 * row's fields) and that run's process died before its final write took them out. A run here takes its own out; one
 * alive elsewhere takes them out too once its final write sees the cancel (taking them out twice is harmless).
 */
function hasItemsLeft(runtime: GatewayRuntime, stored: StoredResponse): boolean {
  const { status } = stored.response;
  return (
    stored.joining !== undefined &&
    (status === "failed" || status === "cancelled") &&
    !runtime.backgroundRuns.has(stored.response.id)
  );
}

/** Kept `queued`/`in_progress`, not run here, and shown failed: its lease (heartbeat) ran out. */
function isStopped(runtime: GatewayRuntime, stored: StoredResponse): boolean {
  return !isTerminal(stored.response.status) && viewOf(runtime, stored).status === "failed";
}
