// Kept responses for `previous_response_id`, `item_reference` and GET/DELETE /v1/responses/{id}: in memory,
// bounded by count, by total size and by age (oldest evicted first). A continuation's entry holds its own turn and
// the ids of the entries before it (kept-chain-history.ts; every 16th the whole chain), which its put stamps as
// written now, so that a chain's entries age and are evicted together. A turn on a conversation holds its
// own items and where the earlier ones live instead (kept-conversation-history.ts). Over a bound, the owner (client) holding the most loses its
// oldest first (owner-shares.ts): one client's flood does not evict another's responses.
import type { Clock } from "../../clock.ts";
import type { ChatMessage } from "../chat-completions.ts";
import { indexedItemKeys, type KeptChain } from "./chain-items.ts";
import { OwnerShares, UNNAMED_OWNER } from "./owner-shares.ts";
import type { OutputItem, ResponseObject } from "./response-object.ts";

export interface StoredResponse {
  readonly response: ResponseObject;
  /** The named client that created it (a named key in `server.api_keys`): only it, or an unnamed key, reads it. */
  readonly client?: string;
  /**
   * The conversation up to and including this response's output, as chat messages, without `instructions`; with
   * `conversationHistory`, only this response's own input and output (withConversationHistory adds the rest).
   */
  readonly conversation: readonly ChatMessage[];
  /**
   * A turn on a conversation (`conversation`): the messages before its own are that conversation's items up to where
   * it was when the request read it (kept-conversation-history.ts). Absent: `conversation` is whole (a chain, or a
   * row kept before 2026-12-07).
   */
  readonly conversationHistory?: KeptConversationHistory;
  /**
   * A continuation (`previous_response_id`): the responses whose turns come before its own, which `conversation` then
   * holds alone (kept-chain-history.ts). Absent: `conversation` is whole (a chain's first response, every 16th, or a
   * row kept before 2026-12-07).
   */
  readonly chainHistory?: KeptChainHistory;
  /**
   * The tools the conversation's `tool_search_output` items loaded up to this response, as the client listed them
   * (tool-search.ts): the kept conversation holds the outputs only as the text the model read, and a continuation
   * (`previous_response_id`) must still offer the tools, as OpenAI does. Absent: none (or kept by an older version).
   */
  readonly loadedTools?: readonly Record<string, unknown>[];
  /**
   * The ids of the responses before it in its chain (`previous_response_id`), oldest first: an `item_reference` to
   * one of their output items names what a continuation from it already sends (duplicate-items.ts). Absent: kept by
   * an earlier version, or continuing one that was (the check then compares kept conversations).
   */
  readonly chainIds?: readonly string[];
  /**
   * The ids of the items its kept conversation holds before its own output (the chain's outputs, and the items its
   * inputs sent with ids or referenced): an input item carrying one is a duplicate (duplicate-items.ts). Absent: as
   * `chainIds`.
   */
  readonly historyItemIds?: readonly string[];
  /** What tells the items its chain holds, the same size whatever the chain's length (duplicate-items.ts). */
  readonly chain?: KeptChain;
  /** A background streamed response (`background` and `stream`): its SSE events so far, replayed to a reconnect. */
  readonly events?: readonly string[];
  /** Its events are kept beside the row, appended (a store that does so: Redis); `events` is read from there. */
  readonly eventsAppended?: true;
  /** A background response still running: when its run last wrote it (ms); see background.ts. */
  readonly heartbeatAtMs?: number;
  /**
   * A background run adding its answer's items to its conversation (written by a heartbeat before it adds them, gone
   * with its final write): a reader that finds the run stopped (its process died in between) takes them out again.
   */
  readonly joining?: KeptJoin;
}

/** The items a background run's answer adds to its conversation (StoredResponse.joining). */
export interface KeptJoin {
  readonly conversationId: string;
  readonly itemIds: readonly string[];
}

/** Where the turns before a continuation live (StoredResponse.chainHistory; kept-chain-history.ts). */
export interface KeptChainHistory {
  /**
   * The responses whose turns come before this one's, oldest first: the first holds the whole history up to its
   * answer, each later one its own turn. The last is the one this response continued (`previous_response_id`).
   */
  readonly previousIds: readonly string[];
}

