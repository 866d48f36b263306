// Reasoning through the gateway (docs/protocols.md "Reasoning"): `reasoning.effort` (Responses) and `thinking`
// (Messages) reach only the candidates known to take `reasoning_effort`, also across failover; reasoning text a
// chat provider returns (`reasoning_content` / `reasoning`) reaches Responses clients as reasoning items and
// Anthropic clients as thinking blocks, through the real SDKs, JSON and streamed.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { CHAT_ROUTE, chatRequests, oneProviderScene, send, useGateway, useMock } from "../helpers/e2e.ts";
import {
  type ChatChunkBody,
  chatChunk,
  chatCompletion,
  rateLimited,
  type SseScript,
} from "../helpers/mock-upstream.ts";
import { MODEL, sentBody, startTwoProviders } from "../helpers/two-providers.ts";

const UPSTREAM_ID = "vendor/m-think";

/** A chat completion whose message carries reasoning text under `field`. */
function reasoningCompletion(field: "reasoning_content" | "reasoning", reasoning: string, text: string) {
  const body = chatCompletion(text, UPSTREAM_ID, { prompt_tokens: 9, completion_tokens: 7 });
  const message = body.choices[0]?.message as Record<string, unknown>;
  message[field] = reasoning;
  return body;
}

/** A chat stream: reasoning deltas (`reasoning_content`), then text deltas, then finish and usage. */
function reasoningStream(reasoning: string[], words: string[]): SseScript[] {
  const chunks: ChatChunkBody[] = [chatChunk("", UPSTREAM_ID, { role: true })];
  for (const part of reasoning) {
    const chunk = chatChunk("", UPSTREAM_ID);
    (chunk.choices[0]?.delta as Record<string, unknown>).reasoning_content = part;
    chunks.push(chunk);
  }
  for (const word of words) chunks.push(chatChunk(word, UPSTREAM_ID));
  chunks.push(chatChunk("", UPSTREAM_ID, { finishReason: "stop" }));
  const usage = {
    ...chatChunk("", UPSTREAM_ID),
    choices: [],
    usage: { prompt_tokens: 9, completion_tokens: 7, total_tokens: 16 },
  };
  return [...chunks.map((data) => ({ data })), { data: usage }];
}

describe("reasoning effort goes only to candidates that take it", () => {
  test("Responses reasoning.effort: the supporting first candidate gets it; after its 429 the other one does not", async (t) => {
    const { primary, backup, gateway } = await startTwoProviders(t, { primaryModel: { reasoning: true } });
    primary.enqueue(CHAT_ROUTE, rateLimited({ retryAfter: "30" }));
    backup.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Done.", "beta-model") });
    const client = new OpenAI({ baseURL: gateway.baseUrl, apiKey: "x", maxRetries: 0 });
    const response = await client.responses.create({
      model: MODEL,
      input: "Think.",
      reasoning: { effort: "high", summary: "auto" },
    });
    assert.equal(response.output_text, "Done.");
    assert.equal(sentBody(primary).reasoning_effort, "high");
    const fallback = sentBody(backup);
    assert.equal("reasoning_effort" in fallback, false, "a candidate not known to take it gets no reasoning_effort");
    assert.equal("x_gateway_reasoning_effort" in fallback, false, "the gateway-only field never goes upstream");
    assert.equal(response.reasoning?.effort, "high", "the response repeats the effort asked for");
    assert.equal(response.reasoning?.summary, "auto", "and the summary asked for");
  });

  test("Messages thinking: a non-supporting first candidate fails over to one that takes it, with the mapped effort", async (t) => {
    const { primary, backup, gateway } = await startTwoProviders(t, { backupModel: { reasoning: true } });
    primary.enqueue(CHAT_ROUTE, rateLimited({ retryAfter: "30" }));
    backup.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Done.", "beta-model") });
    const client = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
    await client.messages.create({
      model: MODEL,
      max_tokens: 8000,
      thinking: { type: "enabled", budget_tokens: 3000 },
      messages: [{ role: "user", content: "Think." }],
    });
    assert.equal("reasoning_effort" in sentBody(primary), false);
    assert.equal(sentBody(backup).reasoning_effort, "medium", "budget_tokens 3000 is `medium` (2048 <= b < 4096)");
  });

  test("the metadata table's supports_reasoning counts; a chat client's own reasoning_effort goes everywhere", async (t) => {
    const mock = await useMock(t);
    const gateway = await useGateway(
      t,
      `providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha
    models:
      small: { id: o4-mini }
      plain: { id: ${UPSTREAM_ID} }
`,
    );
    mock.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("ok", UPSTREAM_ID) });
    const client = new OpenAI({ baseURL: gateway.baseUrl, apiKey: "x", maxRetries: 0 });
    await client.responses.create({ model: "small", input: "Hi", reasoning: { effort: "low" } });
    await client.responses.create({ model: "plain", input: "Hi", reasoning: { effort: "low" } });
    await client.chat.completions.create({
      model: "plain",
      messages: [{ role: "user", content: "Hi" }],
      reasoning_effort: "minimal",
    });
    for (const model of ["small", "plain"]) {
      const answered = await send(gateway, "POST", "/v1/chat/completions", {
        body: { model, messages: [{ role: "user", content: "Hi" }], x_gateway_reasoning_effort: "high" },
      });
      assert.equal(answered.status, 200);
    }
    const empty = await send(gateway, "POST", "/v1/chat/completions", {
      body: { model: "plain", messages: [{ role: "user", content: "Hi" }], x_gateway_reasoning_effort: "" },
    });
    assert.equal(empty.status, 400);
    const bodies = chatRequests(mock).map((request) => request.body as Record<string, unknown>);
    assert.equal(bodies.length, 5, "the invalid request went nowhere");
    assert.equal(bodies[0]?.reasoning_effort, "low", "o4-mini: supports_reasoning in the metadata table");
    assert.equal(bodies[1]?.reasoning_effort, undefined, "an unknown model gets none");
    assert.equal(bodies[2]?.reasoning_effort, "minimal", "chat: the client's own field is passed on as it is");
    assert.equal(bodies[3]?.reasoning_effort, "high", "chat's x_gateway_reasoning_effort, to a model that takes it");
    assert.equal(bodies[4]?.reasoning_effort, undefined);
    for (const body of bodies) assert.equal("x_gateway_reasoning_effort" in body, false);
  });
});

