// Kept conversations (OpenAI's Conversations API, and `conversation` on a Responses request), in a store of their own
// beside the kept responses' (the embedded state file, Redis, or memory: cli/kept-responses-store.ts), bounded like
// it by count, total bytes and age. A conversation is a small head row and an append-only log of its items beside it
// (conversation-log.ts): a change appends its entries and writes the head again, which also renews its age (a
// conversation in use does not expire), so a turn writes its own items, not the whole conversation.
//
// Concurrency: a change reads the head, appends and writes the head back. Two requests on one conversation at once
// would each write their own, so this process runs the writes of one conversation one after the other (a promise
// chain per id), and every write is a compare and set (the store's putIfUnchanged, which appends the entries in the
// same step): written only if the head is still what was read, else read and tried again (several processes share
// a Redis store).
import type { Clock } from "../../clock.ts";
import { GatewayError, InvalidRequestError, ServiceUnavailableError } from "../../errors/gateway-error.ts";
import type { IdSource } from "../ids.ts";
import {
  addEntry,
  applyEntries,
  type ConversationHead,
  contentOf,
  deletionRoom,
  headItemsEntry,
  removeEntry,
} from "./conversation-log.ts";
import type {
  ConversationItem,
  ConversationRows,
  DeletedItem,
  KeptResponseRow,
  StoredConversation,
} from "./conversation-shapes.ts";

export {
  type ConversationObject,
  checkConversationId,
  checkItemId,
  isConversationId,
  toConversationObject,
} from "./conversation-ids.ts";
export type { ConversationItem, ConversationRows, DeletedItem, KeptResponseRow, StoredConversation };

/** Deleted items remembered per conversation for `after` (a few bytes each; older ones are a 400 as an unknown id). */
export const MAX_DELETED_ITEMS = 100;

/**
 * What became of an answer's items: `added`; `too_large` (they would have pushed the conversation past its bound);
 * `deleted` (the conversation was deleted meanwhile); `store_unavailable` (the store failed, or others kept changing
 * it). The Responses door tells a client any but `added` (`x-gateway-conversation-not-updated`).
 */
export type ConversationUpdate = "added" | "too_large" | "deleted" | "store_unavailable";

/** Times a change is read and tried again when another process changed the conversation meanwhile. */
const MAX_CHANGE_ATTEMPTS = 10;

/** What a change does: the entries it appends to the log, and the head's fields it sets. */
interface Change {
  readonly entries: readonly string[];
  readonly metadata?: Readonly<Record<string, string>>;
  readonly deleted?: readonly DeletedItem[];
  /**
   * Checked against the bound without the room kept for deletions (deletionRoom): an item deleted (the room was its
   * own), or metadata no larger than before (it takes none of that room).
   */
  readonly isInRoom?: boolean;
}

/** A conversation as read: its head's JSON (what a compare and set expects), the head, and the assembled view. */
interface Read {
  readonly json: string;
  readonly head: ConversationHead;
  readonly stored: StoredConversation;
}

/**
 * The most bytes one conversation may take (its head's JSON and its log's entries; a deleted item's entry stays in the
 * log until the conversation goes); never more than the store's own `max_bytes` (it would not be kept).
 */
export const MAX_CONVERSATION_BYTES = 16 * 1024 * 1024;

function unreachable(error: unknown): GatewayError {
  if (error instanceof GatewayError) return error; // the store's own answer (a locked state file's 503)
  const message = "The store of conversations cannot be reached; try again shortly.";
  return new ServiceUnavailableError(message, { cause: error });
}

export class Conversations {
  readonly #rows: ConversationRows;
  readonly #maxBytes: number;
  readonly #clock: Clock;
  readonly #ids: IdSource;
  readonly #onAppendError: (error: unknown) => void;
  readonly #bounded: <T>(write: Promise<T>) => Promise<T>;
  readonly #writes = new Map<string, Promise<unknown>>(); // each conversation's last write here (see the header)

