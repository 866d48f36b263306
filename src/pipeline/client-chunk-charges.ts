// A named client's own token budgets for an embeddings batch larger than one of them (docs/limits.md "Client
// budgets"): its request is charged once, when it arrives (client-budget.ts), and its tokens chunk by chunk, each
// chunk sized to what one request may hold under the client's budgets (embeddings-token-chunks.ts) and charged
// before it is sent, waiting for the client's window as a later chunk waits for its provider's, while
// `routing.total_timeout_ms` lasts. Before 2026-12-07 such a batch was refused with a 413 as larger than a whole
// token budget of its client, although it could be served in chunks as the client's window slid, as it is for a
// provider's budget (the provider's windows were already chunked; the client's were not).
import { randomBytes } from "node:crypto";
import { isoTime } from "../clock.ts";
import { RateLimitedError, RequestTooLargeError } from "../errors/gateway-error.ts";
import { isNeverFit, type WindowUsage } from "../limits/budget-types.ts";
import { type BudgetScope, type Denied, isReservation, type Reservation } from "../limits/budgets.ts";
import { estimateTextInputs } from "../limits/token-estimate.ts";
import type { BatchesOwing, ChunkedBatch, SharedChunkedBatches } from "../state/state-types.ts";
import { sleepUntil } from "../upstream/sleep-until.ts";
import type { GatewayRuntime } from "./gateway-runtime.ts";
import type { GatewaySnapshot } from "./snapshot.ts";
import { startsOf, windowCapacity, windowTermsOf } from "./window-capacity.ts";

/** A batch whose tokens are charged to its client chunk by chunk (ClientCharge.chunks). */
export interface ClientChunks {
  readonly client: string;
  readonly scope: BudgetScope;
  /** The most tokens (as the gateway estimates them) one chunk may hold under the client's token budgets. */
  readonly mostTokens: number;
  /** The chunks' charges of tokens alone (BudgetCost.isTokensOnly), settled with the request's (recorder.ts). */
  readonly charges: Reservation[];
  /** The batch's tokens (the gateway's estimate): what it has still to charge is this less its chunks' charges. */
  readonly totalTokens: number;
  /** Its arrival's `routing.total_timeout_ms` end: its chunks are charged by then, or it fails. */
  readonly deadlineMs: number;
}

/**
 * The client's batches admitted and under way, by runtime and client: a batch's arrival check counts what they have
 * still to charge (clientWindowsRefusal). Without it two batches arriving together each saw the client's windows free
 * and both started, and one of them, promised at its arrival, met its deadline with chunks left and failed late with a
 * 429, its first chunks paid. With Redis the check counts every replica's batches (StateBackend.chunkedBatches:
 * admitted by one script, `sharedIds` naming the entry); this process's own are kept here too, counted alone while
 * Redis is away (as the ledger then enforces each budget per process).
 */
const batchesUnderWay = new WeakMap<GatewayRuntime, Map<string, Set<ClientChunks>>>();
/**
 * A batch admitted through the shared record: its entry's id there; also one admitted by this process's count when the
 * script did not answer in time (it may have run all the same).
 */
const sharedIds = new WeakMap<ClientChunks, string>();

function underWayOf(runtime: GatewayRuntime, client: string): Set<ClientChunks> {
  const clients = batchesUnderWay.get(runtime) ?? new Map<string, Set<ClientChunks>>();
  batchesUnderWay.set(runtime, clients);
  const batches = clients.get(client) ?? new Set<ClientChunks>();
  clients.set(client, batches);
  return batches;
}

/** The batch is over (its record completed, or a batch line sent back to wait): its rest no longer holds the windows. */
export function releaseClientChunks(runtime: GatewayRuntime, chunks: ClientChunks): void {
  const id = sharedIds.get(chunks);
  if (id !== undefined) {
    sharedIds.delete(chunks);
    runtime.state.chunkedBatches?.end(chunks.scope.id, id);
  }
  const clients = batchesUnderWay.get(runtime);
  const batches = clients?.get(chunks.client);
  if (batches === undefined || !batches.delete(chunks)) return;
  if (batches.size === 0) clients?.delete(chunks.client);
}

/** What the batch has still to charge, told to the shared record (the other replicas' arrival checks read it). */
function shareRest(runtime: GatewayRuntime, chunks: ClientChunks): void {
  const id = sharedIds.get(chunks);
  if (id !== undefined) runtime.state.chunkedBatches?.setRest(chunks.scope.id, id, restOf(chunks));
}

