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

/**
 * A request arrived now, `total_timeout_ms` 120 s (or `totalTimeoutMs`), whose deployments' scopes (`scopes`, by
 * deployment index: alpha/m's own by default) read `usages`, or `byScope` by scope id.
 */
function requestWith(
  usages: readonly WindowUsage[],
  byScope: Readonly<Record<string, readonly WindowUsage[]>> = {},
  scopes: readonly (readonly { id: string }[])[] = [[{ id: "deployment:alpha/m" }]],
  totalTimeoutMs = 120_000,
): PipelineRequest {
  return {
    runtime: {
      clock: { now: () => NOW },
      promptCalibration: { factorOf: () => 1 },
      budgets: { usage: (scope: { id: string }) => byScope[scope.id] ?? usages },
    },
    snapshot: { config: { routing: { totalTimeoutMs } }, budgetScopes: scopes },
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

const RPM_2: WindowUsage = {
  unit: "requests",
  window: "minute",
  limit: 2,
  used: 0,
  remaining: 2,
  resetsAtMs: undefined,
  source: "config",
  algorithm: "sliding",
};

test("a provider's pool shared by two candidates, and a deployment listed twice, are counted once", () => {
  const second = { key: "alpha/n", index: 1 } as unknown as Deployment;
  const scopes = [
    [{ id: "provider:alpha" }, { id: "deployment:alpha/m" }],
    [{ id: "provider:alpha" }, { id: "deployment:alpha/n" }],
  ];
  // The provider's rpm of 2 takes 2 of the 4 chunks in 3 s, whichever deployment sends them. Before, it was counted
  // for each deployment (4): the batch was sent, two chunks paid, and the third failed past the deadline.
  const pooled = requestWith([], { "provider:alpha": [RPM_2] }, scopes, 3_000);
  assert.throws(() => windowsRefusal(pooled, [DEPLOYMENT, second], BATCH), RequestTooLargeError);
  // Their own rpms of 2 each, and no pool limit: 4, the batch fits.
  const own = requestWith(
    [],
    { "provider:alpha": [], "deployment:alpha/m": [RPM_2], "deployment:alpha/n": [RPM_2] },
    scopes,
    3_000,
  );
  assert.doesNotThrow(() => windowsRefusal(own, [DEPLOYMENT, second], BATCH));
  // A plan's waitFor is among its skips too: one deployment with an rpm of 2 is not two.
  assert.throws(
    () => windowsRefusal(requestWith([RPM_2], {}, undefined, 3_000), [DEPLOYMENT, DEPLOYMENT], BATCH),
    RequestTooLargeError,
  );
});
