// Facts one process learns from a refusal that every process should know at once, without paying the same refusal:
// - a context-length refusal's lesson (limits/prompt-calibration.ts learnTooLong): the deployment's calibration
//   evidence, when the refusal raised it, and whether prompt and output turned out to share one window;
// - a limit on requests in flight the provider stated in a concurrency 429 (RedisLedger.learnLimits), which the
//   reserve script then enforces fleet-wide with its concurrency leases (BudgetBook.sharedScope).
// Each is written when it is learned (the evidence into the calibrations' hash, the others into keys of their own,
// hash-tagged with the provider and expiring), then published on the cooldown channel; every process applies what
// it hears to its local books and loads what is stored when it starts or Redis comes back. Planning reads only the
// local books: no round trip is added to a request. A fact learned while Redis is unreachable is written when it is
// back. A limit inferred from this process's own requests in flight is not shared: it is this process's share.
import type { Clock } from "../clock.ts";
import { isRecord } from "../is-record.ts";
import type { LearnedConcurrency } from "../limits/budget-types.ts";
import { learnedConcurrencyOf } from "../limits/budgets.ts";
import type { ContextLesson, PromptCalibration, PromptEvidence } from "../limits/prompt-calibration.ts";
import { getMany, type SharedStateRedis, scanKeys } from "./redis-client.ts";
import {
  calibrationKey,
  cooldownChannel,
  keysStartingWith,
  learnedConcurrencyKey,
  learnedConcurrencyPattern,
  sharedWindowKey,
  sharedWindowStart,
} from "./redis-keys.ts";
import type { RedisLink } from "./redis-link.ts";

/**
 * ms a stated concurrency limit is kept in Redis after it was learned: processes that start later adopt it. Kept in
 * memory by those that know it (as a process's own 429 would teach it), it is only the stored copy that ends, so a
 * provider that raised its limit costs a fleet at most a day of the old one for newly started processes.
 */
export const LEARNED_CONCURRENCY_KEEP_MS = 24 * 3_600_000;
/** ms a shared window is kept in Redis after it was learned: a model's shape, which changes rarely if ever. */
export const SHARED_WINDOW_KEEP_MS = 30 * 24 * 3_600_000;

/** ms before a fact whose write failed while Redis was up is written again. */
const WRITE_RETRY_MS = 250;

/** What travels on the channel (and, apart from the evidence, is stored). */
export type LearnedFact =
  | { readonly kind: "context"; readonly lesson: ContextLesson }
  | { readonly kind: "concurrency"; readonly scopeId: string; readonly learned: LearnedConcurrency };

export interface LearnedFactSharingOptions {
  readonly redis: SharedStateRedis;
  readonly link: RedisLink;
  readonly keyPrefix: string;
  readonly clock: Clock;
  readonly instanceId: string;
  readonly calibration: PromptCalibration | undefined;
  /** Where a stated concurrency learned elsewhere goes (RedisLedger.adoptLearnedConcurrency). */
  readonly adoptConcurrency: (scopeId: string, learned: LearnedConcurrency) => void;
}

export class LearnedFactSharing {
  readonly #options: LearnedFactSharingOptions;
  /** Facts learned here that are not in Redis yet (learned while it was unreachable, or the write failed). */
  readonly #unshared = new Map<string, LearnedFact>();
  #retryTimer: NodeJS.Timeout | undefined;
  #isStopped = false;

  constructor(options: LearnedFactSharingOptions) {
    this.#options = options;
  }

