// A provider whose model is listed with `context: 5000` but whose refusal states "maximum context length is 500
// tokens": the stated window is remembered for that deployment (limits/learned-context.ts), so that later long
// prompts go straight to another candidate, `truncation: "auto"` cuts to it at once, and the route explanation names
// it; kept in the state file, shared through Redis, forgotten by the admin reset. Real gateway, scripted mock
// upstreams over loopback, a real redis-server.
import assert from "node:assert/strict";
import { dirname } from "node:path";
import { describe, type TestContext, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { ManualClock } from "../../src/clock.ts";
import { LEARNED_CONTEXT_TRUST_MS } from "../../src/limits/learned-context.ts";
import { runCli } from "../helpers/cli-process.ts";
import {
  CHAT_ROUTE,
  chatRequests,
  oneProviderScene,
  postChat,
  rowOf,
  send,
  sentContentsOf,
  serveEveryChat,
  statsOf,
  useGateway,
  useMock,
  VENDOR_MODEL_ID,
  words,
} from "../helpers/e2e.ts";
import type { TestGateway } from "../helpers/gateway.ts";
import { chatCompletion, type MockStep, type MockUpstream, type RecordedRequest } from "../helpers/mock-upstream.ts";
import { isRedisInstalled, REDIS_MISSING } from "../helpers/redis-server.ts";
import { restartedBetween, twoReplicas } from "../helpers/replica-scenes.ts";

const ADMIN_KEY = "admin-key-123";
/** ~1,000 tokens by the gateway's estimate: within alpha's listed 5,000, over the 500 it states. */
const LONG = [{ role: "user", content: words("long", 1000) }];
const SHORT = [{ role: "user", content: words("short", 50) }];

/** Words of the prompt sent: the provider's count here (one token a word). */
function promptWords(request: RecordedRequest): number {
  return sentContentsOf(request).join(" ").split(/\s+/).length;
}

function tooLong(tokens: number): MockStep {
  const message = `This model's maximum context length is 500 tokens. However, your messages resulted in ${tokens} tokens. Please reduce the length of the messages.`;
  return {
    kind: "json",
    status: 400,
    body: { error: { message, type: "invalid_request_error", code: "context_length_exceeded" } },
  };
}

/** alpha (first, listed at 5,000) takes 500 tokens at most; beta (listed at 100,000) takes every prompt. */
function providersYaml(alpha: MockUpstream, beta: MockUpstream): (state: string) => string {
  return (state) => `server:
  port: 0
  host: 127.0.0.1
  admin_keys: [${ADMIN_KEY}]
providers:
  - name: alpha
    base_url: ${alpha.baseUrl}
    api_key: sk-alpha
    retries: 0
    models:
      m: { id: alpha-m, priority: 10, context: 5000 }
  - name: beta
    base_url: ${beta.baseUrl}
    api_key: sk-beta
    retries: 0
    models:
      m: { id: beta-m, priority: 1, context: 100000 }
routing:
  max_wait_for_better_ms: 0
${state}`;
}

async function mocks(t: TestContext): Promise<{ alpha: MockUpstream; beta: MockUpstream }> {
  const alpha = await useMock(t);
  const beta = await useMock(t);
  alpha.setDefault(CHAT_ROUTE, (request) => {
    const tokens = promptWords(request);
    return tokens > 500 ? tooLong(tokens) : { kind: "json", body: chatCompletion("alpha here", "alpha-m") };
  });
  serveEveryChat(beta, "beta here");
  return { alpha, beta };
}

async function ask(gateway: TestGateway, messages: readonly unknown[]): Promise<string | undefined> {
  const response = await postChat(gateway, { model: "m", messages });
  assert.equal(response.status, 200, response.text);
  return `${response.headers["x-gateway-provider"]} ${response.headers["x-gateway-attempts"]}`;
}

interface Explained {
  candidates: { provider: string; context_tokens: number | null; learned_context: { tokens: number } | null }[];
  skipped: { provider: string; cause: string; reason: string }[];
}

/** Polls until `gateway` plans a long prompt without alpha (the lesson arrived), or gives up after ~6 s. */
async function skipsAlphaForLong(gateway: TestGateway): Promise<Explained> {
  let plan: Explained | undefined;
  for (let tries = 0; tries < 120; tries++) {
    plan = (await send(gateway, "GET", "/v1/gateway/route?model=m&tokens=1000")).json as Explained;
    if (plan.skipped.some((skip) => skip.provider === "alpha")) break;
    await sleep(50);
  }
  return plan as Explained;
}

describe("a context window a refusal stated is learned", () => {
  test("after one refusal stating 500 tokens, long prompts go straight to the other provider, short ones still to alpha; the reset forgets it", async (t) => {
    const { alpha, beta } = await mocks(t);
    const gateway = await useGateway(t, providersYaml(alpha, beta)(""));

    assert.equal(await ask(gateway, LONG), "beta 2", "the first long prompt finds out: refused, failed over");
    assert.equal(await ask(gateway, LONG), "beta 1", "the second goes to beta at once");
    assert.equal(chatRequests(alpha).length, 1, "alpha was not sent the long prompt again");
    assert.equal(await ask(gateway, SHORT), "alpha 1", "a prompt its window holds still goes to alpha");
    assert.equal(chatRequests(beta).length, 2);

    // The explanation names the learned window: skipped for a long prompt, listed for a short one.
    const long = (await send(gateway, "GET", "/v1/gateway/route?model=m&tokens=1000")).json as Explained;
    const skip = long.skipped.find((skipped) => skipped.provider === "alpha");
    assert.equal(skip?.cause, "context");
    assert.match(
      skip?.reason ?? "",
      /^needs ~\d+ tokens of context, has 500 \(prompt ~\d+ \+ max_tokens \d+ share one window; 500 as learned from its refusal\)$/,
    );
    const short = (await send(gateway, "GET", "/v1/gateway/route?model=m&tokens=50")).json as Explained;
    const listed = short.candidates.find((candidate) => candidate.provider === "alpha");
    assert.equal(listed?.context_tokens, 5000);
    assert.equal(listed?.learned_context?.tokens, 500);

    const reset = await send(gateway, "POST", "/admin/cooldowns/reset", {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    });
    assert.equal(reset.status, 200, reset.text);
    assert.equal(await ask(gateway, LONG), "beta 2", "after the reset alpha is asked (and refuses) again");
    assert.equal(chatRequests(alpha).length, 3);
  });

  test("/stats shows the window as `learned_context` (tokens, when learned, until when applied), not as a refused feature", async (t) => {
    const { alpha, beta } = await mocks(t);
    const gateway = await useGateway(t, providersYaml(alpha, beta)(""));
    const learnedAtMs = Date.now();
    assert.equal(await ask(gateway, LONG), "beta 2");
    const row = rowOf(await statsOf(gateway), "alpha/m") as unknown as {
      refused_features: unknown[];
      learned_context: { tokens: number; learned_at: string; applied_until: string; until: string; reason: string };
    };
    // Before: refused_features listed `x_gateway_context_window` with `min_entries: 501`, and nothing said 500.
    assert.deepEqual(row.refused_features, []);
    const { tokens, learned_at, applied_until, until, reason } = row.learned_context;
    assert.equal(tokens, 500);
    assert.match(reason, /maximum context length is 500 tokens/);
    const learnedMs = Date.parse(learned_at);
    assert.ok(learnedMs >= learnedAtMs - 1000 && learnedMs <= Date.now(), learned_at);
    assert.equal(Date.parse(applied_until) - learnedMs, LEARNED_CONTEXT_TRUST_MS);
    assert.ok(Date.parse(until) > Date.parse(applied_until), "kept past the hour it is applied");
    const beforeLearned = rowOf(await statsOf(gateway), "beta/m") as unknown as { learned_context: unknown };
    assert.equal(beforeLearned.learned_context, null, "a deployment without a learned window");
  });

  test("an hour after the refusal a long prompt tries alpha again: refused, the window holds another hour; answered, it ends", async (t) => {
    const clock = new ManualClock(Date.now());
    const { alpha, beta } = await mocks(t);
    const gateway = await useGateway(t, providersYaml(alpha, beta)(""), { clock });
    assert.equal(await ask(gateway, LONG), "beta 2");
    clock.advance(LEARNED_CONTEXT_TRUST_MS - 1_000);
    assert.equal(await ask(gateway, LONG), "beta 1", "within the hour alpha is left out");
    // Before: left out for the lesson's 6 h, whatever alpha's window had become.
    clock.advance(1_000);
    assert.equal(await ask(gateway, LONG), "beta 2", "past the hour alpha is tried again, and still refuses");
    assert.equal(await ask(gateway, LONG), "beta 1", "learned afresh: left out again");
    assert.equal(chatRequests(alpha).length, 2);
    // An hour on, alpha's host has raised its window: the re-trial is answered, and the lesson ends.
    const usage = { prompt_tokens: 1000, completion_tokens: 2 };
    alpha.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("alpha here", "alpha-m", usage) });
    clock.advance(LEARNED_CONTEXT_TRUST_MS);
    assert.equal(await ask(gateway, LONG), "alpha 1");
    const row = rowOf(await statsOf(gateway), "alpha/m") as unknown as { learned_context: unknown };
    assert.equal(row.learned_context, null);
  });

  test("within the request that learns it: a candidate listed below the listed window but above the stated one is still tried", async (t) => {
    const { alpha, beta } = await mocks(t);
    const gateway = await useGateway(t, providersYaml(alpha, beta)("").replace("context: 100000", "context: 4000"));
    assert.equal(await ask(gateway, LONG), "beta 2", "beta (4,000) holds what alpha's 500 did not");
  });

  test("kept in the embedded state file: a restarted gateway sends long prompts to beta at once", async (t) => {
    const { alpha, beta } = await mocks(t);
    const { after } = await restartedBetween(t, providersYaml(alpha, beta), async (before) => {
      assert.equal(await ask(before, LONG), "beta 2");
    });
    assert.equal(await ask(after, LONG), "beta 1", "the restarted gateway did not pay alpha's refusal again");
    assert.equal(chatRequests(alpha).length, 1);
    // `llm-gateway route --explain` reads the same state file and names the window.
    await after.close();
    const route = await runCli(["route", "m", "--explain", "--config", after.configPath], {
      cwd: dirname(after.configPath),
    });
    assert.equal(route.code, 0, route.stderr);
    assert.match(
      route.stdout,
      /^context: alpha\/alpha-m 500 tokens, not 5000: .*maximum context length is 500 tokens/m,
    );
  });

  test("shared through Redis: replica B sends a long prompt to beta at once after replica A's refusal", {
    skip: isRedisInstalled() ? false : REDIS_MISSING,
  }, async (t) => {
    const { alpha, beta } = await mocks(t);
    const { a, b } = await twoReplicas(t, providersYaml(alpha, beta), "stated-context:");
    assert.equal(await ask(a, LONG), "beta 2");
    const plan = await skipsAlphaForLong(b);
    assert.match(plan.skipped.find((skip) => skip.provider === "alpha")?.reason ?? "", /learned from its refusal/);
    assert.equal(await ask(b, LONG), "beta 1");
    assert.equal(chatRequests(alpha).length, 1, "B did not pay the refusal A learned from");
  });

  test('`truncation: "auto"`: the next request is cut to the learned window at once, not sent whole first', async (t) => {
    const { mock, client, gateway } = await oneProviderScene(t, { keys: ", context: 5000" });
    mock.setDefault(CHAT_ROUTE, (request) => {
      const tokens = promptWords(request);
      return tokens > 500 ? tooLong(tokens) : { kind: "json", body: chatCompletion("Fits.", VENDOR_MODEL_ID) };
    });
    const input = Array.from({ length: 8 }, (_, index) => ({
      role: "user" as const,
      content: words(`w${index}`, 100),
    }));
    const first = await client.responses.create({ model: "m", truncation: "auto", input });
    assert.equal(first.output_text, "Fits.");
    const afterFirst = chatRequests(mock).length;
    assert.ok(afterFirst >= 2, "the first was refused whole, then cut");
    // Counted as it would be sent: cut to the learned window, and not scaled by a calibration the refusal taught.
    const counted = await send(gateway, "POST", "/v1/responses/input_tokens", {
      body: { model: "m", truncation: "auto", input },
    });
    const inputTokens = (counted.json as { input_tokens: number }).input_tokens;
    assert.ok(inputTokens > 0 && inputTokens <= 500, `input_tokens ${inputTokens}`);
    const second = await client.responses.create({ model: "m", truncation: "auto", input });
    assert.equal(second.output_text, "Fits.");
    assert.equal(chatRequests(mock).length, afterFirst + 1, "the second was cut before it was sent");
    assert.ok(promptWords(chatRequests(mock)[afterFirst] as RecordedRequest) <= 500);
  });
});
