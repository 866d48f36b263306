// A model no leaderboard knows gets an estimated quality (docs/scoring.md "Unknown models"), over loopback: it
// ranks below a known, decent model of its size instead of above it (the neutral 0.5 ranked it above), the
// explanation marks its leaderboard term as estimated and says from what, and the request goes to the known one.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "../../src/clock.ts";
import type { RouteExplanation } from "../../src/router/explain-route.ts";
import { CHAT_ROUTE, chatRequests, postChat, send, useGateway, useMock } from "../helpers/e2e.ts";

const KNOWN = "qwen/qwen-2.5-coder-32b-instruct";
const UNKNOWN = "nobody-measured-this-32b";

test("an unmeasured 32B model ranks below a known 32B one, its board term marked estimated with its basis", async (t) => {
  const known = await useMock(t);
  const unknown = await useMock(t);
  const gateway = await useGateway(
    t,
    `providers:
  - name: known
    base_url: ${known.baseUrl}
    api_key: sk-known-secret
    cost: free
    retries: 0
    models:
      ${KNOWN}: { context: 32768 }
  - name: unknown
    base_url: ${unknown.baseUrl}
    api_key: sk-unknown-secret
    cost: free
    retries: 0
    models:
      ${UNKNOWN}: { context: 32768 }
meta_models:
  coder: [${KNOWN}, ${UNKNOWN}]
`,
    { clock: new ManualClock(Date.UTC(2026, 0, 1)) },
  );
  const response = await send(gateway, "GET", "/v1/gateway/route?model=coder");
  assert.equal(response.status, 200, response.text);
  const explanation = response.json as RouteExplanation;
  assert.deepEqual(
    explanation.candidates.map((candidate) => candidate.upstream_id),
    [KNOWN, UNKNOWN],
  );
  const [first, second] = explanation.candidates;
  assert.equal(first?.terms?.leaderboard.is_estimated, false);
  assert.equal(first?.terms?.leaderboard.estimated_from, null);
  const estimated = second?.terms?.leaderboard;
  assert.equal(estimated?.is_estimated, true);
  assert.equal(estimated?.is_neutral, false);
  assert.ok(estimated !== undefined && estimated.weighted < 5, `estimated ${estimated?.weighted} is not below neutral`);
  assert.match(estimated?.estimated_from?.[0] ?? "", /^size 32B: median [\d.]+ of \d+ known models within ×2$/);
  assert.ok(estimated?.estimated_from?.includes("−15 % for being unmeasured"));

  const answer = await postChat(gateway, { model: "coder" });
  assert.equal(answer.status, 200, answer.text);
  assert.equal(answer.headers["x-gateway-model"], KNOWN);
  assert.equal(chatRequests(unknown).length, 0);
  assert.equal(known.pendingSteps(CHAT_ROUTE), 0);
});
