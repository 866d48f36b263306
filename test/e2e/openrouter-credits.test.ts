// OpenRouter's own 402 for a request whose output the key's credits do not cover ("This request requires more
// credits, or fewer max_tokens. You requested up to 16384 tokens, but can only afford 1234."): a refusal of that
// request's size, not of the key. Failed over without parking the key; with no output limit asked, retried on the
// same candidate with the output it can afford (upstream/affordable-retry.ts). A 402 without that text (really out of
// credits) still parks the key. Real gateway, scripted mock upstreams over loopback, the official OpenAI client.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import OpenAI from "openai";
import { CHAT_ROUTE, chatRequests, postChat, recordsOf, type useMock } from "../helpers/e2e.ts";
import { chatCompletion, chatStream, type MockStep } from "../helpers/mock-upstream.ts";
import { OPENROUTER_KEY, openRouter402, openRouterScene } from "../helpers/openrouter-scenes.ts";

function unaffordable(requested: number, affordable: number, tail = ""): MockStep {
  return openRouter402(
    `This request requires more credits, or fewer max_tokens. You requested up to ${requested} tokens, but can only afford ${affordable}. To increase, visit https://openrouter.ai/settings/credits and add more credits${tail}`,
  );
}

/** `openrouter` serving `m` (priority 10) and `m2`, account-scoped as its preset is; `beta` serving `m` (priority 1). */
function scene(t: Parameters<typeof useMock>[0], hasBeta = true) {
  return openRouterScene(t, {
    models: { m: { id: "vendor/m", priority: 10 }, m2: { id: "vendor/m2", priority: 10 } },
    ...(hasBeta ? {} : { beta: false }),
    hasRequestLog: true,
    betaAnswer: "From beta.",
  });
}

function sentMaxTokens(mock: Awaited<ReturnType<typeof useMock>>): unknown[] {
  return chatRequests(mock).map((request) => (request.body as { max_tokens?: unknown }).max_tokens);
}

/**
 * `refusal` answered to `m` on the key, then `m2` asked: the refused request is served by beta, and `m2` is never sent
 * (the key is parked, so the client gets an error). Returns that error.
 */
async function errorOnceParkedBy(
  t: Parameters<typeof useMock>[0],
  refusal: MockStep,
): Promise<InstanceType<typeof OpenAI.APIError>> {
  const { openrouter, client } = await scene(t);
  openrouter.enqueue(CHAT_ROUTE, refusal);
  openrouter.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("OpenRouter here.", "vendor/m2") });
  const first = await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "Hi" }] });
  assert.equal(first.choices[0]?.message.content, "From beta.");
  const error = await client.chat.completions.create({ model: "m2", messages: [{ role: "user", content: "Hi" }] }).then(
    () => assert.fail("expected an error: the key is parked"),
    (caught: unknown) => caught,
  );
  assert.ok(error instanceof OpenAI.APIError, String(error));
  assert.deepEqual(sentMaxTokens(openrouter), [undefined], "m2 was not asked: the key is parked");
  return error;
}

