// A client's own budgets (`server.api_keys` entries `{ key, name, limits }`, docs/limits.md "Client budgets"):
// checked and charged once per request, before it is routed, in the ledger that keeps the providers' budgets
// (embedded, or Redis shared by every replica). A request over its client's budget is refused at once with the
// time its budget frees up; failover and stream continuation charge nothing more. When the request's record is
// published, the charge's tokens become what the request used and its concurrency slot is freed.
import { RateLimitedError, RequestTooLargeError } from "../errors/gateway-error.ts";
import { isNeverFit, SLOT_RETRY_ADVICE_MS } from "../limits/budget-types.ts";
import { type Denied, isReservation, type Reservation } from "../limits/budgets.ts";
import type { RequestRecord } from "../observability/request-record.ts";
import { type ClientChunks, clientChunksOf, releaseClientChunks } from "./client-chunk-charges.ts";
import type { GatewayRuntime } from "./gateway-runtime.ts";
import type { GatewaySnapshot } from "./snapshot.ts";

/** Shared by the copies a request makes of itself (a reload while queued): one charge per request. */
export interface ClientCharge {
  reservation: Reservation | undefined;
  /**
   * An embeddings batch larger than a whole token budget of its client: the reservation holds its request alone, its
   * tokens are charged chunk by chunk (client-chunk-charges.ts).
   */
  chunks?: ClientChunks | undefined;
}

/**
 * Charges the request's client, if it has budgets: the prompt's estimate up front (the answer's length is not
 * known; the real count replaces it at the end). Throws the refusal when the client is over a budget. Synchronous
 * for a client without budgets (every request of a gateway that sets none) and with the embedded ledger.
 */
export function chargeClient(
  runtime: GatewayRuntime,
  snapshot: GatewaySnapshot,
  client: string | undefined,
  promptTokens: number,
  charge: ClientCharge,
  /** An embeddings request's `input`: a batch larger than a whole token budget of the client may go in chunks. */
  inputs?: unknown,
): void | Promise<void> {
  const scope = client === undefined ? undefined : snapshot.clientScopes.get(client);
  if (scope === undefined || client === undefined) return;
  const settle = (reserved: Reservation | Denied): void | Promise<void> => {
    if (isReservation(reserved)) {
      charge.reservation = reserved;
      return;
    }
    // The ledger's refusal is the binding one (budgets.ts `laterDenial`): a full slot (retry in 100 ms) with a
    // budget spent too names that budget's later wait, and a request larger than a whole token budget is a 413,
    // unless it is an embeddings batch that chunks may serve: then its request alone is charged now.
    const chunks = isNeverFit(reserved.retryAtMs) && charge.chunks === undefined ? chunksOf(inputs) : undefined;
    if (chunks !== undefined) return chunks instanceof Promise ? chunks.then(chargeRequest) : chargeRequest(chunks);
    if (isNeverFit(reserved.retryAtMs)) {
      throw new RequestTooLargeError(
        `This request (~${promptTokens} prompt tokens) is larger than a whole token budget of client \`${client}\` (${reserved.reason}).`,
      );
    }
    // A full slot alone: the gateway looks again in 100 ms, but a slot frees when a request in flight ends, which
    // no clock tells; told 100 ms (`retry-after-ms`), an SDK spent its retries within 200 ms while the slot was held.
    const waitMs = Math.max(0, reserved.retryAtMs - runtime.clock.now());
    const retryAfterMs = reserved.isSlot === true ? Math.max(SLOT_RETRY_ADVICE_MS, waitMs) : waitMs;
    throw new RateLimitedError(
      `Client \`${client}\` is ${reserved.reason}: retry in ${Math.ceil(retryAfterMs / 1000)} s.`,
      { retryAfterMs },
    );
  };
  const chunksOf = (batch: unknown) => clientChunksOf(runtime, scope, client, batch, runtime.clock.now());
  // The batch admitted (its tokens go chunk by chunk): its request alone is charged now.
  const chargeRequest = (chunks: ClientChunks): void | Promise<void> => {
    charge.chunks = chunks;
    const request = runtime.budgets.reserve([scope], { tokens: 0 }, runtime.clock.now());
    return request instanceof Promise ? request.then(settle) : settle(request);
  };
  const reserved = runtime.budgets.reserve([scope], { tokens: promptTokens }, runtime.clock.now());
  return reserved instanceof Promise ? reserved.then(settle) : settle(reserved);
}

/** The request is over (its record is about to be published): the recorder settles its client's charge. */
export function settleClientCharge(runtime: GatewayRuntime, charge: ClientCharge, record: RequestRecord): void {
  if (charge.chunks !== undefined) releaseClientChunks(runtime, charge.chunks);
  const reservation = charge.reservation;
  if (reservation === undefined) return;
  charge.reservation = undefined;
  runtime.recorder.clientRequestEnded(reservation, record, charge.chunks?.charges);
}

/**
 * A write to the store of conversations (a create, added items: no upstream call, nothing routed) counted as one
 * request of its client's budgets, with no tokens: a named client with `rpm` cannot create conversations faster
 * than it may send requests (each create was free, and grew the store every client shares). Its concurrency slot is
 * held while `write` runs. Throws the client's refusal (429) before writing; no budgets, no charge.
 */
export async function asClientRequest<T>(
  runtime: GatewayRuntime,
  client: string | null,
  write: () => Promise<T>,
): Promise<T> {
  const charge: ClientCharge = { reservation: undefined };
  await chargeClient(runtime, runtime.snapshot, client ?? undefined, 0, charge);
  try {
    return await write();
  } finally {
    if (charge.reservation !== undefined) runtime.recorder.clientWriteEnded(charge.reservation);
  }
}