describe("reasoning text reaches the clients", () => {
  test("Responses JSON: reasoning_content becomes a reasoning item with summary text before the message", async (t) => {
    const { mock, gateway } = await oneProviderScene(t, { id: UPSTREAM_ID });
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: reasoningCompletion("reasoning_content", "2+2 is 4.", "4") });
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: reasoningCompletion("reasoning", "Still 4.", "4 again") });
    const client = new OpenAI({ baseURL: gateway.baseUrl, apiKey: "x", maxRetries: 0 });
    const first = await client.responses.create({ model: MODEL, input: "2+2?" });
    assert.equal(first.output_text, "4");
    const [reasoning, message] = first.output;
    assert.equal(reasoning?.type, "reasoning");
    assert.match(reasoning?.id ?? "", /^rs_/);
    assert.deepEqual(reasoning?.type === "reasoning" ? reasoning.summary : [], [
      { type: "summary_text", text: "2+2 is 4." },
    ]);
    assert.equal(message?.type, "message");
    // `reasoning` (OpenRouter's name) too; and the next turn sends no reasoning back to the chat provider.
    const second = await client.responses.create({ model: MODEL, input: "Sure?", previous_response_id: first.id });
    assert.equal(second.output[0]?.type === "reasoning" ? second.output[0].summary[0]?.text : "", "Still 4.");
    const sentAgain = JSON.stringify(chatRequests(mock)[1]?.body);
    assert.equal(sentAgain.includes("2+2 is 4."), false, "reasoning is not sent back upstream");
  });

  test("Responses stream: reasoning summary events, then the text; finalResponse() has both", async (t) => {
    const { mock, gateway } = await oneProviderScene(t, { id: UPSTREAM_ID });
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: reasoningStream(["Let me ", "think."], ["The", " answer."]) });
    const client = new OpenAI({ baseURL: gateway.baseUrl, apiKey: "x", maxRetries: 0 });
    const stream = client.responses.stream({ model: MODEL, input: "Why?" });
    const types: string[] = [];
    let summaryDeltas = "";
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === "response.reasoning_summary_text.delta") summaryDeltas += event.delta;
    }
    const final = await stream.finalResponse();
    assert.equal(summaryDeltas, "Let me think.");
    assert.equal(final.output_text, "The answer.");
    assert.equal(final.output[0]?.type, "reasoning");
    assert.deepEqual(final.output[0]?.type === "reasoning" ? final.output[0].summary : [], [
      { type: "summary_text", text: "Let me think." },
    ]);
    assert.deepEqual(
      types.filter((type) => type.includes("reasoning") || type.startsWith("response.output_item")),
      [
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.output_item.done",
      ],
    );
  });

  test("Messages: thinking blocks (JSON and stream) when thinking is enabled, none when it is not", async (t) => {
    const { mock, gateway } = await oneProviderScene(t, { id: UPSTREAM_ID, keys: ", reasoning: true" });
    const client = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
    const thinking = { type: "enabled" as const, budget_tokens: 1024 };
    const messages = [{ role: "user" as const, content: "Why?" }];

    mock.enqueue(CHAT_ROUTE, { kind: "json", body: reasoningCompletion("reasoning_content", "Hmm.", "Because.") });
    const json = await client.messages.create({ model: MODEL, max_tokens: 2000, thinking, messages });
    assert.deepEqual(json.content, [
      { type: "thinking", thinking: "Hmm.", signature: "" },
      { type: "text", text: "Because.", citations: null },
    ]);
    assert.equal(sentBody(mock).reasoning_effort, "low", "budget_tokens below 2048 is `low`");

    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: reasoningStream(["Let me ", "think."], ["Because", "."]) });
    const stream = client.messages.stream({ model: MODEL, max_tokens: 2000, thinking, messages });
    let thinkingDeltas = "";
    let signatures = 0;
    stream.on("streamEvent", (event) => {
      if (event.type !== "content_block_delta") return;
      if (event.delta.type === "thinking_delta") thinkingDeltas += event.delta.thinking;
      if (event.delta.type === "signature_delta") signatures++;
    });
    const streamed = await stream.finalMessage();
    assert.equal(thinkingDeltas, "Let me think.");
    assert.equal(signatures, 1, "the thinking block ends with a signature_delta, as Anthropic's do");
    assert.deepEqual(streamed.content, [
      { type: "thinking", thinking: "Let me think.", signature: "" },
      { type: "text", text: "Because.", citations: null },
    ]);

    mock.enqueue(CHAT_ROUTE, { kind: "json", body: reasoningCompletion("reasoning_content", "Hmm.", "Because.") });
    const plain = await client.messages.create({ model: MODEL, max_tokens: 200, messages });
    assert.deepEqual(
      plain.content,
      [{ type: "text", text: "Because.", citations: null }],
      "no thinking asked, no thinking block",
    );
    assert.equal("reasoning_effort" in sentBody(mock, 2), false, "no thinking asked, no effort sent");
  });
});
