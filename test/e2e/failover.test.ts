// Failover over real sockets: which upstream answers lead to a retry on the same candidate, which to the next
// candidate, which are returned as they are, and what the client gets when nothing could serve.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import OpenAI from "openai";
import {
  assertNoSecret,
  CHAT_ROUTE,
  chatRequests,
  errorOf,
  HELLO,
  modelOf,
  oneProviderScene,
  openAiClient,
  postChat,
  rowOf,
  send,
  statsOf,
  useGateway,
  useMock,
} from "../helpers/e2e.ts";
import { chatCompletion, type MockUpstream } from "../helpers/mock-upstream.ts";

const ALPHA_KEY = "sk-secret-alpha-123";
const BETA_KEY = "sk-secret-beta-456";

/** alpha is preferred (priority 10) over beta (priority 1); both serve `chat-model` under their own ids. */
async function twoProviders(t: TestContext, options: { alpha?: string; beta?: string; top?: string } = {}) {
  const alpha = await useMock(t);
  const beta = await useMock(t);
  const gateway = await useGateway(
    t,
    `providers:
  - name: alpha
    base_url: ${alpha.baseUrl}
    api_key: ${ALPHA_KEY}
${options.alpha ?? "    retries: 0"}
    models:
      chat-model: { id: alpha-chat-v1, priority: 10 }
      other-model: { id: alpha-other-v1, priority: 10 }
  - name: beta
    base_url: ${beta.baseUrl}
    api_key: ${BETA_KEY}
${options.beta ?? "    retries: 0"}
    models:
      chat-model: { id: beta-chat-v1, priority: 1 }
      other-model: { id: beta-other-v1, priority: 1 }
routing:
  max_wait_for_better_ms: 0
${options.top ?? ""}`,
  );
  return { alpha, beta, gateway };
}

function serverError(message = "internal error"): { kind: "json"; status: number; body: unknown } {
  return { kind: "json", status: 500, body: { error: { message, type: "server_error" } } };
}

describe("retry on the same candidate", () => {
  test("500 then 200 with `retries: 1`: the same candidate answers on its second attempt", async (t) => {
    const { alpha, beta, gateway } = await twoProviders(t, { alpha: "    retries: 1" });
    alpha.enqueue(CHAT_ROUTE, serverError());
    const response = await postChat(gateway, { model: "chat-model" });
    assert.equal(response.status, 200, response.text);
    assert.equal(response.headers["x-gateway-provider"], "alpha");
    assert.equal(response.headers["x-gateway-attempts"], "2");
    assert.equal((response.json as { model: string }).model, "alpha-chat-v1");
    assert.equal(chatRequests(alpha).length, 2);
    assert.equal(chatRequests(beta).length, 0);
  });

  test("500 with `retries: 0` goes straight to the next candidate", async (t) => {
    const { alpha, beta, gateway } = await twoProviders(t);
    alpha.enqueue(CHAT_ROUTE, serverError());
    const response = await postChat(gateway, { model: "chat-model" });
    assert.equal(response.status, 200, response.text);
    assert.equal(response.headers["x-gateway-provider"], "beta");
    assert.equal(response.headers["x-gateway-model"], "beta-chat-v1");
    assert.equal(response.headers["x-gateway-attempts"], "2");
    assert.equal(chatRequests(alpha).length, 1);
    assert.equal(chatRequests(beta)[0]?.headers.authorization, `Bearer ${BETA_KEY}`);
    assert.equal(modelOf(chatRequests(beta)[0]), "beta-chat-v1");
  });

  test("a connection reset is retried per `retries`, then the next candidate is tried", async (t) => {
    const { alpha, beta, gateway } = await twoProviders(t, { alpha: "    retries: 1" });
    alpha.enqueue(CHAT_ROUTE, { kind: "reset" });
    const retried = await postChat(gateway, { model: "chat-model" });
    assert.equal(retried.status, 200, retried.text);
    assert.equal(retried.headers["x-gateway-provider"], "alpha");
    assert.equal(retried.headers["x-gateway-attempts"], "2");

    alpha.enqueue(CHAT_ROUTE, { kind: "reset" }, { kind: "reset" });
    const failedOver = await postChat(gateway, { model: "chat-model" });
    assert.equal(failedOver.status, 200, failedOver.text);
    assert.equal(failedOver.headers["x-gateway-provider"], "beta");
    assert.equal(failedOver.headers["x-gateway-attempts"], "3");
    assert.equal(chatRequests(alpha).length, 4);
    assert.equal(chatRequests(beta).length, 1);
  });
});

