// The budget book's scope states by id: each created and rolled to now as it is read, the lessons other processes
// learned adopted into it, its durable form, and forgetting it. BudgetBook (budgets.ts) charges and settles them.
import type { BudgetRule, BudgetScope, LearnedConcurrency } from "./budget-types.ts";
import {
  adoptedAsLearned,
  forgetStated,
  mergeLearned,
  unlapsedConcurrency,
  updateInferred,
} from "./inferred-limits.ts";
import { exportedScope, importedState, type LegacyPersistedScope, type PersistedScope } from "./persisted-scope.ts";
import { newScopeState, rollWindows, type ScopeState } from "./scope-state.ts";
import { isSpent } from "./scope-windows.ts";

export class ScopeBook {
  protected readonly states = new Map<string, ScopeState>();
  /** Scope ids changed since the last `takeDirty()`: what a persistent store must write. */
  protected readonly dirty = new Set<string>();
  /** Stated limits another process learned, kept aside until their scope is next read (`adoptStatedRules`). */
  protected readonly adoptedRules = new Map<string, readonly BudgetRule[]>();
  /** Limits on requests in flight another process learned, kept aside until their scope's state exists. */
  protected readonly adoptedConcurrency = new Map<string, LearnedConcurrency>();

  /**
   * The scope's state at `nowMs`: created at its first read (with a concurrency adopted for it meanwhile), else its
   * wall-clock windows rolled, its sliding windows expired and its inferred limits lapsed or climbed; stated limits
   * adopted since it was last read are merged in either way.
   */
  protected state(scope: BudgetScope, nowMs: number): ScopeState {
    let state = this.states.get(scope.id);
    if (state === undefined) {
      state = newScopeState(scope, nowMs, this.adoptedConcurrency.get(scope.id));
      this.adoptedConcurrency.delete(scope.id);
      this.states.set(scope.id, state);
      if (this.adoptedRules.size > 0) this.#mergeAdopted(scope, state, nowMs);
      return state;
    }
    if (rollWindows(scope, state, nowMs)) this.dirty.add(scope.id);
    if (nowMs >= state.learnedChangeAtMs && updateInferred(scope, state, nowMs)) this.dirty.add(scope.id);
    if (this.adoptedRules.size > 0) this.#mergeAdopted(scope, state, nowMs);
    return state;
  }

  /**
   * Limits the provider stated to another process (a shared store passes them on, redis-learned-facts.ts): rules of
   * the scope as if this process's own 429 had stated them (`mergeLearned`). Kept aside until the scope is next
   * read, which brings its configured rules and day reset (an id carries neither).
   */
  adoptStatedRules(scopeId: string, rules: readonly BudgetRule[]): void {
    const stated = rules.filter((rule) => rule.isOwnEvidence !== true);
    if (stated.length === 0) return;
    const pending = this.adoptedRules.get(scopeId) ?? [];
    const windows = new Set(stated.map((rule) => `${rule.unit}:${rule.window}`));
    this.adoptedRules.set(scopeId, [
      ...pending.filter((rule) => !windows.has(`${rule.unit}:${rule.window}`)),
      ...stated,
    ]);
  }