/**
 * A chunk charge's tokens as charged (the gateway's estimate of the chunk). Its answer changes the charge's tokens to
 * what the provider counted (recorder.ts clientChunkAnswered), but the batch's next chunks are charged their
 * estimates: read from the charge, a provider counting more than the estimate shrank the rest (a later batch took the
 * room the first still needed), one counting less grew it (a later batch refused that fit).
 */
const estimatedTokens = new WeakMap<Reservation, number>();

/** What the batch has still to charge: its tokens less its chunks' charges so far (a chunk given back counts again). */
function restOf(chunks: ClientChunks): number {
  const charged = chunks.charges.reduce((sum, charge) => sum + (estimatedTokens.get(charge) ?? charge.tokens), 0);
  return Math.max(0, chunks.totalTokens - charged);
}

/**
 * The chunked charge of a batch of `inputs` refused for good by its client's token budgets (larger than a whole one),
 * or undefined when it is no batch that chunks may serve (one input, token ids): its 413 stands. Throws the 413
 * naming the client's limit when one input alone is larger than a chunk may hold: no wait ever lets it through. A
 * promise when the batches under way are shared (Redis): its admission is a round trip.
 */
export function clientChunksOf(
  runtime: GatewayRuntime,
  scope: BudgetScope,
  client: string,
  inputs: unknown,
  nowMs: number,
): ClientChunks | Promise<ClientChunks> | undefined {
  if (!Array.isArray(inputs) || inputs.length < 2 || inputs.every((item) => typeof item === "number")) {
    return undefined;
  }
  const check = (tokens: number) => runtime.budgets.check([scope], { tokens, isTokensOnly: true }, nowMs);
  const { longest, total } = estimateTextInputs(inputs);
  const refusal = check(longest);
  if (!refusal.isAllowed && isNeverFit(refusal.retryAtMs)) {
    throw new RequestTooLargeError(
      `One input of this embeddings batch (~${longest} tokens) is larger than a whole token budget of client \`${client}\` (${refusal.reason}): no chunk of the batch can hold it. Send a shorter input.`,
    );
  }
  // The largest count the client's budgets do not refuse for good, found by halving (a count refused for good stays
  // refused for any larger one).
  let low = longest;
  let high = total;
  while (low < high) {
    const middle = Math.ceil((low + high) / 2);
    const verdict = check(middle);
    if (verdict.isAllowed || !isNeverFit(verdict.retryAtMs)) low = middle;
    else high = middle - 1;
  }
  const deadlineMs = nowMs + runtime.snapshot.config.routing.totalTimeoutMs;
  const chunks: ClientChunks = { client, scope, mostTokens: low, charges: [], totalTokens: total, deadlineMs };
  const shared = runtime.state.chunkedBatches;
  if (shared?.isSharedFor(scope.id) === true) return admitShared(runtime, shared, chunks, nowMs);
  admitLocally(runtime, chunks, nowMs);
  return chunks;
}

/** The client's token windows as this process sees them (its ledger's view: with Redis, its own charges). */
function tokenUsages(runtime: GatewayRuntime, scope: BudgetScope, nowMs: number): WindowUsage[] {
  return runtime.budgets.usage(scope, nowMs).filter((usage) => usage.unit === "tokens");
}

/** What this process's batches under way (those `isCounted`) owe, and by when, at a new batch's arrival. */
function owingOf(
  runtime: GatewayRuntime,
  chunks: ClientChunks,
  nowMs: number,
  isCounted: (other: ClientChunks) => boolean,
): BatchesOwing {
  const underWay = [...underWayOf(runtime, chunks.client)].filter((other) => {
    // Past its deadline a batch charges nothing more (chargeClientChunk refuses): one whose end was never told (a
    // path that settles no record) holds no window for longer than that.
    if (other.deadlineMs > nowMs) return isCounted(other);
    releaseClientChunks(runtime, other);
    return false;
  });
  // A window serves whichever chunk asks first: this batch's first chunk, sent when a minute turns, can take the room
  // an earlier batch's last chunk needed before that batch's deadline, which then fails late, its first chunks paid.
  // So the whole fits before the earliest deadline of those with tokens left, not only before this batch's own (until
  // 2026-12-07 a second batch smaller than the first was admitted so, and the first failed late).
  const owing = underWay.filter((other) => restOf(other) > 0);
  return {
    tokens: underWay.reduce((sum, other) => sum + restOf(other), 0),
    earliestMs: Math.min(chunks.deadlineMs, ...owing.map((other) => other.deadlineMs)),
    latestMs: Math.max(0, ...underWay.map((other) => other.deadlineMs)),
  };
}

