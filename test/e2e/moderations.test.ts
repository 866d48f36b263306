// `/v1/moderations`: OpenAI's Moderations API, with the real `openai` client. A native moderation model's answer is
// passed on (Mistral's gets OpenAI's `flagged`); a Llama Guard chat model is called once per input and its verdict
// translated; a garbage verdict fails over; bad input is a 400 in OpenAI's shape.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import OpenAI from "openai";
import { errorOf, openAiClient, recordsOf, send, useGateway, useMock } from "../helpers/e2e.ts";
import type { TestGateway } from "../helpers/gateway.ts";
import { chatCompletion, type MockUpstream, type RecordedRequest } from "../helpers/mock-upstream.ts";
import { parsePrometheusText, sumOf } from "../helpers/prometheus-text.ts";

const MODERATIONS = "POST /v1/moderations";
const CHAT = "POST /v1/chat/completions";

const OPENAI_CATEGORIES = [
  "harassment",
  "harassment/threatening",
  "hate",
  "hate/threatening",
  "illicit",
  "illicit/violent",
  "self-harm",
  "self-harm/intent",
  "self-harm/instructions",
  "sexual",
  "sexual/minors",
  "violence",
  "violence/graphic",
];

/** An OpenAI moderation result: `flagged` ones true (score 0.9), the others false (0.01). */
function openAiResult(flagged: readonly string[] = []) {
  const categories = Object.fromEntries(OPENAI_CATEGORIES.map((name) => [name, flagged.includes(name)]));
  const scores = Object.fromEntries(OPENAI_CATEGORIES.map((name) => [name, flagged.includes(name) ? 0.9 : 0.01]));
  const applied = Object.fromEntries(OPENAI_CATEGORIES.map((name) => [name, ["text"]]));
  return {
    flagged: flagged.length > 0,
    categories,
    category_scores: scores,
    category_applied_input_types: applied,
  };
}

function requestsTo(mock: MockUpstream, path: string): RecordedRequest[] {
  return mock.requests.filter((recorded) => recorded.method === "POST" && recorded.path === path);
}

interface Scene {
  readonly gateway: TestGateway;
  readonly client: OpenAI;
  readonly mocks: readonly MockUpstream[];
}

/** One mock provider per entry, each serving the models given (`public name: upstream id`). */
async function scene(
  t: Parameters<typeof useMock>[0],
  providers: readonly Readonly<Record<string, string>>[],
  /** More YAML for every provider's entry (`body:` rules), indented as its keys. */
  providerExtra = "",
  /** More top-level YAML (`cache:`). */
  extra = "",
): Promise<Scene> {
  const mocks: MockUpstream[] = [];
  let yaml = "providers:\n";
  for (const [index, models] of providers.entries()) {
    const mock = await useMock(t);
    mocks.push(mock);
    yaml += `  - name: p${index}\n    base_url: ${mock.baseUrl}\n    api_key: sk-p${index}-secret\n    retries: 0\n`;
    yaml += providerExtra;
    yaml += "    models:\n";
    // The providers' order is their preference: the first is tried first.
    for (const [name, id] of Object.entries(models)) {
      yaml += `      ${name}: { id: "${id}", priority: ${100 - index * 10} }\n`;
    }
  }
  yaml += `request_log:\n  enabled: true\n${extra}`;
  const gateway = await useGateway(t, yaml);
  return { gateway, client: openAiClient(gateway), mocks };
}

function mockAt(mocks: readonly MockUpstream[], index: number): MockUpstream {
  const mock = mocks[index];
  assert.ok(mock !== undefined);
  return mock;
}

