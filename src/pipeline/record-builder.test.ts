// The request record as the pipeline builds it, pure: real route plans, a manual clock, no server.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TEST_ROUTING } from "../../test/fixtures/routing-settings.ts";
import { ManualClock } from "../clock.ts";
import { providerSettingsSchema } from "../config/schema.ts";
import type { RoutingSettings } from "../config/types.ts";
import type { Availability } from "../limits/availability.ts";
import { buildCatalog, type Deployment } from "../providers/catalog.ts";
import { planRoute } from "../router/plan-route.ts";
import { RecordBuilder } from "./record-builder.ts";

const ROUTING: RoutingSettings = { ...TEST_ROUTING, maxWaitForBetterMs: 0, queueTimeoutMs: 5_000 };

const catalog = buildCatalog(
  ["alpha", "beta"].map((name) =>
    providerSettingsSchema.parse({ name, base_url: `https://${name}.example/v1`, api_key: "k", models: { m: {} } }),
  ),
  new Map(),
);

function planWith(cooling: Readonly<Record<string, number>>) {
  return planRoute(
    { model: "m", fallbackModels: [], kind: "chat" },
    {
      catalog,
      metaModels: {},
      routing: ROUTING,
      nowMs: 1_000,
      score: () => 1,
      availability: (deployment: Deployment): Availability => {
        const untilMs = cooling[deployment.key];
        return untilMs === undefined
          ? { isAvailable: true, isProbe: false }
          : { isAvailable: false, untilMs, cause: "rate_limited", reason: "429" };
      },
    },
  );
}

describe("RecordBuilder", () => {
  it("a request planned again (back to the queue) records its last plan's skips once, and every attempt skip", () => {
    const record = new RecordBuilder(new ManualClock(1_000), {
      id: "r1",
      endpoint: "chat",
      clientProtocol: "openai-chat",
      requestedModel: "m",
      isStream: false,
      startedAtMs: 1_000,
    });
    // First round: alpha cools, beta is planned and then refused at its reservation (another replica took it).
    record.planned(planWith({ "alpha/m": 3_000 }), 0);
    record.attempted([], [{ deploymentKey: "beta/m", reason: "over its rps budget", isLimit: true }], "primary");
    // Second round, after the queue: both cool now.
    record.planned(planWith({ "alpha/m": 3_000, "beta/m": 2_000 }), 500);
    const finished = record.finish(429, "rate_limited", "rate_limit_exceeded");
    assert.ok(finished !== undefined);
    assert.deepEqual(
      finished.skips.map((skip) => `${skip.phase} ${skip.deploymentKey}`),
      ["plan alpha/m", "plan beta/m", "attempt beta/m"],
    );
    assert.equal(finished.queueWaitMs, 500);
  });
});
