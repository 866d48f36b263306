// Two gateway replicas on a real 3-master Redis Cluster (test/helpers/redis-cluster.ts), one master killed mid-run:
// every request is answered 200, the provider on a live master keeps its shared budget exact across both replicas
// (rpm: N, exactly N of its requests sent upstream, the rest served by the fallback), the dead master's provider is
// served from local state, /health and /metrics say degraded and name or count it, each replica logs one warning and never takes the
// whole link down.
import assert from "node:assert/strict";
import { test } from "node:test";
import { chatRequests, logCollector, postChat, send, useGateway, useMock } from "../helpers/e2e.ts";
import { parsePrometheusText, sumOf } from "../helpers/prometheus-text.ts";
import { isRedisClusterAvailable, REDIS_CLUSTER_MISSING, useRedisCluster } from "../helpers/redis-cluster.ts";
import { nodesOfTags } from "../helpers/redis-cluster-state.ts";

const PROVIDERS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"];
const LIMIT = 6;

test("a master killed mid-run: every request 200, the live master's provider admits exactly rpm across two replicas", {
  skip: isRedisClusterAvailable() ? false : REDIS_CLUSTER_MISSING,
}, async (t) => {
  const cluster = await useRedisCluster(t);
  const nodes = await nodesOfTags(t, cluster, PROVIDERS);
  const victim = nodes.get("alpha");
  const live = PROVIDERS.find((provider) => nodes.get(provider) !== victim);
  assert.ok(victim !== undefined && live !== undefined);
  const liveMock = await useMock(t);
  const alphaMock = await useMock(t);
  // `live` first for `m` with rpm: LIMIT, alpha (on the master to be killed) its fallback and the only one for `a`.
  const yaml = `providers:
  - name: ${live}
    base_url: ${liveMock.baseUrl}
    api_key: sk-live
    retries: 0
    limits: { rpm: ${LIMIT} }
    models:
      m: { priority: 10 }
  - name: alpha
    base_url: ${alphaMock.baseUrl}
    api_key: sk-alpha
    retries: 0
    limits: { rpm: 100000 }
    models:
      m: { priority: 1 }
      a: {}
routing:
  max_wait_for_better_ms: 0
state:
  path: ":memory:"
  redis_url: ${cluster.url}
  redis_cluster: true
  redis_command_timeout_ms: 1000
  redis_key_prefix: "lost-e2e:"
`;
  const logs = [logCollector(), logCollector()];
  const replicas = await Promise.all(
    logs.map((log) => useGateway(t, yaml, { logLevel: "info", logStream: log.stream })),
  );
  await victim.kill();
  const statuses: number[] = [];
  for (let request = 0; request < LIMIT + 6; request++) {
    for (const gateway of replicas) {
      for (let onAlpha = 0; onAlpha < 2; onAlpha++) statuses.push((await postChat(gateway, { model: "a" })).status);
    }
    const gateway = replicas[request % 2] ?? replicas[0];
    if (gateway !== undefined) statuses.push((await postChat(gateway, { model: "m" })).status);
  }
  assert.deepEqual(
    statuses.filter((status) => status !== 200),
    [],
    `every request answered 200: ${statuses.join(",")}`,
  );
  assert.equal(chatRequests(liveMock).length, LIMIT, `${live}: exactly its rpm across both replicas`);
  for (const [index, gateway] of replicas.entries()) {
    const health = (await send(gateway, "GET", "/health")).json as {
      status: string;
      state: { isDegraded: boolean; detail: string; localProviders: string[] };
    };
    assert.equal(health.status, "degraded");
    assert.equal(health.state.isDegraded, true);
    assert.deepEqual(health.state.localProviders, ["alpha"]);
    const metrics = parsePrometheusText((await send(gateway, "GET", "/metrics")).text);
    assert.equal(sumOf(metrics, "llm_gateway_state_degraded"), 1);
    assert.equal(sumOf(metrics, "llm_gateway_state_local_providers"), 1);
    assert.match(health.state.detail, /1 provider served from local state.*: alpha$/);
    const lines = (logs[index]?.lines ?? []).join("");
    assert.equal(lines.match(/does not answer: the budgets of provider alpha /g)?.length, 1, "one warning for alpha");
    assert.doesNotMatch(lines, /Redis is unreachable/);
  }
});
