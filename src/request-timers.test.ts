// The request timers' heap (request-timers.ts) on a manual clock and a manual real timer, so that what runs when is
// exact; then the real one: it runs on Node's timer, and never holds the process.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { performance } from "node:perf_hooks";
import { test } from "node:test";
import { type RequestTimer, RequestTimers, requestTimers, type TimerHost } from "./request-timers.ts";

/** A clock that moves when told to, and the one real timer the heap arms, run when the clock passes it. */
class ManualHost implements TimerHost {
  nowMs = 1_000;
  /** How many times the heap armed its real timer, and with which delays. */
  readonly armedDelaysMs: number[] = [];
  #armed: { readonly callback: () => void; readonly dueMs: number } | undefined;

  now(): number {
    return this.nowMs;
  }

  arm(callback: () => void, delayMs: number): () => void {
    this.armedDelaysMs.push(delayMs);
    const armed = { callback, dueMs: this.nowMs + delayMs };
    this.#armed = armed;
    return () => {
      if (this.#armed === armed) this.#armed = undefined;
    };
  }

  get isArmed(): boolean {
    return this.#armed !== undefined;
  }

  advance(ms: number): void {
    this.nowMs += ms;
    for (let armed = this.#armed; armed !== undefined && armed.dueMs <= this.nowMs; armed = this.#armed) {
      this.#armed = undefined;
      armed.callback();
    }
  }
}

test("a timer runs once its delay has passed, never before, and once", () => {
  const host = new ManualHost();
  const timers = new RequestTimers(host);
  const ran: number[] = [];
  timers.after(100, () => ran.push(host.nowMs));
  host.advance(99);
  assert.deepEqual(ran, []);
  host.advance(1);
  assert.deepEqual(ran, [1_100]);
  host.advance(1_000);
  assert.deepEqual(ran, [1_100]);
  assert.equal(timers.size, 0);
});

test("a cancelled timer never runs and leaves the heap; cancel is idempotent, also after it ran", () => {
  const host = new ManualHost();
  const timers = new RequestTimers(host);
  const ran: string[] = [];
  const cancelled = timers.after(50, () => ran.push("cancelled"));
  const kept = timers.after(60, () => ran.push("kept"));
  const other = timers.after(70, () => ran.push("other"));
  cancelled.cancel();
  cancelled.cancel();
  assert.equal(timers.size, 2);
  host.advance(100);
  assert.deepEqual(ran, ["kept", "other"]);
  kept.cancel();
  other.refresh();
  other.cancel();
  host.advance(100);
  assert.deepEqual(ran, ["kept", "other"]);
  assert.equal(timers.size, 0);
});

test("timers of any delays run in due order; those due together in the order they were armed", () => {
  const host = new ManualHost();
  const timers = new RequestTimers(host);
  const ran: string[] = [];
  for (const [name, delayMs] of [
    ["c300", 300],
    ["a100", 100],
    ["b200", 200],
    ["a100-second", 100],
    ["d250", 250],
    ["a100-third", 100],
  ] as const) {
    timers.after(delayMs, () => ran.push(`${name}@${host.nowMs - 1_000}`));
  }
  for (let step = 0; step < 40; step++) host.advance(10);
  assert.deepEqual(ran, ["a100@100", "a100-second@100", "a100-third@100", "b200@200", "d250@250", "c300@300"]);
});

test("each timer runs at its own time when the clock moves by steps, however they were armed", () => {
  const host = new ManualHost();
  const timers = new RequestTimers(host);
  const ran: string[] = [];
  timers.after(1_000, () => ran.push(`late@${host.nowMs - 1_000}`));
  // Armed after a later one: the real timer is brought forward to it.
  timers.after(10, () => ran.push(`early@${host.nowMs - 1_000}`));
  timers.after(500, () => ran.push(`middle@${host.nowMs - 1_000}`));
  for (let step = 0; step < 120; step++) host.advance(10);
  assert.deepEqual(ran, ["early@10", "middle@500", "late@1000"]);
  assert.equal(host.isArmed, false);
});

test("refresh makes a timer due its delay from now, and arms one that has run again", () => {
  const host = new ManualHost();
  const timers = new RequestTimers(host);
  let runs = 0;
  const idle = timers.after(100, () => runs++);
  host.advance(60);
  idle.refresh();
  host.advance(60);
  assert.equal(runs, 0, "refreshed at 60: due at 160");
  host.advance(40);
  assert.equal(runs, 1);
  idle.refresh();
  host.advance(100);
  assert.equal(runs, 2, "refreshed after it ran: runs again");
  // A callback refreshing its own timer (the idle watchdog while the client holds the relay) runs again later.
  let selfRuns = 0;
  const watchdog = timers.after(50, () => {
    selfRuns++;
    if (selfRuns < 3) watchdog.refresh();
  });
  for (let step = 0; step < 20; step++) host.advance(10);
  assert.equal(selfRuns, 3);
  assert.equal(timers.size, 0);
});

test("a request's timers armed and cancelled again and again arm the real timer only when one is due earlier", () => {
  const host = new ManualHost();
  const timers = new RequestTimers(host);
  // At concurrency 1, one request after another: each arms its deadline, headers, early-head, keep-alive, idle and
  // duration timers and cancels them all within a millisecond.
  for (let request = 0; request < 10_000; request++) {
    const armed = [120_000 - (request % 3), 30_000, 15_000, 15_000, 30_000, 600_000].map((delayMs) =>
      timers.after(delayMs, () => assert.fail("cancelled before it was due")),
    );
    for (const timer of armed) timer.cancel();
    host.advance(1);
  }
  assert.equal(timers.size, 0);
  // The first request's timers, each due earlier than the one before; none for the 9,999 after it (a Node timer each
  // would have made and dropped a timer list for each of its delays, four of six here).
  assert.deepEqual(host.armedDelaysMs, [120_000, 30_000, 15_000]);
  assert.equal(host.isArmed, true);
  // Due with nothing left: it runs nothing and is not armed again.
  host.advance(200_000);
  assert.equal(host.isArmed, false);
});

test("a delay longer than Node's longest timer is waited for in parts; a delay below 1 ms, or NaN, is 1 ms", () => {
  const host = new ManualHost();
  const timers = new RequestTimers(host);
  const ran: string[] = [];
  timers.after(3_000_000_000, () => ran.push("long"));
  assert.deepEqual(host.armedDelaysMs, [2_147_483_647]);
  host.advance(2_147_483_647);
  assert.equal(ran.length, 0);
  host.advance(3_000_000_000 - 2_147_483_647);
  assert.deepEqual(ran, ["long"]);
  timers.after(0, () => ran.push("zero"));
  timers.after(Number.NaN, () => ran.push("nan"));
  timers.after(-5, () => ran.push("negative"));
  host.advance(1);
  assert.deepEqual(ran, ["long", "zero", "nan", "negative"]);
});

test("a timer armed by a callback runs in a later pass, at its own time", () => {
  const host = new ManualHost();
  const timers = new RequestTimers(host);
  const ran: string[] = [];
  timers.after(10, () => {
    ran.push("first");
    timers.after(5, () => ran.push(`armed by first@${host.nowMs - 1_000}`));
  });
  timers.after(12, () => ran.push("second"));
  host.advance(10);
  assert.deepEqual(ran, ["first"]);
  host.advance(2);
  assert.deepEqual(ran, ["first", "second"]);
  host.advance(3);
  assert.deepEqual(ran, ["first", "second", "armed by first@15"]);
});

test("the process's request timers run on Node's timer, not before their delay", async () => {
  const startedMs = performance.now();
  const ranAfterMs = await new Promise<number>((resolve) => {
    const cancelled = requestTimers.after(5, () => resolve(-1));
    requestTimers.after(30, () => resolve(performance.now() - startedMs));
    cancelled.cancel();
  });
  assert.ok(ranAfterMs >= 30, `ran ${ranAfterMs} ms after it was armed`);
  assert.equal(requestTimers.size, 0);
});

test("a request timer never keeps the process alive; a callback that throws reaches uncaughtException, the others still run", () => {
  const script = `
    const { requestTimers } = await import(${JSON.stringify(new URL("./request-timers.ts", import.meta.url).href)});
    requestTimers.after(60_000, () => console.log("the 60 s timer ran"));
    if (process.argv[1] === "throw") {
      process.on("uncaughtException", (error) => console.log("uncaught: " + error.message));
      const hold = setTimeout(() => {}, 5_000);
      requestTimers.after(5, () => { throw new Error("thrown in a timer"); });
      requestTimers.after(5, () => { console.log("the other one ran"); });
      requestTimers.after(20, () => { console.log("the later one ran"); clearTimeout(hold); });
    }
  `;
  const quiet = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
    encoding: "utf8",
    timeout: 30_000,
  });
  assert.equal(quiet.status, 0, quiet.stderr);
  assert.equal(quiet.stdout, "", "exited before the 60 s timer, with nothing else holding it");
  const throwing = spawnSync(process.execPath, ["--input-type=module", "-e", script, "throw"], {
    encoding: "utf8",
    timeout: 30_000,
  });
  assert.equal(throwing.status, 0, throwing.stderr);
  // Node's own order for Node timers: the throw reaches uncaughtException before the next timer due with it runs.
  assert.deepEqual(throwing.stdout.trim().split("\n"), [
    "uncaught: thrown in a timer",
    "the other one ran",
    "the later one ran",
  ]);
});

