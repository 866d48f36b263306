// A provider without a route for an endpoint (an aggregator listing image models it has no `/images/generations`
// for) is learned from its first 404 "no such path" (or 405) and left out of that endpoint's plans, its other
// endpoints (chat) untouched; a 404 naming the model keeps its own handling (the deployment cools). Also the
// declared side: a provider's `served_paths`. docs/routing.md "Unserved endpoints".
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { chatRequests, openAiClient, postChat, send, useGateway, useMock } from "../helpers/e2e.ts";
import type { MockStep, MockUpstream } from "../helpers/mock-upstream.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../helpers/redis-server.ts";

const IMAGES = "POST /v1/images/generations";
const ADMIN_KEY = "admin-secret";
const PIXEL_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";
const IMAGE_ANSWER: MockStep = { kind: "json", body: { created: 1733443200, data: [{ b64_json: PIXEL_PNG }] } };
/** What a FastAPI server (vLLM, LiteLLM) answers for a path it has no route for. */
const NO_SUCH_PATH: MockStep = { kind: "json", status: 404, body: { detail: "Not Found" } };
/** What OpenAI answers for a model it does not have, on a path it has. */
const NO_SUCH_MODEL: MockStep = {
  kind: "json",
  status: 404,
  body: {
    error: {
      message: "The model `flux` does not exist or you do not have access to it.",
      type: "invalid_request_error",
      param: null,
      code: "model_not_found",
    },
  },
};

function imageRequests(mock: MockUpstream): number {
  return mock.requests.filter((recorded) => recorded.path === "/v1/images/generations").length;
}

function configYaml(
  first: MockUpstream,
  second: MockUpstream,
  firstKey = "sk-first-key",
  firstExtra = "",
  tail = "",
): string {
  return `server:
  port: 0
  host: 127.0.0.1
  admin_keys: [${ADMIN_KEY}]
providers:
  - name: first
    base_url: ${first.baseUrl}
    api_key: ${firstKey}
    retries: 0
    base_priority: 10
${firstExtra}    models:
      flux: { id: black-forest-labs/flux, kind: image }
      chatty: { id: chat-model }
  - name: second
    base_url: ${second.baseUrl}
    api_key: sk-second-key
    models:
      flux: { id: flux-schnell, kind: image }
request_log:
  enabled: true
${tail}`;
}

/** The endpoint paths `/stats` lists as unserved by `first` (on its deployment `first/flux`). */
async function unservedOf(gateway: Parameters<typeof send>[0]): Promise<string[]> {
  const stats = await send(gateway, "GET", "/stats");
  const deployments = (
    stats.json as { deployments: { provider: string; model: string; unserved_endpoints: { path: string }[] }[] }
  ).deployments;
  const row = deployments.find((deployment) => deployment.provider === "first" && deployment.model === "flux");
  return row?.unserved_endpoints.map((lesson) => lesson.path) ?? [];
}

