// The books a runtime opens with its state backend, once at start (they outlive reloads): cooldowns and circuits,
// prompt calibrations and refused features are loaded from the state file or Redis with the budgets.
import type { Clock } from "../clock.ts";
import type { GatewayConfig } from "../config/types.ts";
import { AvailabilityBook } from "../limits/availability.ts";
import { PromptCalibration } from "../limits/prompt-calibration.ts";
import { RefusedFeatures } from "../limits/refused-features.ts";
import type { Logger } from "../logger.ts";
import { createStateBackend, type StateBackend } from "../state/state-backend.ts";

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
  const state = await createStateBackend(
    config.state,
    availability,
    clock,
    logger,
    promptCalibration,
    () => refusedFeatures.reset(),
    { isReadOnly },
  );
  return { availability, promptCalibration, refusedFeatures, state };
}