/** Keeps the event loop busy for `ms`: timers armed before are all overdue when it next looks. */
function blockEventLoop(ms: number): void {
  const endMs = performance.now() + ms;
  while (performance.now() < endMs) {
    // busy: what a GC pause or a long synchronous task does to the timers
  }
}

test("between two timers due together, what the first set going runs first, and may cancel the second (as Node's)", async () => {
  const ran: string[] = [];
  let second: RequestTimer | undefined;
  await new Promise<void>((resolve) => {
    // The headers timeout fails the attempt, whose catch (a promise callback, a few awaits on) ends the request and
    // cancels its early head, due a little later.
    requestTimers.after(10, () => {
      ran.push("first");
      void Promise.resolve()
        .then(() => undefined)
        .then(() => {
          ran.push("first's promise callbacks");
          second?.cancel();
        });
    });
    second = requestTimers.after(12, () => ran.push("second"));
    requestTimers.after(14, () => {
      ran.push("third");
      resolve();
    });
    blockEventLoop(40);
  });
  assert.deepEqual(ran, ["first", "first's promise callbacks", "third"]);
  assert.equal(requestTimers.size, 0);
});

test("coverage: random arming, cancelling and refreshing, also from callbacks, keeps every live timer and only those", () => {
  // A seeded walk against a plain list of what should be live: after each step no live timer is overdue (none lost
  // to the heap's index bookkeeping), none ran early or twice, and the heap holds the live ones only (none left dead).
  let seed = 20_261_207;
  const random = (): number => {
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
    return seed / 2_147_483_648;
  };
  const delays = [0, 1, 2, 5, 10, 10, 50, 100, 1_000];
  for (let run = 0; run < 300; run++) {
    const host = new ManualHost();
    const timers = new RequestTimers(host);
    const armed: { timer: RequestTimer; delayMs: number; dueMs: number; isLive: boolean; isCancelled: boolean }[] = [];
    const act = (depth: number): void => {
      const choice = random();
      if (choice < 0.4 || armed.length === 0) {
        const delayMs = delays[Math.floor(random() * delays.length)] ?? 1;
        const record = { delayMs, dueMs: host.nowMs + Math.max(1, delayMs), isLive: true, isCancelled: false };
        const timer = timers.after(delayMs, () => {
          assert.ok(entry.isLive, `run ${run}: a timer ran that was not live`);
          assert.ok(host.nowMs >= entry.dueMs, `run ${run}: a timer ran early`);
          entry.isLive = false;
          if (depth < 3) for (let count = Math.floor(random() * 3); count > 0; count--) act(depth + 1);
        });
        const entry = { timer, ...record };
        armed.push(entry);
        return;
      }
      const entry = armed[Math.floor(random() * armed.length)];
      if (entry === undefined) return;
      if (choice < 0.7) {
        entry.timer.cancel();
        entry.isLive = false;
        entry.isCancelled = true;
      } else {
        entry.timer.refresh();
        if (!entry.isCancelled) {
          entry.isLive = true;
          entry.dueMs = host.nowMs + Math.max(1, entry.delayMs);
        }
      }
    };
    for (let step = 0; step < 60; step++) {
      for (let count = Math.floor(random() * 4); count > 0; count--) act(0);
      host.advance(Math.floor(random() * 30));
      const live = armed.filter((entry) => entry.isLive);
      assert.deepEqual(
        live.filter((entry) => entry.dueMs <= host.nowMs).map((entry) => entry.dueMs),
        [],
        `run ${run} step ${step}: overdue timers that did not run`,
      );
      assert.equal(timers.size, live.length, `run ${run} step ${step}: the heap holds only the live timers`);
    }
  }
});