/** Where the turns before a kept response live (StoredResponse.conversationHistory; kept-conversation-history.ts). */
export interface KeptConversationHistory {
  /** The conversation the response's request named. */
  readonly id: string;
  /** Its last item when the request read it: the history is its items up to and including this one. */
  readonly throughItemId: string;
  /**
   * The id the turn's first input item got in the conversation: when `throughItemId` was deleted since, the history
   * is the items before this one. Absent: the turn sent no input item (or its items were not added).
   */
  readonly nextItemId?: string;
}

export interface ResponseStoreLimits {
  /** Most responses kept (count). */
  readonly maxEntries: number;
  /** Most bytes kept, counted as the UTF-8 size of each entry's JSON. */
  readonly maxBytes: number;
  /** How long a response is kept after it was stored, in milliseconds. */
  readonly maxAgeMs: number;
}

interface Entry {
  readonly stored: StoredResponse;
  readonly bytes: number;
  readonly storedAtMs: number;
  /** A background stream's events as `putAppending` keeps them: the store's own list (`stored.events`), appended to. */
  readonly events?: AppendedEvents;
}

/** A kept list of events appended to, and the UTF-8 size of its JSON (`[...]`) as it grows. */
interface AppendedEvents {
  readonly list: string[];
  readonly jsonBytes: number;
}

/** The UTF-8 size of `,"events":` in an entry's JSON. */
const EVENTS_KEY_BYTES = Buffer.byteLength(',"events":');

export class ResponseStore {
  readonly #limits: ResponseStoreLimits;
  readonly #clock: Clock;
  /** Insertion order is age order: a Map iterates oldest first. */
  readonly #entries = new Map<string, Entry>();
  readonly #items = new Map<string, { responseId: string; item: OutputItem }>();
  /** chainItemKey(root, input item id) -> the response that brought it (duplicate-items.ts). */
  readonly #inputItems = new Map<string, string>();
  readonly #owners = new OwnerShares();
  #bytes = 0;

  constructor(limits: ResponseStoreLimits, clock: Clock) {
    this.#limits = limits;
    this.#clock = clock;
  }

  get size(): number {
    return this.#entries.size;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Keeps a response; false when it alone is larger than the byte cap (then nothing is kept). `whole`: kept instead
   * when a row `stored` reads its history from is gone (it could not be continued).
   */
  put(stored: StoredResponse, whole?: StoredResponse): boolean {
    const isLinked = this.#restamp(stored.chainHistory?.previousIds ?? []);
    const kept = isLinked || whole === undefined ? stored : whole;
    return this.#keep({ stored: kept, bytes: Buffer.byteLength(JSON.stringify(kept)), storedAtMs: this.#clock.now() });
  }

  /**
   * The rows a continuation's row reads its history from, kept as if written now (kept-chain-history.ts): oldest-first
   * eviction and max_age_ms then take a chain's rows with its newest, not its first while its newest is still kept.
   */
  #restamp(ids: readonly string[]): boolean {
    this.#expire();
    const storedAtMs = this.#clock.now();
    let isLinked = true;
    for (const id of ids) {
      const entry = this.#entries.get(id);
      isLinked &&= entry !== undefined;
      if (entry === undefined) continue;
      const owner = entry.stored.client ?? UNNAMED_OWNER;
      this.#entries.delete(id);
      this.#entries.set(id, { ...entry, storedAtMs });
      this.#owners.remove(owner, id, entry.bytes);
      this.#owners.add(owner, id, entry.bytes);
    }
    return isLinked;
  }

