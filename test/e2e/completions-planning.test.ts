// `/v1/completions` is planned under the rules it is sent with (providers/body-rules.ts sentRulesOf): its provider's
// completions rules (provider-rules-by-kind.ts providerRulesForCompletions), not the chat rules. A rule that caps
// the output for completions only (`max_completion_tokens`, chat's name, is `max_tokens` there and replaces the
// client's) made the plan count the client's whole `max_tokens` while failover sent the capped one: a model whose
// window fits the capped request was skipped as too small, and the route explanation said so.
import assert from "node:assert/strict";
import { test } from "node:test";
import { errorOf, type RawResponse, send, useGateway, useMock } from "../helpers/e2e.ts";
import type { TestGateway } from "../helpers/gateway.ts";
import type { MockUpstream } from "../helpers/mock-upstream.ts";

/** Provider alpha with a rule capping the output (`max_completion_tokens: 100`, `max_tokens` for completions). */
function cappedAlphaYaml(alpha: MockUpstream, keys: { provider?: string; model?: string } = {}): string {
  return `providers:
  - name: alpha
    base_url: ${alpha.baseUrl}
    api_key: sk-alpha
    retries: 0
${keys.provider ?? ""}    body:
      override: { max_completion_tokens: 100 }
    models:
      m: { id: alpha-m${keys.model ?? ""} }
`;
}

/** The same prompt asking for 4000 tokens of output, on /v1/completions and on /v1/chat/completions. */
function sendCompletion(gateway: TestGateway): Promise<RawResponse> {
  return send(gateway, "POST", "/v1/completions", {
    body: { model: "m", prompt: "Once upon a time", max_tokens: 4000 },
  });
}
function sendChat(gateway: TestGateway): Promise<RawResponse> {
  return send(gateway, "POST", "/v1/chat/completions", {
    body: { model: "m", messages: [{ role: "user", content: "Once upon a time" }], max_tokens: 4000 },
  });
}

test("a completion's output is counted under the completions rules in the context fit and the route explanation", async (t) => {
  const alpha = await useMock(t);
  const gateway = await useGateway(t, cappedAlphaYaml(alpha, { model: ", context: 1000" }));
  const completion = await sendCompletion(gateway);
  assert.equal(completion.status, 200, completion.text);
  const sent = alpha.requests.find((request) => request.path === "/v1/completions");
  assert.equal((sent?.body as { max_tokens?: unknown } | undefined)?.max_tokens, 100, "sent capped");

  // The chat body keeps the client's max_tokens beside the rule's max_completion_tokens: 4000 does not fit 1000.
  const chat = await sendChat(gateway);
  assert.equal(chat.status, 400, chat.text);
  assert.match(errorOf(chat).message, /max_tokens 4000/);

  const explain = (endpoint: string) =>
    send(gateway, "GET", `/v1/gateway/route?model=m&endpoint=${endpoint}&tokens=50&max_tokens=4000`);
  const forCompletions = await explain("completions");
  assert.equal(forCompletions.status, 200, forCompletions.text);
  const { candidates } = forCompletions.json as { candidates: unknown[] };
  assert.equal(candidates.length, 1, forCompletions.text);
  assert.match(JSON.stringify(candidates[0]), /prompt ~50 \+ max_tokens 100 share one window/);
  // Chat's route, for the same query, still counts the client's 4000 (its body carries them).
  const forChat = await explain("chat");
  assert.equal(forChat.status, 400, forChat.text);
  assert.match(errorOf(forChat).message, /max_tokens 4000/);
});

test("a completion's budget reserve counts the output under the completions rules", async (t) => {
  const alpha = await useMock(t);
  const gateway = await useGateway(t, cappedAlphaYaml(alpha, { provider: "    limits: { tpm: 1000 }\n" }));
  // max_tokens is charged up front (count_max_tokens): 4000 is over the whole tpm, the capped 100 is not.
  const completion = await sendCompletion(gateway);
  assert.equal(completion.status, 200, completion.text);
  const chat = await sendChat(gateway);
  assert.equal(chat.status, 413, chat.text);
  assert.equal(errorOf(chat).code, "request_too_large");
});
