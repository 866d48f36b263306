// dist/ runs without node_modules beside it for what a start and a request load: each package the bundle leaves out
// (bin/bundle-plugins.js EXTERNAL_PACKAGES, the stand-ins of bin/lazy-packages.js) loads only when its feature is used.
// Fastify's error serializer requires `fast-json-stringify/lib/serializer` when it loads, and esbuild's `external`
// left that subpath out with its package: every start from dist/ required it from node_modules.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { buildBundle, projectCopy } from "../helpers/bundle-project.ts";
import { useMock } from "../helpers/e2e.ts";
import { startGatewayProcess } from "../helpers/gateway-process.ts";

test("the bundle starts and serves with its node_modules hidden: Fastify's error serializer is bundled", async (t) => {
  const root = projectCopy(t, "project", ["src", "data", "config", "node_modules", "package.json"]);
  const build = buildBundle(root);
  assert.equal(build.status, 0, build.stderr);
  const dist = join(root, "dist");
  const requiring = readdirSync(dist).filter(
    (file) => file.endsWith(".js") && readFileSync(join(dist, file), "utf8").includes("fast-json-stringify/lib/"),
  );
  assert.deepEqual(requiring, [], "no module of dist/ requires a file of fast-json-stringify");
  // The copy's node_modules is a link to this checkout's: without it, dist/ has only itself.
  unlinkSync(join(root, "node_modules"));
  const mock = await useMock(t);
  const gateway = await startGatewayProcess(
    t,
    `providers:\n  - name: mock\n    base_url: ${mock.baseUrl}\n    api_key: mock-key\n    models:\n      m: {}\nstate:\n  path: ":memory:"\n`,
    { main: join(dist, "main.js") },
  );
  const answered = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "Say hello" }] }),
  });
  assert.equal(answered.status, 200, await answered.text());
  // An error, rendered by the gateway's error handler through Fastify's reply.
  const refused = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "{",
  });
  assert.equal(refused.status, 400);
  assert.equal(((await refused.json()) as { error: { type: string } }).error.type, "invalid_request_error");
  assert.doesNotMatch(gateway.stderr(), /Cannot find module/);
});
