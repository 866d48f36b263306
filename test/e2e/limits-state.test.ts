// State that outlives a request: budgets and cooldowns survive a gateway restart through the embedded store
// (`state.path`), and POST /admin/cooldowns/reset (only with one of `server.admin_keys`) forgets them.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, type TestContext, test } from "node:test";
import { ManualClock } from "../../src/clock.ts";
import { errorOf, send, useMock } from "../helpers/e2e.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import {
  assertServedBy,
  type DeploymentView,
  type Scene,
  type SceneOptions,
  sceneFor,
  sceneYaml,
  startScene,
} from "../helpers/limits-scene.ts";
import { rateLimited } from "../helpers/mock-upstream.ts";

const CHAT_ROUTE = "POST /v1/chat/completions";
const START_MS = Date.UTC(2026, 0, 1, 12);

/** Starts gateways one after another on the same upstreams and state file; each is closed by the test. */
async function restartable(t: TestContext, options: Omit<SceneOptions, "mocks">) {
  const alpha = await useMock(t);
  const beta = await useMock(t);
  const statePath = join(mkdtempSync(join(tmpdir(), "llm-gateway-limits-")), "state.db");
  // A long flush interval: only the flush on close can have written the state.
  const yaml = sceneYaml(alpha, beta, {
    ...options,
    config: { ...options.config, state: { path: statePath, flush_interval_ms: 3_600_000 } },
  });
  const open: { close(): Promise<void> }[] = [];
  t.after(async () => {
    for (const gateway of open) await gateway.close();
  });
  return {
    async start(): Promise<Scene & { close(): Promise<void> }> {
      const gateway = await startTestGateway(yaml, options.clock === undefined ? {} : { clock: options.clock });
      const entry = {
        close: async () => {
          open.splice(open.indexOf(entry), 1);
          await gateway.close();
        },
      };
      open.push(entry);
      return { ...sceneFor(alpha, beta, gateway), close: entry.close };
    },
  };
}

describe("counters survive a restart (state.path)", () => {
  test("a spent rpd budget is still spent after the restart, until the day ends", async (t) => {
    const clock = new ManualClock(START_MS);
    const gateways = await restartable(t, { clock, alphaModel: { limits: { rpd: 2 } } });
    const first = await gateways.start();
    assertServedBy(await first.chat(), "alpha");
    assertServedBy(await first.chat(), "alpha");
    assertServedBy(await first.chat(), "beta");
    await first.close();

    const second = await gateways.start();
    assertServedBy(await second.chat(), "beta", 1);
    assert.equal(second.counts().alpha, 2, "the restarted gateway spent alpha's daily budget again");
    const row = await second.stats("alpha");
    const day = row.budgets[0]?.windows.find((window) => window.window === "day");
    assert.deepEqual([day?.used, day?.remaining], [2, 0]);

    clock.set(Date.UTC(2026, 0, 2));
    assertServedBy(await second.chat(), "alpha");
  });

  test("a cooldown is still in force after the restart", async (t) => {
    const clock = new ManualClock(START_MS);
    const gateways = await restartable(t, { clock });
    const first = await gateways.start();
    first.alpha.enqueue(CHAT_ROUTE, rateLimited({ retryAfter: "600" }));
    assertServedBy(await first.chat(), "beta", 2);
    await first.close();

    clock.advance(60_000);
    const second = await gateways.start();
    assertServedBy(await second.chat(), "beta", 1);
    const cooldown = (await second.stats("alpha")).cooldown;
    assert.deepEqual(
      [cooldown?.remaining_ms, cooldown?.cause, cooldown?.source],
      [540_000, "rate_limited", "provider"],
    );
    clock.advance(540_000);
    assertServedBy(await second.chat(), "alpha");
  });
});

describe("POST /admin/cooldowns/reset", () => {
  const ADMIN_KEY = "admin-key-123";
  const CLIENT_KEY = "client-key-456";

  async function cooledScene(t: TestContext, server: Record<string, unknown>) {
    const clock = new ManualClock(START_MS);
    const scene = await startScene(t, {
      clock,
      alphaModel: { limits: { rpd: 1 } },
      config: { server: { port: 0, host: "127.0.0.1", ...server } },
    });
    const auth = server.api_keys === undefined ? {} : { authorization: `Bearer ${CLIENT_KEY}` };
    const chat = () =>
      send(scene.gateway, "POST", "/v1/chat/completions", {
        body: { model: "m", messages: [{ role: "user", content: "hi" }] },
        headers: auth,
      });
    // alpha's day budget is spent, and beta is cooling for 10 minutes.
    assertServedBy(await chat(), "alpha");
    scene.beta.enqueue(CHAT_ROUTE, rateLimited({ retryAfter: "600" }));
    const refused = await chat();
    assert.equal(refused.status, 429, refused.text);
    return { scene, chat };
  }

  test("with an admin key: every cooldown and budget counter is forgotten", async (t) => {
    const { scene, chat } = await cooledScene(t, { admin_keys: [ADMIN_KEY] });
    const response = await send(scene.gateway, "POST", "/admin/cooldowns/reset", {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    });
    assert.equal(response.status, 200, response.text);
    assert.deepEqual(response.json, { status: "ok", reset: ["cooldowns", "circuits", "budgets", "refused_features"] });
    assert.equal((await scene.stats("beta")).cooldown, null);
    assert.equal((await scene.stats("alpha")).budgets[0]?.windows[0]?.used, 0);
    assertServedBy(await chat(), "alpha");
  });

  test("without the admin key, or with a client key: 403 and nothing changes", async (t) => {
    const { scene, chat } = await cooledScene(t, { admin_keys: [ADMIN_KEY], api_keys: [CLIENT_KEY] });
    for (const headers of [{}, { authorization: `Bearer ${CLIENT_KEY}` }, { authorization: "Bearer wrong" }]) {
      const response = await send(scene.gateway, "POST", "/admin/cooldowns/reset", { headers });
      assert.equal(response.status, 403, response.text);
      const error = errorOf(response);
      assert.equal(error.type, "permission_error");
      assert.equal(error.code, "permission_denied");
    }
    const stats = await send(scene.gateway, "GET", "/stats", { headers: { authorization: `Bearer ${CLIENT_KEY}` } });
    const beta = (stats.json as { deployments: DeploymentView[] }).deployments.find((row) => row.provider === "beta");
    assert.equal(beta?.cooldown?.cause, "rate_limited", "the cooldown was cleared without an admin key");
    assert.equal((await chat()).status, 429);
    assert.equal(scene.counts().alpha, 1);
  });

  test("with no admin_keys configured the admin API is disabled", async (t) => {
    const { scene } = await cooledScene(t, {});
    const response = await send(scene.gateway, "POST", "/admin/cooldowns/reset", {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    });
    assert.equal(response.status, 403);
    assert.match(errorOf(response).message, /server\.admin_keys/);
    assert.notEqual((await scene.stats("beta")).cooldown, null);
  });
});
