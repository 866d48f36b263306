// `truncation: "auto"` on POST /v1/responses when the gateway's own fit check is not the whole story
// (docs/protocols.md "Truncation"): candidates left out for other reasons beside their context, and providers that
// refuse the truncated input as too long after all. The openai SDK as the client, the mock upstream behind.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { badRequest, chatRequests, openAiClient, serveEveryChat, useGateway, useMock } from "../helpers/e2e.ts";
import type { MockUpstream } from "../helpers/mock-upstream.ts";

/** `count` words: ~`count` tokens by the gateway's estimate (token-estimate.ts). */
function words(word: string, count: number): string {
  return `${word} `.repeat(count).trim();
}

function sentContents(mock: MockUpstream, index: number): unknown[] {
  const body = (chatRequests(mock)[index]?.body ?? {}) as { messages?: { content: unknown }[] };
  return (body.messages ?? []).map((message) => message.content);
}

const lookupTool = {
  type: "function" as const,
  name: "lookup",
  description: "Look a word up",
  parameters: { type: "object", properties: { q: { type: "string" } }, required: ["q"] },
  strict: false,
};

describe("responses API: truncation beside other refusals", () => {
  test("auto: one candidate too small, the other without tools: truncated for the one that takes tools", async (t) => {
    const small = await useMock(t);
    const large = await useMock(t);
    serveEveryChat(small, "Small.");
    serveEveryChat(large, "Large.");
    const gateway = await useGateway(
      t,
      `providers:
  - name: small
    base_url: ${small.baseUrl}
    api_key: sk-small
    models:
      m: { id: small-m, context: 500 }
  - name: large
    base_url: ${large.baseUrl}
    api_key: sk-large
    models:
      m: { id: large-m, context: 5000, tools: false }
`,
    );
    const client = openAiClient(gateway);
    const input = [
      { role: "user" as const, content: words("cat", 300) },
      { role: "user" as const, content: words("fox", 300) },
    ];
    // Without auto: the plan's 400 names both reasons, as before.
    const refused = await badRequest(client.responses.create({ model: "m", tools: [lookupTool], input }));
    assert.equal(refused.code, "no_capable_model");

    const response = await client.responses.create({ model: "m", truncation: "auto", tools: [lookupTool], input });
    assert.equal(response.output_text, "Small.");
    assert.deepEqual(sentContents(small, 0), [words("fox", 300)]);
    assert.equal(chatRequests(large).length, 0);
  });

  test("auto: every small candidate also lacks what the request needs: not truncated, the plan's 400", async (t) => {
    const small = await useMock(t);
    const large = await useMock(t);
    const gateway = await useGateway(
      t,
      `providers:
  - name: small
    base_url: ${small.baseUrl}
    api_key: sk-small
    models:
      m: { id: small-m, context: 500, tools: false }
  - name: large
    base_url: ${large.baseUrl}
    api_key: sk-large
    models:
      m: { id: large-m, context: 5000, tools: false }
`,
    );
    const client = openAiClient(gateway);
    const refused = await badRequest(
      client.responses.create({
        model: "m",
        truncation: "auto",
        tools: [lookupTool],
        input: [
          { role: "user", content: words("cat", 300) },
          { role: "user", content: words("fox", 300) },
        ],
      }),
    );
    assert.equal(refused.code, "no_capable_model");
    // Both reasons named: nothing was left out for a candidate that could not have served it anyway.
    assert.match(refused.message, /small\/m .*context/i);
    assert.equal(chatRequests(small).length + chatRequests(large).length, 0);
  });
});
