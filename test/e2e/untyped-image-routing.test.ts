// vLLM's untyped image part (`{"image_url": "https://..."}`, taken by the chat door since 9eed5a85) routes as an image:
// the candidate without vision is left out for it (limits/token-estimate.ts), as for a typed `image_url`, and a body
// with only an untyped audio part is no image. Review coverage of 9eed5a85 (the estimate had a unit test only): real
// gateway, two scripted mock upstreams over loopback.
import assert from "node:assert/strict";
import { test } from "node:test";
import { chatRequests, postChat, sentContentsOf, serveEveryChat, useGateway, useMock } from "../helpers/e2e.ts";

test("an untyped image part goes to the candidate that takes images; an untyped audio part is no image", async (t) => {
  const [textOnly, vision] = [await useMock(t), await useMock(t)];
  serveEveryChat(textOnly, "From text.");
  serveEveryChat(vision, "From vision.");
  const gateway = await useGateway(
    t,
    `providers:
  - name: text
    base_url: ${textOnly.baseUrl}
    api_key: sk-text
    models:
      m: { id: vendor/m-text, priority: 100, vision: false }
  - name: vision
    base_url: ${vision.baseUrl}
    api_key: sk-vision
    models:
      m: { id: vendor/m-vision, priority: 1, vision: true }
routing:
  max_wait_for_better_ms: 0
`,
  );
  const part = { image_url: "https://example.com/a.jpg" };
  const image = await postChat(gateway, {
    model: "m",
    messages: [{ role: "user", content: [{ type: "text", text: "what is it" }, part] }],
  });
  assert.equal(image.status, 200, image.text);
  assert.deepEqual([chatRequests(textOnly).length, chatRequests(vision).length], [0, 1]);
  // Sent as it came: the part keeps its shape (no `type` added).
  assert.deepEqual(sentContentsOf(chatRequests(vision)[0]), [[{ type: "text", text: "what is it" }, part]]);

  const audio = await postChat(gateway, {
    model: "m",
    messages: [
      { role: "user", content: [{ type: "text", text: "what is it" }, { audio_url: "https://example.com/a.mp3" }] },
    ],
  });
  assert.equal(audio.status, 200, audio.text);
  assert.deepEqual([chatRequests(textOnly).length, chatRequests(vision).length], [1, 1]);
});
