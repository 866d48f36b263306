import assert from "node:assert/strict";
import { test } from "node:test";
import { type Measure, ScopeHoldings } from "./scope-holdings.ts";

/** The rule written as a scan of every scope: what the heaps must always agree with. */
class Reference {
  readonly scopes = new Map<string, { ids: Map<string, number>; bytes: number }>();
  uses = 0;
  add(scope: string, id: string, bytes: number): void {
    const held = this.scopes.get(scope) ?? { ids: new Map(), bytes: 0 };
    held.ids.set(id, this.uses++);
    held.bytes += bytes;
    this.scopes.set(scope, held);
  }
  use(scope: string, id: string): void {
    const held = this.scopes.get(scope);
    if (held === undefined || !held.ids.delete(id)) return;
    held.ids.set(id, this.uses++);
  }
  remove(scope: string, id: string, bytes: number): void {
    const held = this.scopes.get(scope);
    if (held === undefined || !held.ids.delete(id)) return;
    held.bytes -= bytes;
    if (held.ids.size === 0) this.scopes.delete(scope);
  }
  victim(measure: Measure): string | undefined {
    let chosen: { amount: number; id: string; use: number } | undefined;
    for (const held of this.scopes.values()) {
      const [id, use] = held.ids.entries().next().value ?? ["", 0];
      const amount = measure === "count" ? held.ids.size : held.bytes;
      if (chosen === undefined || amount > chosen.amount || (amount === chosen.amount && use < chosen.use)) {
        chosen = { amount, id, use };
      }
    }
    return chosen?.id;
  }
}

test("the heaps pick the value the rule names (a scan of every scope) through random keeps, uses and removals", () => {
  let seed = 7;
  const random = (below: number) => {
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
    return seed % below;
  };
  const holdings = new ScopeHoldings();
  const reference = new Reference();
  const held = new Map<string, { scope: string; bytes: number }>();
  for (let step = 0; step < 20_000; step++) {
    const scope = `c:${random(12)}`;
    const id = `${scope}/${random(40)}`;
    const action = random(10);
    const kept = held.get(id);
    if (kept === undefined && action < 5) {
      // Sizes from a few values, so that scopes often hold as much and the tie rule is exercised.
      const bytes = 100 * (1 + random(3));
      holdings.add(scope, id, bytes);
      reference.add(scope, id, bytes);
      held.set(id, { scope, bytes });
    } else if (kept !== undefined && action < 8) {
      holdings.use(kept.scope, id);
      reference.use(kept.scope, id);
    } else if (kept !== undefined) {
      holdings.remove(kept.scope, id, kept.bytes);
      reference.remove(kept.scope, id, kept.bytes);
      held.delete(id);
    }
    for (const measure of ["count", "bytes"] as const) {
      assert.equal(holdings.victim(measure), reference.victim(measure), `${measure} at step ${step}`);
    }
    // Evict now and then as the store does, so that scopes empty out and come back.
    if (random(20) === 0) {
      const victim = holdings.victim("bytes");
      const entry = victim === undefined ? undefined : held.get(victim);
      if (victim !== undefined && entry !== undefined) {
        holdings.remove(entry.scope, victim, entry.bytes);
        reference.remove(entry.scope, victim, entry.bytes);
        held.delete(victim);
      }
    }
  }
  assert.ok(reference.scopes.size > 1);
});

test("10,000 clients of one value each: evicted one by one, oldest first, and no client left behind once empty", () => {
  const holdings = new ScopeHoldings();
  for (let client = 0; client < 10_000; client++) holdings.add(`c:${client}`, `c:${client}/call`, 100 + (client % 3));
  assert.equal(holdings.size, 10_000);
  // All hold one call: by count the tie goes against the oldest; by bytes the largest (102-byte ones), oldest first.
  assert.equal(holdings.victim("count"), "c:0/call");
  assert.equal(holdings.victim("bytes"), "c:2/call");
  for (let client = 0; client < 10_000; client++) {
    assert.equal(holdings.victim("count"), `c:${client}/call`);
    holdings.remove(`c:${client}`, `c:${client}/call`, 100 + (client % 3));
  }
  assert.equal(holdings.size, 0, "empty clients stay in the bookkeeping");
  assert.equal(holdings.victim("bytes"), undefined);
  holdings.add("c:0", "c:0/again", 5);
  assert.equal(holdings.size, 1);
  assert.equal(holdings.victim("bytes"), "c:0/again");
});

test("a client's whole history used oldest first costs in proportion to it, not its square", () => {
  // An agent sends its calls back on every turn, oldest first: each use is of the scope's least recently used. Found
  // by a Map iterator made anew, each walked the slots the uses before it left deleted at the head of the table:
  // 20,000 calls recalled by the memory store took ~70 ms of the event loop, ~200 ms each next time (15 ms before).
  const ids = Array.from({ length: 20_000 }, (_, n) => `c:a/${n}`);
  const fastest = (pass: () => void): number => {
    let best = Number.POSITIVE_INFINITY;
    for (let turn = 0; turn < 5; turn++) {
      const started = performance.now();
      pass();
      best = Math.min(best, performance.now() - started);
    }
    return best;
  };
  const holdings = new ScopeHoldings();
  for (const id of ids) holdings.add("c:a", id, 10);
  holdings.add("c:b", "c:b/0", 10);
  const used = fastest(() => {
    for (const id of ids) holdings.use("c:a", id);
  });
  assert.equal(holdings.victim("count"), "c:a/0");
  // What the same uses cost a Map alone (a use moves the id to the end): the work that cannot be avoided.
  const alone = new Map(ids.map((id, n) => [id, n]));
  let uses = ids.length;
  const moved = fastest(() => {
    for (const id of ids) {
      alone.delete(id);
      alone.set(id, uses++);
    }
  });
  assert.ok(used < 12 * moved, `${used.toFixed(1)} ms for 20,000 uses, a Map alone ${moved.toFixed(1)} ms`);
});
