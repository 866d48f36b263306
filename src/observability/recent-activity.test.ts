import assert from "node:assert/strict";
import { test } from "node:test";
import { attempt, record } from "../../test/helpers/records.ts";
import { ManualClock } from "../clock.ts";
import { RECENT_RECORDS, RecentActivity } from "./recent-activity.ts";

const total = (series: readonly { requests: number }[]) => series.reduce((sum, minute) => sum + minute.requests, 0);

test("a named client's feed is its own latest requests, however many another client made since", () => {
  const activity = new RecentActivity(new ManualClock());
  const own = record({ client: "team-a" });
  activity.observe(own);
  const others = Array.from({ length: RECENT_RECORDS + 10 }, () => record({ client: "team-b" }));
  for (const other of others) activity.observe(other);
  activity.observe(record());

  assert.deepEqual(
    activity.feed("team-a").map((entry) => entry.id),
    [own.id],
  );
  const teamB = activity.feed("team-b");
  assert.equal(teamB.length, RECENT_RECORDS);
  assert.equal(teamB[0]?.id, others.at(-1)?.id, "newest first");
  assert.ok(
    teamB.every((entry) => entry.client === "team-b"),
    "another client's line in team-b's feed",
  );
  assert.deepEqual(activity.feed("nobody"), []);
  // The gateway's feed is every client's latest, as before: team-a's request has left it.
  const all = activity.feed();
  assert.equal(all.length, RECENT_RECORDS);
  assert.ok(!all.some((entry) => entry.id === own.id));
  assert.equal(all[0]?.client, null);
});

test("a named client's charts count its own requests; the gateway's count every request", () => {
  const clock = new ManualClock();
  const activity = new RecentActivity(clock);
  const failedOver = [
    attempt({ provider: "alpha", outcome: "server_error", status: 500 }),
    attempt({ provider: "beta" }),
  ];
  activity.observe(record({ client: "team-a", attempts: failedOver, durationMs: 300 }));
  activity.observe(record({ client: "team-b" }));
  activity.observe(record({ client: "team-b", status: 429, outcome: "rate_limited", attempts: [] }));
  activity.observe(record());
  clock.advance(60_000);
  activity.observe(record({ client: "team-a" }));

  const teamA = activity.series("team-a");
  assert.equal(teamA.length, 60);
  assert.deepEqual(
    teamA.slice(-2).map((minute) => [minute.requests, minute.errors, minute.failovers, minute.latencyTotalMs]),
    [
      [1, 0, 1, 300],
      [1, 0, 0, 60],
    ],
  );
  const teamB = activity.series("team-b");
  assert.deepEqual(
    teamB.slice(-2).map((minute) => [minute.requests, minute.errors, minute.failovers]),
    [
      [2, 1, 0],
      [0, 0, 0],
    ],
  );
  assert.equal(total(activity.series("nobody")), 0);
  assert.equal(total(activity.series()), 5);
  // An hour later the minutes have left every chart.
  clock.advance(60 * 60_000);
  assert.equal(total(activity.series("team-a")), 0);
  assert.equal(total(activity.series()), 0);
});

test("batch lines count apart: not in the charts' requests, errors and latency, but in batchLines", () => {
  const clock = new ManualClock();
  const activity = new RecentActivity(clock);
  activity.observe(record({ durationMs: 100 }));
  activity.observe(record({ batchId: "batch_1", durationMs: 60_000 }));
  activity.observe(record({ batchId: "batch_1", status: 400, outcome: "rejected", attempts: [] }));
  const minute = activity.series().at(-1);
  assert.deepEqual([minute?.requests, minute?.errors, minute?.latencyTotalMs, minute?.batchLines], [1, 0, 100, 2]);
});

test("a feed entry shows a route no door serves (its record's route); a door's has none", () => {
  const activity = new RecentActivity(new ManualClock());
  activity.observe(record({ endpoint: "conversations", route: "POST /v1/conversations", requestedModel: "" }));
  activity.observe(record());
  assert.deepEqual(
    activity.feed().map((entry) => [entry.endpoint, entry.route]),
    [
      ["chat", null],
      ["conversations", "POST /v1/conversations"],
    ],
  );
});
