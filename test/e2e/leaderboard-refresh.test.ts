// scoring.leaderboard_refresh_url: leaderboards refreshed from a URL in the background change the ranking;
// an unreachable URL never blocks startup and leaves the shipped snapshot in use. Runs in its own file, and the
// test that must see the shipped data runs first, because a refresh replaces process-wide leaderboard data.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import { request } from "undici";
import { LEADERBOARD_FILES } from "../../src/scoring/leaderboards.ts";
import { LEADERBOARD_DIR } from "../../src/scoring/scoring-sources.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { startMockUpstream } from "../helpers/mock-upstream.ts";

async function serveFiles(files: Record<string, string>): Promise<{ url: string; requests: string[]; server: Server }> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    const path = (req.url ?? "").replace(/^\/boards\//, "");
    requests.push(path);
    const body = files[path];
    if (body === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": "text/plain" }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/boards/`, requests, server };
}

function yamlFor(upstreamUrl: string, refreshUrl: string): string {
  return `
providers:
  - name: alpha
    base_url: ${upstreamUrl}
    api_key: sk-alpha
    models:
      big: { id: llama-3.3-70b-versatile, params_b: 8 }
      small: { id: llama-3.1-8b-instant, params_b: 8 }
meta_models:
  any: [big, small]
scoring:
  leaderboards: [lmarena]
  MODEL_PARAM_SCORE_SCALAR: 0
  MODEL_CTX_SCORE_SCALAR: 0
  leaderboard_refresh_url: ${refreshUrl}
`;
}

async function ranking(baseUrl: string): Promise<string[]> {
  const response = await request(`${baseUrl}/gateway/route?model=any`);
  const body = (await response.body.json()) as { candidates: { upstream_id: string }[] };
  return body.candidates.map((candidate) => candidate.upstream_id);
}

test("a refresh with a broken file changes nothing", async (t) => {
  const upstream = await startMockUpstream();
  t.after(() => upstream.close());
  const files: Record<string, string> = {};
  for (const path of LEADERBOARD_FILES) files[path] = readFileSync(join(LEADERBOARD_DIR, path), "utf8");
  delete files["aider/polyglot_leaderboard.yml"];
  const source = await serveFiles(files);
  t.after(() => new Promise<void>((resolve) => source.server.close(() => resolve())));
  const gateway = await startTestGateway(yamlFor(upstream.baseUrl, source.url));
  t.after(() => gateway.close());
  const deadline = Date.now() + 5_000;
  while (source.requests.length < LEADERBOARD_FILES.length - 1 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.deepEqual(await ranking(gateway.baseUrl), ["llama-3.3-70b-versatile", "llama-3.1-8b-instant"]);
});

test("a refreshed leaderboard changes the ranking; a failed refresh keeps the snapshot", async (t) => {
  const upstream = await startMockUpstream();
  t.after(() => upstream.close());

  // Unreachable refresh URL: the gateway starts at once and ranks by the shipped snapshot (70B above 8B).
  const offline = await startTestGateway(yamlFor(upstream.baseUrl, "http://127.0.0.1:9/boards/"));
  t.after(() => offline.close());
  assert.deepEqual(await ranking(offline.baseUrl), ["llama-3.3-70b-versatile", "llama-3.1-8b-instant"]);

  // A refresh source where the 8B model tops LMArena.
  const files: Record<string, string> = {};
  for (const path of LEADERBOARD_FILES) files[path] = readFileSync(join(LEADERBOARD_DIR, path), "utf8");
  files["lmarena/lmarena_text.csv"] = (files["lmarena/lmarena_text.csv"] as string).replace(
    "167,159,Meta-Llama-3.1-8B-Instruct,1193,",
    "167,159,Meta-Llama-3.1-8B-Instruct,1600,",
  );
  const source = await serveFiles(files);
  t.after(() => new Promise<void>((resolve) => source.server.close(() => resolve())));
  const online = await startTestGateway(yamlFor(upstream.baseUrl, source.url));
  t.after(() => online.close());
  const deadline = Date.now() + 10_000;
  let order = await ranking(online.baseUrl);
  while (order[0] !== "llama-3.1-8b-instant" && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    order = await ranking(online.baseUrl);
  }
  assert.deepEqual(order, ["llama-3.1-8b-instant", "llama-3.3-70b-versatile"]);
  assert.deepEqual([...source.requests].sort(), [...LEADERBOARD_FILES].sort(), "every snapshot file was fetched");
});
