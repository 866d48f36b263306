// Conversation rows in this process's memory (`state.path: ":memory:"`, and a server built without a store): bounded
// by count, total bytes and age like the persistent stores; over a bound, the oldest write of the owner holding the
// most goes first (owner-shares.ts). A row's events (a conversation's log, conversation-log.ts) count in its bytes
// and go with it, as in the state file and Redis.
import type { Clock } from "../../clock.ts";
import type { ConversationRows, KeptResponseRow } from "./conversation-shapes.ts";
import { OwnerShares, UNNAMED_OWNER } from "./owner-shares.ts";

interface MemoryRow {
  readonly json: string;
  readonly events: string[];
  /** The row's JSON and its events, UTF-8. */
  readonly bytes: number;
  readonly storedAtMs: number;
  readonly owner: string;
}

export class ConversationRowsInMemory implements ConversationRows {
  readonly #limits: { readonly maxEntries: number; readonly maxBytes: number; readonly maxAgeMs: number };
  readonly #clock: Clock;
  /** Insertion order is write order: a Map iterates oldest first, and a put moves a row last. */
  readonly #rows = new Map<string, MemoryRow>();
  readonly #owners = new OwnerShares();
  #bytes = 0;

  constructor(limits: { maxEntries: number; maxBytes: number; maxAgeMs: number }, clock: Clock) {
    this.#limits = limits;
    this.#clock = clock;
  }

  async put(row: KeptResponseRow): Promise<void> {
    this.#remove(row.id);
    this.#keep(row, []);
  }

  async putIfUnchanged(
    row: KeptResponseRow,
    expectedJson: string,
    options: { readonly events?: { readonly keptCount: number; readonly events: readonly string[] } } = {},
  ): Promise<boolean> {
    this.#expire();
    const current = this.#rows.get(row.id);
    if (current === undefined || current.json !== expectedJson) return false;
    const events = [...current.events];
    if (options.events !== undefined) {
      // Only this process writes here, and a caller's count is what it read: no landed-but-lost appends to skip.
      if (events.length !== options.events.keptCount) return false;
      events.push(...options.events.events);
    }
    this.#remove(row.id);
    return this.#keep(row, events);
  }

  async get(id: string): Promise<string | undefined> {
    this.#expire();
    return this.#rows.get(id)?.json;
  }

  async getEvents(id: string, from: number): Promise<string[]> {
    return this.#rows.get(id)?.events.slice(Math.max(0, from)) ?? [];
  }

  async delete(id: string): Promise<boolean> {
    this.#expire();
    return this.#remove(id);
  }

  /** Keeps a row (already removed) with its events, then evicts past the bounds; one over them alone is not kept. */
  #keep(row: KeptResponseRow, events: string[]): boolean {
    let bytes = Buffer.byteLength(row.json);
    for (const event of events) bytes += Buffer.byteLength(event);
    if (bytes > this.#limits.maxBytes || this.#limits.maxEntries <= 0) return false;
    const owner = row.owner ?? UNNAMED_OWNER;
    this.#rows.set(row.id, { json: row.json, events, bytes, storedAtMs: this.#clock.now(), owner });
    this.#bytes += bytes;
    this.#owners.add(owner, row.id, bytes);
    this.#expire();
    for (;;) {
      const measure =
        this.#rows.size > this.#limits.maxEntries ? "count" : this.#bytes > this.#limits.maxBytes ? "bytes" : undefined;
      const victim = measure === undefined ? undefined : this.#owners.victim(measure);
      if (victim === undefined) return true;
      this.#remove(victim);
    }
  }

  #remove(id: string): boolean {
    const row = this.#rows.get(id);
    if (row === undefined) return false;
    this.#rows.delete(id);
    this.#bytes -= row.bytes;
    this.#owners.remove(row.owner, id, row.bytes);
    return true;
  }

  #expire(): void {
    const oldestKeptMs = this.#clock.now() - this.#limits.maxAgeMs;
    for (const [id, row] of this.#rows) {
      if (row.storedAtMs > oldestKeptMs) break;
      this.#remove(id);
    }
  }
}
