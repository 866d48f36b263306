// `truncation: "auto"` on POST /v1/responses when the gateway's own fit check is not the whole story
// (docs/protocols.md "Truncation"): candidates left out for other reasons beside their context, and providers that
// refuse the truncated input as too long after all. The openai SDK as the client, the mock upstream behind.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import {
  badRequest,
  CHAT_ROUTE,
  chatRequests,
  oneProviderScene,
  oneProviderYaml,
  openAiClient,
  sentContentsOf,
  serveEveryChat,
  useGateway,
  useMock,
  VENDOR_MODEL_ID,
  words,
} from "../helpers/e2e.ts";
import { chatCompletion, type MockStep, type MockUpstream } from "../helpers/mock-upstream.ts";

function sentContents(mock: MockUpstream, index: number): unknown[] {
  return sentContentsOf(chatRequests(mock)[index]);
}

/** `small` (a 500-token window, with `smallKeys`) and `large` (5000, without tools) serving `m`. */
async function smallAndLarge(t: TestContext, smallKeys: string) {
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
      m: { id: small-m, context: 500${smallKeys} }
  - name: large
    base_url: ${large.baseUrl}
    api_key: sk-large
    models:
      m: { id: large-m, context: 5000, tools: false }
`,
  );
  return { small, large, client: openAiClient(gateway) };
}

const CAT_DOG_FOX = [
  { role: "user" as const, content: words("cat", 200) },
  { role: "user" as const, content: words("dog", 200) },
  { role: "user" as const, content: words("fox", 200) },
];

/**
 * One provider of `m` (`context`: its listed window) speaking the Responses API natively, as a server that does not
 * honour `truncation: "auto"`: it refuses what is too long, as any, counting 300 tokens an input item.
 */
async function nativeRefusingScene(t: TestContext, context: number) {
  const mock = await useMock(t);
  mock.setDefault("POST /v1/responses", (recorded) => {
    const input = (recorded.body as { input?: unknown[] }).input ?? [];
    return contextRefusal(input.length);
  });
  const gateway = await useGateway(
    t,
    oneProviderYaml(mock, { keys: `, context: ${context}` }).replace(
      "api_key: sk-alpha",
      "api_key: sk-alpha\n    responses_api: native",
    ),
  );
  return { mock, gateway };
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
    const { small, large, client } = await smallAndLarge(t, "");
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
    const { small, large, client } = await smallAndLarge(t, ", tools: false");
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

  test("auto: a provider refusing the input as too long, its window stated: cut to fit that window and sent again", async (t) => {
    const { mock, client } = await oneProviderScene(t, { keys: ", context: 5000" });
    // The gateway's estimate fits the listed 5000; the provider's window is 500 and its tokenizer counts more.
    mock.setDefault(CHAT_ROUTE, (recorded) => {
      const contents = sentContentsOf(recorded);
      if (contents.length > 1) return contextRefusal(contents.length);
      return { kind: "json", body: chatCompletion("Fits.", VENDOR_MODEL_ID) };
    });
    const input = CAT_DOG_FOX;
    const refused = await badRequest(client.responses.create({ model: "m", input }));
    assert.equal(refused.code, "context_length_exceeded");
    assert.equal(chatRequests(mock).length, 1, "without auto nothing is shortened");

    const response = await client.responses.create({ model: "m", truncation: "auto", input });
    assert.equal(response.output_text, "Fits.");
    // The first refusal's 500 is the deployment's window now (limits/learned-context.ts): cut to it before it is
    // sent, by the gateway's estimate (two items, ~400); the provider counts those 600 (300 an item), refuses, and the
    // round after the refusal cuts to one item (300), which fits.
    assert.deepEqual(sentContents(mock, 1), [words("dog", 200), words("fox", 200)]);
    assert.deepEqual(sentContents(mock, 2), [words("fox", 200)]);
    assert.equal(chatRequests(mock).length, 3);
  });

  test("auto: a provider that keeps refusing without saying its window: bounded rounds, then the 400", async (t) => {
    const { mock, client } = await oneProviderScene(t, { keys: ", context: 5000" });
    mock.setDefault(CHAT_ROUTE, () => ({
      kind: "json",
      status: 400,
      body: { error: { message: "Please reduce the length of the messages.", code: "context_length_exceeded" } },
    }));
    const input = Array.from({ length: 8 }, (_, index) => ({
      role: "user" as const,
      content: words(`w${index}`, 50),
    }));
    const refused = await badRequest(client.responses.create({ model: "m", truncation: "auto", input }));
    assert.equal(refused.code, "context_length_exceeded");
    // The first attempt and three rounds, each with fewer items than the one before.
    const lengths = chatRequests(mock).map((recorded) => sentContentsOf(recorded).length);
    assert.equal(lengths.length, 4, String(lengths));
    for (const [index, length] of lengths.entries()) {
      if (index > 0) assert.ok(length < (lengths[index - 1] ?? 0), String(lengths));
    }
  });

  test("auto: a context refusal that used the last of max_attempts: the provider's 400, not another round", async (t) => {
    const mock = await useMock(t);
    mock.setDefault(CHAT_ROUTE, (recorded) => contextRefusal(sentContentsOf(recorded).length));
    const gateway = await useGateway(
      t,
      `routing:\n  max_attempts: 1\n${oneProviderYaml(mock, { keys: ", context: 5000" })}`,
    );
    const input = [
      { role: "user" as const, content: words("cat", 200) },
      { role: "user" as const, content: words("fox", 200) },
    ];
    const refused = await badRequest(openAiClient(gateway).responses.create({ model: "m", truncation: "auto", input }));
    assert.equal(refused.code, "context_length_exceeded");
    assert.equal(chatRequests(mock).length, 1);
  });

  test("auto: a native provider refusing for context: the next round sends it the shorter input, not the whole again", async (t) => {
    // The native body carries the whole input (and `truncation: "auto"`), which this provider does not honour.
    const { mock, gateway } = await nativeRefusingScene(t, 5000);
    mock.setDefault(CHAT_ROUTE, (recorded) => {
      const contents = sentContentsOf(recorded);
      if (contents.length > 1) return contextRefusal(contents.length);
      return { kind: "json", body: chatCompletion("Fits.", VENDOR_MODEL_ID) };
    });
    const input = CAT_DOG_FOX;
    const response = await openAiClient(gateway).responses.create({ model: "m", truncation: "auto", input });
    assert.equal(response.output_text, "Fits.");
    const nativeCalls = mock.requests.filter((recorded) => recorded.path === "/v1/responses");
    assert.equal(nativeCalls.length, 1, "the whole input is not sent natively a second time");
    // The truncation round's shorter input, as the chat translation (a native provider speaks both).
    assert.deepEqual(sentContents(mock, 0), [words("fox", 200)]);
    assert.equal(chatRequests(mock).length, 1);
  });

  test("auto: a native provider whose listed context is smaller than the input is sent the cut input, not the whole", async (t) => {
    const { mock, gateway } = await nativeRefusingScene(t, 500);
    serveEveryChat(mock, "Fits.");
    const input = CAT_DOG_FOX;
    const response = await openAiClient(gateway).responses.create({ model: "m", truncation: "auto", input });
    assert.equal(response.output_text, "Fits.");
    // Its `context: 500` says the whole input (~600 tokens) does not fit: the cut input goes, at the first attempt.
    const nativeCalls = mock.requests.filter((recorded) => recorded.path === "/v1/responses");
    assert.equal(nativeCalls.length, 0, "the whole input is not sent natively");
    assert.deepEqual(sentContents(mock, 0), [words("dog", 200), words("fox", 200)]);
    assert.equal(chatRequests(mock).length, 1);
  });

  test("auto: the output its deployment's body defaults ask for is kept in the stated window too", async (t) => {
    const { mock, client } = await oneProviderScene(t, {
      keys: ", context: 5000, body: { defaults: { max_tokens: 300 } }",
    });
    // 50 tokens an item as the provider counts, and the 300 the body default asks for, in a 520-token window.
    mock.setDefault(CHAT_ROUTE, (recorded) => {
      const items = sentContentsOf(recorded).length;
      if (items * 50 + 300 <= 520) return { kind: "json", body: chatCompletion("Fits.", VENDOR_MODEL_ID) };
      const message = `This model's maximum context length is 520 tokens. However, you requested ${items * 50 + 300} tokens (${items * 50} in the messages, 300 in the completion). Please reduce the length of the messages or completion.`;
      return { kind: "json", status: 400, body: { error: { message, code: "context_length_exceeded" } } };
    });
    const input = Array.from({ length: 8 }, (_, index) => ({ role: "user" as const, content: words(`w${index}`, 40) }));
    const response = await client.responses.create({ model: "m", truncation: "auto", input });
    assert.equal(response.output_text, "Fits.");
    assert.equal(chatRequests(mock).length, 2, "cut to fit the window with the completion in one round");
  });
});

/** OpenAI's wording for a prompt over a 500-token window, counting 300 tokens an item. */
function contextRefusal(items: number): MockStep {
  return {
    kind: "json",
    status: 400,
    body: {
      error: {
        message: `This model's maximum context length is 500 tokens. However, your messages resulted in ${items * 300} tokens. Please reduce the length of the messages.`,
        type: "invalid_request_error",
        param: "messages",
        code: "context_length_exceeded",
      },
    },
  };
}
