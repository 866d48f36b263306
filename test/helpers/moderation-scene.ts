// The Llama Guard moderation scene shared by the moderation e2e tests: a guard model on p0 (answered as N chat calls)
// and a native moderation model behind it on p1, so that a test sees which one served and what each was sent.
import type { TestContext } from "node:test";
import { useGateway, useMock } from "./e2e.ts";
import type { MockUpstream } from "./mock-upstream.ts";

export const GUARD = "meta-llama/llama-guard-4-12b";

/** The Llama Guard chat calls `mock` got (one per moderated input). */
export function chatCalls(mock: MockUpstream): number {
  return mock.requests.filter((recorded) => recorded.path === "/v1/chat/completions").length;
}

/** A native moderation answer with `count` unflagged results. */
export function nativeAnswer(count: number) {
  const result = { flagged: false, categories: { hate: false }, category_scores: { hate: 0.01 } };
  return { id: "modr-native", model: "omni-moderation-latest", results: Array.from({ length: count }, () => result) };
}

/**
 * `guard` on p0 (Llama Guard, with `guardExtra` appended to its model entry and `providerExtra` to p0's entry) and on
 * p1 a native moderation model, with the request log on; `state` is more top-level YAML (a Redis state store).
 */
export async function guardScene(
  t: TestContext,
  {
    guardExtra = "",
    providerExtra = "",
    state = "",
  }: { guardExtra?: string; providerExtra?: string; state?: string } = {},
) {
  const guardMock = await useMock(t);
  const nativeMock = await useMock(t);
  const gateway = await useGateway(
    t,
    `providers:
  - name: p0
    base_url: ${guardMock.baseUrl}
    api_key: sk-p0-secret
    retries: 0
${providerExtra}    models:
      guard: { id: "${GUARD}", priority: 100${guardExtra} }
  - name: p1
    base_url: ${nativeMock.baseUrl}
    api_key: sk-p1-secret
    retries: 0
    models:
      guard: { id: "omni-moderation-latest", priority: 10 }
request_log:
  enabled: true
${state}`,
  );
  return { gateway, guardMock, nativeMock };
}
