import assert from "node:assert/strict";
import { createServer } from "node:http";
import { describe, it } from "node:test";

// Nothing here imports "undici" before the first test: the API methods must come from undici-agent.ts alone.
const { Agent } = await import("./undici-agent.ts");

describe("undici-agent", () => {
  it("is undici's own Agent, with the request API undici's index adds", async () => {
    const agent = new Agent();
    for (const method of ["request", "stream", "pipeline", "upgrade", "connect", "dispatch", "close"] as const)
      assert.equal(typeof agent[method], "function", method);
    const undici = await import("undici");
    assert.equal(Agent, undici.Agent);
    assert.ok(agent instanceof undici.Dispatcher);
    assert.equal(agent.request, new undici.Agent().request);
  });

  it("sends a request", async () => {
    const server = createServer((request, response) => response.end(`hello ${request.url}`));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    const port = typeof address === "object" && address !== null ? address.port : 0;
    const agent = new Agent({ connections: 1 });
    try {
      const response = await agent.request({ origin: `http://127.0.0.1:${port}`, path: "/x", method: "GET" });
      assert.equal(response.statusCode, 200);
      assert.equal(await response.body.text(), "hello /x");
    } finally {
      await agent.close();
      server.close();
    }
  });
});
