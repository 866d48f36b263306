// One request with a million bad array elements (a 2 MB body) must not hold the gateway: zod's arrays reported an
// issue for every bad element, so 1,000,000 bad `messages` held the event loop for 4.5 s and more and took 700 MB
// (src/protocols/validate.ts `arrayOf` stops at the first). Each door gets its own 400 naming the first bad element,
// as it did for one bad element, and /health answers meanwhile.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import { errorOf, type RawResponse, send, useGateway, useMock } from "../helpers/e2e.ts";
import type { TestGateway } from "../helpers/gateway.ts";
import type { MockUpstream } from "../helpers/mock-upstream.ts";
import { longestCpuHold, threadCpuMsWhile } from "../helpers/thread-cpu.ts";

const ELEMENTS = 1_000_000;
/** Of this thread's CPU: after the fix about 0.4 s on a laptop, before it 4.5 to 16 s. */
const MAX_HELD_MS = 2_000;
/** Peak growth of this process's memory: about 70 MB after the fix, 500 to 730 MB before it. */
const MAX_GROWTH_BYTES = 300 * 1024 * 1024;

async function scene(t: TestContext): Promise<TestGateway> {
  return (await sceneWithMock(t)).gateway;
}

async function sceneWithMock(t: TestContext): Promise<{ alpha: MockUpstream; gateway: TestGateway }> {
  const alpha = await useMock(t);
  const gateway = await useGateway(
    t,
    `providers:
  - name: alpha
    base_url: ${alpha.baseUrl}
    api_key: sk-alpha
    models:
      chat-model: { id: alpha-chat-v1, context: 4000000 }
      embed-model: { kind: embedding, context: 4000000 }
`,
  );
  return { alpha, gateway };
}

/** `[first..., bad, bad, ...]`: `ELEMENTS` bad elements after the given ones, as JSON text. */
function arrayText(good: readonly unknown[], bad: string): string {
  return `[${[...good.map((item) => JSON.stringify(item)), ...Array<string>(ELEMENTS).fill(bad)].join(",")}]`;
}

/**
 * Sends `body` to `path` with /health asked right after it; asserts the 400 and /health's 200 came within MAX_HELD_MS
 * of this thread's CPU, the event loop (the gateway runs in this process) was never held longer, and memory did not
 * grow by hundreds of MB. CPU time, not the clock: a loaded CI machine's other processes stretched the clock's
 * reading past the bound, and a parse gone quadratic or a loop held for seconds still costs this thread that CPU.
 */
async function sendHostile(gateway: TestGateway, path: string, body: string): Promise<RawResponse> {
  const baseRss = process.memoryUsage().rss;
  let peakRss = baseRss;
  const rssTicker = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }, 1);
  const hold = longestCpuHold();
  const { value: answers, ms: usedMs } = await threadCpuMsWhile(() =>
    Promise.all([send(gateway, "POST", path, { body }), send(gateway, "GET", "/health")]),
  );
  const heldMs = hold.stop();
  clearInterval(rssTicker);
  const [hostile, health] = answers;
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
  assert.equal(hostile.status, 400, hostile.text.slice(0, 300));
  assert.ok(usedMs < MAX_HELD_MS, `the 400 and /health took ${Math.round(usedMs)} ms of CPU`);
  assert.ok(heldMs < MAX_HELD_MS, `the event loop was held ${Math.round(heldMs)} ms of CPU`);
  assert.ok(peakRss - baseRss < MAX_GROWTH_BYTES, `memory grew by ${Math.round((peakRss - baseRss) / 1024 / 1024)} MB`);
  assert.equal(health.status, 200, health.text.slice(0, 300));
  return hostile;
}

/** The Messages door's error shape (Anthropic's): `{"type":"error","error":{"type","message"}}`. */
function messagesErrorOf(response: RawResponse): { type: string; message: string } {
  const body = response.json as { type?: string; error?: { type: string; message: string } } | undefined;
  assert.equal(body?.type, "error", response.text.slice(0, 300));
  assert.ok(body.error !== undefined);
  assert.equal(body.error.type, "invalid_request_error");
  return body.error;
}

