// The book of refused features: lessons per deployment, their end, what clears them, and its bound.
import assert from "node:assert/strict";
import { test } from "node:test";
import { MAX_REFUSALS_PER_DEPLOYMENT, type RefusalChange, RefusedFeatures } from "./refused-features.ts";

const HOUR_MS = 3_600_000;

test("a lesson holds for its lifetime, for that deployment and feature only", () => {
  const book = new RefusedFeatures(6 * HOUR_MS);
  book.learn("alpha/m", "tools", "HTTP 400: does not support tools", 1_000);
  assert.deepEqual(book.refusalOf("alpha/m", ["seed", "tools"], 2_000), {
    feature: "tools",
    reason: "HTTP 400: does not support tools",
    atMs: 1_000,
    untilMs: 1_000 + 6 * HOUR_MS,
  });
  assert.equal(book.refusalOf("alpha/m", ["seed"], 2_000), undefined, "a request without the feature");
  assert.equal(book.refusalOf("beta/m", ["tools"], 2_000), undefined, "another deployment");
  assert.equal(book.refusalOf("alpha/m", ["tools"], 1_000 + 6 * HOUR_MS), undefined, "over at its end");
});

test("a new lifetime applies to lessons learned from then on", () => {
  const book = new RefusedFeatures(HOUR_MS);
  book.learn("a", "tools", "r", 0);
  book.setLifetime(2 * HOUR_MS);
  book.learn("a", "seed", "r", 0);
  assert.equal(book.refusalOf("a", ["tools"], HOUR_MS), undefined);
  assert.equal(book.refusalOf("a", ["seed"], HOUR_MS)?.feature, "seed");
});

test("a success with the feature, a reload pointing the name elsewhere and the admin reset clear lessons", () => {
  const book = new RefusedFeatures(HOUR_MS);
  book.learn("a", "tools", "r", 0);
  book.learn("a", "seed", "r", 0);
  book.unlearn("a", ["tools", "temperature"]);
  assert.equal(book.refusalOf("a", ["tools"], 1), undefined);
  assert.equal(book.refusalOf("a", ["seed"], 1)?.feature, "seed");
  book.forget("a");
  assert.equal(book.refusalOf("a", ["seed"], 1), undefined);
  book.learn("b", "tools", "r", 0);
  book.reset();
  assert.equal(book.refusalOf("b", ["tools"], 1), undefined);
});

test("lessons per deployment are bounded: the oldest goes first", () => {
  const book = new RefusedFeatures(HOUR_MS);
  for (let index = 0; index <= MAX_REFUSALS_PER_DEPLOYMENT; index++) book.learn("a", `key${index}`, "r", index);
  assert.equal(book.refusalOf("a", ["key0"], 100), undefined);
  assert.equal(book.refusalOf("a", ["key1"], 100)?.feature, "key1");
  assert.equal(book.refusalsOf("a", 100).length, MAX_REFUSALS_PER_DEPLOYMENT);
  assert.equal(book.refusalsOf("a", HOUR_MS + 100).length, 0, "ended lessons are not shown");
  // Ended ones are dropped when the deployment learns again: only the new lesson is left.
  book.learn("a", "tools", "r", HOUR_MS + 100);
  assert.deepEqual(
    book.refusalsOf("a", HOUR_MS + 100).map((refusal) => refusal.feature),
    ["tools"],
  );
});

test("knows: whether a success has anything to clear (the failover reports accepted features only then)", () => {
  const book = new RefusedFeatures(HOUR_MS);
  assert.equal(book.knows("a"), false);
  book.learn("a", "tools", "r", 0);
  assert.equal(book.knows("a"), true);
  assert.equal(book.knows("b"), false);
  book.unlearn("a", ["tools"]);
  assert.equal(book.knows("a"), false, "its last lesson cleared");
  book.learn("a", "seed", "r", 0);
  book.forget("a");
  assert.equal(book.knows("a"), false);
});

test("its own changes are told to the listener (learned, only the features a success cleared, forgotten, reset)", () => {
  const book = new RefusedFeatures(HOUR_MS);
  const changes: RefusalChange[] = [];
  book.onChange((change) => changes.push(change));
  book.learn("a", "tools", "r", 0);
  book.unlearn("a", ["seed"]); // nothing to clear: nothing to tell the fleet
  book.unlearn("a", ["tools", "seed"]);
  book.forget("b");
  book.reset();
  assert.deepEqual(changes, [
    { kind: "learned", deploymentKey: "a", refusal: { feature: "tools", reason: "r", atMs: 0, untilMs: HOUR_MS } },
    { kind: "accepted", deploymentKey: "a", features: ["tools"] },
    { kind: "forgotten", deploymentKey: "b" },
    { kind: "reset" },
  ]);
});

