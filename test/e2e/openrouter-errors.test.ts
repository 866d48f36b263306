// OpenRouter relays the refusal of the provider it routed to as "Provider returned error" with the provider's own body
// in `error.metadata.raw` (openrouter.ai/docs/api/reference/errors-and-debugging): the gateway reads that body as it
// reads a direct provider's, so a context-length refusal fails over, a refused field is retried without it and
// learned, a moderation 403 fails over and parks nothing (the client gets it, reasons named, when no candidate
// answers), and a relayed 429 cools that model only. Real gateway, scripted
// mock upstreams over loopback, the official OpenAI client.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import OpenAI from "openai";
import {
  CHAT_ROUTE,
  chatRequests,
  logCollector,
  openAiClient,
  recordsOf,
  rowOf,
  serveEveryChat,
  statsOf,
  useGateway,
  useMock,
} from "../helpers/e2e.ts";
import { chatCompletion, type MockStep, type MockUpstream } from "../helpers/mock-upstream.ts";
import { OPENROUTER_KEY, openRouterScene } from "../helpers/openrouter-scenes.ts";

/**
 * OpenRouter's wrapper of a provider's refusal: `raw` is the provider's body as a JSON string (or its text), left out
 * when undefined (OpenRouter then names only the provider); `metadata` adds its other fields (`is_byok`, a wait).
 */
function relayed(
  status: number,
  raw: unknown,
  providerName = "Groq",
  metadata: Readonly<Record<string, unknown>> = {},
): MockStep {
  const rawField = raw === undefined ? {} : { raw };
  return {
    kind: "json",
    status,
    body: {
      error: {
        message: "Provider returned error",
        code: status,
        metadata: { ...rawField, provider_name: providerName, ...metadata },
      },
      user_id: "user_2abc",
    },
  };
}

/** A one-line chat request for `model`. */
function sayHi(client: OpenAI, model: string): Promise<OpenAI.ChatCompletion> {
  return client.chat.completions.create({ model, messages: [{ role: "user", content: "Hi" }] });
}

/** After the refusal a test enqueued: OpenRouter answers `text` as `upstreamId`, beta answers "From beta.". */
function servedAfterwards(openrouter: MockUpstream, beta: MockUpstream, text: string, upstreamId: string): void {
  openrouter.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion(text, upstreamId) });
  serveEveryChat(beta, "From beta.");
}

const GROQ_CONTEXT = JSON.stringify({
  error: {
    message:
      "Please reduce the length of the messages or completion. This model's maximum context length is 8192 tokens.",
    type: "invalid_request_error",
    param: "messages",
    code: "context_length_exceeded",
  },
});

/** `openrouter` (priority 10, 8k context) and `beta` (priority 1, 128k context), both serving `m`. */
function contextScene(t: Parameters<typeof useMock>[0], hasBeta = true) {
  return openRouterScene(t, {
    models: { m: { id: "meta-llama/llama-3.3-70b-instruct:free", priority: 10, context: 8192 } },
    isAccountScoped: false,
    hasOpenRouterDialect: false,
    beta: hasBeta && { id: "big-m", priority: 1, context: 131072 },
  });
}

describe("a context-length refusal relayed by OpenRouter", () => {
  test("fails over to a model with a larger context, as a direct provider's does", async (t) => {
    const { openrouter, beta: big, client } = await contextScene(t);
    openrouter.enqueue(CHAT_ROUTE, relayed(400, GROQ_CONTEXT));
    big.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("From the big one.", "big-m") });
    const { data, response } = await client.chat.completions
      .create({ model: "m", messages: [{ role: "user", content: "A long prompt" }] })
      .withResponse();
    assert.equal(data.choices[0]?.message.content, "From the big one.");
    assert.equal(response.headers.get("x-gateway-provider"), "beta");
    assert.equal(response.headers.get("x-gateway-attempts"), "2");
    assert.equal(chatRequests(openrouter).length, 1);
    assert.equal(chatRequests(big).length, 1);
  });

  test("with no larger candidate, the client gets the context error it gets from a direct provider", async (t) => {
    const { openrouter, client } = await contextScene(t, false);
    openrouter.enqueue(CHAT_ROUTE, relayed(400, GROQ_CONTEXT));
    const error = await client.chat.completions
      .create({ model: "m", messages: [{ role: "user", content: "A long prompt" }] })
      .then(
        () => assert.fail("expected an error"),
        (caught: unknown) => caught,
      );
    assert.ok(error instanceof OpenAI.BadRequestError, String(error));
    assert.equal(error.status, 400);
    assert.equal(error.code, "context_length_exceeded");
    assert.match(error.message, /Groq: Please reduce the length of the messages/);
    assert.doesNotMatch(error.message, /sk-or-v1/);
  });
});

