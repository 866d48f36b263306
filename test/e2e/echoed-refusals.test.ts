// A 400 whose "not supported" only quotes the client's prompt back (a content filter, a validator quoting the value
// it refused) is the client's own 400, as it would be had the prompt not said so: returned after one attempt, nothing
// learned. The provider's own "not supported" still fails over and teaches (classify-response.ts refusalOf,
// providers/request-echo.ts).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  CHAT_ROUTE,
  chatRequests,
  postChat,
  recordsOf,
  rowOf,
  serveEveryChat,
  statsOf,
  useGateway,
  useMock,
} from "../helpers/e2e.ts";
import type { RecordedRequest } from "../helpers/mock-upstream.ts";

/** The prompt (last message) of a request the mock received. */
function promptOf(request: RecordedRequest): string {
  return String((request.body as { messages: { content: unknown }[] }).messages.at(-1)?.content);
}

async function scene(t: Parameters<typeof useMock>[0]) {
  const [first, second] = [await useMock(t), await useMock(t)];
  serveEveryChat(second);
  const gateway = await useGateway(
    t,
    `providers:
  - name: first
    base_url: ${first.baseUrl}
    api_key: sk-first
    retries: 0
    models:
      m: { id: vendor/m-instruct, priority: 100 }
  - name: second
    base_url: ${second.baseUrl}
    api_key: sk-second
    models:
      m: { id: vendor/m-instruct }
request_log:
  enabled: true
`,
  );
  return { first, second, gateway };
}

describe('a "not supported" in a 400 that quotes the prompt', () => {
  test("is the client's 400: returned after one attempt, the second candidate not asked, nothing learned", async (t) => {
    const { first, second, gateway } = await scene(t);
    // A content filter quoting the prompt it blocked.
    first.setDefault(CHAT_ROUTE, (request: RecordedRequest) => ({
      kind: "json",
      status: 400,
      body: {
        error: {
          message: `Request blocked: input '${promptOf(request)}' was flagged by the content filter`,
          type: "invalid_request_error",
        },
      },
    }));
    const prompt = "My build says this feature is not supported on Windows. Why?";
    const answer = await postChat(gateway, { model: "m", messages: [{ role: "user", content: prompt }] });
    assert.equal(answer.status, 400, answer.text);
    assert.match(answer.text, /Request blocked: input 'My build says this feature is not supported on Windows/);
    assert.equal(chatRequests(first).length, 1);
    assert.equal(chatRequests(second).length, 0, "the client's own 400 is not failed over");
    const { records } = await recordsOf(gateway, "chat");
    assert.deepEqual(
      records[0]?.attempts.map((attempt) => [attempt.provider, attempt.outcome]),
      [["first", "rejected"]],
    );
    assert.deepEqual(rowOf(await statsOf(gateway), "first/m").refused_features, []);
  });

  test("that names a feature the request carries fails over but teaches nothing; the provider's own words still teach", async (t) => {
    const { first, second, gateway } = await scene(t);
    const refusal = "'logprobs' is not supported with this model.";
    first.setDefault(CHAT_ROUTE, () => ({
      kind: "json",
      status: 400,
      body: { error: { message: refusal, type: "invalid_request_error" } },
    }));
    // A developer pasting the very error: the sentence is in the prompt, and the request carries `logprobs`.
    const pasted = `I get "${refusal}" from my provider. What does it mean?`;
    const answer = await postChat(gateway, {
      model: "m",
      logprobs: true,
      messages: [{ role: "user", content: pasted }],
    });
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.headers["x-gateway-provider"], "second");
    assert.deepEqual(rowOf(await statsOf(gateway), "first/m").refused_features, [], "a possible echo teaches nothing");
    // The same refusal to a prompt that does not hold it: the provider's own, learned (the next request with
    // logprobs goes to the second candidate first).
    const own = await postChat(gateway, {
      model: "m",
      logprobs: true,
      messages: [{ role: "user", content: "hello" }],
    });
    assert.equal(own.status, 200, own.text);
    assert.deepEqual(
      rowOf(await statsOf(gateway), "first/m").refused_features.map((learned) => learned.feature),
      ["logprobs"],
    );
    const next = await postChat(gateway, {
      model: "m",
      logprobs: true,
      messages: [{ role: "user", content: "again" }],
    });
    assert.equal(next.status, 200, next.text);
    assert.equal(chatRequests(first).length, 2, "ranked last for logprobs once learned");
    assert.equal(chatRequests(second).length, 3);
  });
  test("that the conversation holds whole (the refusal passed on before, kept in an agent's history) fails over", async (t) => {
    const { first, second, gateway } = await scene(t);
    const refusal = "Image input is not supported for this model.";
    first.setDefault(CHAT_ROUTE, () => ({
      kind: "json",
      status: 400,
      body: { error: { message: refusal, type: "invalid_request_error" } },
    }));
    const image = { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } };
    const answer = await postChat(gateway, {
      model: "m",
      messages: [
        { role: "user", content: [{ type: "text", text: "What is in this picture?" }, image] },
        { role: "assistant", content: `Error: ${refusal}` },
        { role: "user", content: [{ type: "text", text: "Try again with another model." }, image] },
      ],
    });
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.headers["x-gateway-provider"], "second");
    assert.equal(chatRequests(first).length, 1);
    assert.equal(chatRequests(second).length, 1);
  });
  test("a chat template's alternation error the prompt asks about word for word is the template's own: it fails over", async (t) => {
    const { first, second, gateway } = await scene(t);
    const refusal = "Conversation roles must alternate user/assistant/user/assistant/...";
    first.setDefault(CHAT_ROUTE, () => ({
      kind: "json",
      status: 400,
      body: { object: "error", message: refusal, type: "BadRequestError", code: 400 },
    }));
    const answer = await postChat(gateway, {
      model: "m",
      messages: [
        { role: "user", content: `My vLLM server answers "${refusal}". Why?` },
        { role: "user", content: "It serves a Llama 2 chat template." },
      ],
    });
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.headers["x-gateway-provider"], "second");
    assert.equal(chatRequests(second).length, 1);
  });
});
