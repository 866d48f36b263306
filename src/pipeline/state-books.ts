// The books a runtime opens with its state backend, once at start (they outlive reloads): cooldowns and circuits,
// prompt calibrations and refused features are loaded from the state file or Redis with the budgets.
import type { Clock } from "../clock.ts";
import type { GatewayConfig } from "../config/types.ts";
import { AvailabilityBook } from "../limits/availability.ts";
import { PromptCalibration } from "../limits/prompt-calibration.ts";
import { RefusedFeatures } from "../limits/refused-features.ts";
import type { Logger } from "../logger.ts";
import { createStateBackend, type StateBackend } from "../state/state-backend.ts";
import type { GatewaySnapshot } from "./snapshot.ts";

export interface StateBooks {
  readonly availability: AvailabilityBook;
  readonly promptCalibration: PromptCalibration;
  readonly refusedFeatures: RefusedFeatures;
  readonly state: StateBackend;
}

/** `isReadOnly`: only read the embedded state file (`llm-gateway route` beside a serving gateway). */
export async function openStateBooks(
  config: GatewayConfig,
  clock: Clock,
  logger: Logger | undefined,
  isReadOnly: boolean,
): Promise<StateBooks> {
  const availability = new AvailabilityBook(clock, config.cooldowns);
  availability.setProviderKeys(config.providers); // before loading cooldowns: a parked key is for one key only
  const promptCalibration = new PromptCalibration();
  const refusedFeatures = new RefusedFeatures(config.cooldowns.unsupportedFeatureMs);
  const learned = { calibration: promptCalibration, refusedFeatures }; // kept in the state file, or shared by Redis
  const state = await createStateBackend(config.state, availability, clock, logger, learned, { isReadOnly });
  return { availability, promptCalibration, refusedFeatures, state };
}

/**
 * Drops the budget scopes of providers, models and clients the serving snapshot no longer has, once nothing in them
 * counts (at start: what a removed provider left in the state file; at each reload: what the reload removed).
 */
export function pruneUnconfiguredScopes(state: StateBackend, snapshot: GatewaySnapshot, nowMs: number): void {
  const configured = new Set<string>();
  for (const scopes of snapshot.budgetScopes) for (const scope of scopes) configured.add(scope.id);
  for (const scopes of snapshot.audioScopes) for (const scope of scopes) configured.add(scope.id);
  for (const scope of snapshot.clientScopes.values()) configured.add(scope.id);
  state.pruneUnconfigured(configured, nowMs);
}
