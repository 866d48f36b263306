// A promise rejected with nobody to handle it, in a real `serve` process: Node's default would end the process and
// every request in flight. The gateway logs it (redacted, as every line) and keeps serving.
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { test } from "node:test";
import { request } from "undici";
import { HELLO, useMock } from "../helpers/e2e.ts";
import { startGatewayProcess } from "../helpers/gateway-process.ts";
import { waitUntil } from "../helpers/sse-client.ts";

const INJECT = resolve(import.meta.dirname, "../helpers/inject-unhandled-rejection.ts");

test("an unhandled rejection is logged as an error, without the key, and counted; the gateway keeps serving", async (t) => {
  const alpha = await useMock(t);
  const gateway = await startGatewayProcess(
    t,
    `providers:
  - name: alpha
    base_url: ${alpha.baseUrl}
    api_key: sk-secret-alpha-123
    models:
      chat-model: { id: alpha-chat-v1 }
`,
    { preload: INJECT },
  );
  await waitUntil(
    () => gateway.logs.some((line) => line.msg.startsWith("unhandled promise rejection")),
    "the rejection logged",
    10_000,
  );
  const logged = gateway.logs.find((line) => line.msg.startsWith("unhandled promise rejection"));
  assert.equal(logged?.level, 50, "logged at error level");
  assert.match(logged?.msg ?? "", /injected by the test/);
  assert.doesNotMatch(JSON.stringify(gateway.logs), /sk-secret-alpha-123/);
  const answer = await request(`${gateway.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "chat-model", messages: HELLO }),
  });
  const text = await answer.body.text();
  assert.equal(answer.statusCode, 200, text);
  assert.equal((JSON.parse(text) as { object: string }).object, "chat.completion");
  const metrics = await (await request(`${gateway.url}/metrics`)).body.text();
  assert.match(metrics, /^llm_gateway_unhandled_rejections_total 1$/m);
});
