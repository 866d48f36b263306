// Two gateway replicas on a real 3-master Redis Cluster (test/helpers/redis-cluster.ts), one master hung mid-run
// (SIGSTOP: its connections stay open and nothing answers, so every command to it waits for the command timeout):
// every request is answered 200 within one command timeout, the providers whose slots sit on the hung master go to
// local state together after three timeouts in all (not three each), the provider on a live master keeps its shared
// budget exact across both replicas, and once the master answers again (SIGCONT) each replica says so once.
import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { chatRequests, logCollector, postChat, send, useGateway, useMock } from "../helpers/e2e.ts";
import { isRedisClusterAvailable, REDIS_CLUSTER_MISSING, useRedisCluster } from "../helpers/redis-cluster.ts";
import { nodesOfTags } from "../helpers/redis-cluster-state.ts";

const PROVIDERS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda"];
const LIMIT = 6;
/** The state's command timeout: what one request may wait on the hung master, at most. */
const TIMEOUT_MS = 500;
/** A request slower than this waited on Redis (the others take a few ms on loopback). */
const WAITED_MS = TIMEOUT_MS * 0.8;
/** Room for a loaded machine on top of the one timeout a request may wait. */
const SLACK_MS = 700;
/** Failed commands in a row before a master's providers are served locally (redis-slot-groups.ts). */
const FAILURES_BEFORE_DOWN = 3;

interface Health {
  status: string;
  state: { isDegraded: boolean; detail: string; localProviders: string[] };
}

test("a master hung mid-run: every request 200 within one command timeout, its providers local together, the live one exact", {
  skip: isRedisClusterAvailable() ? false : REDIS_CLUSTER_MISSING,
}, async (t) => {
  const cluster = await useRedisCluster(t);
  const nodes = await nodesOfTags(t, cluster, PROVIDERS);
  const victim = nodes.get("alpha");
  const sibling = PROVIDERS.find((provider) => provider !== "alpha" && nodes.get(provider) === victim);
  const live = PROVIDERS.find((provider) => nodes.get(provider) !== victim);
  assert.ok(victim !== undefined && sibling !== undefined && live !== undefined, "alpha, a sibling and a live one");
  const liveMock = await useMock(t);
  const alphaMock = await useMock(t);
  const siblingMock = await useMock(t);
  // `live` first for `m` with rpm: LIMIT, alpha (on the master to be hung) its fallback and the only one for `a`;
  // `sibling` (on the same master) the only one for `b`.
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
  - name: ${sibling}
    base_url: ${siblingMock.baseUrl}
    api_key: sk-sibling
    retries: 0
    limits: { rpm: 100000 }
    models:
      b: {}
routing:
  max_wait_for_better_ms: 0
state:
  path: ":memory:"
  redis_url: ${cluster.url}
  redis_cluster: true
  redis_command_timeout_ms: ${TIMEOUT_MS}
  redis_key_prefix: "hung-e2e:"
`;
  const logs = [logCollector(), logCollector()];
  const replicas = await Promise.all(
    logs.map((log) => useGateway(t, yaml, { logLevel: "info", logStream: log.stream })),
  );
  // Every master known and connected before the hang: one request per model on each replica.
  for (const gateway of replicas) {
    for (const model of ["a", "b"]) assert.equal((await postChat(gateway, { model })).status, 200);
  }
  victim.pause();
  // SIGCONT at the end whatever happens: the cluster's cleanup kills it either way, the resume makes it answer.
  t.after(() => victim.resume().catch(() => {}));
  const timed = async (gateway: (typeof replicas)[number], model: string) => {
    const startMs = performance.now();
    const response = await postChat(gateway, { model });
    return { status: response.status, ms: performance.now() - startMs, model };
  };
  const answers: { status: number; ms: number; model: string; replica: number }[] = [];
  for (let request = 0; request < LIMIT + 6; request++) {
    for (const [replica, gateway] of replicas.entries()) {
      for (const model of ["a", "b"]) answers.push({ ...(await timed(gateway, model)), replica });
    }
    const replica = request % 2;
    const gateway = replicas[replica] ?? replicas[0];
    if (gateway !== undefined) answers.push({ ...(await timed(gateway, "m")), replica });
  }
  const describe = answers.map(
    (answer) => `${answer.replica}:${answer.model}:${answer.status}:${Math.round(answer.ms)}`,
  );
  assert.deepEqual(
    answers.filter((answer) => answer.status !== 200),
    [],
    `every request answered 200: ${describe.join(" ")}`,
  );
  const slowest = Math.max(...answers.map((answer) => answer.ms));
  const waitedInAll = answers.filter((answer) => answer.ms > WAITED_MS).length;
  t.diagnostic(`slowest request ${Math.round(slowest)} ms; ${waitedInAll} of ${answers.length} waited on the master`);
  assert.ok(slowest < TIMEOUT_MS + SLACK_MS, `no request waits more than one command timeout: ${describe.join(" ")}`);
  for (const replica of [0, 1]) {
    const waited = answers.filter((answer) => answer.replica === replica && answer.ms > WAITED_MS);
    assert.ok(
      waited.length <= FAILURES_BEFORE_DOWN,
      `replica ${replica}: ${waited.length} requests waited on the hung master, three at most in all: ${describe.join(" ")}`,
    );
  }
  assert.equal(chatRequests(liveMock).length, LIMIT, `${live}: exactly its rpm across both replicas`);
  for (const gateway of replicas) {
    const health = (await send(gateway, "GET", "/health")).json as Health;
    assert.equal(health.status, "degraded");
    assert.deepEqual(health.state.localProviders, ["alpha", sibling].sort());
  }

  await victim.resume();
  for (const gateway of replicas) {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const health = (await send(gateway, "GET", "/health")).json as Health;
      if (!health.state.isDegraded) break;
      assert.ok(Date.now() < deadline, `back within 20 s: ${health.state.detail}`);
      await sleep(200);
    }
  }
  for (const log of logs) {
    const lines = log.lines.join("");
    assert.equal(lines.match(/does not answer/g)?.length, 1, `one warning: ${lines}`);
    assert.equal(lines.match(/answers again/g)?.length, 1, `one line when it is back: ${lines}`);
    assert.doesNotMatch(lines, /Redis is unreachable/);
  }
});
