// A/B of the in-process budget book's CPU per request, in one process: two checkouts' `src/limits/budgets.ts`
// (e.g. a change and its base, `git archive <base> src | tar -x -C /tmp/base`) loaded side by side, each driven
// through what the request path asks of it per request (the plan's check, reserve, reconcile, release) on a
// realistic config: rpm, tpm and rpd on a provider's pool and on its model. Each round drives both in alternating
// slices of 20,000 requests, so a shared machine's drift lands on both; CPU is the process's (every thread: the
// garbage collector's too).
// usage: node bench/budgets-ab.ts [--rounds N] [--iterations N] dirA dirB
import { isAbsolute, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import type { BudgetScope } from "../src/limits/budgets.ts";
import { median } from "./ab-helpers.ts";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    rounds: { type: "string", default: "5" },
    iterations: { type: "string", default: "1000000" },
  },
});
if (positionals.length !== 2) throw new Error("usage: node bench/budgets-ab.ts [options] dirA dirB");
const rounds = Number(values.rounds);
const iterations = Number(values.iterations);

/** The one export this bench drives; both checkouts' books have it. */
type BudgetsModule = typeof import("../src/limits/budgets.ts");

async function load(dir: string): Promise<BudgetsModule> {
  const root = isAbsolute(dir) ? dir : resolve(dir);
  return (await import(join(root, "src", "limits", "budgets.ts"))) as BudgetsModule;
}

const variants = await Promise.all(
  positionals.map(async (dir) => ({ label: dir, budgets: await load(dir), nsPerRequest: [] as number[] })),
);

/** A free tier's pool and one of its models; a request every 150 ms keeps all of them just under their limits. */
function scopes(budgets: BudgetsModule, tag: string): BudgetScope[] {
  const dayReset = budgets.UTC_MIDNIGHT;
  return [
    { id: `provider:p-${tag}`, ...budgets.rulesFromLimits({ rpm: 1_000, tpm: 1_000_000, rpd: 1_000_000 }), dayReset },
    { id: `deployment:p-${tag}/m`, ...budgets.rulesFromLimits({ rpm: 500, tpm: 500_000, rpd: 1_000_000 }), dayReset },
  ];
}
const STEP_MS = 150;
const COST = { tokens: 1_000 };

/** One variant's book in a round, driven a slice at a time; its clock goes on from slice to slice. */
class Driver {
  readonly #budgets: BudgetsModule;
  readonly #book: InstanceType<BudgetsModule["BudgetBook"]>;
  readonly #scopes: BudgetScope[];
  #nowMs = Date.UTC(2026, 0, 1);
  /** CPU µs spent in this driver's slices. */
  cpuUs = 0;
  requests = 0;

  constructor(budgets: BudgetsModule, tag: string) {
    this.#budgets = budgets;
    this.#book = new budgets.BudgetBook();
    this.#scopes = scopes(budgets, tag);
  }

  slice(count: number): void {
    const book = this.#book;
    const start = process.cpuUsage();
    for (let index = 0; index < count; index++) {
      this.#nowMs += STEP_MS;
      const nowMs = this.#nowMs;
      if (!book.check(this.#scopes, COST, nowMs).isAllowed) throw new Error(`denied at request ${this.requests}`);
      const reservation = book.reserve(this.#scopes, COST, nowMs);
      if (!this.#budgets.isReservation(reservation)) throw new Error(`refused: ${reservation.reason}`);
      book.markSent(reservation, nowMs);
      book.reconcile(reservation, 800, nowMs + 40);
      book.release(reservation);
    }
    const used = process.cpuUsage(start);
    this.cpuUs += used.user + used.system;
    this.requests += count;
  }
}

/**
 * One round: a fresh book per variant, each driven `iterations` requests in alternating slices (the order rotated
 * every slice pair), so that a load change on a shared machine lands on both. Returns CPU ns per request.
 */
function round(tag: string): number[] {
  const drivers = variants.map((variant, index) => new Driver(variant.budgets, `${tag}-${index}`));
  for (let done = 0, turn = 0; done < iterations; done += SLICE, turn++) {
    const count = Math.min(SLICE, iterations - done);
    const order = turn % 2 === 0 ? drivers : [...drivers].reverse();
    for (const driver of order) driver.slice(count);
  }
  return drivers.map((driver) => (driver.cpuUs * 1_000) / driver.requests);
}
const SLICE = 20_000;

// Two untimed rounds: the optimizing compiler settles on both books before any round counts.
round("warm0");
round("warm1");
for (let index = 0; index < rounds; index++) {
  const nsPerRequest = round(`r${index}`);
  for (const [position, variant] of variants.entries()) variant.nsPerRequest.push(nsPerRequest[position] as number);
  console.log(
    `round ${index + 1}: ${variants.map((variant) => `${variant.label} ${(variant.nsPerRequest.at(-1) as number).toFixed(0)} ns`).join(", ")}`,
  );
}
const [first, second] = variants as [(typeof variants)[0], (typeof variants)[0]];
const ratios = first.nsPerRequest.map((ns, index) => (second.nsPerRequest[index] as number) / ns);
console.log(
  `median CPU per request: ${first.label} ${median(first.nsPerRequest).toFixed(0)} ns, ${second.label} ${median(second.nsPerRequest).toFixed(0)} ns; ` +
    `median ratio B/A ${median(ratios).toFixed(3)} (per round: ${ratios.map((ratio) => ratio.toFixed(3)).join(", ")})`,
);
