// Cooldown settings for unit tests of the availability book and the stores that persist it: one set of values, each
// test overriding what it is about (a failure-rate threshold, a shorter failure window...).
import type { CooldownSettings } from "../../src/config/types.ts";

export function cooldownSettings(overrides: Partial<CooldownSettings> = {}): CooldownSettings {
  return {
    rateLimitBaseMs: 1_000,
    rateLimitMaxMs: 60_000,
    invalidKeyMs: 3_600_000,
    modelUnavailableMs: 900_000,
    unsupportedFeatureMs: 21_600_000,
    unservedEndpointMs: 86_400_000,
    failureThreshold: 3,
    failureWindowMs: 60_000,
    failureRateThreshold: 1,
    circuitOpenMs: 30_000,
    circuitFirstProbeMs: 30_000,
    suspectSingleFlight: true,
    ...overrides,
  };
}
