// Streams fail over freely until the first content reaches the client: every way an upstream can fail before
// that (HTTP errors, resets, silence, an error event, a stream with no content) is invisible to the client,
// which gets the fallback's stream byte for byte.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import OpenAI from "openai";
import type { RequestRecord } from "../../src/observability/request-record.ts";
import { type ChatChunkBody, chatChunk, chatCompletion, type MockStep, rateLimited } from "../helpers/mock-upstream.ts";
import { postJson, readTimed, sseFrames, strictSseData, waitUntil } from "../helpers/sse-client.ts";
import { CHAT_ROUTE, MODEL, type ProviderOverrides, sentBody, startTwoProviders } from "../helpers/two-providers.ts";

const PRIMARY_ID = "chatcmpl-primary";
const BACKUP_ID = "chatcmpl-backup";

function backupChunks(): ChatChunkBody[] {
  return [
    chatChunk("", MODEL, { id: BACKUP_ID, role: true }),
    chatChunk("served", MODEL, { id: BACKUP_ID }),
    chatChunk(" by beta", MODEL, { id: BACKUP_ID }),
    chatChunk("", MODEL, { id: BACKUP_ID, finishReason: "stop" }),
  ];
}

const primaryRole = { data: chatChunk("", MODEL, { id: PRIMARY_ID, role: true }) };

interface FailureCase {
  readonly name: string;
  readonly step: MockStep;
  readonly primary?: ProviderOverrides;
  /** The failed attempt's outcome as recorded in the routing decision. */
  readonly outcome: string;
}

const FAILURES: readonly FailureCase[] = [
  { name: "a 429", step: rateLimited({ retryAfter: "20" }), outcome: "rate_limited" },
  {
    name: "a 500",
    step: { kind: "json", status: 500, body: { error: { message: "internal error", type: "server_error" } } },
    outcome: "server_error",
  },
  {
    name: "a proxy's HTML 502 page",
    step: { kind: "text", status: 502, body: "<html><body>502 Bad Gateway</body></html>" },
    outcome: "server_error",
  },
  { name: "a connection reset before any byte", step: { kind: "reset" }, outcome: "network_error" },
  {
    name: "no response headers within timeout_ms",
    step: { kind: "hang" },
    primary: { timeout_ms: 300 },
    outcome: "timeout",
  },
  {
    name: "a 200 whose first event is an error event",
    step: {
      kind: "sse",
      events: [{ data: { error: { message: "The server had an error processing your request", code: 500 } } }],
      end: "hang",
    },
    outcome: "server_error",
  },
  {
    name: "a 200 whose first event is an in-band 429",
    step: {
      kind: "sse",
      events: [primaryRole, { data: { error: { message: "Rate limit exceeded: free-models-per-min", code: 429 } } }],
      end: "close-without-done",
    },
    outcome: "rate_limited",
  },
  {
    name: "a 200 JSON error answer to a stream request",
    step: { kind: "json", status: 200, body: { error: { message: "Provider returned error", code: 502 } } },
    outcome: "server_error",
  },
  {
    name: "a 200 JSON completion instead of a stream",
    step: { kind: "json", status: 200, body: chatCompletion("not streamed", MODEL) },
    outcome: "bad_response",
  },
  {
    name: "headers but no event within first_token_timeout_ms",
    step: { kind: "sse", events: [], end: "hang" },
    primary: { first_token_timeout_ms: 300 },
    outcome: "first_token_timeout",
  },
  {
    name: "a role chunk and keep-alives but no content within first_token_timeout_ms",
    step: {
      kind: "sse",
      events: [{ raw: ": OPENROUTER PROCESSING\n\n" }, primaryRole, { delayMs: 100 }, { raw: ": keep-alive\n\n" }],
      end: "hang",
    },
    primary: { first_token_timeout_ms: 300 },
    outcome: "first_token_timeout",
  },
  {
    name: "content that comes only after first_token_timeout_ms",
    step: {
      kind: "sse",
      events: [primaryRole, { delayMs: 1500 }, { data: chatChunk("too late", MODEL, { id: PRIMARY_ID }) }],
    },
    primary: { first_token_timeout_ms: 300 },
    outcome: "first_token_timeout",
  },
  {
    name: "a connection cut after the role chunk, before content",
    step: { kind: "sse", events: [primaryRole], end: "destroy" },
    outcome: "bad_response",
  },
  {
    name: "a clean end after the role chunk, before content",
    step: { kind: "sse", events: [primaryRole], end: "close-without-done" },
    outcome: "bad_response",
  },
  // `[DONE]` before any choice is an empty answer, not a finished one: these once committed the stream and the
  // client got a 200 with only `[DONE]` (its x-gateway-model the empty one).
  { name: "a stream of only [DONE]", step: { kind: "sse", events: [] }, outcome: "bad_response" },
  {
    name: "a malformed event, then [DONE]",
    step: { kind: "sse", events: [{ raw: "data: {not json\n\n" }] },
    outcome: "bad_response",
  },
  {
    name: "a usage-only chunk, then [DONE]",
    step: {
      kind: "sse",
      events: [{ data: { id: PRIMARY_ID, object: "chat.completion.chunk", choices: [], usage: { total_tokens: 1 } } }],
    },
    outcome: "bad_response",
  },
  {
    name: "an `event: error` without an error envelope, then [DONE]",
    step: { kind: "sse", events: [{ raw: 'event: error\ndata: {"message":"boom"}\n\n' }] },
    outcome: "server_error",
  },
];