/** Admitted by this process's count alone (the embedded store, or Redis away), in the same turn as its check. */
function admitLocally(runtime: GatewayRuntime, chunks: ClientChunks, nowMs: number): void {
  const usages = tokenUsages(runtime, chunks.scope, nowMs);
  const owing = owingOf(runtime, chunks, nowMs, () => true);
  const { totalTokens } = chunks;
  const fits = usages.every(
    (usage) => windowCapacity(usage, nowMs, nowMs, owing.earliestMs - nowMs) >= totalTokens + owing.tokens,
  );
  if (!fits) throw clientWindowsRefusal(runtime, chunks, usages, owing, nowMs);
  // Released when the request ends.
  underWayOf(runtime, chunks.client).add(chunks);
}

/**
 * Admitted by the shared record's script against every replica's batches under way (and this process's admitted while
 * Redis was away, which the record lacks); Redis not answering, by this process's count alone.
 */
async function admitShared(
  runtime: GatewayRuntime,
  shared: SharedChunkedBatches,
  chunks: ClientChunks,
  nowMs: number,
): Promise<ClientChunks> {
  const usages = tokenUsages(runtime, chunks.scope, nowMs);
  const unshared = owingOf(runtime, chunks, nowMs, (other) => !sharedIds.has(other));
  const id = randomBytes(8).toString("hex");
  const batch = { id, tokens: chunks.totalTokens, deadlineMs: chunks.deadlineMs };
  const own = ownShared(runtime, chunks.client);
  const verdict = await shared.admit(chunks.scope.id, batch, usages.map(windowTermsOf), unshared, own, nowMs);
  if (verdict === undefined) {
    admitLocally(runtime, chunks, nowMs);
    // The script may have run all the same (past the timeout): named by its id, the batch's end removes that entry,
    // its rests update it, and a later check of this process sends it with its rest (listed again if it never ran,
    // its rest set if it did) instead of counting it here too. Counted here alone, its entry held its whole tokens
    // until its deadline, at this replica's arrivals on top of this count, after its end as well.
    sharedIds.set(chunks, id);
  } else if (verdict === true) {
    sharedIds.set(chunks, id);
    underWayOf(runtime, chunks.client).add(chunks);
  } else {
    throw clientWindowsRefusal(runtime, chunks, usages, verdict, nowMs);
  }
  return chunks;
}

/**
 * This process's batches admitted through the shared record (owingOf has dropped those past their deadline): the script
 * lists again any that Redis lost, which then counted nowhere.
 */
function ownShared(runtime: GatewayRuntime, client: string): ChunkedBatch[] {
  return [...underWayOf(runtime, client)].flatMap((other) => {
    const id = sharedIds.get(other);
    return id === undefined ? [] : [{ id, tokens: restOf(other), deadlineMs: other.deadlineMs }];
  });
}

/**
 * The refusal of a batch whose tokens, with what its client's batches under way `owing` owe, its client's token
 * windows cannot take before `routing.total_timeout_ms` ends (from now, its arrival), as for its candidates' windows
 * (embeddings-window-fit.ts): a 429 whose `retry-after` is the first later start from which they can (a window frees
 * what it holds), else a 413. Without it a batch needing more of the client's windows than the time spans (three
 * minutes of a tpm, the default 120 s) was served and paid in part, then refused at the chunk past the deadline.
 */
function clientWindowsRefusal(
  runtime: GatewayRuntime,
  chunks: ClientChunks,
  usages: readonly WindowUsage[],
  owing: BatchesOwing,
  nowMs: number,
): RateLimitedError | RequestTooLargeError {
  const { totalTimeoutMs } = runtime.snapshot.config.routing;
  const { client, totalTokens: tokens } = chunks;
  const fits = (startMs: number, spanMs: number, needed: number) =>
    usages.every((usage) => windowCapacity(usage, startMs, nowMs, spanMs) >= needed);
  const tightest = usages.reduce((tight, usage) =>
    windowCapacity(usage, nowMs, nowMs, totalTimeoutMs) < windowCapacity(tight, nowMs, nowMs, totalTimeoutMs)
      ? usage
      : tight,
  );
  const others =
    owing.tokens === 0
      ? ""
      : ` after the ~${owing.tokens} tokens of its batches under way (the first of them due by ${isoTime(owing.earliestMs)})`;
  const head = `The embeddings batch (~${tokens} tokens) cannot be charged to client \`${client}\`'s token budgets${others} before routing.total_timeout_ms (${totalTimeoutMs} ms) ends: ${tightest.remaining} tokens left this ${tightest.window} of ${tightest.limit}. Nothing was sent`;
  const starts = [...new Set(usages.flatMap(startsOf))].filter((startMs) => startMs > nowMs).sort((a, b) => a - b);
  const alone = [nowMs, ...starts].find((start) => fits(start, totalTimeoutMs, tokens));
  if (alone === undefined) {
    return new RequestTooLargeError(`${head}; send fewer inputs in a request, or raise routing.total_timeout_ms.`);
  }
  // Alone it would fit from `alone`; the batches under way are over by their deadlines at the latest (served, or
  // failed), so a retry then meets only what the windows hold. No wait is known to be shorter: their rests are charged
  // as their windows slide, which no clock tells.
  const startMs = Math.max(alone, owing.latestMs);
  const retryAfterMs = Math.max(0, startMs - nowMs);
  return new RateLimitedError(
    `${head}; its budgets may take it from ${isoTime(startMs)} (retry in ${Math.ceil(retryAfterMs / 1000)} s).`,
    { retryAfterMs },
  );
}