interface SentMessage {
  role: string;
  reasoning_content?: string;
}

describe("a refused field or feature relayed by OpenRouter", () => {
  test("a message's reasoning_content refused by the routed provider: retried at once without it, and learned", async (t) => {
    const { openrouter, beta, gateway, client } = await openRouterScene(t);
    const refusal =
      "messages.1.assistant.reasoning_content: property 'messages.1.assistant.reasoning_content' is unsupported";
    openrouter.enqueue(
      CHAT_ROUTE,
      relayed(
        400,
        JSON.stringify({ message: refusal, type: "invalid_request_error", code: "wrong_api_format" }),
        "Cerebras",
      ),
    );
    openrouter.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("Fine.", "vendor/m:free") });
    const messages = [
      { role: "user", content: "Hi" },
      { role: "assistant", content: "Hello.", reasoning_content: "Greet back." },
      { role: "user", content: "How are you?" },
    ] as OpenAI.Chat.ChatCompletionMessageParam[];
    const answer = await client.chat.completions.create({ model: "m", messages });
    assert.equal(answer.choices[0]?.message.content, "Fine.");
    const sent = chatRequests(openrouter).map(
      (request) => ((request.body as { messages: SentMessage[] }).messages[1] ?? { role: "" }).reasoning_content,
    );
    assert.deepEqual(sent, ["Greet back.", undefined], "retried on the same candidate without it");
    assert.equal(chatRequests(beta).length, 0);
    const learned = rowOf(await statsOf(gateway), "openrouter/m").refused_features.map((refusal) => refusal.feature);
    assert.deepEqual(learned, ["message_order:reasoning_content"]);
    await client.chat.completions.create({ model: "m", messages });
    assert.equal(chatRequests(openrouter).length, 3, "the next request is sent without it at once");
    const third = chatRequests(openrouter)[2]?.body as { messages?: SentMessage[] } | undefined;
    assert.equal(third?.messages?.[1]?.role, "assistant");
    assert.equal(third?.messages?.[1]?.reasoning_content, undefined);
  });

  test("tools refused by the routed provider: failed over to another provider, and learned", async (t) => {
    const { openrouter, beta, gateway, client } = await openRouterScene(t);
    openrouter.setDefault(
      CHAT_ROUTE,
      relayed(400, JSON.stringify({ error: { message: "This model does not support tools" } }), "Chutes"),
    );
    serveEveryChat(beta, "From beta.");
    const tools: OpenAI.Chat.ChatCompletionTool[] = [
      { type: "function", function: { name: "get_weather", parameters: { type: "object", properties: {} } } },
    ];
    const request = { model: "m", tools, messages: [{ role: "user" as const, content: "Weather?" }] };
    const answer = await client.chat.completions.create(request);
    assert.equal(answer.choices[0]?.message.content, "From beta.");
    const refused = rowOf(await statsOf(gateway), "openrouter/m").refused_features;
    assert.deepEqual(
      refused.map((refusal) => refusal.feature),
      ["tools"],
    );
    assert.match(refused[0]?.reason ?? "", /^HTTP 400: Chutes: This model does not support tools/);
    await client.chat.completions.create(request);
    assert.equal(chatRequests(openrouter).length, 1, "not asked again with tools");
  });
});

/** OpenRouter's moderation 403, as it words it for a model whose provider requires moderation. */
function moderation403(flaggedInput: string): MockStep {
  return {
    kind: "json",
    status: 403,
    body: {
      error: {
        code: 403,
        message: 'vendor/m:free requires moderation on Meta. Your input was flagged for "misc"',
        metadata: {
          reasons: ["misc", "harassment"],
          flagged_input: flaggedInput,
          provider_name: "Meta",
          model_slug: "vendor/m:free",
        },
      },
    },
  };
}

