import assert from "node:assert/strict";
import { test } from "node:test";
import { RateLimitedError, RequestTooLargeError } from "../errors/gateway-error.ts";
import type { WindowUsage } from "../limits/budget-types.ts";
import type { Deployment } from "../providers/catalog.ts";
import { windowsRefusal } from "./embeddings-window-fit.ts";
import type { PipelineRequest } from "./pipeline-types.ts";

const NOW = 1_000_000_000;
const DEPLOYMENT = { key: "alpha/m", index: 0 } as unknown as Deployment;
const BATCH = { chunks: 4, tokens: 40, why: "sent in chunks of 2" };

/** A request arrived now, `total_timeout_ms` 120 s, whose one deployment's windows read `usages`. */
function requestWith(usages: readonly WindowUsage[]): PipelineRequest {
  return {
    runtime: {
      clock: { now: () => NOW },
      promptCalibration: { factorOf: () => 1 },
      budgets: { usage: () => usages },
    },
    snapshot: { config: { routing: { totalTimeoutMs: 120_000 } }, budgetScopes: [[{ id: "deployment:alpha/m" }]] },
    record: { startedAtMs: NOW },
    body: { model: "m", input: Array.from({ length: 7 }, (_, index) => `t${index}`) },
  } as unknown as PipelineRequest;
}

/** An rpm of 1 inferred from this process's own sends (a 429 without headers), its one request spent. */
const INFERRED_RPM: WindowUsage = {
  unit: "requests",
  window: "minute",
  limit: 1,
  used: 1,
  remaining: 0,
  resetsAtMs: NOW + 30_000,
  source: "learned",
  algorithm: "sliding",
  evidence: "429 after 1 request in a minute",
};

test("an inferred limit that lapses within the request's time bounds nothing after it lapses", () => {
  // Held for good, an rpm of 1 takes 2 of the 4 chunks in 120 s (at 30 s and 90 s): refused.
  assert.throws(() => windowsRefusal(requestWith([INFERRED_RPM]), [DEPLOYMENT], BATCH), RequestTooLargeError);
  // Lapsing in 40 s (its 30 minutes from the 429 over, unless another confirms it), the budget check drops it then
  // and every chunk goes: the batch would finish, so it is not refused. Before, it was a 413 "send fewer inputs".
  const lapsing = { ...INFERRED_RPM, lapsesAtMs: NOW + 40_000 };
  assert.doesNotThrow(() => windowsRefusal(requestWith([lapsing]), [DEPLOYMENT], BATCH));
  // Lapsing only after the request's time: it holds throughout; a 429 whose wait is its lapse (a start that fits).
  const later = { ...INFERRED_RPM, lapsesAtMs: NOW + 600_000 };
  assert.throws(
    () => windowsRefusal(requestWith([later]), [DEPLOYMENT], BATCH),
    (error: unknown) => error instanceof RateLimitedError && error.retryAfterMs === 600_000,
  );
});
