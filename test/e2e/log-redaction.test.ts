// What a client sends never puts a key into a log line: a credential-named query parameter of the request target is
// redacted in the debug `request done` line, and any configured client or admin key (not only provider keys) is
// redacted from every line and every stored record, with the keys of the config now serving (after a reload too).
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { test } from "node:test";
import { send, useGateway, useMock } from "../helpers/e2e.ts";

/** Every line the gateway's logger writes, as text. */
function capturedLines(): { stream: Writable; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(chunk.toString("utf8"));
      callback();
    },
  });
  return { stream, lines };
}

test("the debug `request done` line logs the request target with credential query parameters redacted", async (t) => {
  const mock = await useMock(t);
  const { stream, lines } = capturedLines();
  const gateway = await useGateway(
    t,
    `providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha-provider-key-000000
    models:
      m: {}
`,
    { logLevel: "debug", logStream: stream },
  );
  // No known key shape, and not a configured secret: only the parameter's name says it is a credential.
  const queryKey = "Ck2VbN8mTz5RwX2cLp7HsD4jFa9GeY6u";
  const answer = await send(gateway, "GET", `/v1/models?api_key=${queryKey}&key=${queryKey}x&limit=5`);
  assert.equal(answer.status, 200, answer.text);
  const done = lines
    .map((line) => JSON.parse(line) as { msg: string; url?: string })
    .find((line) => line.msg === "request done");
  assert.ok(done !== undefined, `no request done line:\n${lines.join("")}`);
  assert.equal(done.url, "/v1/models?api_key=%5Bredacted%5D&key=%5Bredacted%5D&limit=5");
  for (const line of lines) assert.ok(!line.includes(queryKey), `a line leaks the query key: ${line}`);
});
