// A body refused as not JSON may be anything the client had at hand, a key among it (a `.env` line pasted, a config
// sent to the wrong URL). V8's own JSON.parse message quotes up to about twenty characters of the input around the
// offending token (`Unexpected token 's', "sk-live-..." is not valid JSON`); Fastify 5's JSON parser answers with its
// own fixed message instead (FST_ERR_CTP_INVALID_JSON_BODY), so neither the refusal's log line nor its answer holds a
// fragment of the body. Coverage (review of 99fc3a9d): a parser that passed V8's message on would fail this.
import assert from "node:assert/strict";
import { test } from "node:test";
import { logCollector, send, useGateway, useMock } from "../helpers/e2e.ts";

/** Short enough for V8 to quote it whole. */
const SECRET = "sk-live-7f3a9c";

test("a body that is not JSON leaves no fragment of itself in the log, whatever V8's message quotes", async (t) => {
  const mock = await useMock(t);
  const log = logCollector();
  const gateway = await useGateway(
    t,
    `providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha
    models:
      m: { id: m }
`,
    { logLevel: "info", logStream: log.stream },
  );
  const bodies = [SECRET, `{"api_key": ${SECRET}}`, `{"model":"m","messages":[],"key":"ok"} ${SECRET}`];
  for (const body of bodies) {
    const response = await send(gateway, "POST", "/v1/chat/completions", {
      body,
      headers: { "content-type": "application/json" },
    });
    assert.equal(response.status, 400, response.text);
    const error = (response.json as { error: { code: string; message: string } }).error;
    assert.equal(error.code, "invalid_json", body);
    assert.match(error.message, /^The request body is not valid JSON/, body);
  }
  await new Promise((resolve) => setTimeout(resolve, 100));
  const refusals = log.lines.filter((line) => line.includes("not valid JSON"));
  assert.equal(refusals.length, bodies.length, log.lines.join(""));
  for (const line of log.lines) {
    assert.ok(!line.includes(SECRET.slice(0, 8)), `a body's fragment in the log: ${line}`);
  }
});