describe("fail over to the next candidate", () => {
  test("a silent upstream times out, is not retried on the same route, and the next candidate answers", async (t) => {
    const { alpha, beta, gateway } = await twoProviders(t, { alpha: "    retries: 3\n    timeout_ms: 300" });
    alpha.enqueue(CHAT_ROUTE, { kind: "hang" });
    const response = await postChat(gateway, { model: "chat-model" });
    assert.equal(response.status, 200, response.text);
    assert.equal(response.headers["x-gateway-provider"], "beta");
    assert.equal(response.headers["x-gateway-attempts"], "2");
    assert.equal(chatRequests(alpha).length, 1, "a timed-out candidate must not be retried in the same request");
    assert.equal(chatRequests(beta).length, 1);
    // The gateway gave up on the hanging request: its socket was closed, not left open.
    await waitUntil(() => alpha.activeRequests() === 0);
  });

  test("headers, then a JSON body that goes silent: after stream_idle_timeout_ms the next candidate answers", async (t) => {
    // total_timeout_ms 8 s: a body read bounded only by the total time (as it was) fails the whole request.
    const { alpha, gateway } = await twoProviders(t, {
      alpha: "    retries: 0\n    stream_idle_timeout_ms: 300",
      top: "  total_timeout_ms: 30000",
    });
    alpha.enqueue(CHAT_ROUTE, {
      kind: "handler",
      handle: (_request, response) => {
        response.writeHead(200, { "content-type": "application/json" });
        response.write('{"id": "chatcmpl-stalled", "choices": [');
      },
    });
    const startedMs = Date.now();
    const response = await postChat(gateway, { model: "chat-model" });
    assert.equal(response.status, 200, response.text);
    assert.equal(response.headers["x-gateway-provider"], "beta");
    assert.equal(response.headers["x-gateway-attempts"], "2");
    // undici's body timer is coarse (about 1 s); far below the 30 s the request had (all of which a gateway without
    // the body's idle timeout waits), with room for a loaded machine.
    assert.ok(Date.now() - startedMs < 10_000, `took ${Date.now() - startedMs} ms`);
    await waitUntil(() => alpha.activeRequests() === 0);
  });

  test("an event stream answering a non-stream request fails over as soon as its headers arrive", async (t) => {
    const { alpha, gateway } = await twoProviders(t, { top: "  total_timeout_ms: 30000" });
    alpha.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: [
        { data: { id: "c", object: "chat.completion.chunk", choices: [{ index: 0, delta: { content: "x" } }] } },
      ],
      end: "hang",
    });
    const startedMs = Date.now();
    const response = await postChat(gateway, { model: "chat-model" });
    assert.equal(response.status, 200, response.text);
    assert.equal(response.headers["x-gateway-provider"], "beta");
    // A gateway that read the stream as a JSON body would wait out the request's 30 s.
    assert.ok(Date.now() - startedMs < 10_000, `took ${Date.now() - startedMs} ms`);
    await waitUntil(() => alpha.activeRequests() === 0);
  });

  test("a 200 whose body is an error fails over", async (t) => {
    const { alpha, beta, gateway } = await twoProviders(t);
    alpha.enqueue(CHAT_ROUTE, {
      kind: "json",
      status: 200,
      body: { error: { message: "Upstream provider returned an error", code: 502 } },
    });
    const response = await postChat(gateway, { model: "chat-model" });
    assert.equal(response.status, 200, response.text);
    assert.equal(response.headers["x-gateway-provider"], "beta");
    assert.equal((response.json as { model: string }).model, "beta-chat-v1");
    assert.equal(chatRequests(beta).length, 1);
  });

  test("a 200 whose body is not JSON fails over", async (t) => {
    const { alpha, gateway } = await twoProviders(t);
    alpha.enqueue(CHAT_ROUTE, { kind: "text", status: 200, body: "<html>gateway page</html>" });
    const response = await postChat(gateway, { model: "chat-model" });
    assert.equal(response.status, 200, response.text);
    assert.equal(response.headers["x-gateway-provider"], "beta");
  });

  test("a 200 without an answer (`message: null`, only choice 1, no choices, content or tool_calls of the wrong type) fails over", async (t) => {
    const bodies = [
      { id: "x", choices: [{ index: 0, message: null, finish_reason: "stop" }] },
      { id: "x", choices: [{ index: 1, message: { role: "assistant", content: "hi" } }] },
      { id: "x", object: "chat.completion" },
      { id: "x", choices: [{ index: 0, message: { role: "assistant", content: 42 }, finish_reason: "stop" }] },
      { id: "x", choices: [{ index: 0, message: { role: "assistant", content: { text: "hi" } } }] },
      { id: "x", choices: [{ index: 0, message: { role: "assistant", content: null, tool_calls: { id: "c" } } }] },
      {
        id: "x",
        choices: [
          {
            index: 0,
            message: { role: "assistant", tool_calls: [{ id: "c", type: "function", function: { name: 7 } }] },
          },
        ],
      },
    ];
    for (const body of bodies) {
      // Each on a fresh pair: a few bad answers in a row open alpha's circuit, and beta is then asked first.
      const { alpha, gateway } = await twoProviders(t);
      alpha.enqueue(CHAT_ROUTE, { kind: "json", body });
      const response = await postChat(gateway, { model: "chat-model" });
      assert.equal(response.status, 200, response.text);
      assert.equal(response.headers["x-gateway-provider"], "beta", JSON.stringify(body));
      assert.equal(response.headers["x-gateway-attempts"], "2");
    }
  });

  test("choice 0 after an entry that is not an object is the answer at every door: the attempt and the adapters read the same choice", async (t) => {
    // The attempt skipped the null and took choice 0 as the answer, the adapters took the null and found none:
    // the Messages and Responses doors answered 502 with the attempt counted a success and no other candidate tried.
    const { alpha, beta, gateway } = await twoProviders(t);
    const body = { id: "x", choices: [null, { index: 0, message: { role: "assistant", content: "hi" } }] };
    const requests = [
      { path: "/v1/chat/completions", body: { model: "chat-model", messages: HELLO } },
      { path: "/v1/messages", body: { model: "chat-model", max_tokens: 16, messages: HELLO } },
      { path: "/v1/responses", body: { model: "chat-model", input: "Say hello" } },
    ];
    for (const request of requests) {
      alpha.enqueue(CHAT_ROUTE, { kind: "json", body });
      const response = await send(gateway, "POST", request.path, { body: request.body });
      assert.equal(response.status, 200, `${request.path}: ${response.text}`);
      assert.equal(response.headers["x-gateway-provider"], "alpha", request.path);
      assert.match(response.text, /"hi"/, request.path);
    }
    assert.equal(chatRequests(beta).length, 0);
  });

  for (const status of [401, 403]) {
    test(`${status}: the provider is parked for long, shown as failed in /health, and none of its models is tried`, async (t) => {
      const { alpha, beta, gateway } = await twoProviders(t);
      alpha.enqueue(CHAT_ROUTE, {
        kind: "json",
        status,
        body: {
          error: { message: "Invalid API key provided", type: "invalid_request_error", code: "invalid_api_key" },
        },
      });
      const response = await postChat(gateway, { model: "chat-model" });
      assert.equal(response.status, 200, response.text);
      assert.equal(response.headers["x-gateway-provider"], "beta");

      // Another model of the same provider: the key is bad for all of them.
      const other = await postChat(gateway, { model: "other-model" });
      assert.equal(other.status, 200, other.text);
      assert.equal(other.headers["x-gateway-provider"], "beta");
      assert.equal(other.headers["x-gateway-attempts"], "1");
      assert.equal(chatRequests(alpha).length, 1);
      assert.equal(chatRequests(beta).length, 2);

      const health = await send(gateway, "GET", "/health");
      const providers = (health.json as { providers: { up: string[]; failed: { name: string; reason: string }[] } })
        .providers;
      assert.deepEqual(
        providers.failed.map((entry) => entry.name),
        ["alpha"],
      );
      assert.deepEqual(providers.up, ["beta"]);
      const cooldown = rowOf(await statsOf(gateway), "alpha/other-model").cooldown;
      assert.equal(cooldown?.cause, "invalid_key");
      assert.ok((cooldown?.remaining_ms ?? 0) > 30 * 60_000, `cooldown too short: ${cooldown?.remaining_ms}`);
    });
  }
});

