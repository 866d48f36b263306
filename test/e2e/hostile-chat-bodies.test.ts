// Chat bodies the Chat Completions reference refuses (a role no chat API has, content that is neither text nor parts,
// a part of no known type, a `tool` message answering no tool call, an empty `tools` asking for a tool): a 400 from the
// gateway naming the field, OpenAI's shape, before any upstream call. Sent on, each was the first candidate's refusal
// in its own words, or a failover through every candidate spending their budgets.
import assert from "node:assert/strict";
import { test } from "node:test";
import type OpenAI from "openai";
import { badRequest, CHAT_ROUTE, chatRequests, errorOf, HELLO, postChat, serveEveryChat } from "../helpers/e2e.ts";
import { assertRefusedBeforeUpstream, hostileScene } from "../helpers/hostile-bodies.ts";

const CALL = { id: "call_1", type: "function", function: { name: "lookup", arguments: "{}" } };

/** Bodies refused, with the `param` each 400 names. */
const REFUSED: [string, Record<string, unknown>, string][] = [
  [
    "an unknown role",
    {
      messages: [
        { role: "system", content: "be brief" },
        { role: "user", content: "hi" },
        { role: "robot", content: "x" },
      ],
    },
    "messages[2].role",
  ],
  ["a number as content", { messages: [{ role: "user", content: 5 }] }, "messages[0].content"],
  [
    "an object as content",
    { messages: [{ role: "user", content: { type: "text", text: "hi" } }] },
    "messages[0].content",
  ],
  ["a user's null content", { messages: [{ role: "user", content: null }] }, "messages[0].content"],
  [
    "a content part of an unknown type",
    {
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "a" },
            { type: "hologram", data: "x" },
          ],
        },
      ],
    },
    "messages[0].content[1].type",
  ],
  ["a content part that is a string", { messages: [{ role: "user", content: ["hi"] }] }, "messages[0].content[0]"],
  // vLLM takes a part without `type` only by a media key (`image_url`, `audio_url`, `video_url`, ...): "Missing 'type'
  // field in multimodal part" for any other.
  [
    "a part without a type nor a media key",
    { messages: [{ role: "user", content: [{ text: "hi" }] }] },
    "messages[0].content[0]",
  ],
  [
    "a tool message answering no call",
    {
      messages: [
        { role: "user", content: "look it up" },
        { role: "assistant", content: null, tool_calls: [CALL] },
        { role: "tool", tool_call_id: "call_1", content: "found" },
        { role: "tool", tool_call_id: "call_404", content: "lost" },
      ],
    },
    "messages[3].tool_call_id",
  ],
  [
    "a tool message before any call",
    { messages: [{ role: "tool", tool_call_id: "call_1", content: "found" }, ...HELLO] },
    "messages[0].tool_call_id",
  ],
  ["empty tools with tool_choice required", { tools: [], tool_choice: "required" }, "tools"],
  [
    "empty tools with a named tool_choice",
    { tools: [], tool_choice: { type: "function", function: { name: "lookup" } } },
    "tools",
  ],
];

test("chat bodies the reference refuses: a 400 naming the field, OpenAI's shape, nothing sent upstream", async (t) => {
  const { mock, gateway } = await hostileScene(t);
  serveEveryChat(mock);
  for (const [what, body, param] of REFUSED) {
    for (const stream of [false, true]) {
      const response = await postChat(gateway, { model: "m", ...body, stream });
      assert.equal(response.status, 400, `${what}: ${response.text}`);
      const error = errorOf(response);
      assert.deepEqual([error.type, error.code, error.param], ["invalid_request_error", "invalid_value", param], what);
      assert.ok(error.message.includes(param) || param === "tools", `${what}: ${error.message}`);
    }
  }
  await assertRefusedBeforeUpstream(gateway, mock, "chat", Math.min(20, REFUSED.length * 2));
});

