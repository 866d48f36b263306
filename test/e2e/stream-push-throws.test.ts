// A door whose stream translator throws in the middle of a stream (write-stream.ts pumpStream): the head and some of
// the answer are out, so the client must be told in the door's own in-stream error (a 500 hiding the exception), not
// have its connection cut as if the network broke. No request reaches such a throw on purpose, so each door's
// translator module is swapped, as the door imports it, for one whose translators throw at the chunk holding
// "three" (test/helpers/held-import.ts swapImport). Both with the head sent early (`server.stream_keepalive_ms`) and
// with the head sent with the answer (keep-alives off).
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
import { chatStream } from "../helpers/mock-upstream.ts";
import { waitUntil } from "../helpers/sse-client.ts";

const SECRET = "/internal/push-bug.ts:7";
const THROW_AT = `if (JSON.stringify(chunk).includes("three")) throw new TypeError(${JSON.stringify(`a bug at ${SECRET}`)});`;

// The doors' modules are imported at their first request (server/lazy-routes.ts): swapped before any.
const restoreResponses = swapImport(
  "/src/server/responses-adapter.ts",
  "../protocols/responses/tool-call-limit.ts",
  (url) =>
    [
      `import * as real from ${JSON.stringify(url)};`,
      `export * from ${JSON.stringify(url)};`,
      "export function responsesStreamFor(...args) {",
      "  const translator = real.responsesStreamFor(...args);",
      "  const push = translator.push.bind(translator);",
      `  translator.push = (chunk) => { ${THROW_AT} return push(chunk); };`,
      "  return translator;",
      "}",
    ].join("\n"),
);
const restoreMessages = swapImport(
  "/src/server/protocol-adapters.ts",
  "../protocols/messages/stream-mapping.ts",
  (url) =>
    [
      `import * as real from ${JSON.stringify(url)};`,
      `export * from ${JSON.stringify(url)};`,
      "export class MessagesStreamTranslator extends real.MessagesStreamTranslator {",
      `  push(chunk) { ${THROW_AT} return super.push(chunk); }`,
      "}",
    ].join("\n"),
);
test.after(() => {
  restoreResponses();
  restoreMessages();
});

for (const door of STREAM_DOORS) {
  for (const isEarly of [true, false]) {
    test(`${door.path}: a translator throwing mid-stream ends it with the door's in-stream 500 (${isEarly ? "early head" : "no keep-alives"})`, async (t) => {
      const { mock, gateway } = await keepAliveScene(t, isEarly ? {} : { keepAliveMs: 0 });
      mock.enqueue(CHAT_ROUTE, {
        kind: "sse",
        headersDelayMs: isEarly ? SLOW_START_MS : 0,
        events: chatStream(["One", " two", " three", " four"], UPSTREAM_MODEL, { delayMs: 30 }),
      });
      const { text, isEnded } = await readFor(`${gateway.url}${door.path}`, door.body, SLOW_START_MS + 3_000);
      assert.ok(isEnded, `the stream was cut, not ended with its error:\n${text}`);
      assert.match(text, /One/, "the answer's start went out");
      assert.match(text, door.error);
      assert.match(text, /The gateway failed to handle this request\./);
      assert.doesNotMatch(text, /push-bug|TypeError/, "the exception's message stays in the log");
      assert.doesNotMatch(text, /four/);
      await waitUntil(() => mock.activeRequests() === 0, "the upstream stream hung up on");
      // Recorded as the 500 the client was told, not as a client that left (499 client_aborted).
      const record = await recordOf(gateway, door.endpoint);
      assert.equal(record.status, 500, JSON.stringify(record));
      assert.equal(record.errorCode, "internal_error");
    });
  }
}