  /**
   * `storeMaxBytes`: the row store's `max_bytes` (a larger conversation would not be kept). `onAppendError`: an
   * answer's items could not be added (the store failed, or the conversation is full); the answer is sent anyway.
   * `bounded`: a write within `responses.store.write_timeout_ms` (a store that never answers holds no request).
   */
  constructor(
    rows: ConversationRows,
    storeMaxBytes: number,
    clock: Clock,
    ids: IdSource,
    onAppendError: (error: unknown) => void,
    bounded: <T>(write: Promise<T>) => Promise<T> = (write) => write,
  ) {
    this.#rows = rows;
    this.#maxBytes = Math.min(MAX_CONVERSATION_BYTES, storeMaxBytes);
    this.#clock = clock;
    this.#ids = ids;
    this.#onAppendError = onAppendError;
    this.#bounded = bounded;
  }

  get maxBytes(): number {
    return this.#maxBytes;
  }

  async create(
    client: string | null,
    metadata: Record<string, string>,
    items: ConversationItem[],
    clientIds: Readonly<Record<string, string>> = {},
  ): Promise<StoredConversation> {
    // Its items (at most 20) in the head: its first change moves them into the log (conversation-log.ts).
    const head: ConversationHead = {
      id: this.#ids("conv_"),
      created_at: Math.floor(this.#clock.now() / 1000),
      metadata,
      ...(client === null ? {} : { client }),
      items,
      ...(Object.keys(clientIds).length === 0 ? {} : { clientIds }),
    };
    const json = JSON.stringify(head);
    this.#checkBound(Buffer.byteLength(json) + deletionRoom(items, MAX_DELETED_ITEMS), "items");
    try {
      await this.#bounded(this.#rows.put(this.#rowOf(head, json)));
    } catch (error) {
      throw unreachable(error);
    }
    return this.#viewOf(head, json, contentOf(head, []));
  }

  /** The conversation, when `client` may reach it (its own, or any for an unnamed key). */
  async get(id: string, client: string | null): Promise<StoredConversation | undefined> {
    return (await this.#read(id, client))?.stored;
  }

  /**
   * The bytes the conversation would take with `items` added, with the room kept to delete its items (deletionRoom;
   * the check a Responses request's input gets before it goes upstream: conversation-appender.ts).
   */
  bytesWith(
    stored: StoredConversation,
    items: readonly ConversationItem[],
    clientIds: Readonly<Record<string, string>>,
  ): number {
    const room = deletionRoom([...stored.items, ...items], MAX_DELETED_ITEMS);
    return stored.bytes + Buffer.byteLength(addEntry(items, clientIds)) + room;
  }

  /**
   * The head and its log's entries. The two are read apart: a change landing in between appends entries past the
   * head's count (left out), and a delete or eviction in between leaves fewer than it counts (read again).
   */
  async #read(id: string, client: string | null): Promise<Read | undefined> {
    try {
      for (let attempt = 0; attempt < MAX_CHANGE_ATTEMPTS; attempt++) {
        const json = await this.#rows.get(id);
        if (json === undefined) return undefined;
        const head = JSON.parse(json) as ConversationHead;
        if (client !== null && head.client !== client) return undefined;
        const count = head.log ?? 0;
        const entries = count === 0 ? [] : (await this.#rows.getEvents(id, 0)).slice(0, count);
        if (entries.length === count) return { json, head, stored: this.#viewOf(head, json, contentOf(head, entries)) };
      }
    } catch (error) {
      throw unreachable(error);
    }
    throw new ServiceUnavailableError(`Conversation '${id}' could not be read whole (it kept changing); try again.`);
  }

  #viewOf(head: ConversationHead, json: string, content: ReturnType<typeof contentOf>): StoredConversation {
    return {
      id: head.id,
      created_at: head.created_at,
      metadata: head.metadata,
      ...(head.client === undefined ? {} : { client: head.client }),
      items: content.items,
      ...(Object.keys(content.clientIds).length === 0 ? {} : { clientIds: content.clientIds }),
      ...(head.deleted === undefined ? {} : { deleted: head.deleted }),
      bytes: Buffer.byteLength(json) + (head.logBytes ?? 0),
    };
  }

  setMetadata(
    id: string,
    client: string | null,
    metadata: Record<string, string>,
  ): Promise<StoredConversation | undefined> {
    const bytesOf = (value: unknown) => Buffer.byteLength(JSON.stringify(value));
    const change = (stored: StoredConversation) => ({
      entries: [],
      metadata,
      isInRoom: bytesOf(metadata) <= bytesOf(stored.metadata),
    });
    return this.#change(id, client, change, "metadata");
  }

  /**
   * Adds items at the end; a conversation that would grow past its bound is a 400 naming `param`, and unchanged.
   * `check` throws to refuse the items against the conversation as read for this write (each attempt's own read).
   */
  append(
    id: string,
    client: string | null,
    items: readonly ConversationItem[],
    param = "items",
    clientIds: Readonly<Record<string, string>> = {},
    check: (stored: StoredConversation) => void = () => {},
  ): Promise<StoredConversation | undefined> {
    const change = (stored: StoredConversation) => {
      check(stored);
      // No items, no entry: an empty one (10 bytes) a request at a time grew the log, every read paying for it.
      return items.length === 0 ? undefined : { entries: [addEntry(items, clientIds)] };
    };
    return this.#change(id, client, change, param);
  }

  /**
   * After an answer: its input and output items are added; a failure is reported and returned, not thrown (the
   * answer is already made, and a client reading it must get it; the door tells it the conversation was not
   * updated). A conversation deleted meanwhile stays deleted.
   */
  async appendAfterAnswer(
    id: string,
    client: string | null,
    items: readonly ConversationItem[],
    clientIds: Readonly<Record<string, string>> = {},
  ): Promise<ConversationUpdate> {
    try {
      return (await this.append(id, client, items, "conversation", clientIds)) === undefined ? "deleted" : "added";
    } catch (error) {
      this.#onAppendError(error);
      return error instanceof InvalidRequestError ? "too_large" : "store_unavailable";
    }
  }

  /** After a refused answer (background-final-write.ts): its items taken out again; false: failed (reported). */
  async removeAfterRefusal(id: string, client: string | null, itemIds: readonly string[]): Promise<boolean> {
    try {
      await this.deleteItems(id, client, itemIds);
      return true;
    } catch (error) {
      this.#onAppendError(error);
      return false;
    }
  }

  /**
   * The conversation without the item; undefined: no such conversation; "no item": it has no such item. Its clientIds
   * entry goes with it: the conversation no longer holds it, so sending it again is no duplicate.
   */
  async deleteItem(
    id: string,
    client: string | null,
    itemId: string,
  ): Promise<StoredConversation | undefined | "no item"> {
    const deleted = await this.deleteItems(id, client, [itemId]);
    return deleted === undefined ? undefined : deleted.count === 0 ? "no item" : deleted.stored;
  }

  /**
   * The conversation without those of `itemIds` it has (in one write; each remembered as deleted, as deleteItem does),
   * and how many it had; undefined: no such conversation.
   */
  async deleteItems(
    id: string,
    client: string | null,
    itemIds: readonly string[],
  ): Promise<{ readonly stored: StoredConversation; readonly count: number } | undefined> {
    let count = 0;
    const stored = await this.#change(
      id,
      client,
      (read) => {
        const items = [...read.items];
        const deleted = [...(read.deleted ?? [])];
        const entries: string[] = [];
        for (const itemId of itemIds) {
          const index = items.findIndex((item) => item.id === itemId);
          if (index === -1) continue;
          deleted.push({ id: itemId, previousId: index === 0 ? null : (items[index - 1]?.id ?? null) });
          items.splice(index, 1);
          entries.push(removeEntry(itemId));
        }
        count = entries.length;
        return count === 0 ? undefined : { entries, deleted: deleted.slice(-MAX_DELETED_ITEMS), isInRoom: true };
      },
      "item_id",
    );
    return stored === undefined ? undefined : { stored, count };
  }

  async delete(id: string, client: string | null): Promise<boolean> {
    // Its head alone says whose it is: a log that cannot be read whole (a list evicted by Redis's maxmemory) does not
    // keep it from being deleted.
    return this.#serially(id, async () => {
      try {
        const json = await this.#rows.get(id);
        if (json === undefined) return false;
        if (client !== null && (JSON.parse(json) as ConversationHead).client !== client) return false;
        return await this.#rows.delete(id);
      } catch (error) {
        throw unreachable(error);
      }
    });
  }

  /**
   * Reads, changes and writes one conversation, after any write of it already under way in this process; a change
   * of undefined writes nothing. Items still in the head (an earlier format's row, or a create's) move into the log
   * in the same write.
   */
  #change(
    id: string,
    client: string | null,
    change: (stored: StoredConversation) => Change | undefined,
    param: string,
  ): Promise<StoredConversation | undefined> {
    return this.#serially(id, async () => {
      for (let attempt = 0; attempt < MAX_CHANGE_ATTEMPTS; attempt++) {
        const read = await this.#read(id, client);
        if (read === undefined) return undefined;
        const changed = change(read.stored);
        if (changed === undefined) return read.stored;
        const written = await this.#write(read, changed, param);
        if (written !== undefined) return written;
      }
      throw new ServiceUnavailableError(
        `Conversation '${id}' kept changing while this request changed it (other requests are writing to it); try again.`,
      );
    });
  }

  /** The changed head, written with its new entries if the head is still `read`'s (undefined: it was changed). */
  async #write(read: Read, change: Change, param: string): Promise<StoredConversation | undefined> {
    const { items: _items, clientIds: _clientIds, ...kept } = read.head;
    const entries = [...headItemsEntry(read.head), ...change.entries];
    const keptCount = read.head.log ?? 0;
    let logBytes = read.head.logBytes ?? 0;
    for (const entry of entries) logBytes += Buffer.byteLength(entry);
    const head: ConversationHead = {
      ...kept,
      ...(change.metadata === undefined ? {} : { metadata: change.metadata }),
      ...(change.deleted === undefined ? {} : { deleted: change.deleted }),
      log: keptCount + entries.length,
      logBytes,
    };
    const json = JSON.stringify(head);
    const content = applyEntries({ items: read.stored.items, clientIds: read.stored.clientIds ?? {} }, change.entries);
    const room = change.isInRoom === true ? 0 : deletionRoom(content.items, MAX_DELETED_ITEMS);
    this.#checkBound(Buffer.byteLength(json) + logBytes + room, param);
    const options = entries.length === 0 ? {} : { events: { keptCount, events: entries } };
    let isWritten: boolean;
    try {
      isWritten = await this.#bounded(this.#rows.putIfUnchanged(this.#rowOf(head, json), read.json, options));
    } catch (error) {
      throw unreachable(error);
    }
    return isWritten ? this.#viewOf(head, json, content) : undefined;
  }

  #checkBound(bytes: number, param: string): void {
    if (bytes > this.#maxBytes) {
      throw new InvalidRequestError(
        `The conversation would take ${bytes} bytes (with the room kept to delete its items), over the gateway's bound of ${this.#maxBytes} bytes per conversation: start a new conversation.`,
        { param, code: "invalid_value" },
      );
    }
  }

  #rowOf(head: ConversationHead, json: string): KeptResponseRow {
    return { id: head.id, json, itemIds: [], ...(head.client === undefined ? {} : { owner: head.client }) };
  }

  async #serially<T>(id: string, operation: () => Promise<T>): Promise<T> {
    const before = this.#writes.get(id) ?? Promise.resolve();
    const result = before.then(operation, operation);
    const settled = result.catch(() => {});
    this.#writes.set(id, settled);
    try {
      return await result;
    } finally {
      if (this.#writes.get(id) === settled) this.#writes.delete(id);
    }
  }
}