test("what other replicas share is adopted with its own end, tells no one, and an older lesson does not win", () => {
  const book = new RefusedFeatures(HOUR_MS);
  const changes: RefusalChange[] = [];
  book.onChange((change) => changes.push(change));
  book.adopt("a", { feature: "tools", reason: "there", atMs: 100, untilMs: 100 + 2 * HOUR_MS }, 200);
  assert.equal(book.refusalOf("a", ["tools"], HOUR_MS + 500)?.reason, "there", "kept to its own end");
  book.adopt("a", { feature: "tools", reason: "older", atMs: 50, untilMs: 50 + HOUR_MS }, 200);
  assert.equal(book.refusalOf("a", ["tools"], 200)?.reason, "there");
  book.adopt("a", { feature: "seed", reason: "ended", atMs: 0, untilMs: 150 }, 200);
  assert.equal(book.knows("a") && book.refusalsOf("a", 200).length, 1, "an ended lesson adopted");
  book.adoptAccepted("a", ["tools"]);
  assert.equal(book.knows("a"), false);
  assert.deepEqual(changes, [], "an adopted change was told again (it would echo round the fleet)");
  assert.equal(book.takeDirty(), false, "nothing of this process's own to write");
});

test("an adopted size lesson keeps the lower start of the two that hold, with the later end, whichever comes first", () => {
  const lesson = (minEntries: number, untilMs: number) => ({
    feature: "stop",
    reason: "r",
    atMs: 0,
    untilMs,
    minEntries,
  });
  for (const [known, heard] of [
    [lesson(5, HOUR_MS), lesson(8, 2 * HOUR_MS)],
    [lesson(8, HOUR_MS), lesson(5, HOUR_MS)],
    [lesson(8, 2 * HOUR_MS), lesson(5, HOUR_MS)],
  ] as const) {
    const book = new RefusedFeatures(HOUR_MS);
    book.adopt("a", known, 10);
    book.adopt("a", heard, 10);
    const kept = book.refusalOf("a", ["stop"], 10, new Map([["stop", 6]]));
    assert.equal(kept?.minEntries, 5, `${known.minEntries} then ${heard.minEntries}: 6 entries are refused`);
    assert.equal(kept?.untilMs, Math.max(known.untilMs, heard.untilMs));
  }
  // An ended lesson's start is not kept: the one heard stands.
  const book = new RefusedFeatures(HOUR_MS);
  book.adopt("a", lesson(5, 100), 10);
  book.adopt("a", lesson(8, HOUR_MS), 200);
  assert.equal(book.refusalOf("a", ["stop"], 200, new Map([["stop", 6]])), undefined);
});

test("a forget or a clearing heard from another replica drops this copy, tells no one; an unstored lesson goes only if unchanged", () => {
  const book = new RefusedFeatures(HOUR_MS);
  const changes: RefusalChange[] = [];
  book.learn("a", "tools", "r", 0);
  book.learn("b", "seed", "r", 0);
  book.takeDirty();
  book.onChange((change) => changes.push(change));
  book.adoptForgotten("a");
  assert.equal(book.knows("a"), false);
  assert.ok(book.knows("b"));

  const [[deploymentKey, seen] = ["", undefined]] = book.lessons();
  assert.equal(deploymentKey, "b");
  assert.ok(seen !== undefined);
  // Heard again (a later end) after `lessons` was read: what the reload saw is no longer the lesson kept.
  book.adopt("b", { ...seen, untilMs: 2 * HOUR_MS }, 10);
  assert.equal(book.adoptUnstored("b", seen), false);
  assert.ok(book.knows("b"), "a lesson newer than the reload's view was dropped");
  const [[, kept] = ["", undefined]] = book.lessons();
  assert.ok(kept !== undefined);
  assert.equal(book.adoptUnstored("b", kept), true);
  assert.equal(book.knows("b"), false);
  assert.deepEqual(changes, [], "an adopted change was told again (it would echo round the fleet)");
  assert.equal(book.takeDirty(), false);
});

test("past the bound the lesson learned earliest goes, also when an older one was adopted after it", () => {
  const book = new RefusedFeatures(HOUR_MS);
  for (let index = 1; index < MAX_REFUSALS_PER_DEPLOYMENT; index++) book.learn("a", `key${index}`, "r", 1_000 + index);
  book.adopt("a", { feature: "old", reason: "r", atMs: 10, untilMs: HOUR_MS }, 2_000);
  book.learn("a", "new", "r", 2_000);
  assert.equal(book.refusalOf("a", ["old"], 2_000), undefined, "the adopted older lesson stayed");
  assert.equal(book.refusalOf("a", ["key1"], 2_000)?.feature, "key1");
  assert.equal(book.refusalsOf("a", 2_000).length, MAX_REFUSALS_PER_DEPLOYMENT);
});