describe("a provider that does not serve the model, or refuses a parameter another may take", () => {
  const notFound = (message: string, status = 404, code: string | null = "model_not_found") => ({
    kind: "json" as const,
    status,
    body: { error: { message, type: "invalid_request_error", param: "model", code } },
  });

  for (const [status, answer] of [
    [404, notFound("The model `alpha-chat` does not exist or you do not have access to it.")],
    [
      400,
      notFound(
        "The model `alpha-chat` has been decommissioned and is no longer supported.",
        400,
        "model_decommissioned",
      ),
    ],
    [404, notFound("No endpoints found for alpha-chat.", 404, null)],
  ] as const) {
    test(`${status} "${String(answer.body.error.message).slice(0, 40)}...": the next provider answers, and this one is left out for a while`, async (t) => {
      const { alpha, beta, gateway } = await twoProviders(t);
      alpha.enqueue(CHAT_ROUTE, answer);
      const first = await postChat(gateway, { model: "chat-model" });
      assert.equal(first.status, 200, first.text);
      assert.equal(first.headers["x-gateway-provider"], "beta");
      assert.equal(first.headers["x-gateway-attempts"], "2");
      // Parked: the next request goes to beta without asking alpha again.
      const second = await postChat(gateway, { model: "chat-model" });
      assert.equal(second.headers["x-gateway-provider"], "beta");
      assert.equal(second.headers["x-gateway-attempts"], "1");
      assert.equal(chatRequests(alpha).length, 1);
      assert.equal(chatRequests(beta).length, 2);
      const route = await send(gateway, "GET", "/v1/gateway/route?model=chat-model");
      const skipped = (route.json as { skipped: { provider: string; reason: string; until: string }[] }).skipped;
      assert.equal(skipped[0]?.provider, "alpha");
      assert.match(skipped[0]?.reason ?? "", /this provider does not serve the model/);
      const parkedForMs = Date.parse(skipped[0]?.until ?? "") - Date.now();
      assert.ok(parkedForMs > 14 * 60_000 && parkedForMs <= 15 * 60_000, `parked for ${parkedForMs} ms`);
      const records = await send(gateway, "GET", "/v1/gateway/requests?limit=1");
      const [latest] = (records.json as { data: { skips: { cooldownCause?: string }[] }[] }).data;
      assert.equal(latest?.skips[0]?.cooldownCause, "model_unavailable");
    });
  }

  test("the only provider does not serve the model: its 404 as it came, then a 503 that says why until the park ends", async (t) => {
    const { mock, gateway } = await oneProviderScene(t);
    mock.enqueue(CHAT_ROUTE, notFound("The model `vendor/m-instruct` does not exist."));
    const first = await postChat(gateway, { model: "m" });
    assert.equal(first.status, 404, first.text);
    assert.equal(errorOf(first).message, "The model `vendor/m-instruct` does not exist.");
    const second = await postChat(gateway, { model: "m" });
    assert.equal(second.status, 503, second.text);
    assert.match(errorOf(second).message, /model not served/);
    assert.equal(chatRequests(mock).length, 1);
  });

  test("a parameter one provider refuses goes to the next; the refusing one is asked again next time", async (t) => {
    const { alpha, beta, gateway } = await twoProviders(t);
    alpha.enqueue(CHAT_ROUTE, {
      kind: "json",
      status: 400,
      body: { error: { message: "Unrecognized request argument supplied: logit_bias", type: "invalid_request_error" } },
    });
    const first = await postChat(gateway, { model: "chat-model", logit_bias: { "50256": -100 } });
    assert.equal(first.status, 200, first.text);
    assert.equal(first.headers["x-gateway-provider"], "beta");
    const second = await postChat(gateway, { model: "chat-model" });
    assert.equal(second.headers["x-gateway-provider"], "alpha", "nothing parked: the refusal was about one request");
    assert.equal(chatRequests(alpha).length, 2);
    assert.equal(chatRequests(beta).length, 1);
  });

  test("refused by every candidate: the client gets the first refusal as it came, not a gateway error", async (t) => {
    const { alpha, beta, gateway } = await twoProviders(t);
    const refusal = (provider: string) => ({
      kind: "json" as const,
      status: 400,
      body: { error: { message: `${provider}: 'logprobs' is not supported with this model.`, param: "logprobs" } },
    });
    alpha.enqueue(CHAT_ROUTE, refusal("alpha"));
    beta.enqueue(CHAT_ROUTE, refusal("beta"));
    const response = await postChat(gateway, { model: "chat-model", logprobs: true });
    assert.equal(response.status, 400, response.text);
    const error = errorOf(response);
    assert.equal(error.message, "alpha: 'logprobs' is not supported with this model.");
    assert.equal(error.param, "logprobs");
    assert.equal((error as { metadata?: { provider: string } }).metadata?.provider, "alpha");
    assert.equal(chatRequests(beta).length, 1);
  });
});