  /**
   * Keeps a background response's state whose events extend those kept (only its run writes them, in order, and an
   * event once kept never changes: as the state file and Redis append them): only the events past the kept ones are
   * copied, onto the store's own list, and only their bytes counted. `put` kept each heartbeat's whole list anew
   * and serialised it to count its bytes: O(n^2) over a long run. Events that do not extend the kept ones (fewer, or
   * another last kept event) replace them. The kept list grows in place: a reader that keeps it copies it.
   */
  putAppending(stored: StoredResponse): boolean {
    const incoming = stored.events;
    if (incoming === undefined) return this.put(stored);
    const { events: _events, ...row } = stored;
    const kept = this.#entries.get(stored.response.id)?.events;
    const keptCount = kept?.list.length ?? 0;
    const isExtended =
      kept !== undefined && keptCount <= incoming.length && incoming[keptCount - 1] === kept.list[keptCount - 1];
    const list = isExtended ? kept.list : [];
    let jsonBytes = isExtended ? kept.jsonBytes : 2; // `[]`
    const added = incoming.slice(list.length);
    for (const [index, event] of added.entries()) {
      jsonBytes += Buffer.byteLength(JSON.stringify(event)) + (list.length + index > 0 ? 1 : 0); // a comma first
    }
    const bytes = Buffer.byteLength(JSON.stringify(row)) + EVENTS_KEY_BYTES + jsonBytes;
    if (bytes > this.#limits.maxBytes || this.#limits.maxEntries <= 0) {
      this.delete(stored.response.id);
      return false;
    }
    for (const event of added) list.push(event);
    return this.#keep({
      stored: { ...row, events: list },
      bytes,
      storedAtMs: this.#clock.now(),
      events: { list, jsonBytes },
    });
  }

  #keep(entry: Entry): boolean {
    const { stored, bytes } = entry;
    this.delete(stored.response.id);
    if (bytes > this.#limits.maxBytes || this.#limits.maxEntries <= 0) return false;
    this.#entries.set(stored.response.id, entry);
    this.#bytes += bytes;
    this.#owners.add(stored.client ?? UNNAMED_OWNER, stored.response.id, bytes);
    for (const item of stored.response.output) this.#items.set(item.id, { responseId: stored.response.id, item });
    for (const key of inputItemKeys(stored)) this.#inputItems.set(key, stored.response.id);
    this.#evict();
    return true;
  }

  get(id: string): StoredResponse | undefined {
    this.#expire();
    return this.#entries.get(id)?.stored;
  }

  /** An output item of a kept response, by its id (`msg_...`, `fc_...`). */
  findItem(id: string): OutputItem | undefined {
    this.#expire();
    return this.#items.get(id)?.item;
  }

  /** The kept response one of whose output items has this id, or that brought the input item of this chainItemKey. */
  responseWithItem(id: string): StoredResponse | undefined {
    this.#expire();
    const responseId = this.#items.get(id)?.responseId ?? this.#inputItems.get(id);
    return responseId === undefined ? undefined : this.#entries.get(responseId)?.stored;
  }

  delete(id: string): boolean {
    const entry = this.#entries.get(id);
    if (entry === undefined) return false;
    this.#entries.delete(id);
    this.#bytes -= entry.bytes;
    this.#owners.remove(entry.stored.client ?? UNNAMED_OWNER, id, entry.bytes);
    for (const item of entry.stored.response.output) {
      if (this.#items.get(item.id)?.responseId === id) this.#items.delete(item.id);
    }
    for (const key of inputItemKeys(entry.stored)) {
      if (this.#inputItems.get(key) === id) this.#inputItems.delete(key);
    }
    return true;
  }

  #evict(): void {
    this.#expire();
    for (;;) {
      const measure =
        this.#entries.size > this.#limits.maxEntries
          ? "count"
          : this.#bytes > this.#limits.maxBytes
            ? "bytes"
            : undefined;
      const victim = measure === undefined ? undefined : this.#owners.victim(measure);
      if (victim === undefined) return;
      this.delete(victim);
    }
  }

  #expire(): void {
    const oldestKeptMs = this.#clock.now() - this.#limits.maxAgeMs;
    for (const [id, entry] of this.#entries) {
      if (entry.storedAtMs > oldestKeptMs) break;
      this.delete(id);
    }
  }
}

/** The keys a kept response's input items are indexed under (its output items are indexed with the items). */
function inputItemKeys(stored: StoredResponse): string[] {
  return indexedItemKeys(stored).slice(stored.response.output.length);
}
