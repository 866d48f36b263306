// Review of the JSON path's CPU cuts (bench/README.md section 44): the failover services made once per config snapshot
// (pipeline/failover-services.ts), an attempt's deadline as a flag (upstream/attempt.ts), and the role order an attempt
// sends computed without its explanation (providers/message-order.ts). Each test pins a behaviour those cuts must
// keep: a request in flight across a reload keeps its snapshot's routing while a new one gets the new routing; the
// request's total time still ends a JSON attempt whose upstream hangs, named as such; a learned role order still
// ends when its lifetime does.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { describe, test } from "node:test";
import { stringify } from "yaml";
import { ManualClock } from "../../src/clock.ts";
import { playAlternatingHost } from "../helpers/alternating-host.ts";
import { CHAT_ROUTE, chatRequests, postChat, recordsOf, send, useGateway, useMock } from "../helpers/e2e.ts";
import { chatCompletion, type MockUpstream } from "../helpers/mock-upstream.ts";
import { waitUntil } from "../helpers/sse-client.ts";

const ADMIN_KEY = "admin-secret-review";

function provider(name: string, mock: MockUpstream, priority: number, keys: Record<string, unknown> = {}) {
  return {
    name,
    base_url: mock.baseUrl,
    api_key: `sk-${name}-secret`,
    retries: 0,
    timeout_ms: 5_000,
    stream_idle_timeout_ms: 5_000,
    ...keys,
    models: { m: { id: `${name}-m`, priority } },
  };
}

function configYaml(alpha: MockUpstream, beta: MockUpstream, routing: Record<string, unknown>): string {
  return stringify({
    server: { port: 0, host: "127.0.0.1", admin_keys: [ADMIN_KEY] },
    providers: [provider("alpha", alpha, 10), provider("beta", beta, 1)],
    routing: { max_wait_for_better_ms: 0, ...routing },
    cooldowns: { failure_threshold: 100 },
    request_log: { enabled: true },
  });
}

/** Rewrites the config file, keeping the test gateway's own `discovery:` and `state:` lines, and reloads it. */
async function reloadWith(gateway: Parameters<typeof send>[0] & { configPath: string }, yamlText: string) {
  const text = readFileSync(gateway.configPath, "utf8");
  writeFileSync(gateway.configPath, `${yamlText}\n${text.slice(text.search(/^discovery:/m))}`);
  const reloaded = await send(gateway, "POST", "/admin/reload", { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  assert.equal(reloaded.status, 200, reloaded.text);
}

const SERVER_ERROR = { kind: "json", status: 500, body: { error: { message: "upstream broke" } } } as const;

describe("failover services per config snapshot (pipeline/failover-services.ts)", () => {
  test("a request in flight across a reload keeps its snapshot's max_attempts; a request after it gets the new one", async (t) => {
    const alpha = await useMock(t);
    const beta = await useMock(t);
    beta.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("from beta", "beta-m") });
    const gateway = await useGateway(t, configYaml(alpha, beta, { max_attempts: 2 }));
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    // The first request's alpha answers (a 500) only once the reload applied and a request on the new config failed.
    alpha.enqueue(CHAT_ROUTE, {
      kind: "handler",
      handle: async (_request, response) => {
        await released;
        response.writeHead(500, { "content-type": "application/json" });
        response.end(JSON.stringify({ error: { message: "upstream broke" } }));
      },
    });
    alpha.enqueue(CHAT_ROUTE, SERVER_ERROR);
    const first = postChat(gateway, { model: "m" });
    await alpha.waitForRequests(1);
    // Same upstreams and keys (every deployment still serving), one attempt per request from now on.
    await reloadWith(gateway, configYaml(alpha, beta, { max_attempts: 1 }));
    const second = await postChat(gateway, { model: "m" });
    assert.equal(second.status, 502, second.text);
    assert.equal(chatRequests(alpha).length, 2);
    assert.equal(chatRequests(beta).length, 0, "the new config's max_attempts 1: no second attempt");
    release();
    const answer = await first;
    // The old config's max_attempts 2: the in-flight request fails over to beta, as it would have without the reload.
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.headers["x-gateway-provider"], "beta");
    assert.equal(answer.headers["x-gateway-attempts"], "2");
    assert.equal(chatRequests(beta).length, 1);
  });
});

