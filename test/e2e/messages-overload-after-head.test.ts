// A Messages stream whose head (200, then pings: `server.stream_keepalive_ms`) went out before every candidate
// answered "overloaded": the client gets the overload as the stream's in-band `event: error` (`overloaded_error`),
// never an HTTP 529. Its record says so: 503 `upstream_overloaded`, as the chat door records the same overload after
// its early head, and a 529 only where the client was told 529. Before 2026-12-07 the record said 529 (the Messages
// door's HTTP status for the overload), which the request log, metrics and dashboard read as an HTTP answer the client
// never saw.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { CHAT_ROUTE } from "../helpers/e2e.ts";
import { commentsOf, keepAliveScene, newestRecord, postRaw, SLOW_START_MS } from "../helpers/keepalive-scene.ts";
import type { MockStep } from "../helpers/mock-upstream.ts";

/** A 529 `overloaded_error` slow enough that the gateway's head and a few keep-alives went out before it. */
const SLOW_OVERLOAD: MockStep = {
  kind: "json",
  status: 529,
  delayMs: SLOW_START_MS,
  body: { type: "error", error: { type: "overloaded_error", message: "Overloaded" } },
};

const MESSAGES_BODY = { model: "m", max_tokens: 20, stream: true, messages: [{ role: "user", content: "hi" }] };

describe("Messages stream: every candidate overloaded after the early head", () => {
  test("the Anthropic SDK's stream fails with overloaded_error; the record says 503 upstream_overloaded, not 529", async (t) => {
    const { mock, gateway } = await keepAliveScene(t);
    mock.enqueue(CHAT_ROUTE, SLOW_OVERLOAD);
    const anthropic = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
    const failure = await anthropic.messages
      .stream({ model: "m", max_tokens: 20, messages: [{ role: "user", content: "hi" }] })
      .finalMessage()
      .then(
        () => assert.fail("expected the stream to fail"),
        (error: unknown) => error,
      );
    // Raised from the in-band event, not from an HTTP status: the SDK's 529 would be OverloadedError.
    assert.ok(failure instanceof Anthropic.APIError, String(failure));
    assert.ok(!(failure instanceof Anthropic.OverloadedError), "the client got a 200 stream, not an HTTP 529");
    assert.match(failure.message, /overloaded_error/);
    const record = await newestRecord(gateway, "messages");
    assert.ok(record.earlyCommitMs !== undefined, "the head went out early");
    assert.equal(record.status, 503, "the record says the in-band overload, not an HTTP 529 the client never got");
    assert.equal(record.errorCode, "upstream_overloaded");
    assert.equal(record.outcome, "rate_limited");
  });

  test("as written: a 200 head, pings, then `event: error` overloaded_error; its record as above", async (t) => {
    const { mock, gateway } = await keepAliveScene(t);
    mock.enqueue(CHAT_ROUTE, SLOW_OVERLOAD);
    const raw = await postRaw(gateway, "/v1/messages", MESSAGES_BODY);
    assert.equal(raw.status, 200);
    assert.ok(raw.text.includes("event: ping"), raw.text);
    assert.match(raw.text, /event: error\ndata: \{"type":"error","error":\{"type":"overloaded_error"/);
    assert.equal(commentsOf(raw.text).length, 0, "the Messages door's keep-alives are pings, not comments");
    const record = await newestRecord(gateway, "messages");
    assert.equal(record.status, 503);
    assert.equal(record.errorCode, "upstream_overloaded");
  });

  test("an overload before any head is still the HTTP 529 the client got, and recorded 529", async (t) => {
    const { mock, gateway } = await keepAliveScene(t);
    mock.enqueue(CHAT_ROUTE, { ...SLOW_OVERLOAD, delayMs: 0 });
    const raw = await postRaw(gateway, "/v1/messages", MESSAGES_BODY);
    assert.equal(raw.status, 529);
    const record = await newestRecord(gateway, "messages");
    assert.equal(record.earlyCommitMs, undefined);
    assert.equal(record.status, 529);
  });
});