describe("OpenRouter's 402 for an output the credits do not cover", () => {
  test("with the client's own max_tokens: failed over, the key not parked (smaller requests still served)", async (t) => {
    const { openrouter, beta, client } = await scene(t);
    openrouter.enqueue(CHAT_ROUTE, unaffordable(16384, 1234));
    openrouter.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("OpenRouter here.", "vendor/m") });
    const first = await client.chat.completions.create({
      model: "m",
      max_tokens: 16384,
      messages: [{ role: "user", content: "Hi" }],
    });
    assert.equal(first.choices[0]?.message.content, "From beta.");
    assert.deepEqual(sentMaxTokens(openrouter), [16384], "the client's max_tokens is never lowered");
    const other = await client.chat.completions.create({ model: "m2", messages: [{ role: "user", content: "Hi" }] });
    assert.equal(other.choices[0]?.message.content, "OpenRouter here.", "another model of the key is served");
    const small = await client.chat.completions.create({
      model: "m",
      max_tokens: 100,
      messages: [{ role: "user", content: "Hi" }],
    });
    assert.equal(small.choices[0]?.message.content, "OpenRouter here.", "the model itself was not cooled");
    assert.equal(chatRequests(beta).length, 1);
  });

  test("without max_tokens: the same candidate once more with 90 % of what it can afford, before any other", async (t) => {
    const { openrouter, beta, gateway, client } = await scene(t);
    openrouter.enqueue(CHAT_ROUTE, unaffordable(16384, 1234));
    openrouter.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("OpenRouter here.", "vendor/m") });
    const answer = await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "Hi" }] });
    assert.equal(answer.choices[0]?.message.content, "OpenRouter here.");
    assert.deepEqual(sentMaxTokens(openrouter), [undefined, 1110]);
    assert.equal(chatRequests(beta).length, 0);
    const { records } = await recordsOf(gateway, "chat");
    assert.deepEqual(
      records[0]?.attempts.map((attempt) => [attempt.provider, attempt.outcome]),
      [
        ["openrouter", "rate_limited"],
        ["openrouter", "success"],
      ],
    );
    assert.match(records[0]?.attempts[0]?.reason ?? "", /cover 1234 output tokens/);
  });

  test("a streamed request without max_tokens: retried the same way, the client reads that candidate's stream", async (t) => {
    const { openrouter, beta, client } = await scene(t);
    openrouter.enqueue(CHAT_ROUTE, unaffordable(65536, 4000));
    const stream = await client.chat.completions.create({
      model: "m",
      stream: true,
      messages: [{ role: "user", content: "Hi" }],
    });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    assert.equal(text, "echo from vendor/m");
    assert.deepEqual(sentMaxTokens(openrouter), [undefined, 3600]);
    assert.equal(chatRequests(beta).length, 0);
  });

  test("the retry refused the same way (the balance spent meanwhile): failed over, never retried again", async (t) => {
    const { openrouter, beta, client } = await scene(t);
    openrouter.enqueue(CHAT_ROUTE, unaffordable(16384, 1234));
    openrouter.enqueue(CHAT_ROUTE, unaffordable(1110, 900));
    openrouter.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("OpenRouter here.", "vendor/m") });
    const answer = await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "Hi" }] });
    assert.equal(answer.choices[0]?.message.content, "From beta.");
    assert.deepEqual(sentMaxTokens(openrouter), [undefined, 1110]);
    assert.equal(chatRequests(beta).length, 1);
  });

  test("the retry's reservation counts the max_tokens it sends: over the model's whole tpm, it is not sent", async (t) => {
    const { openrouter, client } = await openRouterScene(t, {
      models: { m: { id: "vendor/m", priority: 10, limits: { tpm: 1000 } } },
      isAccountScoped: false,
      betaAnswer: "From beta.",
    });
    openrouter.enqueue(CHAT_ROUTE, unaffordable(16384, 1234));
    const answer = await client.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "Hi" }],
    });
    assert.equal(answer.choices[0]?.message.content, "From beta.");
    assert.deepEqual(sentMaxTokens(openrouter), [undefined], "1110 output tokens never fit a 1000-token minute");
  });

  test("without max_tokens but too little affordable (under 256 after the margin): failed over, no retry", async (t) => {
    const { openrouter, beta, client } = await scene(t);
    openrouter.enqueue(CHAT_ROUTE, unaffordable(16384, 200));
    const answer = await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "Hi" }] });
    assert.equal(answer.choices[0]?.message.content, "From beta.");
    assert.deepEqual(sentMaxTokens(openrouter), [undefined]);
    assert.equal(chatRequests(beta).length, 1);
  });

  test("on the only candidate, with the client's max_tokens: the client is told to send a smaller one", async (t) => {
    const { openrouter, client } = await scene(t, false);
    openrouter.enqueue(CHAT_ROUTE, unaffordable(16384, 1234));
    const error = await client.chat.completions
      .create({ model: "m", max_tokens: 16384, messages: [{ role: "user", content: "Hi" }] })
      .then(
        () => assert.fail("expected an error"),
        (caught: unknown) => caught,
      );
    assert.ok(error instanceof OpenAI.APIError, String(error));
    // A 413, not a 429 a client would retry as it is: no wait makes it fit, a smaller max_tokens does.
    assert.equal(error.status, 413);
    assert.match(error.message, /credits left cover 1234 output tokens of this request, not the 16384/);
    assert.match(error.message, /smaller max_tokens/);
    assert.equal(chatRequests(openrouter).length, 1, "the client's max_tokens is not lowered: no retry");
  });
});

