// An upstream's `usage` is a claim, not a number to add up as it comes: a negative count, `1e999` (which JSON
// parses as Infinity), 1e308 or a fraction is no token count. The gateway records and translates such a value as
// "not stated" (0), so /stats, /metrics, budgets and the Messages and Responses answers keep whole counts (found
// by test/e2e/fuzz-front-doors.test.ts: /metrics read `llm_gateway_tokens_total{...} +Inf` for good, /stats
// `tokens_out: -33` and `tokens_in: null`, a Messages answer `output_tokens: 1.5`).
import assert from "node:assert/strict";
import type { ServerResponse } from "node:http";
import { test } from "node:test";
import { CHAT_ROUTE, rowOf, send, statsOf, useGateway, useMock } from "../helpers/e2e.ts";

const BAD_USAGES = [
  '{"prompt_tokens":-1000,"completion_tokens":-7,"total_tokens":-1007}',
  '{"prompt_tokens":1e999,"completion_tokens":1e999,"total_tokens":1e999}',
  '{"prompt_tokens":1e308,"completion_tokens":1.5,"total_tokens":2.5}',
];

const CHUNK = '{"id":"c","object":"chat.completion.chunk","created":1,"model":"alpha-m","choices":';

function answerWith(usage: string, isStream: boolean, response: ServerResponse): void {
  if (isStream) {
    response.writeHead(200, { "content-type": "text/event-stream" });
    response.end(
      `data: ${CHUNK}[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}]}\n\n` +
        `data: ${CHUNK}[],"usage":${usage}}\n\ndata: [DONE]\n\n`,
    );
    return;
  }
  response.writeHead(200, { "content-type": "application/json" });
  response.end(
    `{"id":"x","object":"chat.completion","created":1,"model":"alpha-m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":${usage}}`,
  );
}

function isCount(value: unknown): boolean {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

test("usage that is no token count: whole counts in /stats, /metrics and the translated answers", async (t) => {
  const mock = await useMock(t);
  const gateway = await useGateway(
    t,
    `providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha-usage
    models:
      m: { id: alpha-m }
`,
  );
  const usages: unknown[] = [];
  for (const usage of BAD_USAGES) {
    for (const isStream of [false, true]) {
      mock.setDefault(CHAT_ROUTE, {
        kind: "handler",
        handle: (recorded, response) =>
          answerWith(usage, (recorded.body as { stream?: unknown }).stream === true, response),
      });
      const messages = await send(gateway, "POST", "/v1/messages", {
        body: { model: "m", max_tokens: 10, stream: isStream, messages: [{ role: "user", content: "hi" }] },
      });
      assert.equal(messages.status, 200, messages.text);
      const responses = await send(gateway, "POST", "/v1/responses", {
        body: { model: "m", stream: isStream, input: "hi" },
      });
      assert.equal(responses.status, 200, responses.text);
      if (isStream) {
        // Every usage object the streams carry: message_start / message_delta, response.completed.
        for (const text of [messages.text, responses.text]) {
          for (const line of text.split("\n").filter((line) => line.startsWith("data: "))) {
            const event = JSON.parse(line.slice(6)) as Record<string, { usage?: unknown } | unknown>;
            for (const holder of [event, event.message, event.response]) {
              const found = (holder as { usage?: unknown } | undefined)?.usage;
              if (found !== undefined && found !== null) usages.push(found);
            }
          }
        }
      } else {
        usages.push((messages.json as { usage: unknown }).usage, (responses.json as { usage: unknown }).usage);
      }
    }
  }
  assert.ok(usages.length >= 12, `usages seen: ${usages.length}`);
  for (const usage of usages) {
    for (const [name, value] of Object.entries(usage as Record<string, unknown>)) {
      if (typeof value === "object") continue; // the *_details objects
      assert.ok(isCount(value), `usage.${name} = ${JSON.stringify(value)} in ${JSON.stringify(usage)}`);
    }
  }
  const row = rowOf(await statsOf(gateway), "alpha/m");
  assert.equal(row.successes, 12);
  assert.ok(isCount(row.tokens_in) && isCount(row.tokens_out), `tokens_in ${row.tokens_in}, out ${row.tokens_out}`);
  const metrics = await send(gateway, "GET", "/metrics");
  const tokenLines = metrics.text.split("\n").filter((line) => /^llm_gateway_(client_)?tokens_total\{/.test(line));
  // Counted as 0 tokens, so the counters may not even be there; where they are, they are whole numbers.
  for (const line of tokenLines) assert.match(line, / \d+$/, line);
});