test("through the openai SDK: its BadRequestError with the field, and what the reference takes is served", async (t) => {
  const { mock, client } = await hostileScene(t);
  serveEveryChat(mock);
  const messages = [
    { role: "user", content: "hi" },
    { role: "narrator", content: "x" },
  ] as unknown as OpenAI.ChatCompletionMessageParam[];
  const error = await badRequest(client.chat.completions.create({ model: "m", messages }));
  assert.equal(error.param, "messages[1].role");
  assert.match(error.message, /"narrator" is not a message role/);
  // OpenAI's roles, then that providers' own exist (named, so a client sees the one it meant is taken).
  assert.match(error.message, /use system, developer, user, assistant, tool or function, or a provider's .*ipython/);
  const hologram = [{ role: "user", content: [{ type: `hologram${"x".repeat(60)}`, data: "x" }] }];
  const partError = await badRequest(
    client.chat.completions.create({
      model: "m",
      messages: hologram as unknown as OpenAI.ChatCompletionMessageParam[],
    }),
  );
  assert.equal(partError.param, "messages[0].content[0].type");
  // The unknown type cut to 40 characters; OpenAI's types, then some of the providers' (the message stays short).
  assert.match(
    partError.message,
    /"hologramx{32}" is not a content part type: use text, image_url, input_audio or file, or a provider's documented type \(video_url, file_url, document_url, /,
  );
  assert.ok(partError.message.length < 250, partError.message);
  assert.equal(chatRequests(mock).length, 0);

  // Every role, null assistant content with tool calls, parts of the reference's types, a tool result for an earlier
  // call (not only the message right before), the deprecated `function` role: served, as sent.
  const valid: OpenAI.ChatCompletionMessageParam[] = [
    { role: "developer", content: "be brief" },
    { role: "system", content: [{ type: "text", text: "be kind" }] },
    {
      role: "user",
      content: [
        { type: "text", text: "what is this" },
        { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } },
      ],
    },
    { role: "assistant", content: null, tool_calls: [CALL as OpenAI.ChatCompletionMessageToolCall] },
    { role: "tool", tool_call_id: "call_1", content: [{ type: "text", text: "a cat" }] },
    { role: "assistant", content: [{ type: "text", text: "A cat." }] },
    { role: "function", name: "lookup", content: "a cat" },
    { role: "tool", tool_call_id: "call_1", content: "still a cat" },
    { role: "user", content: "thanks" },
  ];
  const answer = await client.chat.completions.create({ model: "m", messages: valid });
  assert.equal(answer.choices[0]?.message.content, "Served.");
  const sent = chatRequests(mock)[0]?.body as { messages: unknown[] };
  assert.deepEqual(sent.messages, valid);
});

test("an empty `tools` with tool_choice auto, none or none at all goes upstream as no tools, as OpenAI takes it", async (t) => {
  const { mock, gateway, client } = await hostileScene(t);
  serveEveryChat(mock);
  const choices: Record<string, unknown>[] = [
    {},
    { tool_choice: "auto" },
    { tool_choice: "none", parallel_tool_calls: false },
  ];
  for (const choice of choices) {
    const response = await postChat(gateway, { model: "m", tools: [], ...choice });
    assert.equal(response.status, 200, response.text);
  }
  await client.chat.completions.create({ model: "m", messages: HELLO, tools: [] });
  const sent = chatRequests(mock).map((recorded) => recorded.body as Record<string, unknown>);
  assert.equal(sent.length, 4);
  for (const body of sent) {
    assert.deepEqual(
      [body.tools, body.tool_choice, body.parallel_tool_calls],
      [undefined, undefined, undefined],
      JSON.stringify(body),
    );
  }
  assert.equal(mock.requests.filter((recorded) => `${recorded.method} ${recorded.path}` === CHAT_ROUTE).length, 4);
});