test("the gateway's own lessons (`x_gateway_*`, the learned context window) are kept apart from the bound", () => {
  const book = new RefusedFeatures(HOUR_MS);
  book.learn("a", "x_gateway_context_window", "r", 0, undefined, 501);
  for (let index = 0; index < MAX_REFUSALS_PER_DEPLOYMENT; index++) book.learn("a", `key${index}`, "r", 1 + index);
  // Before, the window (learned first) was pushed out by the 32nd feature; and, kept, it would push out key0.
  assert.equal(book.refusalOf("a", ["x_gateway_context_window"], 100)?.minEntries, 501);
  assert.equal(book.refusalOf("a", ["key0"], 100)?.feature, "key0");
  assert.equal(book.refusalsOf("a", 100).length, MAX_REFUSALS_PER_DEPLOYMENT + 1);
  // A 33rd feature lesson pushes out the oldest feature lesson, not the window.
  book.learn("a", "tools", "r", 200);
  assert.equal(book.refusalOf("a", ["key0"], 200), undefined);
  assert.equal(book.refusalOf("a", ["x_gateway_context_window"], 200)?.minEntries, 501);
});

test("export and import: lessons that hold, by deployment; ended and malformed ones are skipped", () => {
  const book = new RefusedFeatures(HOUR_MS);
  book.learn("a", "tools", "r", 0);
  book.learn("b", "seed", "r", HOUR_MS / 2);
  assert.equal(book.takeDirty(), true);
  assert.equal(book.takeDirty(), false);
  const persisted = book.export(HOUR_MS / 4);
  assert.deepEqual(Object.keys(persisted), ["a", "b"]);
  const later = new RefusedFeatures(HOUR_MS);
  assert.equal(later.import(JSON.parse(JSON.stringify(persisted)), HOUR_MS), 1, "only b's holds at the hour");
  assert.equal(later.refusalOf("b", ["seed"], HOUR_MS)?.untilMs, HOUR_MS * 1.5);
  const junk = { c: [{ feature: "tools" }, "x", { feature: "", reason: "r", atMs: 0, untilMs: 9e15 }], d: "x", "": [] };
  assert.equal(later.import(junk, 0), 0);
  assert.equal(later.import([persisted], 0), 0);
  assert.equal(later.import(null, 0), 0);
});

test("a success of a request sent before the refusal was learned does not clear it; one sent after does", () => {
  const book = new RefusedFeatures(HOUR_MS);
  const changes: RefusalChange[] = [];
  book.onChange((change) => changes.push(change));
  // Two requests with tools in flight at once: the one sent at 1 000 is refused at 2 000, the one sent at 500
  // (before the refusal) is answered at 3 000.
  book.learn("a", "tools", "HTTP 400: tools not supported", 2_000);
  book.unlearn("a", ["tools"], 500);
  assert.equal(book.refusalOf("a", ["tools"], 3_000)?.atMs, 2_000, "the newer refusal stays");
  assert.deepEqual(
    changes.map((change) => change.kind),
    ["learned"],
  );
  book.unlearn("a", ["tools"], 2_500);
  assert.equal(book.refusalOf("a", ["tools"], 3_000), undefined, "served after it was learned: it takes tools now");
  assert.deepEqual(
    changes.map((change) => change.kind),
    ["learned", "accepted"],
  );
});

test("a lesson about a size holds for requests at least that large; a smaller success does not end it; it is kept", () => {
  const book = new RefusedFeatures(HOUR_MS);
  book.learn("a", "stop", "HTTP 400: Invalid 'stop': array too long", 0, undefined, 5);
  const sized = (entries: number) => new Map([["stop", entries]]);
  assert.equal(book.refusalOf("a", ["stop"], 1, sized(1)), undefined, "a 1-entry stop was never refused");
  assert.equal(book.refusalOf("a", ["stop"], 1, new Map()), undefined, "a `stop` string is one entry");
  assert.equal(book.refusalOf("a", ["stop"], 1, sized(5))?.minEntries, 5);
  assert.equal(book.refusalOf("a", ["stop"], 1)?.minEntries, 5, "without sizes (a route explanation) it shows");
  // A refusal of 7 later keeps the lower start: 5 was refused too.
  book.learn("a", "stop", "HTTP 400: again", 10, undefined, 7);
  assert.equal(book.refusalOf("a", ["stop"], 11, sized(5))?.minEntries, 5);
  book.unlearn("a", ["stop"], 20, sized(4));
  assert.equal(book.refusalOf("a", ["stop"], 21, sized(6))?.minEntries, 5, "4 entries served says nothing of 5");
  const later = new RefusedFeatures(HOUR_MS);
  assert.equal(later.import(JSON.parse(JSON.stringify(book.export(21))), 21), 1);
  assert.equal(later.refusalOf("a", ["stop"], 22, sized(4)), undefined, "its size is kept in the state file");
  assert.equal(later.refusalOf("a", ["stop"], 22, sized(5))?.minEntries, 5);
  book.unlearn("a", ["stop"], 30, sized(5));
  assert.equal(book.refusalOf("a", ["stop"], 31, sized(9)), undefined, "5 entries served: it takes them now");
});
