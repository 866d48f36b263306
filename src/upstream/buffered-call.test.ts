// bufferedCall against a real HTTP server on loopback: bounds, aborts and errors as the attempt relies on them.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { Agent } from "undici";
import { bufferedCall } from "./buffered-call.ts";

type Route = (request: IncomingMessage, response: ServerResponse) => void;

describe("bufferedCall", () => {
  const routes = new Map<string, Route>();
  let server: Server;
  let origin: string;
  const agent = new Agent();
  /** Requests whose connection closed before their answer ended (the call aborted them). */
  const closedEarly: string[] = [];

  before(async () => {
    server = createServer((request, response) => {
      response.on("close", () => {
        if (!response.writableFinished) closedEarly.push(request.url ?? "");
      });
      request.resume();
      request.on("end", () => routes.get(request.url ?? "")?.(request, response));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await agent.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const call = (
    path: string,
    options: { maxBodyBytes?: number; signal?: AbortSignal; onHeaders?: () => void; isBinary?: boolean } = {},
  ) =>
    bufferedCall(
      agent,
      { origin, path, method: "POST", body: "{}", headersTimeout: 5_000, bodyTimeout: 5_000 },
      {
        signal: options.signal ?? new AbortController().signal,
        maxBodyBytes: () => options.maxBodyBytes ?? 1_000,
        ...(options.onHeaders === undefined ? {} : { onHeaders: options.onHeaders }),
        ...(options.isBinary === undefined ? {} : { isBinary: options.isBinary }),
      },
    );

  it("reads a body sent in several chunks whole, with its status and headers, after onHeaders", async () => {
    routes.set("/chunks", (_request, response) => {
      response.writeHead(201, { "content-type": "application/json", "x-limit": "7" });
      response.write('{"a":');
      setTimeout(() => response.end('"é"}'), 5);
    });
    const events: string[] = [];
    const answer = await call("/chunks", { onHeaders: () => events.push("headers") });
    events.push("answer");
    assert.deepEqual(events, ["headers", "answer"]);
    assert.equal(answer.statusCode, 201);
    assert.equal(answer.headers["x-limit"], "7");
    assert.equal(answer.text, '{"a":"é"}');
    assert.equal(answer.isTruncated, false);
  });

  it("isBinary: a 2xx body's bytes come back unchanged (not UTF-8 text), an error body still as text", async () => {
    // Every byte value, split across chunks inside what UTF-8 would read as multi-byte sequences.
    const audio = Buffer.from(Array.from({ length: 512 }, (_, index) => (index * 7 + 0xc3) % 256));
    routes.set("/audio", (_request, response) => {
      response.writeHead(200, { "content-type": "audio/mpeg" });
      response.write(audio.subarray(0, 101));
      setTimeout(() => response.end(audio.subarray(101)), 5);
    });
    const answer = await call("/audio", { isBinary: true });
    assert.ok(answer.bytes?.equals(audio), "the bytes changed on the way");
    assert.equal(answer.text, "");
    const asText = await call("/audio");
    assert.equal(asText.bytes, undefined);
    assert.notEqual(Buffer.from(asText.text, "utf8").length, audio.length, "UTF-8 text does not keep these bytes");
    routes.set("/audio-error", (_request, response) => {
      response.writeHead(429, { "content-type": "application/json" });
      response.end('{"error":{"message":"slow down"}}');
    });
    const refused = await call("/audio-error", { isBinary: true });
    assert.equal(refused.bytes, undefined);
    assert.equal(refused.text, '{"error":{"message":"slow down"}}');
  });

  it("past its bound, keeps the first bytes, says truncated and closes the connection", async () => {
    routes.set("/endless", (_request, response) => {
      response.writeHead(200);
      const timer = setInterval(() => response.write("x".repeat(100)), 1);
      response.on("close", () => clearInterval(timer));
    });
    const answer = await call("/endless", { maxBodyBytes: 250 });
    assert.equal(answer.isTruncated, true);
    assert.equal(answer.text, "x".repeat(250));
    await waitFor(() => closedEarly.includes("/endless"));
  });

  it("a bound of 0 reads nothing of the body", async () => {
    routes.set("/redirect", (_request, response) => {
      response.writeHead(302, { location: "/elsewhere" });
      response.write("y".repeat(10));
    });
    const answer = await call("/redirect", { maxBodyBytes: 0 });
    assert.equal(answer.statusCode, 302);
    assert.equal(answer.text, "");
    assert.equal(answer.isTruncated, true);
    await waitFor(() => closedEarly.includes("/redirect"));
  });

  it("rejects with the signal's reason when aborted before the headers and while the body is read", async () => {
    routes.set("/silent", () => {});
    const beforeHeaders = new AbortController();
    const pending = call("/silent", { signal: beforeHeaders.signal });
    setTimeout(() => beforeHeaders.abort(new Error("client left")), 20);
    await assert.rejects(pending, /client left/);

    routes.set("/slow-body", (_request, response) => {
      response.writeHead(200);
      response.write("{");
    });
    const duringBody = new AbortController();
    const reading = call("/slow-body", {
      signal: duringBody.signal,
      onHeaders: () => duringBody.abort(new Error("late")),
    });
    await assert.rejects(reading, /late/);
    await waitFor(() => closedEarly.includes("/slow-body"));

    const already = new AbortController();
    already.abort(new Error("gone already"));
    await assert.rejects(call("/chunks", { signal: already.signal }), /gone already/);
  });

  it("rejects with undici's error when the connection breaks mid-body", async () => {
    routes.set("/reset", (_request, response) => {
      response.writeHead(200, { "content-length": "100" });
      response.write("{");
      setTimeout(() => response.socket?.destroy(), 5);
    });
    await assert.rejects(call("/reset"), (error: { code?: string }) => error.code === "UND_ERR_SOCKET");
  });
});

async function waitFor(condition: () => boolean): Promise<void> {
  for (let index = 0; index < 200 && !condition(); index++) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.ok(condition(), "condition not met within 1 s");
}
