// Placeholder until the Redis backend lands: fails loudly instead of silently not sharing state.
import type { Clock } from "../clock.ts";
import type { StateSettings } from "../config/types.ts";
import type { AvailabilityBook } from "./availability.ts";
import type { StateBackend, StateLogger } from "./state-backend.ts";

export async function createRedisStateBackend(
  _settings: StateSettings,
  _availability: AvailabilityBook,
  _clock: Clock,
  _logger: StateLogger | undefined,
): Promise<StateBackend> {
  throw new Error("state.redis_url is not supported yet");
}
