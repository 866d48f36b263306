// A door whose stream translator throws in the middle of a stream (write-stream.ts pumpStream): the head and some of
// the answer are out, so the client must be told in the door's own in-stream error (a 500 hiding the exception), not
// have its connection cut as if the network broke. No request reaches such a throw on purpose, so each door's
// translator module is swapped, as the door imports it, for one whose translators throw at the chunk holding
// "three" (test/helpers/held-import.ts swapImport). Both with the head sent early (`server.stream_keepalive_ms`) and
// with the head sent with the answer (keep-alives off). The chat door has no translator: what it renders is the
// pipeline's chunks, so its pipeline is swapped for one whose chunk holding "three" cannot be read (a bug making a
// chunk), and the openai SDK reads the stream.
import assert from "node:assert/strict";
import { test } from "node:test";
import OpenAI from "openai";
import { CHAT_ROUTE, openAiClient } from "../helpers/e2e.ts";
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
  "/src/server/messages-adapter.ts",
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
// The chat door's pipeline is imported at its first request (forwarding-route.ts): swapped before any. Its streams'
// chunks pass through, but reading the `data` of the one holding "three" throws as the door renders it.
const restoreChat = swapImport("/src/server/forwarding-route.ts", "../pipeline/handle-request.ts", (url) =>
  [
    `import * as real from ${JSON.stringify(url)};`,
    `export * from ${JSON.stringify(url)};`,
    "async function* throwingAtThree(events) {",
    "  try {",
    "    for (;;) {",
    "      const next = await events.next();",
    "      if (next.done) return next.value;",
    "      yield next.value.map((chunk) => !chunk.data.includes('three') ? chunk : {",
    "        json: chunk.json,",
    `        get data() { throw new TypeError(${JSON.stringify(`a bug at ${SECRET}`)}); },`,
    "      });",
    "    }",
    "  } finally {",
    "    await events.return(undefined);",
    "  }",
    "}",
    "export async function handleRequest(...args) {",
    "  const result = await real.handleRequest(...args);",
    "  return result.kind === 'stream' ? { ...result, events: throwingAtThree(result.events) } : result;",
    "}",
  ].join("\n"),
);
test.after(() => {
  restoreResponses();
  restoreMessages();
  restoreChat();
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

for (const isEarly of [true, false]) {
  test(`/v1/chat/completions: a chunk the door cannot render ends the stream with its in-stream 500, read by the openai SDK (${isEarly ? "early head" : "no keep-alives"})`, async (t) => {
    const { mock, gateway } = await keepAliveScene(t, isEarly ? {} : { keepAliveMs: 0 });
    mock.enqueue(CHAT_ROUTE, {
      kind: "sse",
      headersDelayMs: isEarly ? SLOW_START_MS : 0,
      events: chatStream(["One", " two", " three", " four"], UPSTREAM_MODEL, { delayMs: 30 }),
    });
    const stream = await openAiClient(gateway).chat.completions.create({
      model: "m",
      stream: true,
      messages: [{ role: "user", content: "hi" }],
    });
    let text = "";
    const failure = await (async () => {
      try {
        for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
      } catch (error) {
        return error;
      }
      return undefined;
    })();
    assert.equal(text, "One two", "the answer's start went out, nothing after the bad chunk");
    // A cut connection is an APIConnectionError or a bare "terminated" TypeError: the client could not tell a bug
    // from a network failure.
    assert.ok(failure instanceof OpenAI.APIError, `not the door's in-stream error: ${String(failure)}`);
    assert.match(failure.message, /The gateway failed to handle this request\./);
    assert.equal(failure.code, "internal_error");
    assert.doesNotMatch(failure.message, /push-bug|TypeError/, "the exception's message stays in the log");
    await waitUntil(() => mock.activeRequests() === 0, "the upstream stream hung up on");
    // Recorded as the 500 the client was told, not as a client that left (499 client_aborted).
    const record = await recordOf(gateway, "chat");
    assert.equal(record.status, 500, JSON.stringify(record));
    assert.equal(record.errorCode, "internal_error");
  });
}
