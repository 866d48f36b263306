// The embeddings door's scenes: one or two mock providers of an embedding model `embed`, answering one vector per
// input as the provider writes it.
import type { TestContext } from "node:test";
import { twoProviderScene, useGateway, useMock } from "./e2e.ts";
import type { MockUpstream } from "./mock-upstream.ts";

export const EMBEDDINGS_ROUTE = "POST /v1/embeddings";
/** Eighths: exact as float32, so a float32 round trip gives them back as they were. */
export const VECTOR = [0.125, -0.25, 0.375, 0.5, -0.625, 0.75];

/** One provider `alpha` of `embed`; `extra`: top-level YAML after it (e.g. `cache:\n  enabled: true\n`). */
export async function embeddingScene(t: TestContext, extra = "") {
  const mock = await useMock(t);
  const gateway = await useGateway(
    t,
    `providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha
    models:
      embed: { kind: embedding }
${extra}`,
  );
  return { mock, gateway };
}

/** Two providers of `embed`, the second answering floats; `firstKeys`: the first's extra settings. */
export async function embeddingPair(t: TestContext, firstKeys: string) {
  const scene = await twoProviderScene(t, {
    model: "embed",
    firstModel: "{ id: embed-first, kind: embedding }",
    secondModel: "{ id: embed-second, kind: embedding }",
    firstKeys,
    keepsRequestLog: false,
  });
  answerWith(scene.second, (vector) => vector);
  return scene;
}

/** An answer of one `embedding` per input, as the provider writes it (floats, or whatever `encode` makes of them). */
export function answerWith(mock: MockUpstream, encode: (vector: number[]) => unknown): void {
  mock.setDefault(EMBEDDINGS_ROUTE, (request) => {
    const input = (request.body as { input: unknown }).input;
    const count = Array.isArray(input) ? input.length : 1;
    return {
      kind: "json",
      body: {
        object: "list",
        data: Array.from({ length: count }, (_, index) => ({ object: "embedding", index, embedding: encode(VECTOR) })),
        model: "embed",
        usage: { prompt_tokens: count, total_tokens: count },
      },
    };
  });
}

/** The embeddings calls a mock provider got. */
export function embeddingsCalls(mock: MockUpstream): number {
  return mock.requests.filter((request) => request.path === "/v1/embeddings").length;
}
