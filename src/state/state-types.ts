// The shape every state backend has (embedded or Redis), apart from how each one is built.
import type { BudgetLedger } from "../limits/budgets.ts";
import type { Logger } from "../logger.ts";
import type { MemoryToolCallExtras } from "./tool-call-extras.ts";

export interface StateStatus {
  readonly kind: "memory" | "embedded" | "redis";
  /** True while a shared store is unreachable and the gateway serves from local state. */
  readonly isDegraded: boolean;
  readonly detail: string;
  /**
   * On a Redis Cluster that answers: the providers (hash tags) whose slot does not, served from local state meanwhile
   * (redis-slot-groups.ts). Absent elsewhere.
   */
  readonly localProviders?: readonly string[];
}

/** Where the answer cache keeps its rows when they are shared (Redis): opaque JSON by key, bounded as asked. */
export interface AnswerRows {
  /** Starts connecting now rather than at the first lookup (the cache is on at start). Idempotent. */
  open(): void;
  get(key: string, oldestKeptMs: number): Promise<string | undefined>;
  put(
    key: string,
    json: string,
    storedAtMs: number,
    limits: { readonly ttlMs: number; readonly maxEntries: number; readonly maxBytes: number },
    /** When a row its request kept for less than `ttlMs` ends (`x-gateway-cache-ttl`). */
    keptUntilMs?: number,
  ): Promise<{ entries: number; bytes: number }>;
  clear(): Promise<number>;
  /** The rows and their bytes held now, fleet-wide (expired ones included until the next put drops them). */
  count(): Promise<{ entries: number; bytes: number }>;
}

/** A window's room over a span of time, as pipeline/window-capacity.ts counts it: the terms a shared check reads. */
export interface WindowTerms {
  /** `unknown`: a provider's report without its limit (WindowUsage.isLimitUnknown). */
  readonly kind: "window" | "bucket" | "unknown";
  readonly windowMs: number;
  readonly limit: number;
  readonly remaining: number;
  readonly resetsAtMs: number | undefined;
  readonly lapsesAtMs: number | undefined;
}

/** A named client's embeddings batch charged chunk by chunk (pipeline/client-chunk-charges.ts). */
export interface ChunkedBatch {
  readonly id: string;
  readonly tokens: number;
  readonly deadlineMs: number;
}

/** What a batch's arrival counts of the client's batches under way, when they keep it from fitting. */
export interface BatchesOwing {
  /** What they have still to charge. */
  readonly tokens: number;
  /** The earliest deadline among those owing tokens, or the new batch's own. */
  readonly earliestMs: number;
  /** Their latest deadline (0: none): each is over by then. */
  readonly latestMs: number;
}

/**
 * A client's embeddings batches under way shared by the replicas (Redis): a batch's arrival check and its admission in
 * one atomic step against every replica's batches. Absent for the embedded store: the pipeline counts its own.
 */
export interface SharedChunkedBatches {
  /** Whether the client's keys are reachable now; else the pipeline counts this process's batches alone. */
  isSharedFor(scopeId: string): boolean;
  /**
   * Admits `batch` if it and the client's batches under way (every replica's, plus `unshared`: this process's admitted
   * while Redis was away) fit `windows` before the earliest deadline of those owing; else what kept it out. `own`: this
   * process's batches admitted here, with what each has still to charge, listed again if Redis lost them. Undefined:
   * Redis did not answer (the caller counts this process's alone, as the ledger falls back to its local book).
   */
  admit(
    scopeId: string,
    batch: ChunkedBatch,
    windows: readonly WindowTerms[],
    unshared: BatchesOwing,
    own: readonly ChunkedBatch[],
    nowMs: number,
  ): Promise<true | BatchesOwing | undefined>;
  /** The batch's tokens left to charge (after a chunk's charge, or one given back). */
  setRest(scopeId: string, id: string, tokens: number): void;
  /** The batch is over: it no longer counts at another's arrival. */
  end(scopeId: string, id: string): void;
}

export interface StateBackend {
  readonly ledger: BudgetLedger;
  /** Set with Redis: the named clients' embeddings batches under way, counted across the replicas. */
  readonly chunkedBatches?: SharedChunkedBatches;
  /** Set with Redis: the answer cache's rows, shared by the replicas (else the cache is this process's memory). */
  readonly answerRows?: AnswerRows;
  /**
   * Set with the embedded file: the Messages and Responses doors' kept tool-call `extra_content` (Gemini's thought
   * signatures), written to the file with the other books, so a restart gives them back (else the door's own memory).
   */
  readonly toolCallExtras?: MemoryToolCallExtras;
  status(): StateStatus;
  /** Redis: the writes kept for a Cluster master's return that were dropped, by `provider:TAG` or `client:NAME` (RedisLink's). */
  keptWritesDropped?(): ReadonlyMap<string, number>;
  close(): Promise<void>;
  /**
   * The process is about to exit at once (a second SIGTERM/SIGINT during a graceful shutdown): what the store holds
   * unwritten is written now; never rejects. The embedded file is written synchronously, before this returns,
   * waiting at most `maxWaitMs` for a lock another connection holds (its counts would otherwise lose up to
   * `flush_interval_ms` of requests). Redis: charges are sent as they are made, but the prompt calibrations learned
   * since the last `flush_interval_ms` are queued; they are sent, and the promise settles with the answer (the
   * caller bounds the wait). Nothing for the memory store.
   */
  writeBeforeExit(maxWaitMs: number): Promise<void>;
  /**
   * At start and at each reload: forgets the budget scopes of providers, models and clients no longer configured
   * (`configured`: every scope id the serving config charges) once nothing in them still counts; the embedded file
   * deletes their rows at its next flush. Returns how many. Redis: none (its keys expire on their own).
   */
  pruneUnconfigured(configured: ReadonlySet<string>, nowMs: number): number;
}

/** The state stores log through the gateway's logger. */
export type StateLogger = Logger;
