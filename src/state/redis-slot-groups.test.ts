// The slot groups' hysteresis, with an injected clock: down after three failures in a row on a master (the tags whose
// slots it serves together), back after three answered probes in a row; one line each way however often it answers
// now and then.
import assert from "node:assert/strict";
import { test } from "node:test";
import { hashSlot } from "./redis-hash-slot.ts";
import { probeKey } from "./redis-keys.ts";
import { KeyedFailure, RedisLink } from "./redis-link.ts";
import { FAILURES_BEFORE_DOWN, isUnservedSlotReply, PROBES_BEFORE_UP, SlotGroups } from "./redis-slot-groups.ts";

function groupsWithLog(masterOfSlot?: (slot: number) => string | undefined) {
  const lines: string[] = [];
  let nowMs = Date.UTC(2026, 11, 7);
  const logger = {
    info: (_object: object, message: string) => lines.push(`info: ${message}`),
    warn: (_object: object, message: string) => lines.push(`warn: ${message}`),
  };
  const groups = new SlotGroups("redis://h:1 (cluster)", logger, () => nowMs, masterOfSlot);
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
  assert.deepEqual(
    groups.downGroups().map((group) => group.probeTag),
    ["alpha"],
  );
  // More failures and a late success (sent before it went down) change nothing, and say nothing more.
  groups.recordFailure("alpha", "Command timed out");
  groups.recordSuccess("alpha");
  assert.equal(groups.isDown("alpha"), true);
  assert.deepEqual(lines, [
    `warn: Redis Cluster slot ${hashSlot("alpha")} does not answer: the budgets of provider alpha are served from local state (per process) until it does`,
  ]);
  assert.match(groups.describeDown() ?? "", /^1 provider served from local state, .*\(Command timed out\): alpha$/);
});