describe("a moderation 403 from OpenRouter", () => {
  test("fails over to the next candidate, and the next request still tries the flagged model first", async (t) => {
    // OpenRouter moderates per model (only some providers' models require it) and flags by mistake ("misc" on
    // "i want to order eba"): another candidate may serve the same input.
    const { openrouter, beta, gateway, client } = await openRouterScene(t, { hasRequestLog: true });
    openrouter.enqueue(CHAT_ROUTE, moderation403("i want to order eba"));
    servedAfterwards(openrouter, beta, "OpenRouter here.", "vendor/m:free");
    const first = await client.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "i want to order eba" }],
    });
    assert.equal(first.choices[0]?.message.content, "From beta.", "served by the next candidate");
    assert.equal(chatRequests(openrouter).length, 1, "the flagged candidate is not retried");
    // Nothing learned or parked: neither the model nor the key. The next request goes to the higher-priority
    // candidate first, as before, and so does another model of the key.
    const next = await sayHi(client, "m");
    assert.equal(next.choices[0]?.message.content, "OpenRouter here.");
    const other = await sayHi(client, "m2");
    assert.equal(other.choices[0]?.message.content, "OpenRouter here.");
    assert.equal(chatRequests(openrouter).length, 3);
    assert.equal(chatRequests(beta).length, 1);
    const { records } = await recordsOf(gateway, "chat");
    const flagged = records.find((record) => record.attempts.length === 2);
    assert.deepEqual(
      flagged?.attempts.map((attempt) => [attempt.provider, attempt.outcome]),
      [
        ["openrouter", "unsupported"],
        ["beta", "success"],
      ],
    );
    assert.match(flagged?.attempts[0]?.reason ?? "", /Flagged for: misc, harassment/);
    assert.doesNotMatch(flagged?.attempts[0]?.reason ?? "", /order eba/, "the flagged input is not in the record");
  });

  test("on the only candidate: the client gets the 403 with its reasons, not a gateway 503", async (t) => {
    const { openrouter, client } = await openRouterScene(t);
    openrouter.enqueue(CHAT_ROUTE, moderation403("you are a ..."));
    openrouter.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("Hello.", "vendor/m2:free") });
    const error = await client.chat.completions
      .create({ model: "m2", messages: [{ role: "user", content: "you are a ..." }] })
      .then(
        () => assert.fail("expected an error"),
        (caught: unknown) => caught,
      );
    assert.ok(error instanceof OpenAI.PermissionDeniedError, String(error));
    assert.equal(error.status, 403);
    assert.match(error.message, /requires moderation on Meta/);
    assert.match(error.message, /Flagged for: misc, harassment/);
    assert.equal(chatRequests(openrouter).length, 1, "not retried");
    const next = await sayHi(client, "m2");
    assert.equal(next.choices[0]?.message.content, "Hello.");
  });

  test("flagged on every candidate: the client gets the first moderation 403, both attempts listed in the record", async (t) => {
    const { openrouter, beta, gateway, client } = await openRouterScene(t, {
      models: { m: { id: "vendor/m:free", priority: 10 } },
      isAccountScoped: false,
      hasOpenRouterDialect: false,
      hasRequestLog: true,
    });
    openrouter.enqueue(CHAT_ROUTE, moderation403("x"));
    beta.enqueue(CHAT_ROUTE, { kind: "json", status: 500, body: { error: { message: "boom" } } });
    const error = await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "x" }] }).then(
      () => assert.fail("expected an error"),
      (caught: unknown) => caught,
    );
    assert.ok(error instanceof OpenAI.PermissionDeniedError, String(error));
    assert.match(error.message, /Flagged for: misc, harassment/);
    assert.equal(chatRequests(beta).length, 1, "the next candidate was tried");
    const { records } = await recordsOf(gateway, "chat");
    assert.deepEqual(
      records[0]?.attempts.map((attempt) => [attempt.provider, attempt.outcome]),
      [
        ["openrouter", "unsupported"],
        ["beta", "server_error"],
      ],
    );
    assert.match(records[0]?.attempts[0]?.reason ?? "", /Flagged for: misc, harassment/);
  });
});

