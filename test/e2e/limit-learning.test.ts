// Limits learned from 429s end to end: a provider with no limits in the config refuses the second request within
// a second; the gateway learns "1 per second" from that spacing and paces the candidate (skipped without an
// upstream request while its second is used, served again as soon as it has room), and /stats shows the
// learned window with its evidence.
import assert from "node:assert/strict";
import { type TestContext, test } from "node:test";
import { ManualClock } from "../../src/clock.ts";
import { INFERRED_LIMIT_LIFETIME_MS, RECOVERY_INTERVAL_MS } from "../../src/limits/budgets.ts";
import { CHAT_ROUTE, chatRequests, postChat, send, useGateway, useMock } from "../helpers/e2e.ts";
import { rateLimited } from "../helpers/mock-upstream.ts";

const START_MS = Date.UTC(2026, 0, 1);

/** Alpha (preferred) and beta, neither with limits in its config, on a manual clock. */
async function alphaAndBeta(t: TestContext) {
  const clock = new ManualClock(START_MS);
  const alpha = await useMock(t);
  const beta = await useMock(t);
  const gateway = await useGateway(
    t,
    `providers:
  - name: alpha
    base_url: ${alpha.baseUrl}
    api_key: sk-alpha
    retries: 0
    models:
      chat-model: { id: alpha-chat, priority: 10 }
  - name: beta
    base_url: ${beta.baseUrl}
    api_key: sk-beta
    retries: 0
    models:
      chat-model: { id: beta-chat, priority: 1 }
routing:
  max_wait_for_better_ms: 0
`,
    { clock },
  );
  return { clock, alpha, gateway };
}

test("a per-second limit learned from the spacing of a 429 paces the candidate instead of provoking more", async (t) => {
  const { clock, alpha, gateway } = await alphaAndBeta(t);

  const first = await postChat(gateway, { model: "chat-model" });
  assert.equal(first.headers["x-gateway-provider"], "alpha");

  clock.advance(300);
  alpha.enqueue(CHAT_ROUTE, rateLimited({ headers: { "retry-after-ms": "700" } }));
  const refused = await postChat(gateway, { model: "chat-model" });
  assert.equal(refused.headers["x-gateway-provider"], "beta");
  assert.equal(chatRequests(alpha).length, 2);

  const stats = await send(gateway, "GET", "/stats");
  const text = JSON.stringify(stats.json);
  assert.match(text, /"source":"learned"/);
  assert.match(text, /429 asking to wait 700 ms \(1 accepted in the second before\)/);
  // Inferred from our own spacing: it lapses unless a 429 confirms it first.
  const lapsesAt = new Date(clock.now() + (INFERRED_LIMIT_LIFETIME_MS.second ?? 0)).toISOString();
  assert.ok(text.includes(`"lapses_at":"${lapsesAt}"`), text);

  // A second after the accepted request alpha has room again: served at once.
  clock.advance(700);
  const third = await postChat(gateway, { model: "chat-model" });
  assert.equal(third.headers["x-gateway-provider"], "alpha");
  assert.equal(chatRequests(alpha).length, 3);

  // Within that second the learned limit skips alpha without an upstream request (no second 429).
  clock.advance(200);
  const paced = await postChat(gateway, { model: "chat-model" });
  assert.equal(paced.headers["x-gateway-provider"], "beta");
  assert.equal(chatRequests(alpha).length, 3);

  clock.advance(800);
  const again = await postChat(gateway, { model: "chat-model" });
  assert.equal(again.headers["x-gateway-provider"], "alpha");
  assert.equal(chatRequests(alpha).length, 4);
});

test("a learned limit a later 429 lowers climbs back: /stats shows where to and when, and the candidate gets its room back", async (t) => {
  const { clock, alpha, gateway } = await alphaAndBeta(t);
  const servedBy = async (): Promise<unknown> =>
    (await postChat(gateway, { model: "chat-model" })).headers["x-gateway-provider"];
  const refuseNext = (): void => alpha.enqueue(CHAT_ROUTE, rateLimited({ headers: { "retry-after-ms": "100" } }));

  // Two accepted within a second, the third refused: 2 per second.
  assert.equal(await servedBy(), "alpha");
  clock.advance(100);
  assert.equal(await servedBy(), "alpha");
  clock.advance(100);
  refuseNext();
  assert.equal(await servedBy(), "beta");
  // Seconds later, a 429 after one accepted request: lowered to 1 per second, climbing back toward 2.
  clock.advance(5_000);
  assert.equal(await servedBy(), "alpha");
  clock.advance(200);
  refuseNext();
  assert.equal(await servedBy(), "beta");
  const loweredAtMs = clock.now();
  const stats = JSON.stringify((await send(gateway, "GET", "/stats")).json);
  assert.match(stats, /"limit":1,/);
  assert.ok(stats.includes('"recovers_to":2'), stats);
  const stepAt = new Date(loweredAtMs + (RECOVERY_INTERVAL_MS.second ?? 0)).toISOString();
  assert.ok(stats.includes(`"next_step_at":"${stepAt}"`), stats);
  // Paced at 1 per second until the step...
  clock.advance(1_000);
  assert.equal(await servedBy(), "alpha");
  clock.advance(100);
  assert.equal(await servedBy(), "beta");
  // ...and 2 per second again after it, without another 429.
  clock.advance(RECOVERY_INTERVAL_MS.second ?? 0);
  assert.equal(await servedBy(), "alpha");
  clock.advance(100);
  assert.equal(await servedBy(), "alpha");
  clock.advance(100);
  assert.equal(await servedBy(), "beta");
  assert.ok(!JSON.stringify((await send(gateway, "GET", "/stats")).json).includes("recovers_to"));
});
