import assert from "node:assert/strict";
import { test } from "node:test";
import { isMessagesRoute, pathOf, speaksAnthropic } from "./protocol-paths.ts";

test("a URL's path is read without its query, and a door's routes are its paths and what is below them", () => {
  assert.equal(pathOf("/v1/chat/completions"), "/v1/chat/completions");
  assert.equal(pathOf("/v1/messages?beta=true&x=?"), "/v1/messages");
  assert.equal(pathOf("?only"), "");
  for (const url of ["/v1/messages", "/v1/messages?beta=true", "/v1/messages/count_tokens", "/messages/batches?x=1"]) {
    assert.equal(isMessagesRoute(url), true, url);
  }
  for (const url of ["/v1/messagesX", "/v1/chat/completions?to=/v1/messages", "/", "/v2/messages"]) {
    assert.equal(isMessagesRoute(url), false, url);
  }
  const anthropic = { "anthropic-version": "2023-06-01" };
  assert.equal(speaksAnthropic("/v1/models/claude?x=1", anthropic), true);
  assert.equal(speaksAnthropic("/v1/models", {}), false);
  assert.equal(speaksAnthropic("/v1/modelsX", anthropic), false);
  assert.equal(speaksAnthropic("/v1/messages", {}), true);
});
