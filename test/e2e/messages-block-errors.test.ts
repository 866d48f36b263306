// POST /v1/messages with a bad block deep inside a message's `content`, through the official @anthropic-ai/sdk: the
// 400 names the block by Anthropic's dotted position (`messages.3.content.2`) and the types accepted there, in
// Anthropic's error shape, as Anthropic's API does ("messages.0.content.0: Input tag ... does not match any of the
// expected tags ..."). Before, every such block got the union's generic "`content` must be a string or an array of
// blocks", with no position.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { chatRequests, oneProviderScene, type useMock } from "../helpers/e2e.ts";

const CLIENT_KEY = "client-key-anthropic";

async function scene(t: Parameters<typeof useMock>[0]) {
  const { mock, gateway } = await oneProviderScene(t, {}, CLIENT_KEY);
  return { mock, client: new Anthropic({ baseURL: gateway.url, apiKey: CLIENT_KEY, maxRetries: 0 }) };
}

/** Three good turns, then a user turn whose third block is `bad`. */
function withBadBlock(bad: unknown): Anthropic.MessageCreateParamsNonStreaming {
  return {
    model: "m",
    max_tokens: 10,
    messages: [
      { role: "user", content: "one" },
      { role: "assistant", content: "two" },
      { role: "user", content: "three" },
      {
        role: "user",
        content: [{ type: "text", text: "a" }, { type: "text", text: "b" }, bad] as Anthropic.ContentBlockParam[],
      },
    ],
  };
}

async function refusal(client: Anthropic, request: Anthropic.MessageCreateParamsNonStreaming): Promise<string> {
  let message = "";
  await assert.rejects(client.messages.create(request), (error: unknown) => {
    assert.ok(error instanceof Anthropic.BadRequestError, String(error));
    assert.equal(error.status, 400);
    const body = error.error as { type?: string; error?: { type?: string; message?: string } };
    assert.equal(body.type, "error");
    assert.equal(body.error?.type, "invalid_request_error");
    message = body.error?.message ?? "";
    return true;
  });
  return message;
}

const USER_TYPES = "`text`, `image`, `document`, `search_result` or `tool_result`";

describe("messages API: a bad content block is named by its position, with the types accepted there", () => {
  test("not an object, no `type`, a `type` that is no string: messages.3.content.2", async (t) => {
    const { mock, client } = await scene(t);
    const expected: [unknown, string][] = [
      [
        5,
        `messages.3.content.2: Input should be an object: a content block is an object whose \`type\` is ${USER_TYPES}.`,
      ],
      [
        "text",
        `messages.3.content.2: Input should be an object: a content block is an object whose \`type\` is ${USER_TYPES}.`,
      ],
      [
        { text: "no type" },
        `messages.3.content.2: Unable to extract tag using discriminator 'type': a content block is an object whose \`type\` is ${USER_TYPES}.`,
      ],
      [
        { type: 7 },
        `messages.3.content.2.type: Input should be a valid string: a content block is an object whose \`type\` is ${USER_TYPES}.`,
      ],
      [
        { type: "container_upload", file_id: "x" },
        `messages.3.content.2: Content blocks of type \`container_upload\` are not supported; use ${USER_TYPES}.`,
      ],
    ];
    for (const [bad, message] of expected) {
      assert.equal(await refusal(client, withBadBlock(bad)), message, JSON.stringify(bad));
    }
    assert.equal(chatRequests(mock).length, 0, "nothing was sent upstream");
  });

  test("a bad field of a known block, a block inside a tool result, an assistant's and a system turn's block", async (t) => {
    const { client } = await scene(t);
    assert.match(
      await refusal(client, withBadBlock({ type: "image", source: { type: "file", file_id: "f" } })),
      /^messages\.3\.content\.2\.source\.type: `source\.type` must be `base64` or `url`/,
    );
    const inToolResult = await refusal(client, {
      model: "m",
      max_tokens: 10,
      messages: [
        { role: "user", content: "weather?" },
        { role: "assistant", content: [{ type: "tool_use", id: "t1", name: "w", input: {} }] },
        {
          role: "user",
          content: [
            { type: "tool_result", tool_use_id: "t1", content: [{ type: "text", text: "ok" }, 5] },
          ] as Anthropic.ContentBlockParam[],
        },
      ],
    });
    assert.equal(
      inToolResult,
      "messages.2.content.0.content.1: Input should be an object: a content block is an object whose `type` is `text`, `image`, `document` or `search_result`.",
    );
    const assistant = await refusal(client, {
      model: "m",
      max_tokens: 10,
      messages: [
        { role: "user", content: "hi" },
        { role: "assistant", content: [{ type: "image", source: { type: "url", url: "https://x/y.png" } }] },
        { role: "user", content: "again" },
      ],
    });
    assert.equal(
      assistant,
      "messages.1.content.0: Assistant content blocks of type `image` are not supported; use `text` or `tool_use`.",
    );
    const system = await refusal(client, {
      model: "m",
      max_tokens: 10,
      system: [{ type: "text", text: "be brief" }, { text: "no type" }] as Anthropic.TextBlockParam[],
      messages: [{ role: "user", content: "hi" }],
    });
    assert.equal(
      system,
      "system.1: Unable to extract tag using discriminator 'type': a content block is an object whose `type` is `text`.",
    );
  });

  test("a user turn of thinking blocks only: the refusal says they are dropped there, not that the turn is empty", async (t) => {
    const { mock, client } = await scene(t);
    const thinkingOnly = await refusal(client, {
      model: "m",
      max_tokens: 10,
      messages: [
        {
          role: "user",
          content: [
            { type: "thinking", thinking: "hm", signature: "s" },
            { type: "redacted_thinking", data: "x" },
          ] as unknown as Anthropic.ContentBlockParam[],
        },
      ],
    });
    // Until 2026-12-07: "`messages[0].content` must not be empty", of a turn holding two blocks.
    assert.equal(
      thinkingOnly,
      "`messages[0].content` holds only `thinking` or `redacted_thinking` blocks, which belong to assistant turns and are dropped from a user turn: a user turn needs at least one text, image, document, search_result or tool_result block.",
    );
    assert.equal(chatRequests(mock).length, 0, "nothing was sent upstream");
  });
});