describe("a 429 relayed by OpenRouter", () => {
  test("cools that model only: another model of the account-scoped key is still served", async (t) => {
    const { openrouter, beta, client } = await openRouterScene(t);
    const groqDaily = JSON.stringify({
      error: {
        message:
          "Rate limit reached for model `llama` in organization `org_1` on tokens per day (TPD): Limit 100000, Used 99000, Requested 2000.",
        type: "tokens",
        code: "rate_limit_exceeded",
      },
    });
    openrouter.enqueue(CHAT_ROUTE, relayed(429, groqDaily));
    servedAfterwards(openrouter, beta, "m2 here.", "vendor/m2:free");
    const first = await sayHi(client, "m");
    assert.equal(first.choices[0]?.message.content, "From beta.", "failed over from the rate-limited model");
    const other = await sayHi(client, "m2");
    assert.equal(other.choices[0]?.message.content, "m2 here.", "the key's pool did not cool");
    assert.equal(chatRequests(openrouter).length, 2);
  });
});

describe("a request refusal relayed by OpenRouter", () => {
  test("reaches the client with the provider's own message, named, with its status, type and code; no key leaks", async (t) => {
    const { openrouter, beta, client } = await openRouterScene(t);
    const raw = JSON.stringify({
      error: {
        message: `Invalid value for 'temperature': must be <= 1 (request from ${OPENROUTER_KEY})`,
        type: "invalid_request_error",
        param: "temperature",
        code: "invalid_value",
      },
    });
    openrouter.enqueue(CHAT_ROUTE, relayed(400, raw, "Mistral"));
    const error = await client.chat.completions
      .create({ model: "m", temperature: 1.5, messages: [{ role: "user", content: "Hi" }] })
      .then(
        () => assert.fail("expected an error"),
        (caught: unknown) => caught,
      );
    assert.ok(error instanceof OpenAI.BadRequestError, String(error));
    assert.match(error.message, /^400 Mistral \(via openrouter\): Invalid value for 'temperature': must be <= 1/);
    assert.equal(error.code, "invalid_value");
    assert.equal(error.param, "temperature");
    assert.equal(error.type, "invalid_request_error");
    assert.doesNotMatch(JSON.stringify(error.error), /sk-or-v1/);
    assert.equal(chatRequests(beta).length, 0, "the client's own 400: not failed over");
  });
});

describe("a relayed error without raw (OpenRouter names only the provider)", () => {
  test("a 429 cools that model only, and a 403 leaves the key's other models served", async (t) => {
    const { openrouter, beta, client } = await openRouterScene(t);
    // As OpenRouter sends them: no `raw`, only who answered (and, for a 429, its wait).
    openrouter.enqueue(CHAT_ROUTE, relayed(429, undefined, "Together", { is_byok: false, retry_after_seconds: 1 }));
    openrouter.enqueue(CHAT_ROUTE, relayed(403, undefined, "OpenAI"));
    servedAfterwards(openrouter, beta, "m2 here.", "vendor/m2:free");
    const first = await sayHi(client, "m");
    assert.equal(first.choices[0]?.message.content, "From beta.", "failed over from the rate-limited model");
    // The 403 of m2's routed provider: not the key's (m2 has no other candidate, so the client gets it)...
    const refused = await sayHi(client, "m2").then(
      () => assert.fail("expected an error"),
      (caught: unknown) => caught,
    );
    assert.ok(refused instanceof OpenAI.PermissionDeniedError, String(refused));
    assert.match(refused.message, /^403 OpenAI \(via openrouter\): Provider returned error/);
    // ...so the key is not parked: `m`, cooled by its own 429 for a second at most, is served by OpenRouter again.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const again = await sayHi(client, "m");
    assert.equal(again.choices[0]?.message.content, "m2 here.", "the key was neither parked nor its pool cooled");
    assert.equal(chatRequests(openrouter).length, 3);
  });
});

