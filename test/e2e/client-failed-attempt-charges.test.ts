// What a named client's budgets are charged for attempts that went out and were abandoned before an answer (the
// client left, `timeout_ms` ran out): the prompt their providers counted (errors/outcomes.ts hasProviderCountedPrompt),
// as the providers' own budgets are charged, on top of what the answer used. Until 2026-12-07 the client was charged
// 0 when nothing answered and only the answer's usage after a failover, while the providers' budgets kept the prompt
// of every attempt they took in: the client's budget admitted more than the gateway spent on its behalf.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import OpenAI from "openai";
import { estimateChatPrompt } from "../../src/limits/token-estimate.ts";
import { HELLO, postChat, type RawResponse, send } from "../helpers/e2e.ts";
import { type DeploymentView, type Scene, startScene, windowOf } from "../helpers/limits-scene.ts";
import { chatCompletion, type MockStep, rateLimited } from "../helpers/mock-upstream.ts";
import { waitUntil } from "../helpers/sse-client.ts";

const CHAT = "POST /v1/chat/completions";
const CLIENT_KEY = "greedy-secret-key";
/** An unnamed key: /stats shows it every client's and deployment's budgets. */
const OPS_KEY = "ops-secret-key";
const PROMPT = estimateChatPrompt(HELLO, undefined).promptTokens;
const BUDGET = { limits: { tpm: 1_000_000 } };
/** Far above the prompt: a charge that kept a reservation's output part would show it. */
const MAX_TOKENS = 500;
const USAGE = { prompt_tokens: 30, completion_tokens: 10 };

async function clientScene(t: TestContext, alpha: Record<string, unknown> = {}): Promise<Scene> {
  return await startScene(t, {
    alpha,
    alphaModel: BUDGET,
    betaModel: BUDGET,
    config: {
      server: {
        port: 0,
        host: "127.0.0.1",
        api_keys: [{ key: CLIENT_KEY, name: "greedy", limits: { tpm: 1_000_000 } }, OPS_KEY],
      },
    },
  });
}

function ask(scene: Scene): Promise<RawResponse> {
  return postChat(scene.gateway, { model: "m", max_tokens: MAX_TOKENS }, { authorization: `Bearer ${CLIENT_KEY}` });
}

interface Charges {
  readonly client: number;
  readonly alpha: number;
  readonly beta: number;
}

async function chargesOf(scene: Scene): Promise<Charges> {
  const response = await send(scene.gateway, "GET", "/stats", { headers: { authorization: `Bearer ${OPS_KEY}` } });
  assert.equal(response.status, 200, response.text);
  const stats = response.json as {
    deployments: DeploymentView[];
    clients?: Record<string, { budgets: { unit: string; used: number }[] }>;
  };
  const tokensOf = (provider: string): number => {
    const row = stats.deployments.find((candidate) => candidate.provider === provider);
    assert.ok(row !== undefined, `no /stats row for ${provider}`);
    return windowOf(row, `deployment:${provider}/m`, "tokens", "minute").used;
  };
  const client = stats.clients?.greedy?.budgets.find((window) => window.unit === "tokens")?.used;
  assert.ok(client !== undefined, `no tokens window of client greedy: ${response.text}`);
  return { client, alpha: tokensOf("alpha"), beta: tokensOf("beta") };
}

/** The charges once the client's is `expected` (it is settled as the request's record is published), or as they are. */
async function settledCharges(scene: Scene, expected: number): Promise<Charges> {
  let charges = await chargesOf(scene);
  for (let tries = 0; tries < 100 && charges.client !== expected; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 30));
    charges = await chargesOf(scene);
  }
  return charges;
}

describe("a named client's charge for attempts abandoned after the send", () => {
  test("nothing answered, timeout_ms ran out after the send: the client is charged the prompt alpha counted", async (t) => {
    const scene = await clientScene(t, { timeout_ms: 300 });
    scene.alpha.enqueue(CHAT, { kind: "hang" });
    scene.beta.enqueue(CHAT, rateLimited({ retryAfter: "30" }));
    const failed = await ask(scene);
    assert.equal(failed.status, 504, failed.text);
    // Before: client 0 (nothing answered), while alpha's budget kept the prompt it took in.
    assert.deepEqual(await settledCharges(scene, PROMPT), { client: PROMPT, alpha: PROMPT, beta: 0 });
  });

  test("nothing answered, the client left while alpha worked on it: the client is charged that prompt", async (t) => {
    const scene = await clientScene(t);
    scene.alpha.enqueue(CHAT, { kind: "hang" });
    const controller = new AbortController();
    const client = new OpenAI({ baseURL: scene.gateway.baseUrl, apiKey: CLIENT_KEY, maxRetries: 0 });
    const asked = client.chat.completions.create(
      { model: "m", messages: HELLO, stream: true, max_tokens: MAX_TOKENS },
      { signal: controller.signal },
    );
    await waitUntil(() => scene.alpha.requests.length === 1, "alpha to get the request");
    controller.abort();
    await assert.rejects(asked);
    assert.deepEqual(await settledCharges(scene, PROMPT), { client: PROMPT, alpha: PROMPT, beta: 0 });
  });

  test("alpha timed out after the send and beta answered: the client is charged alpha's prompt and beta's usage", async (t) => {
    const scene = await clientScene(t, { timeout_ms: 300 });
    scene.alpha.enqueue(CHAT, { kind: "hang" });
    scene.beta.enqueue(CHAT, { kind: "json", body: chatCompletion("hi", "beta-model", USAGE) });
    const answered = await ask(scene);
    assert.equal(answered.status, 200, answered.text);
    const expected = PROMPT + 40;
    // Before: 40, beta's usage alone.
    assert.deepEqual(await settledCharges(scene, expected), { client: expected, alpha: PROMPT, beta: 40 });
  });

  test("a refusal alpha answered costs nothing: the client is charged beta's usage alone", async (t) => {
    const scene = await clientScene(t);
    const refusal: MockStep = rateLimited({ retryAfter: "30" });
    scene.alpha.enqueue(CHAT, refusal);
    scene.beta.enqueue(CHAT, { kind: "json", body: chatCompletion("hi", "beta-model", USAGE) });
    const answered = await ask(scene);
    assert.equal(answered.status, 200, answered.text);
    assert.deepEqual(await settledCharges(scene, 40), { client: 40, alpha: 0, beta: 40 });
  });
});
