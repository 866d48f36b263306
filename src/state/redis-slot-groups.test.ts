// The slot groups' hysteresis, with an injected clock: down after three failures in a row on a tag, back after three
// answered probes in a row; one line each way however often the slot answers now and then.
import assert from "node:assert/strict";
import { test } from "node:test";
import { RedisLink } from "./redis-link.ts";
import { FAILURES_BEFORE_DOWN, isUnservedSlotReply, PROBES_BEFORE_UP, SlotGroups } from "./redis-slot-groups.ts";

function groupsWithLog() {
  const lines: string[] = [];
  let nowMs = Date.UTC(2026, 11, 7);
  const logger = {
    info: (_object: object, message: string) => lines.push(`info: ${message}`),
    warn: (_object: object, message: string) => lines.push(`warn: ${message}`),
  };
  const groups = new SlotGroups("redis://h:1 (cluster)", logger, () => nowMs);
  return { groups, lines, advance: (ms: number) => (nowMs += ms) };
}

test("a tag goes down after three failures in a row, a success in between starts the count again", () => {
  const { groups, lines } = groupsWithLog();
  groups.recordFailure("alpha", "Connection is closed.");
  groups.recordFailure("alpha", "Connection is closed.");
  groups.recordSuccess("alpha");
  groups.recordFailure("alpha", "Connection is closed.");
  groups.recordFailure("alpha", "Connection is closed.");
  assert.equal(groups.isDown("alpha"), false);
  groups.recordFailure("alpha", "Command timed out");
  assert.equal(FAILURES_BEFORE_DOWN, 3);
  assert.equal(groups.isDown("alpha"), true);
  assert.equal(groups.isDown("beta"), false);
  assert.deepEqual(groups.downTags(), ["alpha"]);
  // More failures and a late success (sent before it went down) change nothing, and say nothing more.
  groups.recordFailure("alpha", "Command timed out");
  groups.recordSuccess("alpha");
  assert.equal(groups.isDown("alpha"), true);
  assert.deepEqual(lines, [
    "warn: Redis Cluster slot of provider alpha does not answer: its budgets are served from local state (per process) until it does",
  ]);
  assert.match(groups.describeDown() ?? "", /^1 provider served from local state, .*\(Command timed out\): alpha$/);
});

test("back only after three answered probes in a row: a slot that answers now and then stays down, silently", () => {
  const { groups, lines, advance } = groupsWithLog();
  const back: string[] = [];
  groups.onUp((tag) => back.push(tag));
  for (const tag of ["alpha", "delta"]) for (let failure = 0; failure < 3; failure++) groups.recordFailure(tag, "x");
  assert.match(groups.describeDown() ?? "", /^2 providers .*: alpha, delta$/);
  // Flapping: answered, answered, failed, answered... never three in a row.
  for (let round = 0; round < 10; round++) {
    advance(1_000);
    groups.probed("alpha", round % 3 === 2 ? "Connection is closed." : undefined);
  }
  assert.equal(groups.isDown("alpha"), true);
  assert.deepEqual(back, []);
  for (let probe = 0; probe < PROBES_BEFORE_UP; probe++) groups.probed("alpha", undefined);
  assert.equal(groups.isDown("alpha"), false);
  assert.deepEqual(back, ["alpha"]);
  assert.deepEqual(groups.downTags(), ["delta"]);
  assert.equal(lines.filter((line) => line.startsWith("warn:")).length, 2);
  assert.deepEqual(
    lines.filter((line) => line.startsWith("info:")),
    ["info: Redis Cluster slot of provider alpha answers again: its budgets are shared again"],
  );
  // A probe of a tag that is up is ignored.
  groups.probed("alpha", "x");
  assert.equal(groups.isDown("alpha"), false);
});

test("replies that say the slot has no master count as unreachable, others do not", () => {
  const reply = (message: string) => Object.assign(new Error(message), { name: "ReplyError" });
  assert.equal(isUnservedSlotReply(reply("MOVED 865 127.0.0.1:14102")), true);
  assert.equal(isUnservedSlotReply(reply("CLUSTERDOWN Hash slot not served")), true);
  assert.equal(isUnservedSlotReply(reply("NOPERM this user has no permissions")), false);
  assert.equal(isUnservedSlotReply(reply("ERR wrong number of arguments")), false);
});

test("a client's budget slot not answering degrades the state without naming the client (/health is open to client keys)", () => {
  const link = new RedisLink(
    "redis://h:1 (cluster)",
    undefined,
    () => Date.now(),
    () => true,
    true,
  );
  link.markUp();
  for (let failure = 0; failure < FAILURES_BEFORE_DOWN; failure++) {
    link.recordFailure(new Error("Command timed out"), "client:secret-customer");
  }
  assert.equal(link.isUpFor("client:secret-customer"), false, "its budgets are served locally");
  assert.deepEqual(link.downGroups(), ["secret-customer"], "and its slot is probed");
  const status = link.status();
  assert.equal(status.isDegraded, true);
  assert.deepEqual(status.localProviders, []);
  assert.doesNotMatch(status.detail, /secret-customer/);
  assert.match(status.detail, /1 client budget served from local state/);
  // A provider's name is no secret (/health lists the providers): named as before.
  for (let failure = 0; failure < FAILURES_BEFORE_DOWN; failure++) {
    link.recordFailure(new Error("Command timed out"), "deployment:alpha/m");
  }
  assert.deepEqual(link.status().localProviders, ["alpha"]);
  assert.match(link.status().detail, /1 provider and 1 client budget served from local state.*: alpha$/);
});