describe("an attempt's deadline flag (upstream/attempt.ts)", () => {
  for (const hang of ["before its headers", "after its headers"] as const) {
    test(`a JSON upstream that hangs ${hang} is cut at the request's total time, named as such, its socket closed`, async (t) => {
      const alpha = await useMock(t);
      const beta = await useMock(t);
      const gateway = await useGateway(t, configYaml(alpha, beta, { total_timeout_ms: 700 }));
      alpha.setDefault(
        CHAT_ROUTE,
        hang === "before its headers"
          ? { kind: "hang" }
          : {
              kind: "handler",
              // A byte every 150 ms: undici's body timeout (stream_idle_timeout_ms, capped by the time left) never
              // fires, so only the request's deadline can end the attempt.
              handle: (_request, response) => {
                response.writeHead(200, { "content-type": "application/json" });
                response.write('{"id": "chatcmpl-dripping", "choices": [');
                const drip = setInterval(() => response.write(" "), 150);
                response.on("close", () => clearInterval(drip));
              },
            },
      );
      const startedMs = Date.now();
      const answer = await postChat(gateway, { model: "m" });
      const tookMs = Date.now() - startedMs;
      // timeout_ms and stream_idle_timeout_ms are 5 s: only the 700 ms deadline ends the attempt this soon.
      assert.ok(tookMs >= 600 && tookMs < 4_000, `took ${tookMs} ms`);
      assert.equal(answer.status, 504, answer.text);
      assert.equal(chatRequests(beta).length, 0, "no time was left for another candidate");
      const { records } = await recordsOf(gateway, "chat");
      assert.deepEqual(
        records[0]?.attempts.map((attempt) => [attempt.provider, attempt.outcome, attempt.reason]),
        [["alpha", "timeout", "the request's total time ran out"]],
      );
      await waitUntil(() => alpha.activeRequests() === 0, "the hanging upstream request closed");
    });
  }
});

const TWO_USER_TURNS = [
  { role: "user", content: "first" },
  { role: "user", content: "second" },
];

describe("a learned role order ends with its lifetime (providers/learned-message-order.ts)", () => {
  test("learned `alternate` is sent at the first attempt until unsupported_feature_ms passes, then as written again", async (t) => {
    const clock = new ManualClock();
    const host = await useMock(t);
    playAlternatingHost(host);
    const gateway = await useGateway(
      t,
      stringify({
        server: { port: 0, host: "127.0.0.1" },
        providers: [{ name: "host", base_url: host.baseUrl, api_key: "sk-host-secret", retries: 0, models: { m: {} } }],
        cooldowns: { unsupported_feature_ms: 60_000 },
      }),
      { clock },
    );
    const explained = async () => {
      const route = await send(gateway, "GET", "/v1/gateway/route?model=m");
      assert.equal(route.status, 200, route.text);
      return (route.json as { candidates: { message_order: { order: string; source: string } | null }[] }).candidates[0]
        ?.message_order;
    };
    const sentRoles = (index: number) => {
      const body = chatRequests(host)[index]?.body as { messages: { role: string }[] } | undefined;
      assert.ok(body !== undefined, `upstream request ${index} was sent`);
      return body.messages.map((message) => message.role);
    };
    assert.equal(await explained(), null, "nothing learned: sent as the client wrote them");

    const learning = await postChat(gateway, { model: "m", messages: TWO_USER_TURNS });
    assert.equal(learning.status, 200, learning.text);
    assert.equal(chatRequests(host).length, 2, "refused once, then sent in the learned order");
    assert.deepEqual(await explained(), {
      order: "alternate",
      source: "learned",
      prefix: "leave",
      learned_from:
        "HTTP 400: After the optional system message, conversation roles must alternate user/assistant/user/assistant/user...",
    });

    clock.advance(59_000);
    const holding = await postChat(gateway, { model: "m", messages: TWO_USER_TURNS });
    assert.equal(holding.status, 200, holding.text);
    assert.equal(chatRequests(host).length, 3, "the lesson holds: the first attempt is sent merged");
    assert.deepEqual(sentRoles(2), ["user"]);

    clock.advance(2_000);
    assert.equal(await explained(), null, "the lesson ended: the explanation says so");
    const ended = await postChat(gateway, { model: "m", messages: TWO_USER_TURNS });
    assert.equal(ended.status, 200, ended.text);
    assert.equal(chatRequests(host).length, 5, "the lesson ended: sent as written (refused), then learned again");
    assert.deepEqual(sentRoles(3), ["user", "user"]);
    assert.deepEqual(sentRoles(4), ["user"]);
  });
});
