// The batch runner with Redis refusing every connection: its looks for batches to take over fail every third of
// `batches.lease_ms`, and that is said once until a step works again, not at every look.
import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { providersYaml } from "../helpers/batches-scene.ts";
import { logCollector, useGateway, useMock } from "../helpers/e2e.ts";

test("Redis refusing: 'a batch step failed' is said once, not at every look for batches (with the expiry check's ticks between)", async (t) => {
  const mock = await useMock(t);
  const log = logCollector();
  const yaml = `${providersYaml(mock)}state:\n  path: ":memory:"\n  redis_url: redis://127.0.0.1:1\nbatches:\n  lease_ms: 300\n`;
  const gateway = await useGateway(t, yaml, { logLevel: "warn", logStream: log.stream });
  // The runner starts with the first request to a Batch route (the list is read from this process's memory meanwhile).
  await fetch(`${gateway.baseUrl}/batches`);
  // A look every 100 ms; the expiry check (every second, no batch running here) touches no store.
  await sleep(3_500);
  const said = log.lines.filter((line) => line.includes("a batch step failed"));
  assert.equal(said.length, 1, `said ${said.length} times:\n${said.join("")}`);
});