describe("a moderation 403's flagged input", () => {
  test("is the client's own words: in the client's error body, never in the request log or the log lines", async (t) => {
    const openrouter = await useMock(t);
    const log = logCollector();
    const gateway = await useGateway(
      t,
      `providers:
  - name: openrouter
    base_url: ${openrouter.baseUrl}
    api_key: ${OPENROUTER_KEY}
    retries: 0
    models:
      m: { id: "openai/gpt-4o" }
request_log:
  enabled: true
`,
      { logLevel: "debug", logStream: log.stream },
    );
    const prompt = "my neighbour Walter Quigley lives at 12 Elm Road";
    openrouter.enqueue(CHAT_ROUTE, {
      kind: "json",
      status: 403,
      body: {
        error: {
          code: 403,
          message: "Your chosen model requires moderation and your input was flagged",
          metadata: {
            reasons: ["harassment"],
            flagged_input: prompt,
            provider_name: "OpenAI",
            model_slug: "openai/gpt-4o",
          },
        },
      },
    });
    const error = await openAiClient(gateway)
      .chat.completions.create({ model: "m", messages: [{ role: "user", content: prompt }] })
      .then(
        () => assert.fail("expected an error"),
        (caught: unknown) => caught,
      );
    assert.ok(error instanceof OpenAI.PermissionDeniedError, String(error));
    assert.match(error.message, /Flagged for: harassment/);
    // The client reads what was flagged in the upstream's body passed on (`metadata.raw`), not in the message.
    assert.doesNotMatch(error.message, /Walter Quigley/);
    assert.match(JSON.stringify(error.error), /Walter Quigley/, "the client is told what was flagged");
    // Message content is not stored without `log.content: true` (observability.md): the record says why, not what.
    const { records, text } = await recordsOf(gateway, "chat");
    // The attempt's outcome: a refusal of this candidate's (failed over, nothing learned), with its reasons.
    assert.equal(records[0]?.attempts[0]?.outcome, "unsupported");
    assert.match(records[0]?.attempts[0]?.reason ?? "", /Flagged for: harassment/);
    assert.doesNotMatch(text, /Walter Quigley/);
    assert.doesNotMatch(log.lines.join(""), /Walter Quigley/);
  });
});

describe("a relayed 429's wait inside the body (metadata.retry_after_seconds)", () => {
  test("keeps that model out for the wait OpenRouter gave, not the gateway's 1 s backoff", async (t) => {
    const { openrouter, beta, client } = await openRouterScene(t);
    const raw = "vendor/m:free is temporarily rate-limited upstream. Please retry shortly.";
    openrouter.enqueue(CHAT_ROUTE, relayed(429, raw, "Venice", { is_byok: false, retry_after_seconds: 30 }));
    servedAfterwards(openrouter, beta, "OpenRouter here.", "vendor/m:free");
    const first = await sayHi(client, "m");
    assert.equal(first.choices[0]?.message.content, "From beta.");
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    const second = await sayHi(client, "m");
    assert.equal(second.choices[0]?.message.content, "From beta.", "still cooling for OpenRouter's 30 s");
    assert.equal(chatRequests(openrouter).length, 1, "the rate-limited model was not asked again");
  });
});

describe("a 402 relayed by OpenRouter (the routed provider's spend limit)", () => {
  test("fails over and leaves the key's other models served: the key's own credits are not out", async (t) => {
    const { openrouter, beta, client } = await openRouterScene(t);
    const raw =
      '{"error":"API key USD spend limit exceeded. Your account may still have USD balance, but this API key has reached its configured USD spending limit."}';
    openrouter.enqueue(CHAT_ROUTE, relayed(402, raw, "Venice", { is_byok: false }));
    servedAfterwards(openrouter, beta, "m2 here.", "vendor/m2:free");
    const first = await sayHi(client, "m");
    assert.equal(first.choices[0]?.message.content, "From beta.");
    const other = await sayHi(client, "m2");
    assert.equal(other.choices[0]?.message.content, "m2 here.", "the key was not parked");
    assert.equal(chatRequests(openrouter).length, 2);
  });
});

describe("OpenRouter's 404 'No endpoints found that support tool use'", () => {
  test("fails over for that request; the model is still asked for requests without tools", async (t) => {
    const { openrouter, beta, client } = await openRouterScene(t);
    openrouter.enqueue(CHAT_ROUTE, {
      kind: "json",
      status: 404,
      body: {
        error: {
          message:
            "No endpoints found that support tool use. To learn more about provider routing, visit: https://openrouter.ai/docs/provider-routing",
          code: 404,
        },
      },
    });
    servedAfterwards(openrouter, beta, "OpenRouter here.", "vendor/m:free");
    const withTools = await client.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "Hi" }],
      tools: [{ type: "function", function: { name: "lookup", parameters: { type: "object", properties: {} } } }],
    });
    assert.equal(withTools.choices[0]?.message.content, "From beta.");
    const plain = await sayHi(client, "m");
    assert.equal(plain.choices[0]?.message.content, "OpenRouter here.", "the model was not left out");
    assert.equal(chatRequests(openrouter).length, 2);
  });
});