describe("stream failover before the first content chunk", () => {
  for (const failure of FAILURES) {
    test(`${failure.name}: the next candidate serves the stream, the client never sees the failed attempt`, async (t) => {
      const scene = await startTwoProviders(t, failure.primary === undefined ? {} : { primary: failure.primary });
      const decisions: RequestRecord[] = [];
      scene.gateway.runtime.onRecord((decision) => decisions.push(decision));
      scene.primary.enqueue(CHAT_ROUTE, failure.step);
      const chunks = backupChunks();
      scene.backup.enqueue(CHAT_ROUTE, { kind: "sse", events: chunks.map((data) => ({ data })) });

      const answer = await scene.postChat({ stream: true });
      assert.equal(answer.statusCode, 200);
      assert.match(String(answer.headers["content-type"]), /^text\/event-stream/);
      assert.equal(answer.headers["x-gateway-provider"], "beta");
      assert.equal(answer.headers["x-gateway-model"], MODEL);
      assert.equal(answer.headers["x-gateway-attempts"], "2");
      const { text } = await readTimed(answer.body);
      // Exactly the fallback's events and [DONE]: nothing of the failed attempt (its role chunk, its error).
      assert.equal(text, sseFrames([...chunks, "[DONE]"]));
      assert.ok(!text.includes(PRIMARY_ID));

      assert.equal(scene.primary.requests.length, 1);
      assert.equal(scene.backup.requests.length, 1);
      assert.equal(sentBody(scene.backup).stream, true);
      // The failed attempt is over on the upstream side too: a hanging or lingering response was aborted.
      await waitUntil(() => scene.primary.activeRequests() === 0, "the failed upstream attempt to be closed");
      await waitUntil(() => decisions.length === 1, "the routing decision");
      assert.deepEqual(
        decisions[0]?.attempts.map((attempt) => `${attempt.deploymentKey}:${attempt.outcome}`),
        [`alpha/${MODEL}:${failure.outcome}`, `beta/${MODEL}:success`],
      );
    });
  }

  test("Messages and Responses streams: an upstream stream of only [DONE] fails over too", async (t) => {
    const doors = [
      { path: "/messages", body: { max_tokens: 50, messages: [{ role: "user", content: "hi" }] } },
      { path: "/responses", body: { input: "hi" } },
    ];
    for (const door of doors) {
      const scene = await startTwoProviders(t);
      scene.primary.enqueue(CHAT_ROUTE, { kind: "sse", events: [] });
      scene.backup.enqueue(CHAT_ROUTE, { kind: "sse", events: backupChunks().map((data) => ({ data })) });
      const answer = await postJson(
        `${scene.gateway.baseUrl}${door.path}`,
        { model: MODEL, stream: true, ...door.body },
        { dispatcher: scene.agent },
      );
      assert.equal(answer.statusCode, 200, door.path);
      assert.equal(answer.headers["x-gateway-provider"], "beta", door.path);
      const { text } = await readTimed(answer.body);
      // Once: message_start then end_turn with no content block; Responses `output: []`.
      assert.match(text, /served/, door.path);
      assert.match(text, / by beta/, door.path);
    }
  });

  test("the official SDK sees only the fallback's stream after a failed first attempt", async (t) => {
    const scene = await startTwoProviders(t, { primary: { first_token_timeout_ms: 300 } });
    scene.primary.enqueue(CHAT_ROUTE, { kind: "sse", events: [primaryRole], end: "hang" });
    scene.backup.enqueue(CHAT_ROUTE, { kind: "sse", events: backupChunks().map((data) => ({ data })) });
    const { data: stream, response } = await scene.client.chat.completions
      .create({ model: MODEL, messages: [{ role: "user", content: "hi" }], stream: true })
      .withResponse();
    assert.equal(response.headers.get("x-gateway-provider"), "beta");
    assert.equal(response.headers.get("x-gateway-attempts"), "2");
    const ids = new Set<string>();
    let content = "";
    for await (const chunk of stream) {
      ids.add(chunk.id);
      content += chunk.choices[0]?.delta.content ?? "";
    }
    assert.equal(content, "served by beta");
    assert.deepEqual([...ids], [BACKUP_ID]);
  });

  test("a transient failure is retried on the same candidate first when it has retries left", async (t) => {
    const scene = await startTwoProviders(t, { primary: { retries: 1 } });
    scene.primary.enqueue(
      CHAT_ROUTE,
      { kind: "sse", events: [primaryRole], end: "destroy" },
      { kind: "sse", events: backupChunks().map((data) => ({ data: { ...data, id: PRIMARY_ID } })) },
    );
    const answer = await scene.postChat({ stream: true });
    assert.equal(answer.headers["x-gateway-provider"], "alpha");
    assert.equal(answer.headers["x-gateway-attempts"], "2");
    const data = strictSseData((await readTimed(answer.body)).text);
    assert.equal(data.at(-1), "[DONE]");
    assert.equal(data.filter((payload) => payload.includes(PRIMARY_ID)).length, 4);
    assert.equal(scene.backup.requests.length, 0);
  });

  test("when every candidate fails before the first byte the client gets a plain HTTP error, not a stream", async (t) => {
    const scene = await startTwoProviders(t);
    const serverError: MockStep = { kind: "json", status: 500, body: { error: { message: "boom" } } };
    scene.primary.enqueue(CHAT_ROUTE, serverError);
    scene.backup.enqueue(CHAT_ROUTE, { kind: "sse", events: [{ data: { error: { message: "overloaded" } } }] });
    const answer = await scene.postChat({ stream: true });
    assert.equal(answer.statusCode, 502);
    assert.match(String(answer.headers["content-type"]), /^application\/json/);
    const body = (await answer.body.json()) as { error: { code: string; type: string; attempts: unknown[] } };
    assert.equal(body.error.code, "upstream_unavailable");
    assert.equal(body.error.type, "upstream_error");
    assert.equal(body.error.attempts.length, 2);
    assert.ok(!JSON.stringify(body).includes("sk-alpha-secret"));

    scene.primary.enqueue(CHAT_ROUTE, serverError);
    scene.backup.enqueue(CHAT_ROUTE, serverError);
    await assert.rejects(
      scene.client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "hi" }], stream: true }),
      (error: unknown) => error instanceof OpenAI.APIError && error.status === 502,
    );
  });

  test("when every candidate is silent past first_token_timeout_ms the client gets a 504 upstream_timeout", async (t) => {
    const silent: ProviderOverrides = { first_token_timeout_ms: 250 };
    const scene = await startTwoProviders(t, { primary: silent, backup: silent });
    scene.primary.enqueue(CHAT_ROUTE, { kind: "sse", events: [primaryRole], end: "hang" });
    scene.backup.enqueue(CHAT_ROUTE, { kind: "sse", events: [], end: "hang" });
    const answer = await scene.postChat({ stream: true });
    assert.equal(answer.statusCode, 504);
    const body = (await answer.body.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, "upstream_timeout");
    assert.match(body.error.message, /first_token_timeout_ms/);
    await waitUntil(
      () => scene.primary.activeRequests() === 0 && scene.backup.activeRequests() === 0,
      "both silent upstream attempts to be aborted",
    );
  });
});