describe("answers returned as they are", () => {
  for (const status of [400, 422]) {
    test(`${status} from the upstream reaches the client with its status and OpenAI fields; no failover`, async (t) => {
      const { alpha, beta, gateway } = await twoProviders(t);
      alpha.enqueue(CHAT_ROUTE, {
        kind: "json",
        status,
        body: {
          error: {
            message: "Invalid value for 'temperature': must be <= 2.",
            type: "invalid_request_error",
            param: "temperature",
            code: "invalid_value",
          },
        },
      });
      const response = await postChat(gateway, { model: "chat-model", temperature: 7 });
      assert.equal(response.status, status, response.text);
      const error = errorOf(response);
      // The upstream's message unchanged (no "(from ...)" suffix); where it came from is in metadata and headers.
      assert.equal(error.message, "Invalid value for 'temperature': must be <= 2.");
      const metadata = (error as { metadata?: { provider: string; model: string; raw: string } }).metadata;
      assert.equal(metadata?.provider, "alpha");
      assert.equal(typeof metadata?.model, "string");
      assert.equal(response.headers["x-gateway-provider"], "alpha");
      assert.equal(response.headers["x-gateway-model"], metadata?.model);
      assert.match(metadata?.raw ?? "", /must be <= 2/);
      assert.equal(error.type, "invalid_request_error");
      assert.equal(error.code, "invalid_value");
      assert.equal(error.param, "temperature");
      assert.equal(chatRequests(beta).length, 0, "a rejected request must not be sent to another provider");
      assert.equal(chatRequests(alpha).length, 1);
    });
  }

  test("the SDK sees the upstream's 400 as a BadRequestError", async (t) => {
    const { alpha, gateway } = await twoProviders(t);
    alpha.enqueue(CHAT_ROUTE, {
      kind: "json",
      status: 400,
      body: { error: { message: "messages[0].content is required", type: "invalid_request_error", code: null } },
    });
    const client = openAiClient(gateway);
    await assert.rejects(
      client.chat.completions.create({ model: "chat-model", messages: [{ role: "user", content: "" }] }),
      (error: unknown) => {
        assert.ok(error instanceof OpenAI.BadRequestError, String(error));
        assert.equal(error.status, 400);
        assert.equal(error.type, "invalid_request_error");
        assert.match(error.message, /messages\[0\]\.content is required/);
        return true;
      },
    );
  });

  test("a context-length 400 goes to a candidate with a larger context, skipping smaller ones", async (t) => {
    const alpha = await useMock(t);
    const beta = await useMock(t);
    const gamma = await useMock(t);
    const gateway = await useGateway(
      t,
      `providers:
  - name: alpha
    base_url: ${alpha.baseUrl}
    api_key: ${ALPHA_KEY}
    models:
      chat-model: { id: alpha-chat-v1, priority: 50, context: 8192 }
  - name: beta
    base_url: ${beta.baseUrl}
    api_key: ${BETA_KEY}
    models:
      chat-model: { id: beta-chat-v1, priority: 40, context: 4096 }
  - name: gamma
    base_url: ${gamma.baseUrl}
    api_key: sk-gamma
    models:
      chat-model: { id: gamma-chat-v1, priority: 1, context: 131072 }
`,
    );
    alpha.enqueue(CHAT_ROUTE, {
      kind: "json",
      status: 400,
      body: {
        error: {
          message:
            "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.",
          type: "invalid_request_error",
          param: "messages",
          code: "context_length_exceeded",
        },
      },
    });
    const response = await postChat(gateway, { model: "chat-model" });
    assert.equal(response.status, 200, response.text);
    assert.equal(response.headers["x-gateway-provider"], "gamma");
    assert.equal(response.headers["x-gateway-attempts"], "2");
    assert.equal(chatRequests(beta).length, 0, "a smaller context than the one that failed is not worth trying");
    assert.equal(chatRequests(gamma).length, 1);
  });

  test("a context-length error from every candidate is a 400 context_length_exceeded", async (t) => {
    const { alpha, beta, gateway } = await twoProviders(t);
    const tooLong = {
      kind: "json" as const,
      status: 400,
      body: {
        error: { message: "prompt is too long", type: "invalid_request_error", code: "context_length_exceeded" },
      },
    };
    alpha.enqueue(CHAT_ROUTE, tooLong);
    beta.enqueue(CHAT_ROUTE, tooLong);
    const response = await postChat(gateway, { model: "chat-model" });
    assert.equal(response.status, 400, response.text);
    assert.equal(errorOf(response).code, "context_length_exceeded");
  });
});