async function waitFor(condition: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

interface Explained {
  candidates: { provider: string }[];
  skipped: { provider: string; cause: string; reason: string; until: string | null }[];
}

async function explain(gateway: Parameters<typeof send>[0], query: string): Promise<Explained> {
  const route = await send(gateway, "GET", `/v1/gateway/route?${query}`);
  assert.equal(route.status, 200, route.text);
  return route.json as Explained;
}

interface RecordWithSkips {
  endpoint: string;
  attempts: { provider: string; outcome: string }[];
  skips?: { provider: string; phase: string; cause: string; reason: string }[];
}

async function imageRecords(gateway: Parameters<typeof send>[0]): Promise<RecordWithSkips[]> {
  const listed = await send(gateway, "GET", "/v1/gateway/requests?limit=20");
  return (listed.json as { data: RecordWithSkips[] }).data.filter((record) => record.endpoint === "images");
}

describe("a provider without a route for an endpoint", () => {
  test("is learned from its 404 'no such path': the next request never reaches it, its chat still does", async (t) => {
    const first = await useMock(t);
    const second = await useMock(t);
    const gateway = await useGateway(t, configYaml(first, second));
    const client = openAiClient(gateway);
    first.setDefault(IMAGES, NO_SUCH_PATH);
    second.setDefault(IMAGES, IMAGE_ANSWER);

    const one = await client.images.generate({ model: "flux", prompt: "A fox." }).withResponse();
    assert.equal(one.data.data?.[0]?.b64_json, PIXEL_PNG);
    assert.equal(one.response.headers.get("x-gateway-provider"), "second");
    assert.equal(imageRequests(first), 1);
    const [learned] = await imageRecords(gateway);
    assert.deepEqual(
      learned?.attempts.map((attempt) => [attempt.provider, attempt.outcome]),
      [
        ["first", "unserved_endpoint"],
        ["second", "success"],
      ],
    );

    // The second request is planned without it: not one more request reaches it for images.
    const two = await client.images.generate({ model: "flux", prompt: "A fox again." }).withResponse();
    assert.equal(two.response.headers.get("x-gateway-provider"), "second");
    assert.equal(imageRequests(first), 1);
    const [skipped] = await imageRecords(gateway);
    assert.deepEqual(
      skipped?.attempts.map((attempt) => attempt.provider),
      ["second"],
    );
    const skip = skipped?.skips?.find((entry) => entry.provider === "first");
    assert.equal(skip?.cause, "endpoint");
    assert.equal(skip?.phase, "plan");
    assert.match(skip?.reason ?? "", /provider first has no \/images\/generations route \(learned until .*HTTP 404/);

    // Its chat is not touched: no cooldown, no skip, served by it.
    const chat = await postChat(gateway, { model: "chatty" });
    assert.equal(chat.status, 200, chat.text);
    assert.equal(chat.headers["x-gateway-provider"], "first");
    assert.equal(chatRequests(first).length, 1);

    // The route explanation says why, for the images endpoint; chat's explanation does not skip it.
    const images = await explain(gateway, "model=flux&endpoint=images");
    assert.deepEqual(
      images.candidates.map((candidate) => candidate.provider),
      ["second"],
    );
    const explained = images.skipped.find((entry) => entry.provider === "first");
    assert.equal(explained?.cause, "endpoint");
    assert.match(explained?.reason ?? "", /has no \/images\/generations route/);
    assert.ok(explained?.until !== null && Date.parse(explained?.until ?? "") > Date.now() + 23 * 3_600_000);
    // `/stats` lists the lesson on each deployment of the provider.
    const stats = await send(gateway, "GET", "/stats");
    const deployments = (stats.json as { deployments: { provider: string; unserved_endpoints: { path: string }[] }[] })
      .deployments;
    for (const deployment of deployments) {
      const paths = deployment.unserved_endpoints.map((lesson) => lesson.path);
      assert.deepEqual(paths, deployment.provider === "first" ? ["/images/generations"] : []);
    }
    // The dashboard's state carries it on every deployment of the provider, and the page shows it.
    const dashboard = await send(gateway, "GET", "/dashboard/api/state", {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    });
    assert.equal(dashboard.status, 200, dashboard.text);
    const live = (dashboard.json as { deployments: { deploymentKey: string; unservedPaths?: string[] }[] }).deployments;
    assert.deepEqual(
      Object.fromEntries(live.map((deployment) => [deployment.deploymentKey, deployment.unservedPaths])),
      { "first/flux": ["/images/generations"], "first/chatty": ["/images/generations"], "second/flux": [] },
    );
    assert.match((await send(gateway, "GET", "/dashboard")).text, /no route: \$\{d\.unservedPaths/);
    const chatRoute = await explain(gateway, "model=chatty");
    assert.deepEqual(
      chatRoute.candidates.map((candidate) => candidate.provider),
      ["first"],
    );
    assert.deepEqual(chatRoute.skipped, []);
  });

  test("within the request that meets the 404, the provider's other candidates are passed over too", async (t) => {
    const first = await useMock(t);
    const second = await useMock(t);
    const gateway = await useGateway(
      t,
      configYaml(first, second)
        .replace(
          "      chatty: { id: chat-model }\n",
          "      chatty: { id: chat-model }\n      flux-pro: { id: black-forest-labs/flux-pro, kind: image }\n",
        )
        .replace("      flux: { id: flux-schnell, kind: image }\n", "      flux-pro: { id: flux-pro, kind: image }\n"),
    );
    first.setDefault(IMAGES, NO_SUCH_PATH);
    second.setDefault(IMAGES, IMAGE_ANSWER);
    // Planned: first/flux, then first/flux-pro (base_priority 10), then second/flux-pro.
    const answer = await openAiClient(gateway)
      .images.generate({ model: "flux,flux-pro", prompt: "A fox." })
      .withResponse();
    assert.equal(answer.response.headers.get("x-gateway-provider"), "second");
    assert.equal(imageRequests(first), 1, "first/flux-pro was asked after first/flux had said the path is missing");
    const [record] = await imageRecords(gateway);
    const passed = record?.skips?.find((entry) => entry.phase === "attempt");
    assert.equal(passed?.provider, "first");
    assert.match(passed?.reason ?? "", /has no \/images\/generations route \(answered in this request\)/);
  });

  test("a 405 teaches the same", async (t) => {
    const first = await useMock(t);
    const second = await useMock(t);
    const gateway = await useGateway(t, configYaml(first, second));
    const client = openAiClient(gateway);
    first.setDefault(IMAGES, { kind: "json", status: 405, body: { detail: "Method Not Allowed" } });
    second.setDefault(IMAGES, IMAGE_ANSWER);
    for (const prompt of ["One.", "Two."]) {
      const answer = await client.images.generate({ model: "flux", prompt }).withResponse();
      assert.equal(answer.response.headers.get("x-gateway-provider"), "second");
    }
    assert.equal(imageRequests(first), 1);
  });

  test("a 404 naming the model is handled as before: the deployment cools, nothing is learned of the endpoint", async (t) => {
    const first = await useMock(t);
    const second = await useMock(t);
    const gateway = await useGateway(t, configYaml(first, second));
    const client = openAiClient(gateway);
    first.enqueue(IMAGES, NO_SUCH_MODEL);
    second.setDefault(IMAGES, IMAGE_ANSWER);
    const answer = await client.images.generate({ model: "flux", prompt: "A fox." }).withResponse();
    assert.equal(answer.response.headers.get("x-gateway-provider"), "second");
    const [record] = await imageRecords(gateway);
    assert.deepEqual(
      record?.attempts.map((attempt) => [attempt.provider, attempt.outcome]),
      [
        ["first", "model_unavailable"],
        ["second", "success"],
      ],
    );
    const images = await explain(gateway, "model=flux&endpoint=images");
    const explained = images.skipped.find((entry) => entry.provider === "first");
    assert.equal(explained?.cause, "cooldown");
    assert.match(explained?.reason ?? "", /does not serve the model/);
  });

  test("a router's 404 on the chat route cools the deployment only: a proxy's 404 while its server is down teaches no 'no chat route'", async (t) => {
    const first = await useMock(t);
    const second = await useMock(t);
    const gateway = await useGateway(t, configYaml(first, second));
    // Traefik's answer while the service behind it has no ready endpoint (traefik/traefik#9242).
    first.enqueue("POST /v1/chat/completions", { kind: "text", status: 404, body: "404 page not found\n" });
    const chat = await postChat(gateway, { model: "chatty" });
    assert.notEqual(chat.status, 200, chat.text);
    const listed = await send(gateway, "GET", "/v1/gateway/requests?limit=5");
    const [record] = (listed.json as { data: RecordWithSkips[] }).data.filter((entry) => entry.endpoint === "chat");
    assert.deepEqual(
      record?.attempts.map((attempt) => [attempt.provider, attempt.outcome]),
      [["first", "model_unavailable"]],
    );
    // The provider keeps its chat route: no lesson on any of its deployments, and its chat is not skipped for one.
    assert.deepEqual(await unservedOf(gateway), []);
    const route = await explain(gateway, "model=chatty");
    const skipped = route.skipped.find((entry) => entry.provider === "first");
    assert.equal(skipped?.cause, "cooldown");
  });

  test("a reload that points the provider at another key forgets the lesson", async (t) => {
    const first = await useMock(t);
    const second = await useMock(t);
    const gateway = await useGateway(t, configYaml(first, second));
    const client = openAiClient(gateway);
    first.enqueue(IMAGES, NO_SUCH_PATH);
    second.setDefault(IMAGES, IMAGE_ANSWER);
    await client.images.generate({ model: "flux", prompt: "A fox." });
    assert.equal((await explain(gateway, "model=flux&endpoint=images")).skipped[0]?.cause, "endpoint");

    const text = readFileSync(gateway.configPath, "utf8");
    writeFileSync(gateway.configPath, text.replace("api_key: sk-first-key", "api_key: sk-first-new-key"));
    const reloaded = await send(gateway, "POST", "/admin/reload", {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    });
    assert.equal(reloaded.status, 200, reloaded.text);

    first.enqueue(IMAGES, IMAGE_ANSWER);
    const answer = await client.images.generate({ model: "flux", prompt: "Again." }).withResponse();
    assert.equal(answer.response.headers.get("x-gateway-provider"), "first");
    assert.equal(imageRequests(first), 2);
  });

  test("`served_paths` keeps every other endpoint's requests away from it, from the first one", async (t) => {
    const first = await useMock(t);
    const second = await useMock(t);
    const gateway = await useGateway(
      t,
      configYaml(first, second, "sk-first-key", "    served_paths: [/chat/completions, /embeddings]\n"),
    );
    const client = openAiClient(gateway);
    second.setDefault(IMAGES, IMAGE_ANSWER);
    const answer = await client.images.generate({ model: "flux", prompt: "A fox." }).withResponse();
    assert.equal(answer.response.headers.get("x-gateway-provider"), "second");
    assert.equal(imageRequests(first), 0);
    const explained = (await explain(gateway, "model=flux&kind=image")).skipped.find(
      (entry) => entry.provider === "first",
    );
    assert.equal(explained?.cause, "endpoint");
    assert.match(explained?.reason ?? "", /does not serve \/images\/generations \(its served_paths: /);
    assert.equal((await postChat(gateway, { model: "chatty" })).headers["x-gateway-provider"], "first");
  });

  test("an unknown endpoint in the route query is a 400 naming the parameter", async (t) => {
    const first = await useMock(t);
    const second = await useMock(t);
    const gateway = await useGateway(t, configYaml(first, second));
    const route = await send(gateway, "GET", "/v1/gateway/route?model=flux&endpoint=imagez");
    assert.equal(route.status, 400);
    assert.equal((route.json as { error: { param: string } }).error.param, "endpoint");
  });
});

describe("an unserved endpoint outlives the process and the replica", () => {
  test("kept in the embedded state file: a restarted gateway does not ask the provider again", async (t) => {
    const directory = mkdtempSync(join(tmpdir(), "unserved-"));
    t.after(() => rmSync(directory, { recursive: true, force: true }));
    const state = `state:\n  path: ${JSON.stringify(join(directory, "state.db"))}\n  flush_interval_ms: 60000\n`;
    const first = await useMock(t);
    const second = await useMock(t);
    const yaml = configYaml(first, second, "sk-first-key", "", state);
    first.setDefault(IMAGES, NO_SUCH_PATH);
    second.setDefault(IMAGES, IMAGE_ANSWER);
    const gateway = await useGateway(t, yaml);
    await openAiClient(gateway).images.generate({ model: "flux", prompt: "A fox." });
    assert.deepEqual(await unservedOf(gateway), ["/images/generations"]);
    await gateway.close();

    const restarted = await useGateway(t, yaml);
    assert.deepEqual(await unservedOf(restarted), ["/images/generations"]);
    const again = await openAiClient(restarted).images.generate({ model: "flux", prompt: "Again." }).withResponse();
    assert.equal(again.response.headers.get("x-gateway-provider"), "second");
    assert.equal(imageRequests(first), 1, "the restarted gateway asked first again");
  });

  test("shared through Redis: replica B, and one started later, skip the provider without asking it", {
    skip: isRedisInstalled() ? false : REDIS_MISSING,
  }, async (t) => {
    const redis = await useRedisServer(t);
    const first = await useMock(t);
    const second = await useMock(t);
    const tail = `state:\n  redis_url: ${redis.url}\n  redis_key_prefix: "e2e-unserved:"\n  redis_command_timeout_ms: 2000\n`;
    const yaml = configYaml(first, second, "sk-first-key", "", tail);
    first.setDefault(IMAGES, NO_SUCH_PATH);
    second.setDefault(IMAGES, IMAGE_ANSWER);
    const a = await useGateway(t, yaml);
    const b = await useGateway(t, yaml);
    await openAiClient(a).images.generate({ model: "flux", prompt: "A fox." });
    assert.equal(imageRequests(first), 1);
    await waitFor(async () => (await unservedOf(b)).length === 1, "B to hear A's lesson");
    const onB = await openAiClient(b).images.generate({ model: "flux", prompt: "On B." }).withResponse();
    assert.equal(onB.response.headers.get("x-gateway-provider"), "second");
    const late = await useGateway(t, yaml);
    await waitFor(async () => (await unservedOf(late)).length === 1, "the late replica to load A's lesson");
    const onLate = await openAiClient(late).images.generate({ model: "flux", prompt: "Late." }).withResponse();
    assert.equal(onLate.response.headers.get("x-gateway-provider"), "second");
    assert.equal(imageRequests(first), 1, "a replica paid the 404 of its own");
  });
});
