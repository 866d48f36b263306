// A connection that breaks after the answer is whole (every choice has its finish_reason, no event half-written)
// loses nothing the client needs: each front door ends the stream normally, as after a clean close or a silence
// at that point (docs/streaming.md, "Endings that are not errors"), not with an error that throws the answer away.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import type { RequestRecord } from "../../src/observability/request-record.ts";
import { statsOf } from "../helpers/e2e.ts";
import { chatStream, type MockStep } from "../helpers/mock-upstream.ts";
import { readTimed, strictSseData, waitUntil } from "../helpers/sse-client.ts";
import { CHAT_ROUTE, MODEL, startTwoProviders, type TwoProviders } from "../helpers/two-providers.ts";

const WORDS = [" one", " two", " three"];
const TEXT = WORDS.join("");

/** The whole answer with its finish chunk, then the connection is cut instead of `[DONE]`. */
const cutAfterFinish: MockStep = { kind: "sse", events: chatStream(WORDS, MODEL), end: "destroy" };

function recordsOf(scene: TwoProviders): RequestRecord[] {
  const records: RequestRecord[] = [];
  scene.gateway.runtime.onRecord((record) => records.push(record));
  return records;
}

describe("a connection that breaks after the finish_reason, before [DONE]", () => {
  test("chat (raw SSE): the answer, then [DONE]; no error, nothing continued, a success", async (t) => {
    const scene = await startTwoProviders(t);
    const records = recordsOf(scene);
    scene.primary.enqueue(CHAT_ROUTE, cutAfterFinish);
    const answer = await scene.postChat({ stream: true });
    const data = strictSseData((await readTimed(answer.body)).text);
    assert.equal(data.at(-1), "[DONE]");
    const chunks = data.slice(0, -1).map((payload) => JSON.parse(payload) as Record<string, unknown>);
    for (const chunk of chunks) assert.equal(chunk.error, undefined, "no error event");
    const finish = chunks.at(-1) as { choices: { finish_reason: string | null }[] };
    assert.equal(finish.choices[0]?.finish_reason, "stop");
    assert.equal(scene.backup.requests.length, 0, "a whole answer is not continued");
    await waitUntil(() => records.length === 1, "the request record");
    assert.equal(records[0]?.status, 200);
    assert.equal(records[0]?.outcome, "success");
    assert.deepEqual(
      records[0]?.attempts.map((attempt) => attempt.outcome),
      ["success"],
    );
    const alpha = (await statsOf(scene.gateway)).get(`alpha/${MODEL}`);
    assert.deepEqual([alpha?.successes, alpha?.failures], [1, 0], "the answer was whole: no failure counted");
  });

  test("an error event after the finish_reason: the answer, then [DONE]; not an error that throws the answer away", async (t) => {
    const scene = await startTwoProviders(t);
    const records = recordsOf(scene);
    const afterFinish = [
      ...chatStream(WORDS, MODEL),
      { data: { error: { message: "usage accounting failed", code: 500 } } },
    ];
    scene.primary.enqueue(CHAT_ROUTE, { kind: "sse", events: afterFinish, end: "hang" });
    const answer = await scene.postChat({ stream: true });
    const data = strictSseData((await readTimed(answer.body)).text);
    assert.equal(data.at(-1), "[DONE]");
    const chunks = data.slice(0, -1).map((payload) => JSON.parse(payload) as Record<string, unknown>);
    for (const chunk of chunks) assert.equal(chunk.error, undefined, "no error event");
    assert.equal(scene.backup.requests.length, 0, "a whole answer is not continued");
    await waitUntil(() => records.length === 1, "the request record");
    assert.equal(records[0]?.outcome, "success");
  });

  test('finish_reason "error" on a chunk with text: the text is the client\'s, the stream is continued, no finish says error', async (t) => {
    const scene = await startTwoProviders(t);
    const records = recordsOf(scene);
    const [role, hel] = chatStream(["Hel"], MODEL);
    const failedInPlace = {
      data: {
        id: "chatcmpl-x",
        object: "chat.completion.chunk",
        model: MODEL,
        choices: [{ index: 0, delta: { content: "lo" }, finish_reason: "error" }],
      },
    };
    scene.primary.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: [role, hel, failedInPlace].filter((e) => e !== undefined),
    });
    scene.backup.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream([" world"], MODEL) });
    const answer = await scene.postChat({ stream: true });
    const data = strictSseData((await readTimed(answer.body)).text);
    assert.equal(data.at(-1), "[DONE]");
    const chunks = data
      .slice(0, -1)
      .map(
        (payload) =>
          JSON.parse(payload) as { choices?: { delta?: { content?: string }; finish_reason?: string | null }[] },
      );
    const text = chunks.map((chunk) => chunk.choices?.[0]?.delta?.content ?? "").join("");
    assert.equal(text, "Hello world");
    const reasons = chunks
      .map((chunk) => chunk.choices?.[0]?.finish_reason)
      .filter((reason) => typeof reason === "string");
    assert.deepEqual(reasons, ["stop"], "the only finish is the continuation's");
    await waitUntil(() => records.length === 1, "the request record");
    assert.equal(records[0]?.continuations.length, 1);
    assert.equal(records[0]?.attempts[0]?.outcome, "stream_error_event");
  });

  test("chat with include_usage, cut before the usage chunk: [DONE] all the same", async (t) => {
    const scene = await startTwoProviders(t);
    scene.primary.enqueue(CHAT_ROUTE, cutAfterFinish);
    const stream = await scene.client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "count" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let finishReason: string | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      finishReason = chunk.choices[0]?.finish_reason ?? finishReason;
    }
    assert.equal(text, TEXT);
    assert.equal(finishReason, "stop");
  });

  test("a half-written event after the finish_reason is still a cut: the error event, as documented", async (t) => {
    const scene = await startTwoProviders(t);
    scene.primary.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: [...chatStream(WORDS, MODEL), { raw: 'data: {"id":"chatcmpl-mock","choices":[],"usa' }],
      end: "destroy",
    });
    const answer = await scene.postChat({ stream: true });
    const data = strictSseData((await readTimed(answer.body)).text);
    const last = JSON.parse(data.at(-1) ?? "null") as { error?: { code?: string } };
    assert.equal(last.error?.code, "stream_interrupted");
  });

  test("Messages (Anthropic SDK): finalMessage() has the whole text and end_turn", async (t) => {
    const scene = await startTwoProviders(t);
    scene.primary.enqueue(CHAT_ROUTE, cutAfterFinish);
    const client = new Anthropic({ baseURL: scene.gateway.url, apiKey: "x", maxRetries: 0 });
    const message = await client.messages
      .stream({ model: MODEL, max_tokens: 100, messages: [{ role: "user", content: "count" }] })
      .finalMessage();
    assert.deepEqual(message.content, [{ type: "text", text: TEXT, citations: null }]);
    assert.equal(message.stop_reason, "end_turn");
  });

  test("Responses (OpenAI SDK): finalResponse() is completed with the whole text", async (t) => {
    const scene = await startTwoProviders(t);
    scene.primary.enqueue(CHAT_ROUTE, cutAfterFinish);
    const response = await scene.client.responses.stream({ model: MODEL, input: "count" }).finalResponse();
    assert.equal(response.status, "completed");
    assert.equal(response.output_text, TEXT);
  });
});