describe("the affordable retry refused too, on the only candidate", () => {
  // The second refusal is of a max_tokens the gateway chose, not the client: the 413 must not tell the client that
  // it asked for 1110 tokens, nor to send "a smaller max_tokens" it never sent. It says what the credits allow.
  test("the 413 says the credits allow ~900 output tokens and that the request set no limit (no key in it)", async (t) => {
    const { openrouter, client } = await scene(t, false);
    openrouter.enqueue(CHAT_ROUTE, unaffordable(16384, 1234));
    openrouter.enqueue(CHAT_ROUTE, unaffordable(1110, 900, `(key ${OPENROUTER_KEY})`));
    const error = await client.chat.completions
      .create({ model: "m", messages: [{ role: "user", content: "Hi" }] })
      .then(
        () => assert.fail("expected an error"),
        (caught: unknown) => caught,
      );
    assert.ok(error instanceof OpenAI.APIError, String(error));
    assert.equal(error.status, 413, error.message);
    assert.deepEqual(sentMaxTokens(openrouter), [undefined, 1110]);
    assert.match(error.message, /credits cover only ~900 output tokens/);
    assert.match(error.message, /this request set no output limit/);
    assert.match(error.message, /max_tokens 1110, the gateway's own choice/);
    assert.doesNotMatch(error.message, /not the 1110 it may use/, "1110 is not the client's");
    assert.doesNotMatch(error.message, /smaller max_tokens/, "the client sent none");
    assert.ok(!JSON.stringify(error.error).includes(OPENROUTER_KEY), "the echoed key is redacted");
  });
});

describe("OpenRouter's 402 without that text (the key is out of credits)", () => {
  test("still parks the key: its other models are not asked", async (t) => {
    const error = await errorOnceParkedBy(t, {
      kind: "json",
      status: 402,
      body: { error: { message: "Insufficient credits. Add more using https://openrouter.ai/credits", code: 402 } },
    });
    assert.match(error.message, /402 Payment Required/);
  });

  test("'... but can only afford 0' (a key's limit spent) is the key out of credits too: parked", async (t) => {
    // No output of any size is covered: read as this request's size, every model of the key was asked (and refused)
    // at each request, and a client alone with it was told to send a smaller max_tokens, which cannot help.
    const error = await errorOnceParkedBy(t, unaffordable(32000, 0));
    assert.notEqual(error.status, 413);
  });
});

describe("which words of a 402 are read: its error's message, and the older wording", () => {
  test("a spent key's message, an 'afford N' refusal in metadata.previous_errors: the key is parked", async (t) => {
    // OpenRouter lists the refusals of the providers it tried first; a size refusal among them is not this answer's.
    const error = await errorOnceParkedBy(
      t,
      openRouter402("Insufficient credits. Add more using https://openrouter.ai/settings/credits", {
        previous_errors: [
          {
            code: 402,
            message:
              "This request requires more credits, or fewer max_tokens. You requested up to 65536 tokens, but can only afford 5365.",
          },
        ],
      }),
    );
    assert.notEqual(error.status, 413);
  });

  test("'More credits are required ... N token capacity required, M available': retried with 90 % of M", async (t) => {
    // The older wording, as forgecode logged it (tailcallhq/forgecode#571); it parked the key for an hour.
    const { openrouter, beta, client } = await scene(t);
    openrouter.enqueue(
      CHAT_ROUTE,
      openRouter402(
        "More credits are required to run this request. 128000 token capacity required, 19484 available. To increase, visit https://openrouter.ai/settings/keys and create a key with a higher limit",
      ),
    );
    openrouter.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("OpenRouter here.", "vendor/m") });
    const answer = await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "Hi" }] });
    assert.equal(answer.choices[0]?.message.content, "OpenRouter here.");
    assert.deepEqual(sentMaxTokens(openrouter), [undefined, 17535]);
    assert.equal(chatRequests(beta).length, 0);
  });

  test("'... 128000 token capacity required, 0 available': the key's credits, parked", async (t) => {
    await errorOnceParkedBy(
      t,
      openRouter402("More credits are required to run this request. 128000 token capacity required, 0 available."),
    );
  });
});

