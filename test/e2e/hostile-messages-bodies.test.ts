// Messages histories Anthropic's API refuses for their tool calls (a `tool_use` input that is not an object, a call
// without its result in the next user turn, a result answering no call): Anthropic's 400 `invalid_request_error` in
// its words, naming the position, through the official @anthropic-ai/sdk, before any upstream call. Translated as
// they came, each became a chat history the providers refused in their own words.
import assert from "node:assert/strict";
import { test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { send } from "../helpers/e2e.ts";
import { assertRefusedBeforeUpstream, hostileScene } from "../helpers/hostile-bodies.ts";

type Turns = Anthropic.MessageParam[];

const USE = { type: "tool_use" as const, id: "toolu_1", name: "lookup", input: { q: "cats" } };
const RESULT = { type: "tool_result" as const, tool_use_id: "toolu_1", content: "a cat" };

/** Histories refused, with Anthropic's message (its start) and the gateway's `param` in the OpenAI shape. */
const REFUSED: [string, Turns, RegExp][] = [
  [
    "a tool_use input that is a string",
    [
      { role: "user", content: "look" },
      { role: "assistant", content: [{ ...USE, input: '{"q":"cats"}' }] },
      { role: "user", content: [RESULT] },
    ],
    /^messages\.1\.content\.0\.input: Input should be a valid dictionary/,
  ],
  [
    "a tool_use without its tool_result in the next turn",
    [
      { role: "user", content: "look" },
      { role: "assistant", content: [USE, { ...USE, id: "toolu_2" }] },
      { role: "user", content: [RESULT, { type: "text", text: "and?" }] },
    ],
    /^messages\.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_2\. Each `tool_use` block must have a corresponding `tool_result` block in the next message\.$/,
  ],
  [
    "a tool_result answering no tool_use",
    [
      { role: "user", content: "look" },
      { role: "assistant", content: [USE] },
      { role: "user", content: [RESULT, { type: "tool_result", tool_use_id: "toolu_9", content: "?" }] },
    ],
    /^messages\.2\.content\.1: unexpected `tool_use_id` found in `tool_result` blocks: toolu_9\. Each `tool_result` block must have a corresponding `tool_use` block in the previous message\.$/,
  ],
  [
    "a tool_result before any tool_use",
    [{ role: "user", content: [RESULT] }],
    /^messages\.0\.content\.0: unexpected `tool_use_id`/,
  ],
];

test("tool calls Anthropic refuses: its 400 invalid_request_error in its words, nothing sent upstream", async (t) => {
  const { mock, gateway } = await hostileScene(t);
  const client = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
  for (const [what, messages, expected] of REFUSED) {
    await assert.rejects(client.messages.create({ model: "m", max_tokens: 10, messages }), (error: unknown) => {
      assert.ok(error instanceof Anthropic.BadRequestError, `${what}: ${String(error)}`);
      const body = error.error as { type?: string; error?: { type?: string; message?: string } };
      assert.equal(body.type, "error");
      assert.equal(body.error?.type, "invalid_request_error");
      assert.match(body.error?.message ?? "", expected, what);
      return true;
    });
  }
  // The raw body's shape too, streamed as well: the refusal comes before any stream starts.
  const raw = await send(gateway, "POST", "/v1/messages", {
    body: { model: "m", max_tokens: 10, stream: true, messages: REFUSED[1]?.[1] },
  });
  assert.equal(raw.status, 400, raw.text);
  assert.equal((raw.json as { error: { type: string } }).error.type, "invalid_request_error");
  await assertRefusedBeforeUpstream(gateway, mock, "messages", REFUSED.length + 1);
});

test("what Anthropic takes is served: results in the next turn, consecutive assistant turns, a trailing call", async (t) => {
  const { mock, gateway } = await hostileScene(t);
  const client = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
  const histories: Turns[] = [
    [
      { role: "user", content: "look" },
      { role: "assistant", content: [USE] },
      { role: "user", content: [RESULT, { type: "text", text: "and?" }] },
    ],
    // Two assistant turns in a row are one turn to Anthropic; their calls are answered together.
    [
      { role: "user", content: "look" },
      { role: "assistant", content: [USE] },
      { role: "assistant", content: [{ ...USE, id: "toolu_2" }] },
      { role: "user", content: [{ ...RESULT, tool_use_id: "toolu_2" }, RESULT] },
    ],
    // A call in the last (prefilled) assistant turn has no next turn yet.
    [
      { role: "user", content: "look" },
      { role: "assistant", content: [{ type: "text", text: "I will." }, USE] },
    ],
  ];
  for (const messages of histories) {
    const message = await client.messages.create({ model: "m", max_tokens: 10, messages });
    assert.equal(message.type, "message");
  }
  const sent = mock.requests.filter((recorded) => recorded.path === "/v1/chat/completions");
  assert.equal(sent.length, histories.length);
});
