// Config reloads while the gateway is busy (docs/configuration.md "Reloading the config"): requests in flight on
// the old config must neither hold nor free what the new config counts, nor teach it what the old upstream said;
// a reload must not be undone by a model refresh that started before it.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { stringify } from "yaml";
import { chatRequests, postChat, send, useGateway, useMock } from "../helpers/e2e.ts";
import type { TestGateway } from "../helpers/gateway.ts";
import { chatCompletion, type MockUpstream } from "../helpers/mock-upstream.ts";

const CHAT_ROUTE = "POST /v1/chat/completions";
const ADMIN_KEY = "admin-secret";

function provider(name: string, mock: MockUpstream, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name,
    base_url: mock.baseUrl,
    api_key: `sk-${name}-secret`,
    retries: 0,
    timeout_ms: 10_000,
    models: { m: { id: `${name}-m` } },
    ...extra,
  };
}

function configYaml(providers: Record<string, unknown>[], extra: Record<string, unknown> = {}): string {
  return stringify({
    server: { port: 0, host: "127.0.0.1", admin_keys: [ADMIN_KEY] },
    providers,
    routing: { max_wait_for_better_ms: 0 },
    ...extra,
  });
}

/** Rewrites the config file in place, keeping the test gateway's own `discovery:` and `state:` lines. */
function rewrite(gateway: TestGateway, yamlText: string): void {
  const text = readFileSync(gateway.configPath, "utf8");
  writeFileSync(gateway.configPath, `${yamlText}\n${text.slice(text.search(/^discovery:/m))}`);
}

async function reload(gateway: TestGateway): Promise<void> {
  const response = await send(gateway, "POST", "/admin/reload", { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  assert.equal(response.status, 200, response.text);
}

describe("a reload while requests are in flight", () => {
  test("a request in flight with the old key does not free the new key's concurrency slot", async (t) => {
    const alpha = await useMock(t);
    // The old key's request ends first; the new key's first request holds its slot well after that.
    alpha.enqueue(
      CHAT_ROUTE,
      { kind: "json", body: chatCompletion("old key", "alpha-m"), delayMs: 600 },
      { kind: "json", body: chatCompletion("new key", "alpha-m"), delayMs: 2_500 },
    );
    alpha.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("new key", "alpha-m") });
    const limited = (key: string) =>
      configYaml(
        [provider("alpha", alpha, { api_key: key, models: { m: { id: "alpha-m", limits: { concurrency: 1 } } } })],
        {
          routing: { max_wait_for_better_ms: 0, queue_timeout_ms: 10_000 },
        },
      );
    const gateway = await useGateway(t, limited("sk-old"));
    const old = postChat(gateway, { model: "m" });
    await alpha.waitForRequests(1);
    rewrite(gateway, limited("sk-new"));
    await reload(gateway);
    // Another key is another account: its one slot is free.
    const first = postChat(gateway, { model: "m" });
    await alpha.waitForRequests(2);
    assert.equal(alpha.requests[1]?.headers.authorization, "Bearer sk-new");
    assert.equal((await old).status, 200);
    // The old key's request ended; the new key's slot is still held by `first`: another request waits in the queue.
    const second = postChat(gateway, { model: "m" });
    await sleep(400);
    assert.equal(chatRequests(alpha).length, 2, "no request reached the upstream while the new key's slot was held");
    assert.equal((await first).status, 200);
    assert.equal((await second).status, 200);
    assert.equal(chatRequests(alpha).length, 3);
  });
});