test("the part types the providers behind the gateway document as input are served, as sent", async (t) => {
  const { mock, gateway } = await hostileScene(t);
  serveEveryChat(mock);
  const thinking = { type: "thinking", thinking: [{ type: "text", text: "Your thoughts." }] };
  const bodies: unknown[][] = [
    // Mistral's recommended system prompt for its reasoning models (docs.mistral.ai, "Native" reasoning): a
    // `thinking` chunk between two texts; its user and tool messages take `thinking` and `reference` chunks too.
    [
      {
        role: "system",
        content: [{ type: "text", text: "Think first:" }, thinking, { type: "text", text: "Then answer." }],
      },
      {
        role: "user",
        content: [
          { type: "text", text: "hi" },
          { type: "reference", reference_ids: [1] },
        ],
      },
    ],
    // vLLM's own parts (its chat_utils parser map): Responses-style text and images, thinking, embeddings, tool refs.
    [
      {
        role: "user",
        content: [
          { type: "input_text", text: "what is this" },
          { type: "input_image", image_url: "data:image/png;base64,iVBORw0KGgo=" },
          { type: "output_text", text: "earlier" },
          { type: "thinking", thinking: "hmm", closed: true },
          { type: "audio_embeds", audio_embeds: "AAAA" },
          { type: "prompt_embeds", data: "AAAA" },
          { type: "tool_reference", name: "lookup" },
        ],
      },
    ],
    // vLLM's untyped parts (CustomChatCompletionContentSimple*Param: the part's one media key, no `type`), a URL or
    // `{url}`.
    [
      {
        role: "user",
        content: [
          { type: "text", text: "compare" },
          { image_url: "https://example.com/a.jpg" },
          { image_url: { url: "https://example.com/b.jpg" }, uuid: "b" },
          { audio_url: "https://example.com/a.mp3" },
          { video_url: "https://example.com/a.mp4" },
        ],
      },
    ],
    // Alibaba Model Studio's OpenAI-compatible Qwen-VL: a video as a list of its frames (`video`), or a file
    // (`video_url`); Z.ai's GLM vision models: a document by URL (`file_url`).
    [
      {
        role: "user",
        content: [
          { type: "video", video: ["https://example.com/1.jpg", "https://example.com/2.jpg"] },
          { type: "video_url", video_url: { url: "https://example.com/a.mp4" } },
          { type: "file_url", file_url: { url: "https://example.com/a.pdf" } },
          { type: "text", text: "what happens" },
        ],
      },
    ],
    // The tool-result roles of Llama 3.1's (`ipython`) and ChatGLM3's (`observation`) chat formats, which vLLM passes
    // to the model's chat template as they come.
    [
      { role: "user", content: "run it" },
      { role: "assistant", content: '{"name": "run", "parameters": {}}' },
      { role: "ipython", content: '{"output": "42"}' },
      { role: "assistant", content: "tool_call(x=1)" },
      { role: "observation", content: '{"temperature": 22}' },
    ],
  ];
  for (const messages of bodies) {
    const response = await postChat(gateway, { model: "m", messages });
    assert.equal(response.status, 200, response.text);
  }
  const sent = chatRequests(mock).map((recorded) => (recorded.body as { messages: unknown[] }).messages);
  assert.deepEqual(sent, bodies);
});

// A tool that printed nothing answers `content: null` (or "") in Llama 3.1's and ChatGLM3's tool-result roles as in
// `tool`: it was refused ("a ipython message's content must be a string or ..., not null") where a `tool` message's
// was taken, and an empty one went upstream empty (refused by providers that check tool content). Both are filled as a
// `tool` message is.
test("ipython and observation results with null or empty content are served as a tool's: filled with (no output)", async (t) => {
  const { mock, gateway } = await hostileScene(t);
  serveEveryChat(mock);
  const asked = [
    { role: "user", content: "run it" },
    { role: "assistant", content: '{"name": "run", "parameters": {}}' },
  ];
  const bodies: unknown[][] = [
    [...asked, { role: "ipython", content: null }],
    [...asked, { role: "observation", content: null }],
    [...asked, { role: "ipython", content: "  " }],
    [...asked, { role: "observation" }],
    [...asked, { role: "observation", content: '{"temperature": 22}' }],
  ];
  for (const messages of bodies) {
    const response = await postChat(gateway, { model: "m", messages });
    assert.equal(response.status, 200, response.text);
  }
  const sent = chatRequests(mock).map((recorded) => (recorded.body as { messages: { content?: unknown }[] }).messages);
  assert.deepEqual(
    sent.map((messages) => [messages.length, messages.at(-1)]),
    [
      [3, { role: "ipython", content: "(no output)" }],
      [3, { role: "observation", content: "(no output)" }],
      [3, { role: "ipython", content: "(no output)" }],
      [3, { role: "observation", content: "(no output)" }],
      [3, { role: "observation", content: '{"temperature": 22}' }],
    ],
  );
});