describe("moderations", () => {
  test("a native moderation model: the client's body with the upstream id goes to /moderations, the answer comes back as it came", async (t) => {
    // The provider's rules are its chat models': neither a chat field nor an embeddings one reaches /moderations.
    const { client, mocks } = await scene(
      t,
      [{ "omni-moderation-latest": "omni-moderation-2024-09-26", chat: "c1" }],
      "    body:\n      defaults: { temperature: 0.2, encoding_format: float, dimensions: 8 }\n",
    );
    const mock = mockAt(mocks, 0);
    const upstreamAnswer = {
      id: "modr-upstream-1",
      model: "omni-moderation-2024-09-26",
      results: [openAiResult(), openAiResult(["violence", "harassment"])],
    };
    mock.enqueue(MODERATIONS, { kind: "json", body: upstreamAnswer });
    const answer = await client.moderations.create({
      model: "omni-moderation-latest",
      input: ["hello there", "I will hurt you"],
    });
    assert.deepEqual(answer, upstreamAnswer);
    const sent = requestsTo(mock, "/v1/moderations");
    assert.equal(sent.length, 1);
    assert.deepEqual(sent[0]?.body, { model: "omni-moderation-2024-09-26", input: ["hello there", "I will hurt you"] });
    assert.equal(sent[0]?.headers.authorization, "Bearer sk-p0-secret");
    assert.equal(requestsTo(mock, "/v1/chat/completions").length, 0);
  });

  test("Mistral's answer (its own categories, no `flagged`): categories passed through, `flagged` added from them", async (t) => {
    const { client, mocks } = await scene(t, [{ mod: "mistral-moderation-latest" }]);
    const mock = mockAt(mocks, 0);
    const categories = (isViolent: boolean) => ({
      sexual: false,
      hate_and_discrimination: false,
      violence_and_threats: isViolent,
      dangerous_and_criminal_content: false,
      selfharm: false,
      health: false,
      financial: false,
      law: false,
      pii: false,
    });
    mock.enqueue(MODERATIONS, {
      kind: "json",
      body: {
        id: "mistral-mod-1",
        model: "mistral-moderation-2411",
        results: [
          { categories: categories(false), category_scores: { violence_and_threats: 0.01 } },
          { categories: categories(true), category_scores: { violence_and_threats: 0.97 } },
        ],
      },
    });
    const answer = await client.moderations.create({ model: "mod", input: ["fine", "threat"] });
    assert.equal(answer.id, "mistral-mod-1");
    assert.equal(answer.model, "mistral-moderation-2411");
    assert.deepEqual(
      answer.results.map((result) => result.flagged),
      [false, true],
    );
    assert.deepEqual(answer.results[1]?.categories, categories(true));
    assert.deepEqual(answer.results[1]?.category_scores, { violence_and_threats: 0.97 });
  });

  test("a native result whose `flagged` is no boolean (a string, null) gets `flagged` from its categories: the client never sees another type", async (t) => {
    const { client, mocks } = await scene(t, [{ mod: "omni-moderation-latest" }]);
    mockAt(mocks, 0).enqueue(MODERATIONS, {
      kind: "json",
      body: {
        id: "modr-odd",
        model: "omni-moderation-latest",
        results: [
          { ...openAiResult(["hate"]), flagged: "true" },
          { ...openAiResult(), flagged: "false" },
          { ...openAiResult(["violence"]), flagged: null },
        ],
      },
    });
    const answer = await client.moderations.create({ model: "mod", input: ["a", "b", "c"] });
    assert.deepEqual(
      answer.results.map((result) => result.flagged),
      [true, false, true],
    );
    assert.equal(answer.id, "modr-odd");
  });

  test("Llama Guard: one chat call per input with the input as the user's message; safe and unsafe verdicts become OpenAI's categories", async (t) => {
    const { gateway, client, mocks } = await scene(t, [{ guard: "meta-llama/llama-guard-4-12b" }]);
    const mock = mockAt(mocks, 0);
    mock.enqueue(
      CHAT,
      {
        kind: "json",
        body: chatCompletion("safe", "meta-llama/llama-guard-4-12b", { prompt_tokens: 30, completion_tokens: 2 }),
      },
      { kind: "json", body: chatCompletion("unsafe\nS1,S10", "meta-llama/llama-guard-4-12b") },
      { kind: "json", body: chatCompletion(" unsafe\nS5 ", "meta-llama/llama-guard-4-12b") },
    );
    const answer = await client.moderations.create({
      model: "guard",
      input: ["hello", "kill them all, they are vermin", "he is a thief (he is not)"],
    });
    const sent = requestsTo(mock, "/v1/chat/completions");
    assert.deepEqual(
      sent.map((recorded) => recorded.body),
      ["hello", "kill them all, they are vermin", "he is a thief (he is not)"].map((text) => ({
        model: "meta-llama/llama-guard-4-12b",
        messages: [{ role: "user", content: text }],
        temperature: 0,
        max_tokens: 64,
      })),
    );
    assert.match(answer.id, /^modr-[0-9a-f]{32}$/);
    assert.equal(answer.model, "meta-llama/llama-guard-4-12b");
    assert.equal(answer.results.length, 3);
    const [safe, unsafe, defamation] = answer.results;
    assert.equal(safe?.flagged, false);
    assert.ok(Object.values(safe?.categories ?? {}).every((value) => value === false));
    assert.deepEqual(Object.keys(safe?.categories ?? {}).sort(), [...OPENAI_CATEGORIES].sort());
    assert.equal(unsafe?.flagged, true);
    const flaggedOf = (result: typeof unsafe) =>
      Object.entries(result?.categories ?? {})
        .filter(([, value]) => value === true)
        .map(([name]) => name)
        .sort();
    // S1 violent crimes, S10 hate.
    assert.deepEqual(flaggedOf(unsafe), ["hate", "illicit", "illicit/violent", "violence"]);
    assert.equal(unsafe?.category_scores.violence, 1);
    assert.equal(unsafe?.category_scores.sexual, 0);
    assert.deepEqual(unsafe?.category_applied_input_types.violence, ["text"]);
    assert.deepEqual((unsafe as unknown as { x_gateway_hazard_codes: string[] }).x_gateway_hazard_codes, ["S1", "S10"]);
    // S5 (defamation) has no OpenAI category: flagged all the same, its code kept.
    assert.equal(defamation?.flagged, true);
    assert.deepEqual(flaggedOf(defamation), []);
    assert.deepEqual((defamation as unknown as { x_gateway_hazard_codes: string[] }).x_gateway_hazard_codes, ["S5"]);
    // The three calls are one attempt, whose usage is their sum (30 + 10 + 10 prompt tokens).
    const { records } = await recordsOf(gateway, "moderations");
    assert.equal(records[0]?.status, 200);
    assert.equal(records[0]?.attempts.length, 1);
    assert.equal(records[0]?.tokensIn, 50);
  });

  test("Llama Guard, a multimodal input: the parts go as the user's content, one result says text and image", async (t) => {
    const { client, mocks } = await scene(t, [{ guard: "meta-llama/llama-guard-4-12b" }]);
    const mock = mockAt(mocks, 0);
    mock.enqueue(CHAT, { kind: "json", body: chatCompletion("unsafe\nS12", "meta-llama/llama-guard-4-12b") });
    const input = [
      { type: "text" as const, text: "what is this?" },
      { type: "image_url" as const, image_url: { url: "https://example.com/a.png" } },
    ];
    const answer = await client.moderations.create({ model: "guard", input });
    assert.equal(answer.results.length, 1);
    assert.equal(answer.results[0]?.categories.sexual, true);
    assert.deepEqual(answer.results[0]?.category_applied_input_types.sexual, ["text", "image"]);
    assert.deepEqual(
      (requestsTo(mock, "/v1/chat/completions")[0]?.body as { messages?: unknown } | undefined)?.messages,
      [{ role: "user", content: input }],
    );
  });

  test("an image input is not sent to a text-only Llama Guard 3: the Llama Guard 4 candidate serves it; alone, a 400 saying no model accepts images", async (t) => {
    const { client, mocks } = await scene(t, [
      { guard: "@cf/meta/llama-guard-3-8b" },
      { guard: "meta-llama/llama-guard-4-12b" },
    ]);
    const [text, vision] = [mockAt(mocks, 0), mockAt(mocks, 1)];
    vision.enqueue(CHAT, { kind: "json", body: chatCompletion("safe", "meta-llama/llama-guard-4-12b") });
    const input = [
      { type: "text" as const, text: "what is this?" },
      { type: "image_url" as const, image_url: { url: "https://example.com/a.png" } },
    ];
    const answer = await client.moderations.create({ model: "guard", input });
    assert.equal(answer.model, "meta-llama/llama-guard-4-12b");
    assert.equal(requestsTo(text, "/v1/chat/completions").length, 0);
    // Text alone still goes to the first.
    text.enqueue(CHAT, { kind: "json", body: chatCompletion("safe", "@cf/meta/llama-guard-3-8b") });
    assert.equal((await client.moderations.create({ model: "guard", input: "hi" })).model, "@cf/meta/llama-guard-3-8b");

    const only = await scene(t, [{ guard3: "meta-llama/Llama-Guard-3-8B" }]);
    const refused = await send(only.gateway, "POST", "/v1/moderations", { body: { model: "guard3", input } });
    assert.equal(refused.status, 400, refused.text);
    assert.match(errorOf(refused).message, /accepts images/);
    assert.equal(requestsTo(mockAt(only.mocks, 0), "/v1/chat/completions").length, 0);
  });

  test("a Llama Guard answer that is no verdict fails over to the next candidate (and so does a wrong native answer)", async (t) => {
    const { gateway, client, mocks } = await scene(t, [
      { guard: "meta-llama/llama-guard-4-12b" },
      { guard: "@cf/meta/llama-guard-3-8b" },
      { guard: "omni-moderation-latest" },
    ]);
    const [first, second, third] = [mockAt(mocks, 0), mockAt(mocks, 1), mockAt(mocks, 2)];
    // The first input's verdict is fine, the second's is chatter: the attempt fails as a whole.
    first.enqueue(
      CHAT,
      { kind: "json", body: chatCompletion("safe", "meta-llama/llama-guard-4-12b") },
      { kind: "json", body: chatCompletion("I'm sorry, I can't help with that.", "meta-llama/llama-guard-4-12b") },
    );
    // A code outside S1-S14 is no verdict either.
    second.enqueue(CHAT, { kind: "json", body: chatCompletion("unsafe\nS1,S99", "llama-guard-3-8b") });
    // One result for two inputs: no answer.
    third.enqueue(MODERATIONS, { kind: "json", body: { id: "modr-x", model: "omni", results: [openAiResult()] } });
    const failed = await send(gateway, "POST", "/v1/moderations", {
      body: { model: "guard", input: ["a", "b"] },
    });
    assert.equal(failed.status, 502, failed.text);
    const { records } = await recordsOf(gateway, "moderations");
    const attempts = records[0]?.attempts ?? [];
    assert.deepEqual(
      attempts.map((attempt) => [attempt.provider, attempt.outcome]),
      [
        ["p0", "bad_response"],
        ["p1", "bad_response"],
        ["p2", "bad_response"],
      ],
    );
    assert.match(attempts[0]?.reason ?? "", /Llama Guard verdict \(input 1\)/);
    assert.match(attempts[1]?.reason ?? "", /S1-S14/);
    assert.match(attempts[2]?.reason ?? "", /1 results for 2 inputs/);

    // Now the second answers: its translation is the client's answer.
    first.enqueue(CHAT, { kind: "json", body: chatCompletion("maybe?", "meta-llama/llama-guard-4-12b") });
    second.enqueue(CHAT, { kind: "json", body: chatCompletion("unsafe\nS11", "llama-guard-3-8b") });
    const answer = await client.moderations.create({ model: "guard", input: "I want to end it" });
    assert.equal(answer.model, "@cf/meta/llama-guard-3-8b");
    assert.equal(answer.results[0]?.categories["self-harm"], true);
  });

  test("a Llama Guard call refused mid-list (a 429 on the second input) fails the attempt as a 429: the candidate cools, the next answers every input", async (t) => {
    const { gateway, client, mocks } = await scene(t, [
      { guard: "meta-llama/llama-guard-4-12b" },
      { guard: "omni-moderation-latest" },
    ]);
    const [first, second] = [mockAt(mocks, 0), mockAt(mocks, 1)];
    first.enqueue(
      CHAT,
      { kind: "json", body: chatCompletion("safe", "meta-llama/llama-guard-4-12b") },
      {
        kind: "json",
        status: 429,
        headers: { "retry-after": "30" },
        body: { error: { message: "Rate limit reached", type: "rate_limit_error" } },
      },
    );
    second.enqueue(MODERATIONS, {
      kind: "json",
      body: { id: "modr-2", model: "omni-moderation-latest", results: [openAiResult(), openAiResult(["hate"])] },
    });
    const answer = await client.moderations.create({ model: "guard", input: ["fine", "hateful"] });
    assert.equal(answer.id, "modr-2");
    assert.equal(requestsTo(first, "/v1/chat/completions").length, 2);
    const { records } = await recordsOf(gateway, "moderations");
    assert.deepEqual(
      records[0]?.attempts.map((attempt) => [attempt.provider, attempt.outcome]),
      [
        ["p0", "rate_limited"],
        ["p1", "success"],
      ],
    );
    // Cooling: the next request goes to the second provider at once, the first gets nothing.
    second.enqueue(MODERATIONS, {
      kind: "json",
      body: { id: "modr-3", model: "omni-moderation-latest", results: [openAiResult()] },
    });
    assert.equal((await client.moderations.create({ model: "guard", input: "again" })).id, "modr-3");
    assert.equal(requestsTo(first, "/v1/chat/completions").length, 2);
  });

  test("without `model`, the best moderation model answers; a chat model is not one", async (t) => {
    const { client, mocks } = await scene(t, [{ chat: "llama-3.1-8b-instant", guard: "meta-llama/llama-guard-4-12b" }]);
    const mock = mockAt(mocks, 0);
    mock.enqueue(CHAT, { kind: "json", body: chatCompletion("safe", "meta-llama/llama-guard-4-12b") });
    const answer = await client.moderations.create({ input: "hello" });
    assert.equal(answer.model, "meta-llama/llama-guard-4-12b");
    assert.equal(
      (requestsTo(mock, "/v1/chat/completions")[0]?.body as { model?: string } | undefined)?.model,
      answer.model,
    );
    const wrongKind = await client.moderations
      .create({ model: "chat", input: "hello" })
      .catch((error: unknown) => error);
    assert.ok(wrongKind instanceof OpenAI.BadRequestError, String(wrongKind));
    assert.match(wrongKind.message, /chat model and cannot serve this moderation endpoint/);
  });

  test("no moderation model configured: a 404 that says so; a Prompt Guard model is none (left out of the plan, named)", async (t) => {
    const chatOnly = await scene(t, [{ chat: "llama-3.1-8b-instant" }]);
    const missing = await chatOnly.client.moderations.create({ input: "hello" }).catch((error: unknown) => error);
    assert.ok(missing instanceof OpenAI.NotFoundError, String(missing));
    assert.match(missing.message, /No moderation model is configured/);

    const { gateway, client, mocks } = await scene(t, [{ prompt: "meta-llama/llama-prompt-guard-2-86m" }]);
    for (const body of [{ input: "hello" }, { model: "prompt", input: "hello" }]) {
      const answer = await send(gateway, "POST", "/v1/moderations", { body });
      assert.equal(answer.status, 400, answer.text);
      assert.match(errorOf(answer).message, /llama-prompt-guard-2-86m answers neither .*Llama Guard 3 or 4/);
    }
    const route = await send(gateway, "GET", "/v1/gateway/route?model=prompt&kind=moderation");
    // The route explanation plans it as requests are planned: the same refusal.
    assert.equal(route.status, 400, route.text);
    assert.match(errorOf(route).message, /Llama Guard 3 or 4/);
    await assert.rejects(client.moderations.create({ model: "prompt", input: "x" }), OpenAI.BadRequestError);
    assert.equal(mockAt(mocks, 0).requests.filter((recorded) => recorded.method === "POST").length, 0);
  });

  test("`moderation_api` says the way where the id does not: a Llama Guard alias through chat, a native model whose id reads like Prompt Guard to /moderations", async (t) => {
    const mock = await useMock(t);
    const gateway = await useGateway(
      t,
      `providers:
  - name: acme
    base_url: ${mock.baseUrl}
    api_key: sk-acme
    known_models:
      acme-shield-v4: { moderation_api: llama_guard }
    models:
      guard: { id: acme-safety-v2, moderation_api: llama_guard }
      known: { id: acme-shield-v4 }
      native: { id: acme-prompt-guard-moderation, moderation_api: native }
`,
    );
    mock.enqueue(
      CHAT,
      { kind: "json", body: chatCompletion("safe", "acme-safety-v2") },
      { kind: "json", body: chatCompletion("unsafe\nS10", "acme-safety-v2") },
    );
    const guard = await send(gateway, "POST", "/v1/moderations", { body: { model: "guard", input: ["hi", "hate"] } });
    assert.equal(guard.status, 200, guard.text);
    const answer = guard.json as {
      model: string;
      results: { flagged: boolean; categories: Record<string, boolean> }[];
    };
    assert.equal(answer.model, "acme-safety-v2");
    assert.deepEqual(
      answer.results.map((result) => [result.flagged, result.categories.hate]),
      [
        [false, false],
        [true, true],
      ],
    );
    assert.deepEqual(
      requestsTo(mock, "/v1/chat/completions").map((recorded) => (recorded.body as { messages: unknown }).messages),
      [[{ role: "user", content: "hi" }], [{ role: "user", content: "hate" }]],
    );
    // The preset's (here the provider's) knowledge of an upstream id says it as well.
    mock.enqueue(CHAT, { kind: "json", body: chatCompletion("unsafe\nS1", "acme-shield-v4") });
    const known = await send(gateway, "POST", "/v1/moderations", { body: { model: "known", input: "x" } });
    assert.equal(known.status, 200, known.text);
    assert.equal((known.json as { results: { flagged: boolean }[] }).results[0]?.flagged, true);
    assert.equal(requestsTo(mock, "/v1/chat/completions").length, 3);
    // Its id alone would have it a Prompt Guard model (not served): the config says it answers /moderations.
    mock.enqueue(MODERATIONS, {
      kind: "json",
      body: { id: "modr-acme", model: "acme-prompt-guard-moderation", results: [openAiResult(["violence"])] },
    });
    const native = await send(gateway, "POST", "/v1/moderations", { body: { model: "native", input: "x" } });
    assert.equal(native.status, 200, native.text);
    assert.equal((native.json as { id: string }).id, "modr-acme");
    assert.equal(requestsTo(mock, "/v1/moderations").length, 1);
    // All three are moderation models: /v1/models lists them on /v1/moderations.
    const models = (await send(gateway, "GET", "/v1/models")).json as { data: { id: string; endpoints: string[] }[] };
    for (const name of ["guard", "known", "native"]) {
      assert.deepEqual(models.data.find((entry) => entry.id === name)?.endpoints, ["/v1/moderations"], name);
    }
  });

  test("bad input of every kind is a 400 in OpenAI's shape naming the field, sent nowhere", async (t) => {
    const { gateway, mocks } = await scene(t, [{ guard: "meta-llama/llama-guard-4-12b" }]);
    const cases: [unknown, string | null, RegExp][] = [
      [{ model: "guard" }, "input", /`input` is required/],
      [{ model: "guard", input: 42 }, "input", /`input` is required/],
      [{ model: "guard", input: null }, "input", /`input` is required/],
      [{ model: "guard", input: "" }, "input", /must not be empty/],
      [{ model: "guard", input: [] }, "input", /must not be empty/],
      [{ model: "guard", input: ["fine", 7] }, "input[1]", /each item of `input` must be a string/],
      [{ model: "guard", input: [{ type: "audio", audio: "x" }] }, "input[0].type", /text part/],
      [{ model: "guard", input: [{ type: "text", text: "a" }, "b"] }, "input[1]", /text part/],
      [{ model: "guard", input: [{ type: "text" }] }, "input[0].text", /`text` must be a string/],
      [{ model: "guard", input: [{ type: "image_url", image_url: {} }] }, "input[0].image_url.url", /`url`/],
      [{ model: "guard", input: [{ type: "image_url", image_url: "x" }] }, "input[0].image_url", /`image_url`/],
      [{ model: "guard", input: Array(101).fill("x") }, "input", /at most 100/],
      [{ model: 5, input: "x" }, "model", /`model`/],
      [{ model: "", input: "x" }, "model", /`model`/],
      [{ model: "guard", input: "x", stream: true }, "stream", /not supported for moderations/],
      [[{ input: "x" }], null, /JSON object/],
    ];
    for (const [body, param, message] of cases) {
      const answer = await send(gateway, "POST", "/v1/moderations", { body });
      assert.equal(answer.status, 400, `${JSON.stringify(body).slice(0, 80)}: ${answer.text}`);
      const error = errorOf(answer);
      assert.equal(error.type, "invalid_request_error");
      assert.equal(error.param, param, JSON.stringify(body).slice(0, 80));
      assert.match(error.message, message, JSON.stringify(body).slice(0, 80));
    }
    // A huge array (a million bad items, then a million strings with a bad last one) is refused at once.
    for (const input of [Array(1_000_000).fill(1), [...Array(1_000_000).fill("x"), 1]]) {
      const startedAtMs = Date.now();
      const answer = await send(gateway, "POST", "/v1/moderations", { body: { model: "guard", input } });
      assert.equal(answer.status, 400, answer.text.slice(0, 200));
      assert.match(errorOf(answer).message, /at most 100/);
      assert.ok(Date.now() - startedAtMs < 5_000, "a huge input array held the gateway");
    }
    const health = await send(gateway, "GET", "/ok");
    assert.equal(health.status, 200);
    assert.equal(mockAt(mocks, 0).requests.filter((recorded) => recorded.method === "POST").length, 0);
  });

  test("a provider that serves only chat (`served_paths`) serves its Llama Guard models, not its native moderation models", async (t) => {
    const { gateway, client, mocks } = await scene(
      t,
      [{ guard: "meta-llama/llama-guard-4-12b", native: "omni-moderation-latest" }],
      "    served_paths: [/chat/completions]\n",
    );
    const route = await send(gateway, "GET", "/v1/gateway/route?model=priority-auto&kind=moderation");
    assert.equal(route.status, 200, route.text);
    const plan = route.json as { candidates: { upstream_id: string }[]; skipped: { model: string; reason: string }[] };
    assert.deepEqual(
      plan.candidates.map((candidate) => candidate.upstream_id),
      ["meta-llama/llama-guard-4-12b"],
    );
    assert.match(plan.skipped.find((skip) => skip.model === "native")?.reason ?? "", /\/moderations/);
    mockAt(mocks, 0).enqueue(CHAT, { kind: "json", body: chatCompletion("safe", "meta-llama/llama-guard-4-12b") });
    assert.equal((await client.moderations.create({ input: "hi" })).model, "meta-llama/llama-guard-4-12b");
    const native = await send(gateway, "POST", "/v1/moderations", { body: { model: "native", input: "hi" } });
    assert.equal(native.status, 400, native.text);
    assert.match(errorOf(native).message, /does not serve \/moderations/);
  });

  test("a Llama Guard translation is cached as one answer: the same request again asks no upstream", async (t) => {
    const { gateway, mocks } = await scene(
      t,
      [{ guard: "meta-llama/llama-guard-4-12b" }],
      "",
      "cache:\n  enabled: true\n",
    );
    const mock = mockAt(mocks, 0);
    mock.enqueue(
      CHAT,
      { kind: "json", body: chatCompletion("safe", "meta-llama/llama-guard-4-12b") },
      { kind: "json", body: chatCompletion("unsafe\nS10", "meta-llama/llama-guard-4-12b") },
    );
    const body = { model: "guard", input: ["fine", "hateful"] };
    const once = await send(gateway, "POST", "/v1/moderations", { body });
    assert.equal(once.status, 200, once.text);
    assert.equal(once.headers["x-gateway-cache"], "miss");
    const twice = await send(gateway, "POST", "/v1/moderations", { body });
    assert.equal(twice.headers["x-gateway-cache"], "hit");
    assert.deepEqual(twice.json, once.json);
    assert.equal(requestsTo(mock, "/v1/chat/completions").length, 2);
  });

  test("records and metrics name the door: endpoint `moderations`, protocol `openai-moderations`; /v1/models lists its route", async (t) => {
    const { gateway, client, mocks } = await scene(t, [{ guard: "meta-llama/llama-guard-4-12b" }]);
    mockAt(mocks, 0).enqueue(CHAT, { kind: "json", body: chatCompletion("safe", "meta-llama/llama-guard-4-12b") });
    await client.moderations.create({ model: "guard", input: "hi" });
    await send(gateway, "POST", "/moderations", { body: { model: "guard", input: 1 } });
    const { records } = await recordsOf(gateway, "moderations");
    assert.deepEqual(
      records.map((record) => [record.clientProtocol, record.status]),
      [
        ["openai-moderations", 400],
        ["openai-moderations", 200],
      ],
    );
    const metrics = parsePrometheusText((await send(gateway, "GET", "/metrics")).text);
    assert.equal(
      sumOf(metrics, "llm_gateway_requests_total", { endpoint: "moderations", protocol: "openai-moderations" }),
      2,
    );
    const models = (await send(gateway, "GET", "/v1/models")).json as {
      data: { id: string; kind: string; endpoints: string[] }[];
    };
    const guard = models.data.find((entry) => entry.id === "guard");
    assert.deepEqual([guard?.kind, guard?.endpoints], ["moderation", ["/v1/moderations"]]);
  });
});