test("back only after three answered probes in a row: a slot that answers now and then stays down, silently", () => {
  const { groups, lines, advance } = groupsWithLog();
  const back: string[] = [];
  groups.onUp((tags) => back.push(...tags));
  const idOf = (tag: string) => `slot ${hashSlot(tag)}`;
  for (const tag of ["alpha", "delta"]) for (let failure = 0; failure < 3; failure++) groups.recordFailure(tag, "x");
  assert.match(groups.describeDown() ?? "", /^2 providers .*: alpha, delta$/);
  // Flapping: answered, answered, failed, answered... never three in a row.
  for (let round = 0; round < 10; round++) {
    advance(1_000);
    groups.probed(idOf("alpha"), round % 3 === 2 ? "Connection is closed." : undefined);
  }
  assert.equal(groups.isDown("alpha"), true);
  assert.deepEqual(back, []);
  for (let probe = 0; probe < PROBES_BEFORE_UP; probe++) groups.probed(idOf("alpha"), undefined);
  assert.equal(groups.isDown("alpha"), false);
  assert.deepEqual(back, ["alpha"]);
  assert.deepEqual(groups.downGroups(), [{ id: idOf("delta"), probeTag: "delta" }]);
  assert.equal(lines.filter((line) => line.startsWith("warn:")).length, 2);
  assert.deepEqual(
    lines.filter((line) => line.startsWith("info:")),
    [`info: Redis Cluster slot ${hashSlot("alpha")} answers again: the budgets of provider alpha are shared again`],
  );
  // A probe of a group that is up is ignored.
  groups.probed(idOf("alpha"), "x");
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
  assert.deepEqual(
    link.downGroups().map((group) => group.probeTag),
    ["secret-customer"],
    "and its slot is probed",
  );
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

test("the tags on one master go down together: three failures in all, not three each; one line each way", () => {
  // alpha and zeta on one master, delta on another (a hung master answers none of its slots).
  const masters = new Map([
    [hashSlot("alpha"), "10.0.0.1:7000"],
    [hashSlot("zeta"), "10.0.0.1:7000"],
    [hashSlot("hung:cooldown:deployment:eta/m"), "10.0.0.1:7000"],
    [hashSlot("delta"), "10.0.0.2:7000"],
  ]);
  const { groups, lines } = groupsWithLog((slot) => masters.get(slot));
  const back: (readonly string[])[] = [];
  groups.onUp((tags) => back.push(tags));
  groups.recordFailure("alpha", "Command timed out");
  // A cooldown's key on the same master counts too (it carries no provider, and is never named).
  groups.recordFailure(SlotGroups.tagOfKey("hung:cooldown:deployment:eta/m"), "Command timed out", "key");
  groups.recordFailure("zeta", "Command timed out");
  assert.equal(groups.isDown("alpha"), true);
  assert.equal(groups.isDown("zeta"), true);
  assert.equal(groups.isDown("delta"), false);
  assert.deepEqual(groups.downProviderTags(), ["alpha", "zeta"]);
  assert.deepEqual(lines, [
    "warn: Redis Cluster master 10.0.0.1:7000 does not answer: the budgets of providers alpha, zeta are served from local state (per process) until it does",
  ]);
  assert.match(
    groups.describeDown() ?? "",
    /^2 providers served from local state, their Cluster master not answering since .*: alpha, zeta$/,
  );
  const [down] = groups.downGroups();
  assert.equal(down?.id, "10.0.0.1:7000");
  for (let probe = 0; probe < PROBES_BEFORE_UP; probe++) groups.probed("10.0.0.1:7000", undefined);
  assert.equal(groups.isDown("alpha"), false);
  assert.equal(lines.length, 2);
  assert.equal(
    lines[1],
    "info: Redis Cluster master 10.0.0.1:7000 answers again: the budgets of providers alpha, zeta are shared again",
  );
  assert.deepEqual(
    back.map((tags) => [...tags].sort()),
    [["alpha", "hung:cooldown:deployment:eta/m", "zeta"]],
  );
});

test("hashSlot is CLUSTER KEYSLOT's: CRC16/XMODEM of the hash tag, modulo 16384", () => {
  assert.equal(hashSlot("foo"), 12182);
  assert.equal(hashSlot("bar"), 5061);
  assert.equal(hashSlot("123456789"), 12739);
  assert.equal(hashSlot("{user1000}.following"), hashSlot("user1000"));
  assert.equal(hashSlot("user1000"), 3443);
  // An empty tag is no tag: the whole key is hashed.
  assert.notEqual(hashSlot("a{}b"), hashSlot(""));
});

test("a down master's probe key is in the slot of the key that failed, a cooldown's key with a brace too", () => {
  // Values from CLUSTER KEYSLOT on a real node. A deployment's model named with a `}` (a model list is the
  // provider's): its cooldown's key has no hash tag, the whole key is hashed, and `probe:{<key>}` ended its tag at
  // that `}`: the probe asked another slot (another master, answering), the hung master's providers came back after
  // three probes and went down again after three more timeouts, over and over.
  const keys = new Map([
    ["gw:cooldown:deployment:groq/a}b", 4590],
    ["gw:cooldown:deployment:groq/{}x}", 1490],
    ["gw:cooldown:deployment:groq/{x}", 16287],
    ["gw:prompt-calibration", 7136],
  ]);
  for (const [key, slot] of keys) {
    assert.equal(hashSlot(key), slot, key);
    assert.equal(hashSlot(probeKey("gw:", SlotGroups.tagOfKey(key))), slot, `the probe of ${key}`);
  }
  assert.equal(hashSlot(probeKey("gw:", SlotGroups.tagOf("provider:gr{o}q"))), hashSlot("gw:budget:{gr_o_q}:x"));
});

test("a down master whose slots moved to another (a promoted replica): its providers shared at once, up at the first answered probe", () => {
  let master = "10.0.0.1:6379";
  const { groups, lines } = groupsWithLog(() => master);
  const ups: (readonly string[])[] = [];
  groups.onUp((tags) => ups.push(tags));
  for (let failure = 0; failure < FAILURES_BEFORE_DOWN; failure++) groups.recordFailure("alpha", "Command timed out");
  assert.deepEqual(groups.downProviderTags(), ["alpha"]);
  master = "10.0.0.2:6379";
  // The slot table names the replica: /health follows it before any probe, as the reserves do (isDown).
  assert.equal(groups.isDown("alpha"), false);
  assert.deepEqual(groups.downProviderTags(), []);
  assert.equal(groups.describeDown(), undefined);
  groups.probed("10.0.0.1:6379", undefined);
  assert.deepEqual(ups, [["alpha"]], "up at the first answered probe, not the third");
  assert.deepEqual(groups.downGroups(), []);
  assert.equal(lines.filter((line) => line.includes("answers again")).length, 1);
});

test("refused features' writes failing together, a PUBLISH among them: each keyed one counts against its key's master", () => {
  const link = new RedisLink(
    "redis://h:1 (cluster)",
    undefined,
    () => Date.now(),
    () => true,
    true,
    () => "10.0.0.1:7000",
  );
  link.markUp();
  // RefusalSharing.pushLocal: one deployment's write timed out on its key, another's PUBLISH (any node) too.
  for (let failure = 0; failure < FAILURES_BEFORE_DOWN; failure++) {
    const keyed = new KeyedFailure("p:refused:{alpha}:alpha/m", new Error("Command timed out"));
    link.recordFailure(
      new AggregateError([keyed, new Error("Command timed out")], "writes of refused features failed"),
    );
  }
  assert.deepEqual(
    link.downGroups().map((group) => group.id),
    ["10.0.0.1:7000"],
  );
});
