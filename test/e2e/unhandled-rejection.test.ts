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

const INJECT_UNCAUGHT = resolve(import.meta.dirname, "../helpers/inject-uncaught-exception.ts");

test("an uncaught exception quoting the key: printed with its stack and logged as fatal, both redacted; exit code 1 as Node's", async (t) => {
  const alpha = await useMock(t);
  const key = "plainKEYuncaught0123";
  const gateway = await startGatewayProcess(
    t,
    `providers:
  - name: alpha
    base_url: ${alpha.baseUrl}
    api_key: ${key}
    models:
      chat-model: { id: alpha-chat-v1 }
`,
    { preload: INJECT_UNCAUGHT },
  );
  const code = await gateway.exited;
  assert.equal(code, 1, "Node's exit code for an uncaught exception");
  const stderr = gateway.stderr();
  assert.ok(!stderr.includes(key), stderr);
  assert.match(stderr, /Error: injected by the test: the upstream said Incorrect API key \[redacted\]/);
  assert.match(stderr, /\n {4}at .*inject-uncaught-exception\.ts/, "the stack trace is kept");
  assert.match(stderr, /\[cause\]: Error: upstream body \{"error":"bad key \[redacted\]"\}/, "and the cause");
  const fatal = gateway.logs.find((line) => line.msg.startsWith("uncaught exception"));
  assert.equal(fatal?.level, 60, "logged at fatal level");
  assert.match(fatal?.msg ?? "", /injected by the test/);
  assert.ok(!JSON.stringify(gateway.logs).includes(key));
});
