// An image-typed object among a tool call's arguments (a function's arguments sent as an object) is data for a tool,
// not an image the model is shown: a 400 whose "image input is not supported" only quotes the client's prompt is the
// client's own 400 for such a request, returned after one attempt, as for any request without an image part; an image
// part of the messages still makes it a refusal of that image, failed over (providers/request-echo.ts hasImageParts).
// Real gateway, scripted mock upstreams over loopback.
import assert from "node:assert/strict";
import { test } from "node:test";
import { CHAT_ROUTE, chatRequests, postChat, serveEveryChat, useGateway, useMock } from "../helpers/e2e.ts";

const PROMPT = "My app says image input is not supported for this model when it draws a chart, why";

async function scene(t: Parameters<typeof useMock>[0]) {
  const [first, second] = [await useMock(t), await useMock(t)];
  serveEveryChat(second, "From second.");
  const gateway = await useGateway(
    t,
    `providers:
  - name: first
    base_url: ${first.baseUrl}
    api_key: sk-first
    retries: 0
    models:
      m: { id: vendor/m-instruct, priority: 100, vision: true }
  - name: second
    base_url: ${second.baseUrl}
    api_key: sk-second
    models:
      m: { id: vendor/m-backup, priority: 1, vision: true }
routing:
  max_wait_for_better_ms: 0
`,
  );
  // A content filter quoting the prompt it blocked: its "not supported" is the client's sentence.
  first.setDefault(CHAT_ROUTE, () => ({
    kind: "json",
    status: 400,
    body: {
      error: { message: `Request blocked by the content filter: input '${PROMPT}'`, type: "invalid_request_error" },
    },
  }));
  return { first, second, gateway };
}

/** An assistant turn that called a tool with an image-typed object as its arguments, and the tool's answer. */
const TOOL_TURNS = [
  {
    role: "assistant",
    content: null,
    tool_calls: [
      {
        id: "call_1",
        type: "function",
        function: { name: "draw_chart", arguments: { type: "image", format: "png", title: "sales" } },
      },
    ],
  },
  { role: "tool", tool_call_id: "call_1", content: "drawn" },
];

test("an image-typed object in a tool call's arguments is no image part: the echoed refusal is the client's 400", async (t) => {
  const { first, second, gateway } = await scene(t);
  const answer = await postChat(gateway, {
    model: "m",
    messages: [{ role: "user", content: "Draw the sales chart." }, ...TOOL_TURNS, { role: "user", content: PROMPT }],
    tools: [{ type: "function", function: { name: "draw_chart", parameters: { type: "object", properties: {} } } }],
  });
  assert.equal(answer.status, 400, answer.text);
  assert.match(answer.text, /Request blocked by the content filter/);
  assert.equal(chatRequests(first).length, 1);
  assert.equal(chatRequests(second).length, 0, "not failed over");
});

test("an image part of the messages still makes it this candidate's refusal of the image: failed over", async (t) => {
  const { first, second, gateway } = await scene(t);
  const image = { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } };
  const answer = await postChat(gateway, {
    model: "m",
    messages: [{ role: "user", content: [{ type: "text", text: PROMPT }, image] }],
  });
  assert.equal(answer.status, 200, answer.text);
  assert.equal(chatRequests(first).length, 1);
  assert.equal(chatRequests(second).length, 1);
});
