// The shape every state backend has (embedded or Redis), apart from how each one is built.
import type { BudgetLedger } from "../limits/budgets.ts";
import type { Logger } from "../logger.ts";

export interface StateStatus {
  readonly kind: "memory" | "embedded" | "redis";
  /** True while a shared store is unreachable and the gateway serves from local state. */
  readonly isDegraded: boolean;
  readonly detail: string;
}

export interface StateBackend {
  readonly ledger: BudgetLedger;
  status(): StateStatus;
  close(): Promise<void>;
}

/** The state stores log through the gateway's logger. */
export type StateLogger = Logger;