describe("the affordable retry from the Responses door", () => {
  // A `responses_api: native` provider anywhere in the config gives every Responses request its native form; the
  // request still goes to OpenRouter as a chat body (its provider is not native), where the retry is the gateway's
  // to make as for any chat body without an output limit. It was skipped whenever any provider was native.
  test("without max_output_tokens, another provider native: the chat-translated candidate is retried", async (t) => {
    const {
      openrouter,
      beta: native,
      client,
    } = await openRouterScene(t, {
      models: { m: { id: "vendor/m", priority: 10 } },
      isAccountScoped: false,
      beta: { id: "native-m", priority: 1 },
      betaYaml: "responses_api: native",
    });
    openrouter.enqueue(CHAT_ROUTE, unaffordable(16384, 1234));
    openrouter.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("OpenRouter here.", "vendor/m") });
    const answer = await client.responses.create({ model: "m", input: "Hi" });
    assert.equal(answer.output_text, "OpenRouter here.");
    assert.deepEqual(sentMaxTokens(openrouter), [undefined, 1110]);
    assert.equal(native.requests.length, 0, "the native provider was not asked");
  });

  test("responses.create without max_output_tokens, OpenRouter alone in front: retried with 90 % of it", async (t) => {
    const { openrouter, beta, gateway, client } = await scene(t);
    openrouter.enqueue(CHAT_ROUTE, unaffordable(16384, 1234));
    openrouter.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("OpenRouter here.", "vendor/m") });
    const answer = await client.responses.create({ model: "m", input: "Hi" });
    assert.equal(answer.output_text, "OpenRouter here.");
    assert.deepEqual(sentMaxTokens(openrouter), [undefined, 1110]);
    assert.equal(chatRequests(beta).length, 0);
    const { records } = await recordsOf(gateway, "responses");
    assert.deepEqual(
      records[0]?.attempts.map((attempt) => [attempt.provider, attempt.outcome]),
      [
        ["openrouter", "rate_limited"],
        ["openrouter", "success"],
      ],
    );
  });

  test("responses.create streamed without max_output_tokens: retried the same way, the events are that candidate's", async (t) => {
    const { openrouter, beta, client } = await scene(t);
    openrouter.enqueue(CHAT_ROUTE, unaffordable(65536, 4000));
    openrouter.setDefault(CHAT_ROUTE, {
      kind: "sse",
      events: chatStream(["OpenRouter", " here."], "vendor/m", { finishReason: "length" }),
    });
    const stream = await client.responses.create({ model: "m", input: "Hi", stream: true });
    let text = "";
    let status: string | undefined;
    for await (const event of stream) {
      if (event.type === "response.output_text.delta") text += event.delta;
      if (event.type === "response.completed" || event.type === "response.incomplete") status = event.response.status;
    }
    assert.equal(text, "OpenRouter here.");
    assert.equal(status, "incomplete", "cut at the chosen limit: said so, as for the client's own");
    assert.deepEqual(sentMaxTokens(openrouter), [undefined, 3600]);
    assert.equal(chatRequests(beta).length, 0);
  });

  test("responses.create, the retry refused too on the only candidate: a 413 saying what the credits allow", async (t) => {
    const { openrouter, client } = await scene(t, false);
    openrouter.enqueue(CHAT_ROUTE, unaffordable(16384, 1234));
    openrouter.enqueue(CHAT_ROUTE, unaffordable(1110, 900));
    const error = await client.responses.create({ model: "m", input: "Hi" }).then(
      () => assert.fail("expected an error"),
      (caught: unknown) => caught,
    );
    assert.ok(error instanceof OpenAI.APIError, String(error));
    assert.equal(error.status, 413, error.message);
    assert.equal(error.code, "request_too_large");
    assert.match(error.message, /credits cover only ~900 output tokens/);
    assert.match(error.message, /max_output_tokens/);
  });

  test("with max_output_tokens: the client's own limit, never lowered (failed over)", async (t) => {
    const { openrouter, beta, client } = await scene(t);
    openrouter.enqueue(CHAT_ROUTE, unaffordable(16384, 1234));
    const answer = await client.responses.create({ model: "m", input: "Hi", max_output_tokens: 16384 });
    assert.equal(answer.output_text, "From beta.");
    assert.deepEqual(sentMaxTokens(openrouter), [16384]);
    assert.equal(chatRequests(beta).length, 1);
  });
});

describe("an answer served under the output limit the affordable retry chose", () => {
  // The limit is the gateway's, chosen for the key's balance at that moment (the answer may end at it, "length"):
  // kept, the same request without max_tokens got that cut answer again for the cache's ttl_ms, credits topped up
  // or not, and never the whole answer it asked for.
  test("is not kept by the answer cache: the same request is served afresh", async (t) => {
    const { openrouter, gateway } = await openRouterScene(t, {
      models: { m: { id: "vendor/m", priority: 10 } },
      isAccountScoped: false,
      beta: false,
      extraYaml: "cache:\n  enabled: true\n",
    });
    openrouter.enqueue(CHAT_ROUTE, unaffordable(16384, 1234));
    openrouter.setDefault(CHAT_ROUTE, (recorded) =>
      (recorded.body as { stream?: boolean }).stream === true
        ? { kind: "sse", events: chatStream(["OpenRouter", " here."], "vendor/m", { finishReason: "length" }) }
        : { kind: "json", body: chatCompletion("OpenRouter here.", "vendor/m") },
    );
    for (const stream of [false, true]) {
      if (stream) openrouter.enqueue(CHAT_ROUTE, unaffordable(16384, 1234));
      const before = chatRequests(openrouter).length;
      const first = await postChat(gateway, { model: "m", stream });
      assert.equal(first.status, 200, first.text);
      assert.equal(chatRequests(openrouter).length, before + 2, "the 402, then the retry");
      const again = await postChat(gateway, { model: "m", stream });
      assert.equal(again.status, 200, again.text);
      assert.notEqual(again.headers["x-gateway-cache"], "hit", `stream: ${stream}`);
      assert.equal(chatRequests(openrouter).length, before + 3, "asked afresh, without a limit");
      assert.equal(sentMaxTokens(openrouter).at(-1), undefined);
    }
    // An answer to the client's own request (no retry) is kept as ever.
    const kept = await postChat(gateway, { model: "m", stream: false });
    assert.equal(kept.headers["x-gateway-cache"], "hit");
  });
});
