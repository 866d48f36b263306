// The OTLP export in a real `llm-gateway serve` process: SIGTERM sends what is queued within
// traces.export_timeout_ms, retries included (the process must not exit under a retry's wait), and an
// OTEL_EXPORTER_OTLP_ENDPOINT that is not an http(s) URL is a config problem (exit 2 naming it), never a stack.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, type TestContext, test } from "node:test";
import { request } from "undici";
import { runCli, tempDir } from "../helpers/cli-process.ts";
import { HELLO, useMock } from "../helpers/e2e.ts";
import { startGatewayProcess } from "../helpers/gateway-process.ts";
import { otlpCollector } from "../helpers/otlp-collector.ts";

/** A loopback collector answering each export with the next of `statuses` (then 200), and each export's request ids. */
async function scriptedCollector(t: TestContext, statuses: { status: number; retryAfter?: string }[]) {
  const collector = await otlpCollector(t, {
    answers: statuses.map(({ status, retryAfter }) => ({
      status,
      ...(retryAfter === undefined ? {} : { headers: { "retry-after": retryAfter } }),
    })),
  });
  const requestIds = (body: string): unknown[] =>
    collector
      .spansIn(body)
      .flatMap((span) => span.attributes.filter((entry) => entry.key === "llm_gateway.request_id"))
      .map((entry) => entry.value);
  return { url: collector.url, bodies: collector.bodies, requestIds };
}

describe("OTLP export in a serve process", () => {
  test("SIGTERM: a batch the collector answered 503 (Retry-After: 1) is sent again before the exit", async (t) => {
    const collector = await scriptedCollector(t, [{ status: 503, retryAfter: "1" }]);
    const mock = await useMock(t);
    const gateway = await startGatewayProcess(
      t,
      `providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha-secret-key-0123456789
    models:
      m: { id: alpha-m }
traces:
  otlp_endpoint: ${collector.url}
`,
    );
    const answer = await request(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "m", messages: HELLO }),
    });
    assert.equal(answer.statusCode, 200, await answer.body.text());
    await answer.body.dump();
    const requestId = answer.headers["x-request-id"];
    assert.ok(gateway.pid !== undefined);
    process.kill(gateway.pid, "SIGTERM");
    const code = await gateway.exited;
    assert.equal(code, 0, gateway.stderr());
    // On the change the process exited during the retry's wait (an unref'd timer was all the loop held): one export.
    assert.equal(collector.bodies.length, 2, "the 503'd export and its retry");
    assert.deepEqual(collector.requestIds(collector.bodies[1] ?? ""), [{ stringValue: requestId }]);
  });

  for (const variable of ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]) {
    test(`${variable} without http:// (host:port): exit 2 naming the variable, no stack`, async (t) => {
      const dir = tempDir(t);
      const configPath = join(dir, "gateway.yaml");
      writeFileSync(
        configPath,
        `server:\n  port: 0\n  host: 127.0.0.1\nproviders:\n  - name: alpha\n    base_url: http://127.0.0.1:9/v1\n    api_key: sk-alpha\n    models: { m: {} }\n`,
      );
      // On the change: "llm-gateway: TypeError: Invalid URL" and undici's stack (new Pool), exit 1.
      const result = await runCli(["serve", "--config", configPath], {
        cwd: dir,
        env: { [variable]: "localhost:4318" },
      });
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, new RegExp(`^Config error \\(1 problem\\):\\nenvironment ${variable}: `));
      assert.doesNotMatch(result.stderr, /^\s+at /m, `a stack trace:\n${result.stderr}`);
    });
  }
});