  /** A fact this process learned: stored and published now, or once Redis is back. */
  share(fact: LearnedFact): void {
    const id = idOf(fact);
    if (!this.#options.link.isUp) {
      this.#unshared.set(id, fact);
      return;
    }
    this.#write(fact).then(
      () => this.#options.link.recordSuccess(),
      (error: unknown) => {
        this.#options.link.recordFailure(error);
        this.#retryLater(id, fact);
      },
    );
  }

  /** No more retries (the backend is closing). */
  stop(): void {
    this.#isStopped = true;
    clearTimeout(this.#retryTimer);
  }

  /**
   * A write that failed while Redis was up (a timeout, an error reply) is tried again shortly, as a cooldown's store
   * is: nothing else would share the fact before Redis is next marked down and up (then `pushLocal` writes it).
   */
  #retryLater(id: string, fact: LearnedFact): void {
    this.#unshared.set(id, fact);
    if (this.#retryTimer !== undefined || this.#isStopped) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      const facts = [...this.#unshared.values()];
      this.#unshared.clear();
      for (const pending of facts) this.share(pending);
    }, WRITE_RETRY_MS);
    this.#retryTimer.unref();
  }

  /** Writes what was learned while Redis was unreachable (called when it is back, before `load`). */
  async pushLocal(): Promise<void> {
    const facts = [...this.#unshared.values()];
    this.#unshared.clear();
    await Promise.all(
      facts.map((fact) =>
        this.#write(fact).catch((error: unknown) => {
          this.#unshared.set(idOf(fact), fact);
          throw error;
        }),
      ),
    );
  }

  /** A fact another process published. What is not a well-formed fact is skipped. */
  receive(value: unknown): void {
    const fact = parseFact(value);
    if (fact !== undefined) this.#apply(fact);
  }

  /**
   * Adopts every stored stated concurrency and shared window; returns how many. (The calibrations' evidence is
   * loaded once at start by CalibrationSharing: a later load would replace what this process learned since.)
   */
  async load(): Promise<number> {
    const { redis, keyPrefix } = this.#options;
    let loaded = 0;
    let failure: { readonly error: unknown } | undefined;
    const onNodeFailed = (error: unknown): void => {
      failure ??= { error };
    };
    const patterns = [learnedConcurrencyPattern(keyPrefix), keysStartingWith(sharedWindowStart(keyPrefix))];
    for (const pattern of patterns) {
      for await (const keys of scanKeys(redis, pattern, onNodeFailed)) {
        const values = await getMany(redis, keys);
        for (const text of values) {
          const fact = parseStored(text);
          if (fact === undefined) continue;
          this.#apply(fact);
          loaded++;
        }
      }
    }
    if (failure !== undefined) throw failure.error;
    return loaded;
  }

  #apply(fact: LearnedFact): void {
    if (fact.kind === "concurrency") this.#options.adoptConcurrency(fact.scopeId, fact.learned);
    else this.#options.calibration?.adopt(fact.lesson);
  }

  /** Stores the fact (SET with its expiry, or HSET of the evidence), then publishes it; in that order, so a process
   * that loads between the two has it already and one that hears it finds it stored. */
  async #write(fact: LearnedFact): Promise<void> {
    const { redis, keyPrefix, clock, instanceId } = this.#options;
    if (fact.kind === "concurrency") {
      const stored = JSON.stringify({ kind: "concurrency", scopeId: fact.scopeId, learned: fact.learned });
      await redis.set(learnedConcurrencyKey(keyPrefix, fact.scopeId), stored, "PX", LEARNED_CONCURRENCY_KEEP_MS);
    } else {
      const { deploymentKey, evidence, isSharedWindow } = fact.lesson;
      if (evidence !== undefined) await redis.hset(calibrationKey(keyPrefix), deploymentKey, JSON.stringify(evidence));
      if (isSharedWindow) {
        const stored = JSON.stringify({ kind: "shared-window", deploymentKey, learnedAtMs: clock.now() });
        await redis.set(sharedWindowKey(keyPrefix, deploymentKey), stored, "PX", SHARED_WINDOW_KEEP_MS);
      }
    }
    await redis.publish(cooldownChannel(keyPrefix), JSON.stringify({ origin: instanceId, type: "learned", fact }));
  }
}

/** One pending write per fact: a later lesson about the same scope or deployment replaces an unsent one. */
function idOf(fact: LearnedFact): string {
  return fact.kind === "concurrency" ? `concurrency ${fact.scopeId}` : `context ${fact.lesson.deploymentKey}`;
}

function parseFact(value: unknown): LearnedFact | undefined {
  if (!isRecord(value)) return undefined;
  if (value.kind === "concurrency") {
    const learned = learnedConcurrencyOf(value.learned);
    // Only a stated limit is shared; one claiming to be inferred came from no process of ours.
    if (typeof value.scopeId !== "string" || learned === undefined || learned.isOwnEvidence === true) return undefined;
    return { kind: "concurrency", scopeId: value.scopeId, learned };
  }
  if (value.kind !== "context" || !isRecord(value.lesson)) return undefined;
  const { deploymentKey, evidence, isSharedWindow } = value.lesson;
  if (typeof deploymentKey !== "string" || deploymentKey === "") return undefined;
  return {
    kind: "context",
    lesson: { deploymentKey, evidence: evidenceOf(evidence), isSharedWindow: isSharedWindow === true },
  };
}

/** A stored key's value: a stated concurrency, or a shared window (kept as `{kind: "shared-window", ...}`). */
function parseStored(text: string | null | undefined): LearnedFact | undefined {
  if (text === null || text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isRecord(value)) return undefined;
  if (value.kind !== "shared-window") return parseFact(value);
  const { deploymentKey } = value;
  if (typeof deploymentKey !== "string" || deploymentKey === "") return undefined;
  return { kind: "context", lesson: { deploymentKey, evidence: undefined, isSharedWindow: true } };
}

function evidenceOf(value: unknown): PromptEvidence | undefined {
  if (!isRecord(value)) return undefined;
  const { estimated, reported } = value;
  if (typeof estimated !== "number" || typeof reported !== "number") return undefined;
  return estimated > 0 && reported > 0 && Number.isFinite(estimated) && Number.isFinite(reported)
    ? { estimated, reported }
    : undefined;
}
