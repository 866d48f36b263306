// GET /stats shows the concurrency the gateway holds right now: per provider, its `max_in_flight` gate (requests
// at the upstream and those waiting for a slot) and its pool's `limits.concurrency` slots; per deployment, its own
// `limits.concurrency` slots. Read while requests are held at the upstream, and again once they are answered.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { CHAT_ROUTE, postChat, send, useGateway, useMock } from "../helpers/e2e.ts";
import { chatCompletion } from "../helpers/mock-upstream.ts";

const KEY = "sk-alpha-stats-0123456789abcdef";

interface Slots {
  in_flight: number;
  limit: number | null;
}

interface ProviderRow {
  name: string;
  in_flight: number;
  waiting_for_slot: number;
  max_in_flight: number;
  pool_concurrency: Slots | null;
}

interface Stats {
  providers: ProviderRow[];
  deployments: { provider: string; model: string; concurrency: Slots | null }[];
}

async function statsOf(gateway: Parameters<typeof send>[0]): Promise<Stats> {
  const response = await send(gateway, "GET", "/stats");
  assert.equal(response.status, 200, response.text);
  return response.json as Stats;
}

/** Polls /stats until `isDone` holds for it (3 s at most); returns that reading. */
async function statsWhen(gateway: Parameters<typeof send>[0], isDone: (stats: Stats) => boolean, what: string) {
  const deadline = performance.now() + 3000;
  for (;;) {
    const stats = await statsOf(gateway);
    if (isDone(stats)) return stats;
    if (performance.now() > deadline) throw new Error(`timed out waiting for: ${what}; last: ${JSON.stringify(stats)}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function providerOf(stats: Stats, name: string): ProviderRow | undefined {
  return stats.providers.find((provider) => provider.name === name);
}

function concurrencyOf(stats: Stats, key: string): Slots | null | undefined {
  return stats.deployments.find((row) => `${row.provider}/${row.model}` === key)?.concurrency;
}

describe("/stats: in-flight gates and concurrency slots", () => {
  test("two requests held at a max_in_flight 1 provider: one in flight, one waiting; the slots and their limits per provider pool and deployment; all back to 0 after", async (t) => {
    const alpha = await useMock(t);
    const beta = await useMock(t);
    const releases: (() => void)[] = [];
    alpha.setDefault(CHAT_ROUTE, {
      kind: "handler",
      handle: async (_request, response) => {
        await new Promise<void>((resolve) => releases.push(resolve));
        response.writeHead(200, { "content-type": "application/json" });
        response.end(JSON.stringify(chatCompletion("held", "m")));
      },
    });
    const gateway = await useGateway(
      t,
      `providers:
  - name: alpha
    base_url: ${alpha.baseUrl}
    api_key: ${KEY}
    retries: 0
    timeout_ms: 5000
    max_in_flight: 1
    limits: { concurrency: 5 }
    models:
      m: { limits: { concurrency: 3 } }
  - name: beta
    base_url: ${beta.baseUrl}
    api_key: sk-beta-stats-0123456789abcdef
    models:
      n: {}
`,
    );
    const idle = await statsOf(gateway);
    assert.deepEqual(providerOf(idle, "alpha"), {
      name: "alpha",
      in_flight: 0,
      waiting_for_slot: 0,
      max_in_flight: 1,
      pool_concurrency: { in_flight: 0, limit: 5 },
    });
    assert.deepEqual(providerOf(idle, "beta"), {
      name: "beta",
      in_flight: 0,
      waiting_for_slot: 0,
      max_in_flight: 128,
      pool_concurrency: null,
    });
    assert.deepEqual(concurrencyOf(idle, "alpha/m"), { in_flight: 0, limit: 3 });
    assert.deepEqual(concurrencyOf(idle, "beta/n"), { in_flight: 0, limit: null });

    const first = postChat(gateway, { model: "m" });
    await alpha.waitForRequests(1);
    const second = postChat(gateway, { model: "m" });
    const held = await statsWhen(
      gateway,
      (stats) => providerOf(stats, "alpha")?.waiting_for_slot === 1,
      "the second request waits for alpha's one slot",
    );
    assert.deepEqual(providerOf(held, "alpha"), {
      name: "alpha",
      in_flight: 1,
      waiting_for_slot: 1,
      max_in_flight: 1,
      // The waiting request holds no budget slot yet: it is admitted once it has the provider's slot.
      pool_concurrency: { in_flight: 1, limit: 5 },
    });
    assert.deepEqual(concurrencyOf(held, "alpha/m"), { in_flight: 1, limit: 3 });
    assert.deepEqual(concurrencyOf(held, "beta/n"), { in_flight: 0, limit: null });

    releases.shift()?.();
    await alpha.waitForRequests(2);
    const handedOver = await statsOf(gateway);
    assert.deepEqual(
      [providerOf(handedOver, "alpha")?.in_flight, providerOf(handedOver, "alpha")?.waiting_for_slot],
      [1, 0],
      "the slot passed to the waiting request",
    );
    releases.shift()?.();
    assert.deepEqual([(await first).status, (await second).status], [200, 200]);
    await statsWhen(
      gateway,
      (after) =>
        providerOf(after, "alpha")?.in_flight === 0 &&
        providerOf(after, "alpha")?.pool_concurrency?.in_flight === 0 &&
        concurrencyOf(after, "alpha/m")?.in_flight === 0,
      "every slot is given back",
    );
  });
});