describe(`${ELEMENTS.toLocaleString("en")} bad array elements: a 400 naming the first, the gateway free`, () => {
  test("chat `messages`: OpenAI's shape, `messages[2].role`", async (t) => {
    const gateway = await scene(t);
    // The first bad one lacks its role; a million numbers follow (objects would make JSON.parse alone the cost).
    const first = [{ role: "system", content: "be brief" }, { role: "user", content: "hi" }, { content: "x" }];
    const response = await sendHostile(
      gateway,
      "/v1/chat/completions",
      `{"model":"chat-model","messages":${arrayText(first, "1")}}`,
    );
    const error = errorOf(response);
    assert.equal(error.param, "messages[2].role");
    assert.equal(error.message, "each message needs a string `role`");
    assert.equal(error.code, "invalid_value");
  });

  test("chat `models`: the first bad fallback name", async (t) => {
    const gateway = await scene(t);
    const response = await sendHostile(
      gateway,
      "/v1/chat/completions",
      `{"model":"chat-model","models":${arrayText(["chat-model"], "1")},"messages":[{"role":"user","content":"hi"}]}`,
    );
    const error = errorOf(response);
    assert.equal(error.param, "models[1]");
    assert.equal(error.message, "Invalid `models[1]`: Invalid input: expected string, received number");
  });

  test("Responses `tools` and a message's `content` parts: OpenAI's shape, `tools[1]`", async (t) => {
    const gateway = await scene(t);
    const tool = { type: "function", name: "f", parameters: { type: "object" } };
    const tools = await sendHostile(
      gateway,
      "/v1/responses",
      `{"model":"chat-model","input":"hi","tools":${arrayText([tool], "1")}}`,
    );
    const error = errorOf(tools);
    assert.equal(error.param, "tools[1]");
    assert.equal(error.message, "Invalid `tools[1]`: Invalid input: expected object, received number");

    // Nested: the parts of one input message (a union of a string and an array, whose error names the content).
    const content = await sendHostile(
      gateway,
      "/v1/responses",
      `{"model":"chat-model","input":[{"role":"user","content":${arrayText([{ type: "input_text", text: "hi" }], "1")}}]}`,
    );
    assert.equal(errorOf(content).param, "input[0].content");
  });

  test("Messages `messages`, `stop_sequences` and content blocks: Anthropic's shape", async (t) => {
    const gateway = await scene(t);
    const head = `{"model":"chat-model","max_tokens":10`;
    const messages = await sendHostile(
      gateway,
      "/v1/messages",
      `${head},"messages":${arrayText([{ role: "user", content: "hi" }], "1")}}`,
    );
    // Anthropic's position, dotted, first.
    assert.equal(messagesErrorOf(messages).message, "messages.1: Invalid input: expected object, received number");

    const stops = await sendHostile(
      gateway,
      "/v1/messages",
      `${head},"stop_sequences":${arrayText(["END"], "1")},"messages":[{"role":"user","content":"hi"}]}`,
    );
    assert.equal(messagesErrorOf(stops).message, "stop_sequences.1: Invalid input: expected string, received number");

    // Nested: the blocks of one message, the first bad one by its position, with the types a user turn takes.
    const blocks = await sendHostile(
      gateway,
      "/v1/messages",
      `${head},"messages":[{"role":"user","content":${arrayText([{ type: "text", text: "hi" }], "1")}}]}`,
    );
    assert.equal(
      messagesErrorOf(blocks).message,
      "messages.0.content.1: Input should be an object: a content block is an object whose `type` is `text`, `image`, `document`, `search_result` or `tool_result`.",
    );
  });

  test("embeddings `input`: OpenAI's shape, `input.2` (strings, token ids and token-id lists are items)", async (t) => {
    const gateway = await scene(t);
    const response = await sendHostile(
      gateway,
      "/v1/embeddings",
      `{"model":"embed-model","input":${arrayText(["one", [1, 2, 3]], "true")}}`,
    );
    const error = errorOf(response);
    assert.equal(error.param, "input[2]");
    assert.equal(error.message, "each `input` item must be a string, a token id, a list of token ids or an object");

    // A long token-id list with one bad id: the item is named (the list stops at its first bad id).
    const ids = await sendHostile(
      gateway,
      "/v1/embeddings",
      `{"model":"embed-model","input":[${arrayText([1, 2], `"x"`)}]}`,
    );
    assert.equal(errorOf(ids).param, "input[0]");
  });

  test("a long valid array still passes: one input of a million token ids is embedded, sent on whole", async (t) => {
    const { alpha, gateway } = await sceneWithMock(t);
    const ids = Array.from({ length: ELEMENTS }, (_, index) => index % 50_000);
    const { value: response, ms: usedMs } = await threadCpuMsWhile(() =>
      send(gateway, "POST", "/v1/embeddings", { body: { model: "embed-model", input: [ids] } }),
    );
    assert.equal(response.status, 200, response.text.slice(0, 300));
    assert.ok(usedMs < MAX_HELD_MS * 2, `a valid request took ${Math.round(usedMs)} ms of CPU`);
    const forwarded = alpha.requests.find((recorded) => recorded.path === "/v1/embeddings");
    assert.deepEqual((forwarded?.body as { input?: unknown[][] } | undefined)?.input?.[0]?.length, ELEMENTS);
  });
});

describe("Messages `stop_sequences` the gateway would match itself: bounded before any work", () => {
  test("8 MB of them: Anthropic's 400 at once, the gateway free (the automaton held the loop 6 s and more)", async (t) => {
    const gateway = await scene(t);
    const stops = JSON.stringify(["<a>", "<b>", "<c>", "<d>", "x".repeat(8_000_000)]);
    const response = await sendHostile(
      gateway,
      "/v1/messages",
      `{"model":"chat-model","max_tokens":10,"stop_sequences":${stops},"messages":[{"role":"user","content":"hi"}]}`,
    );
    assert.match(messagesErrorOf(response).message, /`stop_sequences`: stop sequences of at most 50,000 characters/);
  });
});