/** What a chunk's charge reads of its batch's request (pipeline-types.ts PipelineRequest; not imported: it imports this). */
interface ChunkedRequest {
  readonly runtime: GatewayRuntime;
  readonly snapshot: GatewaySnapshot;
  readonly context: { readonly signal: AbortSignal };
  readonly record: { readonly startedAtMs: number };
  readonly clientCharge: { readonly chunks?: ClientChunks | undefined };
}

/** Rounds of a chunk's wait for its client's window: a bound on a loop whose every round reserves. */
const MAX_CLIENT_WAITS = 20;

/**
 * Charges the chunk's `tokens` to its client (tokens alone: the batch's request was charged when it arrived), waiting
 * for the client's window while the request's time lasts. Throws a 429 whose `retry-after` is the window's time when
 * that comes after `routing.total_timeout_ms` (from the request's arrival): nothing is sent for the chunk. Undefined:
 * the batch is not charged by chunks.
 */
export async function chargeClientChunk(request: ChunkedRequest, tokens: number): Promise<Reservation | undefined> {
  const chunks = request.clientCharge.chunks;
  if (chunks === undefined) return undefined;
  const { runtime, context, snapshot, record } = request;
  const deadlineMs = record.startedAtMs + snapshot.config.routing.totalTimeoutMs;
  for (let round = 1; ; round++) {
    const nowMs = runtime.clock.now();
    const reserved = await runtime.budgets.reserve([chunks.scope], { tokens, isTokensOnly: true }, nowMs);
    if (isReservation(reserved)) {
      estimatedTokens.set(reserved, tokens);
      chunks.charges.push(reserved);
      shareRest(runtime, chunks);
      return reserved;
    }
    const isWaited = reserved.retryAtMs < deadlineMs && round < MAX_CLIENT_WAITS && !runtime.isShuttingDown;
    if (!isWaited || context.signal.aborted) throw chunkRefusal(runtime, chunks.client, reserved, tokens, deadlineMs);
    await sleepUntil(reserved.retryAtMs, runtime.clock, context.signal);
  }
}

/**
 * A chunk charged to its client (chargeClientChunk) and not sent: its charge is given back whole. Kept, it held the
 * client's window for nothing while the batch was planned and charged again (a reservation refused after the plan saw
 * room, queued again: handle-request.ts mayQueueAgain), and the batch's next chunks waited a window for it.
 */
export function giveBackClientChunk(request: ChunkedRequest, charge: Reservation): void {
  const charges = request.clientCharge.chunks?.charges;
  const index = charges?.indexOf(charge) ?? -1;
  if (charges === undefined || index < 0) return;
  charges.splice(index, 1);
  request.runtime.recorder.clientChunkUnsent(charge);
  if (request.clientCharge.chunks !== undefined) shareRest(request.runtime, request.clientCharge.chunks);
}

/** The client's window admits the chunk only past the request's time (or never: a chunk larger than its budget). */
function chunkRefusal(
  runtime: GatewayRuntime,
  client: string,
  denied: Denied,
  tokens: number,
  deadlineMs: number,
): RateLimitedError | RequestTooLargeError {
  const head = `Client \`${client}\` is ${denied.reason} for this chunk (~${tokens} tokens)`;
  if (isNeverFit(denied.retryAtMs)) return new RequestTooLargeError(`${head}: no wait lets it through.`);
  const retryAfterMs = Math.max(0, denied.retryAtMs - runtime.clock.now());
  return new RateLimitedError(
    `${head}: its budget admits it only at ${isoTime(denied.retryAtMs)}, after routing.total_timeout_ms ends (${isoTime(deadlineMs)}): retry in ${Math.ceil(retryAfterMs / 1000)} s.`,
    { retryAfterMs },
  );
}
