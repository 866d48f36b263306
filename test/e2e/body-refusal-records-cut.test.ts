// A request whose body never arrived whole (the client left mid-body, or sent it too slowly for
// server.request_timeout_ms: Node's 408) was not refused for its body: its client got no 400 (nothing, or Node's
// 408), and no `rejected` 400 is recorded that no client got. So with a compressed body too: the decoder's "cut short"
// is no body refusal (server/body-refusals.ts). Node's 408 is recorded as what it is (server/route-records.ts, since
// 2026-12-08): one 408 record under the id that answer carries; a client that left mid-body leaves none.
import assert from "node:assert/strict";
import { connect } from "node:net";
import { test } from "node:test";
import { gzipSync } from "node:zlib";
import { request } from "undici";
import { send, useGateway, useMock } from "../helpers/e2e.ts";
import type { TestGateway } from "../helpers/gateway.ts";

/** Sends the head and the first `sentBytes` of `body` declared whole; `thenClose`: leaves, else waits to be closed. */
function cutBody(
  gateway: TestGateway,
  requestId: string,
  body: Buffer,
  encoding: string | undefined,
  thenClose: boolean,
): Promise<string> {
  const url = new URL(gateway.baseUrl);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname);
    let received = "";
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString("latin1");
    });
    socket.on("error", () => resolve(received));
    socket.on("close", () => resolve(received));
    socket.on("connect", () => {
      socket.write(
        `POST /v1/chat/completions HTTP/1.1\r\nhost: ${url.host}\r\ncontent-type: application/json\r\n` +
          `${encoding === undefined ? "" : `content-encoding: ${encoding}\r\n`}` +
          `content-length: ${body.length}\r\nx-request-id: ${requestId}\r\n\r\n`,
      );
      socket.write(body.subarray(0, Math.floor(body.length / 2)));
      if (thenClose) setTimeout(() => socket.destroy(), 100);
    });
    setTimeout(() => reject(new Error("the gateway never closed the connection")), 10_000).unref();
  });
}

test("a compressed body cut short (the client left, or Node's 408) leaves no rejected 400 record, as a plain one", async (t) => {
  const mock = await useMock(t);
  const gateway = await useGateway(
    t,
    `server:
  port: 0
  host: 127.0.0.1
  request_timeout_ms: 600
  body_limit_bytes: 100000
providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha
    models:
      m: { id: m }
request_log:
  enabled: true
`,
  );
  const json = Buffer.from(JSON.stringify({ model: "m", messages: [{ role: "user", content: "x".repeat(20_000) }] }));
  const gzipped = gzipSync(json);
  // Half of it is no whole gzip stream: the decoder waits for the rest, which never comes.
  assert.ok(gzipped.length > 20);
  const cases = [
    { id: "cut-plain-left", body: json, encoding: undefined, thenClose: true },
    { id: "cut-gzip-left", body: gzipped, encoding: "gzip", thenClose: true },
    { id: "cut-plain-timeout", body: json, encoding: undefined, thenClose: false },
    { id: "cut-gzip-timeout", body: gzipped, encoding: "gzip", thenClose: false },
  ];
  const answers = new Map<string, string>();
  for (const cut of cases) {
    answers.set(cut.id, await cutBody(gateway, cut.id, cut.body, cut.encoding, cut.thenClose));
  }
  // Neither timed-out client was told 400: Node's 408 (or nothing at all).
  for (const id of ["cut-plain-timeout", "cut-gzip-timeout"]) {
    assert.match(answers.get(id) ?? "", /^(HTTP\/1\.1 408 |$)/, id);
  }
  // A whole body that is no gzip is refused for it, and that refusal keeps its record (a 400 its client got).
  const notGzip = await send(gateway, "POST", "/v1/chat/completions", {
    body: "not gzip at all",
    headers: { "content-type": "application/json", "content-encoding": "gzip", "x-request-id": "whole-not-gzip" },
  });
  assert.equal(notGzip.status, 400, notGzip.text);
  // A gzip body over server.body_limit_bytes once decoded (a bomb): refused for it, one 413 record, not one per check
  // that saw it over (the decoded count and the encoded one both stop it).
  const bomb = await request(`${gateway.url}/v1/chat/completions`, {
    method: "POST",
    body: gzipSync(Buffer.alloc(1_000_000, 0x20)),
    headers: { "content-type": "application/json", "content-encoding": "gzip", "x-request-id": "whole-bomb" },
  });
  assert.equal(bomb.statusCode, 413, await bomb.body.text());
  // A served request after them: its record is there, so the listing is not merely empty or late.
  const served = await send(gateway, "POST", "/v1/chat/completions", {
    body: { model: "m", messages: [{ role: "user", content: "hi" }] },
  });
  assert.equal(served.status, 200, served.text);
  await new Promise((resolve) => setTimeout(resolve, 200));
  const listed = await send(gateway, "GET", "/v1/gateway/requests?limit=20");
  assert.equal(listed.status, 200, listed.text);
  const records = (listed.json as { data: { id: string; status: number; outcome: string }[] }).data;
  assert.ok(records.some((record) => record.id === served.headers["x-request-id"]));
  assert.deepEqual(
    records.filter((record) => record.id === "whole-bomb").map((record) => [record.status, record.outcome]),
    [[413, "rejected"]],
  );
  assert.deepEqual(
    records.filter((record) => record.id === "whole-not-gzip").map((record) => [record.status, record.outcome]),
    [[400, "rejected"]],
  );
  assert.deepEqual(
    records
      .filter((record) => record.id.startsWith("cut-"))
      .map((record) => [record.id, record.status, record.outcome]),
    [],
  );
  // Each 408 answered is one 408 record, under the id its answer carries.
  for (const id of ["cut-plain-timeout", "cut-gzip-timeout"]) {
    const answered = /^x-request-id: (.+)\r$/m.exec(answers.get(id) ?? "")?.[1];
    if (answered === undefined) continue;
    assert.deepEqual(
      records.filter((record) => record.id === answered).map((record) => [record.status, record.outcome]),
      [[408, "rejected"]],
      id,
    );
  }
});
