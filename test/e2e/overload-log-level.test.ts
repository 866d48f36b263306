// Every candidate overloaded, or still cooling down after overload answers: the gateway answers the overload answer
// (503 upstream_overloaded, 529 on /v1/messages) and logs it at warn level, as a handled refusal, the way every
// candidate rate-limited is logged at info; not at error level, which is for failures someone must look at (every
// upstream failing, a fault in the gateway). Before 2026-12-07 it was logged at error level.
import assert from "node:assert/strict";
import { test } from "node:test";
import { CHAT_ROUTE, HELLO, logCollector, postChat, send, useGateway, useMock } from "../helpers/e2e.ts";

const OVERLOADED_FOR_7_S = {
  kind: "json" as const,
  status: 529,
  headers: { "retry-after": "7" },
  body: { type: "error", error: { type: "overloaded_error", message: "Overloaded" } },
};

/** The log lines (parsed) whose message says the candidates are overloaded. */
function overloadLines(lines: readonly string[]): { level: number; code?: string }[] {
  return lines
    .flatMap((line) => line.split("\n"))
    .filter((line) => /is overloaded/.test(line))
    .map((line) => JSON.parse(line) as { level: number; code?: string });
}

test("the overload answer is logged at warn, tried or with every candidate still cooling, on every door", async (t) => {
  const mock = await useMock(t);
  mock.enqueue(CHAT_ROUTE, OVERLOADED_FOR_7_S);
  const log = logCollector();
  const gateway = await useGateway(
    t,
    `providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha
    retries: 0
    models:
      m: {}
`,
    { logLevel: "info", logStream: log.stream },
  );
  // Tried: answered 529 (the candidate now cools down for 7 s).
  assert.equal((await postChat(gateway, { model: "m", messages: HELLO })).status, 503);
  // Nothing tried: every candidate still cooling after that overload answer.
  assert.equal((await postChat(gateway, { model: "m", messages: HELLO })).status, 503);
  const messages = await send(gateway, "POST", "/v1/messages", {
    body: { model: "m", max_tokens: 5, messages: [{ role: "user", content: "hi" }] },
  });
  assert.equal(messages.status, 529);
  assert.equal(mock.requests.filter((request) => request.path.endsWith("/chat/completions")).length, 1);
  const lines = overloadLines(log.lines);
  assert.equal(lines.length, 3, log.lines.join(""));
  assert.deepEqual(
    lines.map((line) => [line.level, line.code]),
    [
      [40, "upstream_overloaded"],
      [40, "upstream_overloaded"],
      [40, "upstream_overloaded"],
    ],
    "warn (40), not error (50)",
  );
});
