// When every upstream fails, the log says so once: an error-level line with the attempts, not the gateway's own
// stack. A first user with a wrong key saw, for each request, the error object with a stack through the failover
// loop and the same message three times (docs/observability.md).
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { type TestContext, test } from "node:test";
import { HELLO, postChat, useGateway, useMock } from "../helpers/e2e.ts";

interface LogLine {
  level: number;
  msg?: string;
  code?: string;
  type?: string;
  err?: unknown;
  attempts?: { provider: string; model: string; status?: number; reason: string }[];
}

/** A gateway with one provider `alpha` (model `m`), its info-level log lines collected. */
async function loggedGateway(t: TestContext, baseUrl: string, providerLines: string) {
  const lines: LogLine[] = [];
  const gateway = await useGateway(
    t,
    `providers:
  - name: alpha
    base_url: ${baseUrl}
    ${providerLines}
    models:
      m: { id: alpha-m }
`,
    {
      logLevel: "info",
      logStream: new Writable({
        write(chunk, _encoding, callback) {
          for (const text of String(chunk).split("\n")) if (text !== "") lines.push(JSON.parse(text) as LogLine);
          callback();
        },
      }),
    },
  );
  return { gateway, lines };
}

test("no upstream could serve: one error line with the attempts and no stack; the provider key is not in it", async (t) => {
  const mock = await useMock(t);
  mock.setDefault("POST /v1/chat/completions", {
    kind: "json",
    status: 401,
    body: { error: { message: "Incorrect API key provided: sk-alpha-secret-0123" } },
  });
  const { gateway, lines } = await loggedGateway(t, mock.baseUrl, "api_key: sk-alpha-secret-0123");
  const answer = await postChat(gateway, { model: "m", messages: HELLO });
  assert.equal(answer.status, 502, answer.text);
  const errors = lines.filter((line) => line.level >= 50);
  assert.equal(errors.length, 1, JSON.stringify(errors));
  const [line] = errors;
  assert.equal(line?.code, "upstream_unavailable");
  assert.equal(line?.type, "UpstreamUnavailableError");
  assert.match(line?.msg ?? "", /^No upstream could serve `m`\. Attempts: alpha\/alpha-m: HTTP 401/);
  assert.equal(line?.err, undefined, "no error object: its stack points at the failover loop, not at a fault");
  assert.deepEqual(
    line?.attempts?.map((attempt) => [attempt.provider, attempt.model, attempt.status]),
    [["alpha", "alpha-m", 401]],
  );
  assert.doesNotMatch(JSON.stringify(lines), /sk-alpha-secret-0123/);
});

test("every candidate overloaded: one warn line with the attempts and no stack (a handled refusal, no error)", async (t) => {
  const mock = await useMock(t);
  mock.setDefault("POST /v1/chat/completions", {
    kind: "json",
    status: 529,
    body: { type: "error", error: { type: "overloaded_error", message: "Overloaded" } },
  });
  const { gateway, lines } = await loggedGateway(t, mock.baseUrl, "api_key: sk-alpha\n    retries: 0");
  const answer = await postChat(gateway, { model: "m", messages: HELLO });
  assert.equal(answer.status, 503, answer.text);
  assert.deepEqual(
    lines.filter((line) => line.level >= 50),
    [],
    "no error line: handled as the provider asked (overload-log-level.test.ts)",
  );
  const warnings = lines.filter((line) => line.level === 40 && line.code === "upstream_overloaded");
  assert.equal(warnings.length, 1, JSON.stringify(lines));
  const [line] = warnings;
  // Before: the error object, its stack through the failover loop (the 503 went to the generic 5xx branch).
  assert.equal(line?.err, undefined, "no error object: its stack points at the failover loop, not at a fault");
  assert.deepEqual(
    line?.attempts?.map((attempt) => [attempt.provider, attempt.model, attempt.status]),
    [["alpha", "alpha-m", 529]],
  );
});