  /** Merges the stated limits adopted for the scope since it was last read (`adoptStatedRules`). */
  #mergeAdopted(scope: BudgetScope, state: ScopeState, nowMs: number): void {
    const adopted = this.adoptedRules.get(scope.id);
    if (adopted === undefined) return;
    this.adoptedRules.delete(scope.id);
    // No request of this process was refused: every recent send of its own was accepted.
    mergeLearned(scope, state, adoptedAsLearned(adopted), state.sends, nowMs);
    this.dirty.add(scope.id);
  }

  learnedConcurrency(scopeId: string, nowMs: number): LearnedConcurrency | undefined {
    return unlapsedConcurrency(
      this.states.get(scopeId)?.learnedConcurrency ?? this.adoptedConcurrency.get(scopeId),
      nowMs,
    );
  }

  /**
   * A limit on requests in flight another process learned (a shared store passes on the ones the provider stated).
   * Kept aside until the scope's state exists: the state needs the scope's day reset, which an id does not carry.
   */
  adoptLearnedConcurrency(scopeId: string, learned: LearnedConcurrency): void {
    const state = this.states.get(scopeId);
    if (state === undefined) this.adoptedConcurrency.set(scopeId, learned);
    else state.learnedConcurrency = learned;
    this.dirty.add(scopeId);
  }

  /**
   * Another process forgot the scope (a reload pointed it at another key or upstream) and deleted the limits stated
   * for it: the stated ones this process learned or adopted go too, so that it does not hold the scope to the old
   * key's limits. Its counters and the limits inferred from its own requests stay: they are its own.
   */
  adoptForgottenStated(scopeId: string): void {
    this.adoptedRules.delete(scopeId);
    if (this.adoptedConcurrency.get(scopeId)?.isOwnEvidence !== true) this.adoptedConcurrency.delete(scopeId);
    const state = this.states.get(scopeId);
    if (state !== undefined && forgetStated(state)) this.dirty.add(scopeId);
  }

  /** The limits learned for a scope (for the route explanation and tests). */
  learnedRules(scopeId: string): readonly BudgetRule[] {
    return this.states.get(scopeId)?.learnedRules ?? [];
  }

  /** Whether any of these scopes has a limit inferred from this process's own sends (see `sharedScope`). */
  hasOwnEvidence(scopes: readonly BudgetScope[]): boolean {
    for (const scope of scopes) {
      const state = this.states.get(scope.id);
      if (state === undefined) continue;
      // An inferred limit on requests in flight is checked here only (Redis counts no one's in-flight requests for
      // it); a stated one is the shared scope's concurrency (`sharedScope`), counted by Redis's leases.
      if (state.learnedConcurrency?.isOwnEvidence === true) return true;
      if (state.learnedRules.some((rule) => rule.isOwnEvidence === true)) return true;
    }
    return false;
  }

  inFlight(scopeId: string): number {
    return this.states.get(scopeId)?.inFlight ?? 0;
  }

  /** Scope ids changed since the last call. */
  takeDirty(): string[] {
    const ids = [...this.dirty];
    this.dirty.clear();
    return ids;
  }

  /** Scopes taken by `takeDirty()` whose write failed (a locked or full disk): written at the next flush. */
  restoreDirty(scopeIds: readonly string[]): void {
    for (const id of scopeIds) this.dirty.add(id);
  }

  /** The durable part of a scope's state (for the embedded store); undefined if never used. */
  exportScope(scopeId: string): PersistedScope | undefined {
    const state = this.states.get(scopeId);
    return state === undefined ? undefined : exportedScope(state);
  }

  /** Restores an exported scope; also reads the version-1 format (one sliding log entry per request). */
  importScope(scopeId: string, persisted: PersistedScope | LegacyPersistedScope): void {
    this.states.set(scopeId, importedState(persisted));
  }

  /** Forgets one scope's counters and what it learned (a reload pointed it at another upstream or key). */
  forget(scopeId: string): void {
    this.adoptedConcurrency.delete(scopeId);
    this.adoptedRules.delete(scopeId);
    if (this.states.delete(scopeId)) this.dirty.add(scopeId);
  }

  /**
   * Forgets the scopes no request can be charged to any more (a provider, model or client removed from the config:
   * not in `configured`) once nothing in them still counts at `nowMs`: no request in flight, every counter's window
   * over, every bucket refilled, every provider report reset. What they learned (limits a 429 stated, a concurrency)
   * goes with them: a provider added back learns it again from its first refusal. Without this a removed provider's
   * rows stayed in the state file for good. Returns the ids forgotten (dirty: the next flush deletes their rows).
   */
  pruneUnconfigured(configured: ReadonlySet<string>, nowMs: number): string[] {
    const pruned: string[] = [];
    for (const [scopeId, state] of this.states) {
      if (configured.has(scopeId) || state.inFlight > 0 || !isSpent(state, nowMs)) continue;
      this.forget(scopeId);
      pruned.push(scopeId);
    }
    return pruned;
  }

  /** Forgets every counter (admin reset, tests). */
  reset(): void {
    for (const id of this.states.keys()) this.dirty.add(id);
    this.states.clear();
    this.adoptedConcurrency.clear();
    this.adoptedRules.clear();
  }

  /** Sliding-window runs and entries held for a scope (bounded whatever its limits): for tests and status. */
  footprint(scopeId: string): { runs: number; work: number } {
    let runs = 0;
    let work = 0;
    for (const window of this.states.get(scopeId)?.sliding.values() ?? []) {
      runs += window.runCount;
      work += window.work;
    }
    return { runs, work };
  }
}