describe("when nothing can serve", () => {
  test("502 lists every attempt (provider, model, status, reason)", async (t) => {
    const { alpha, beta, gateway } = await twoProviders(t);
    alpha.enqueue(CHAT_ROUTE, serverError("database on fire"));
    beta.enqueue(CHAT_ROUTE, { kind: "reset" });
    const response = await postChat(gateway, { model: "chat-model" });
    assert.equal(response.status, 502, response.text);
    const error = errorOf(response);
    assert.equal(error.type, "upstream_error");
    assert.equal(error.code, "upstream_unavailable");
    assert.match(error.message, /alpha\/alpha-chat-v1: HTTP 500: database on fire;/);
    assert.match(error.message, /beta\/beta-chat-v1: connection reset/);
    assert.deepEqual(
      error.attempts?.map((attempt) => [attempt.provider, attempt.model, attempt.status]),
      [
        ["alpha", "alpha-chat-v1", 500],
        ["beta", "beta-chat-v1", undefined],
      ],
    );
    for (const attempt of error.attempts ?? []) assert.ok(attempt.reason.length > 0);
  });

  test("504 when every failure was a timeout", async (t) => {
    const { alpha, beta, gateway } = await twoProviders(t, {
      alpha: "    retries: 0\n    timeout_ms: 300",
      beta: "    retries: 0\n    timeout_ms: 300",
    });
    alpha.enqueue(CHAT_ROUTE, { kind: "hang" });
    beta.enqueue(CHAT_ROUTE, { kind: "json", delayMs: 5000, body: chatCompletion("too late", "beta-chat-v1") });
    const response = await postChat(gateway, { model: "chat-model" });
    assert.equal(response.status, 504, response.text);
    const error = errorOf(response);
    assert.equal(error.code, "upstream_timeout");
    assert.equal(error.attempts?.length, 2);
    assert.match(error.message, /alpha\/alpha-chat-v1/);
    assert.match(error.message, /beta\/beta-chat-v1/);
  });

  test("attempts are capped by routing.max_attempts, retries included", async (t) => {
    const mocks: MockUpstream[] = [];
    let yaml = "providers:\n";
    for (const [index, name] of ["p1", "p2", "p3", "p4"].entries()) {
      const mock = await useMock(t);
      mock.setDefault(CHAT_ROUTE, serverError());
      mocks.push(mock);
      yaml += `  - name: ${name}
    base_url: ${mock.baseUrl}
    api_key: sk-${name}
    retries: 1
    models:
      chat-model: { priority: ${10 - index} }
`;
    }
    yaml += "routing:\n  max_attempts: 3\n";
    const gateway = await useGateway(t, yaml);
    const response = await postChat(gateway, { model: "chat-model" });
    assert.equal(response.status, 502, response.text);
    assert.equal(errorOf(response).attempts?.length, 3);
    const sent = mocks.map((mock) => chatRequests(mock).length);
    assert.deepEqual(sent, [2, 1, 0, 0]);
  });

  test("no provider key appears in any answer, even when upstreams echo it", async (t) => {
    const { alpha, beta, gateway } = await twoProviders(t);
    const echo = (status: number, key = ALPHA_KEY) => ({
      kind: "json" as const,
      status,
      body: { error: { message: `Incorrect API key provided: ${key}. Header was 'Bearer ${key}'` } },
    });
    // A 500 (listed in the 502's attempts), then a 400 returned as is.
    alpha.enqueue(CHAT_ROUTE, echo(500));
    beta.enqueue(CHAT_ROUTE, { kind: "json", status: 500, body: { error: { message: `bad key ${BETA_KEY}` } } });
    const failed = await postChat(gateway, { model: "chat-model" });
    assert.equal(failed.status, 502, failed.text);
    assertNoSecret(failed, ALPHA_KEY);
    assertNoSecret(failed, BETA_KEY);

    alpha.enqueue(CHAT_ROUTE, echo(400));
    const rejected = await postChat(gateway, { model: "chat-model" });
    assert.equal(rejected.status, 400, rejected.text);
    assert.match(errorOf(rejected).message, /Incorrect API key provided/);
    assertNoSecret(rejected, ALPHA_KEY);

    alpha.enqueue(CHAT_ROUTE, echo(401));
    beta.enqueue(CHAT_ROUTE, echo(403, BETA_KEY));
    const unauthorised = await postChat(gateway, { model: "chat-model" });
    assert.equal(unauthorised.status, 502, unauthorised.text);
    assert.match(errorOf(unauthorised).message, /HTTP 401: Incorrect API key provided/);
    assertNoSecret(unauthorised, ALPHA_KEY);
    assertNoSecret(unauthorised, BETA_KEY);

    for (const path of ["/health", "/stats", "/v1/models"]) {
      const info = await send(gateway, "GET", path);
      assertNoSecret(info, ALPHA_KEY);
      assertNoSecret(info, BETA_KEY);
    }
  });
});

async function waitUntil(condition: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
