// A door whose code throws after a stream's head went out early (`server.stream_keepalive_ms`, docs/streaming.md
// "Keep-alives"): a bug in a stream translator, hit once, before the stream's writer took over. No request reaches
// such a throw on purpose, so the translator's module is swapped, as the door imports it, for one whose first
// translator throws (a module resolve hook, test/helpers/held-import.ts swapImport). The
// stream must end with the door's in-stream 500, whose message hides the exception, and its keep-alives must stop:
// before, the hijacked reply was never ended and the keep-alives went on for as long as the client waited.
import assert from "node:assert/strict";
import { test } from "node:test";
import { CHAT_ROUTE } from "../helpers/e2e.ts";
import { swapImport } from "../helpers/held-import.ts";
import {
  keepAliveScene,
  readFor,
  recordOf,
  SLOW_START_MS,
  STREAM_DOORS,
  UPSTREAM_MODEL,
} from "../helpers/keepalive-scene.ts";
import { chatStream, type MockStep } from "../helpers/mock-upstream.ts";
import { waitUntil } from "../helpers/sse-client.ts";

const SECRET = "/internal/translator-bug.ts:42";

// The doors' modules are imported at their first request (server/lazy-routes.ts): swapped before any.
const restoreResponses = swapImport(
  "/src/server/responses-adapter.ts",
  "../protocols/responses/tool-call-limit.ts",
  (url) =>
    [
      `import * as real from ${JSON.stringify(url)};`,
      `export * from ${JSON.stringify(url)};`,
      "let made = 0;",
      "export function responsesStreamFor(...args) {",
      `  if (made++ === 0) throw new TypeError(${JSON.stringify(`a bug at ${SECRET}`)});`,
      "  return real.responsesStreamFor(...args);",
      "}",
    ].join("\n"),
);
const restoreMessages = swapImport(
  "/src/server/messages-adapter.ts",
  "../protocols/messages/stream-mapping.ts",
  (url) =>
    [
      `import * as real from ${JSON.stringify(url)};`,
      `export * from ${JSON.stringify(url)};`,
      "let made = 0;",
      "export class MessagesStreamTranslator extends real.MessagesStreamTranslator {",
      "  constructor(options) {",
      `    if (made++ === 0) throw new TypeError(${JSON.stringify(`a bug at ${SECRET}`)});`,
      "    super(options);",
      "  }",
      "}",
    ].join("\n"),
);
test.after(() => {
  restoreResponses();
  restoreMessages();
});

const SLOW_START: MockStep = {
  kind: "sse",
  headersDelayMs: SLOW_START_MS,
  events: chatStream(["Never", " shown."], UPSTREAM_MODEL),
};

for (const door of STREAM_DOORS) {
  test(`${door.path}: a door's exception after the early head ends the stream with its in-stream 500; keep-alives stop`, async (t) => {
    const { mock, gateway } = await keepAliveScene(t);
    mock.enqueue(CHAT_ROUTE, SLOW_START);
    const { text, isEnded } = await readFor(`${gateway.url}${door.path}`, door.body, SLOW_START_MS + 3_000);
    assert.ok(isEnded, `the stream did not end (keep-alives went on after the throw):\n${text}`);
    assert.match(text, door.error);
    assert.match(text, /The gateway failed to handle this request\./);
    assert.doesNotMatch(text, /translator-bug|TypeError/, "the exception's message stays in the log");
    assert.doesNotMatch(text, /Never/);
    await waitUntil(() => mock.activeRequests() === 0, "the upstream stream hung up on");
    // Recorded as the 500 the client was told, not as a client that left (499 client_aborted).
    const record = await recordOf(gateway, door.endpoint);
    assert.equal(record.status, 500, JSON.stringify(record));
    assert.equal(record.errorCode, "internal_error");
  });
}
