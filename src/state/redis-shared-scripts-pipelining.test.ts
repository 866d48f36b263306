// Review coverage of 38910b67 (the shared state's ten scripts defined through withScripts), not a bug: each script
// still a command under its old name, every one of them kept out of a Cluster's auto-pipelining (its first argument
// is its key count: grouped by the slot of "3", a batch over several masters was refused), none on a standalone Redis
// (one node: nothing to refuse), and the exclusion on this connection only (ioredis's default list is shared by every
// Cluster of the process). No Redis needed: the connections are lazy and never connect.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Cluster } from "ioredis";
import { createCommandClient } from "./redis-client.ts";

/** The names the budgets', cooldowns' and limits' code calls (redis-ledger.ts, redis-cooldowns.ts, ...). */
const SCRIPT_NAMES = [
  "budgetReserve",
  "budgetLearn",
  "budgetWriteBatch",
  "budgetReserveAfterWrites",
  "budgetTakeInFlight",
  "shareCooldown",
  "shareRefusal",
  "forgetLimits",
  "deleteFieldIf",
  "setOver",
  "chunkedBatchAdmit",
  "chunkedBatchRest",
  "chunkedBatchEnd",
];

test("the shared state's scripts: defined by name, out of a Cluster's auto-pipelining only", () => {
  const cluster = createCommandClient("redis://127.0.0.1:1", true);
  const standalone = createCommandClient("redis://127.0.0.1:1", false);
  try {
    for (const name of SCRIPT_NAMES) {
      assert.equal(typeof Reflect.get(cluster, name), "function", `${name} on the Cluster connection`);
      assert.equal(typeof Reflect.get(standalone, name), "function", `${name} on the standalone connection`);
    }
    assert.equal(cluster.options.enableAutoPipelining, true);
    assert.deepEqual([...(cluster.options.autoPipeliningIgnoredCommands ?? [])].sort(), [...SCRIPT_NAMES].sort());
    assert.deepEqual(standalone.options.autoPipeliningIgnoredCommands ?? [], []);
    const other = new Cluster([{ host: "127.0.0.1", port: 1 }], { lazyConnect: true });
    assert.deepEqual(other.options.autoPipeliningIgnoredCommands ?? [], [], "another Cluster's list left alone");
    other.disconnect();
  } finally {
    cluster.disconnect();
    standalone.disconnect();
  }
});
