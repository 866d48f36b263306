// Kept conversations (OpenAI's Conversations API, and `conversation` on a Responses request). A conversation is one
// row (its JSON: id, metadata, owner, items) in a store of its own beside the kept responses' (the embedded state
// file, Redis, or memory: cli/kept-responses-store.ts), bounded like it by count, total bytes and age. A write puts
// the whole row again, which also renews its age: a conversation in use does not expire.
//
// Concurrency: adding items reads the row, appends and writes it back. Two requests on one conversation at once
// would each write their own copy and one's items would be lost, so this process runs the writes of one conversation
// one after the other (a promise chain per id), and with a store several processes share (Redis) the write is a
// compare and set: written only if the row is still what was read, else read and tried again.
import type { Clock } from "../../clock.ts";
import { GatewayError, InvalidRequestError, ServiceUnavailableError } from "../../errors/gateway-error.ts";
import type { IdSource } from "../ids.ts";
import { OwnerShares, UNNAMED_OWNER } from "./owner-shares.ts";

/** One item of a conversation: a Responses input or output item with its `id` (conversation-items.ts makes them). */
export type ConversationItem = Readonly<Record<string, unknown>> & { readonly id: string; readonly type: string };

export interface StoredConversation {
  readonly id: string;
  readonly created_at: number;
  readonly metadata: Readonly<Record<string, string>>;
  /** The named client that created it: only it, or an unnamed key, reaches it. */
  readonly client?: string;
  readonly items: readonly ConversationItem[];
  /**
   * An item's id -> the id the client gave it, replaced by the gateway's (conversation-items.ts `clientIdsOf`): an input
   * item sent again with it is still one the conversation holds (duplicate-items.ts). Only items that had one.
   */
  readonly clientIds?: Readonly<Record<string, string>>;
  /**
   * The last items deleted (at most MAX_DELETED_ITEMS, oldest first), each with the id of the item before it when it
   * was deleted (null: it was first): a client paging with `after` = an item deleted meanwhile goes on from where it
   * was instead of failing (conversation-items.ts `listItems`).
   */
  readonly deleted?: readonly DeletedItem[];
}

export interface DeletedItem {
  readonly id: string;
  readonly previousId: string | null;
}

/** `clientIds` with `added` merged in, as a field of StoredConversation (none while it is empty). */
function withClientIds(kept: StoredConversation["clientIds"], added: Readonly<Record<string, string>>) {
  const clientIds = { ...kept, ...added };
  return Object.keys(clientIds).length === 0 ? {} : { clientIds };
}

/** Deleted items remembered per conversation for `after` (a few bytes each; older ones are a 400 as an unknown id). */
export const MAX_DELETED_ITEMS = 100;

/** The conversation object the API answers with (its items are listed apart). */
export interface ConversationObject {
  readonly id: string;
  readonly object: "conversation";
  readonly created_at: number;
  readonly metadata: Readonly<Record<string, string>>;
}

/** One conversation as a row store holds it: the shape of the kept responses' rows (it has no item index). */
export interface KeptResponseRow {
  readonly id: string;
  readonly json: string;
  readonly itemIds: readonly string[];
  /** The named client that wrote it (absent: an unnamed key): over a bound, the owner holding the most loses first. */
  readonly owner?: string;
}

/** Where conversation rows live: the kept responses' row stores, in tables or keys of their own. */
export interface ConversationRows {
  put(row: KeptResponseRow): Promise<void>;
  get(id: string): Promise<string | undefined>;
  delete(id: string): Promise<boolean>;
  /**
   * A store shared by several gateway processes (Redis) writes a changed row only if it is still the JSON that was
   * read (false: changed meanwhile). Stores of one process leave it out: this process's writes are serialized.
   */
  putIfUnchanged?(row: KeptResponseRow, expectedJson: string): Promise<boolean>;
}

/**
 * What became of an answer's items: `added`; `too_large` (they would have pushed the conversation past its bound);
 * `deleted` (the conversation was deleted meanwhile); `store_unavailable` (the store failed, or others kept changing
 * it). The Responses door tells a client any but `added` (`x-gateway-conversation-not-updated`).
 */
export type ConversationUpdate = "added" | "too_large" | "deleted" | "store_unavailable";

/** Times a change is read and tried again when another process changed the conversation meanwhile. */
const MAX_CHANGE_ATTEMPTS = 10;

/** The most bytes one conversation's JSON may take; never more than the store's own `max_bytes` (it would not be kept). */
export const MAX_CONVERSATION_BYTES = 16 * 1024 * 1024;

/** A conversation id as the gateway makes them (`conv_` + hex); anything else is a 400, not a lookup. */
const CONVERSATION_ID = /^conv_[A-Za-z0-9_-]{1,128}$/;
const ITEM_ID = /^[A-Za-z0-9_-]{1,200}$/;

export function toConversationObject(stored: StoredConversation): ConversationObject {
  return { id: stored.id, object: "conversation", created_at: stored.created_at, metadata: stored.metadata };
}

export function isConversationId(id: string): boolean {
  return CONVERSATION_ID.test(id);
}

export function checkConversationId(id: string, param: string): void {
  if (!isConversationId(id)) {
    throw new InvalidRequestError(
      `Invalid \`${param}\`: '${id.slice(0, 64)}' is not a conversation id (\`conv_\` followed by letters, digits, \`_\` or \`-\`).`,
      { param, code: "invalid_value" },
    );
  }
}

export function checkItemId(id: string): void {
  if (!ITEM_ID.test(id)) {
    throw new InvalidRequestError(
      `Invalid \`item_id\`: '${id.slice(0, 64)}' is not an item id (letters, digits, \`_\` or \`-\`).`,
      { param: "item_id", code: "invalid_value" },
    );
  }
}

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
    const stored: StoredConversation = {
      id: this.#ids("conv_"),
      created_at: Math.floor(this.#clock.now() / 1000),
      metadata,
      ...(client === null ? {} : { client }),
      items,
      ...withClientIds(undefined, clientIds),
    };
    await this.#put(stored, "items");
    return stored;
  }

  /** The conversation, when `client` may reach it (its own, or any for an unnamed key). */
  async get(id: string, client: string | null): Promise<StoredConversation | undefined> {
    return (await this.#read(id, client))?.stored;
  }

  /** The conversation and the JSON it was read from (what a compare-and-set write expects). */
  async #read(id: string, client: string | null): Promise<{ stored: StoredConversation; json: string } | undefined> {
    let json: string | undefined;
    try {
      json = await this.#rows.get(id);
    } catch (error) {
      throw unreachable(error);
    }
    if (json === undefined) return undefined;
    const stored = JSON.parse(json) as StoredConversation;
    return client === null || stored.client === client ? { stored, json } : undefined;
  }

  setMetadata(
    id: string,
    client: string | null,
    metadata: Record<string, string>,
  ): Promise<StoredConversation | undefined> {
    return this.#change(id, client, (stored) => ({ ...stored, metadata }), "metadata");
  }

  /** Adds items at the end; a conversation that would grow past its bound is a 400 naming `param`, and unchanged. */
  append(
    id: string,
    client: string | null,
    items: readonly ConversationItem[],
    param = "items",
    clientIds: Readonly<Record<string, string>> = {},
  ): Promise<StoredConversation | undefined> {
    return this.#change(
      id,
      client,
      (stored) => ({ ...stored, items: [...stored.items, ...items], ...withClientIds(stored.clientIds, clientIds) }),
      param,
    );
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

  /** The conversation without the item; undefined: no such conversation; "no item": it has no such item. */
  async deleteItem(
    id: string,
    client: string | null,
    itemId: string,
  ): Promise<StoredConversation | undefined | "no item"> {
    let hasItem = true;
    const changed = await this.#change(
      id,
      client,
      (stored) => {
        const index = stored.items.findIndex((item) => item.id === itemId);
        hasItem = index !== -1;
        if (!hasItem) return stored;
        const previousId = index === 0 ? null : (stored.items[index - 1]?.id ?? null);
        const deleted = [...(stored.deleted ?? []), { id: itemId, previousId }].slice(-MAX_DELETED_ITEMS);
        // A deleted item's own id goes with it: the conversation no longer holds it, so sending it again is no duplicate.
        const { [itemId]: _given, ...clientIds } = stored.clientIds ?? {};
        const items = stored.items.filter((item) => item.id !== itemId);
        return { ...stored, items, deleted, ...withClientIds(undefined, clientIds) };
      },
      "item_id",
    );
    return changed !== undefined && !hasItem ? "no item" : changed;
  }

  async delete(id: string, client: string | null): Promise<boolean> {
    return this.#serially(id, async () => {
      if ((await this.get(id, client)) === undefined) return false;
      try {
        return await this.#rows.delete(id);
      } catch (error) {
        throw unreachable(error);
      }
    });
  }

  /** Reads, changes and writes one conversation, after any write of it already under way in this process. */
  #change(
    id: string,
    client: string | null,
    change: (stored: StoredConversation) => StoredConversation,
    param: string,
  ): Promise<StoredConversation | undefined> {
    return this.#serially(id, async () => {
      for (let attempt = 0; attempt < MAX_CHANGE_ATTEMPTS; attempt++) {
        const read = await this.#read(id, client);
        if (read === undefined) return undefined;
        const changed = change(read.stored);
        if (await this.#put(changed, param, read.json)) return changed;
      }
      throw new ServiceUnavailableError(
        `Conversation '${id}' kept changing while this request changed it (other requests are writing to it); try again.`,
      );
    });
  }

  /** Writes a conversation; with `expectedJson`, only if it is unchanged since (false when it was changed). */
  async #put(stored: StoredConversation, param: string, expectedJson?: string): Promise<boolean> {
    const json = JSON.stringify(stored);
    const bytes = Buffer.byteLength(json);
    if (bytes > this.#maxBytes) {
      throw new InvalidRequestError(
        `The conversation would take ${bytes} bytes, over the gateway's bound of ${this.#maxBytes} bytes per conversation: start a new conversation (or delete items).`,
        { param, code: "invalid_value" },
      );
    }
    const row = { id: stored.id, json, itemIds: [], ...(stored.client === undefined ? {} : { owner: stored.client }) };
    try {
      if (expectedJson !== undefined && this.#rows.putIfUnchanged !== undefined) {
        return await this.#bounded(this.#rows.putIfUnchanged(row, expectedJson));
      }
      await this.#bounded(this.#rows.put(row));
      return true;
    } catch (error) {
      throw unreachable(error);
    }
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

/**
 * Conversation rows in this process's memory (`state.path: ":memory:"`, and a server built without a store): bounded
 * by count, total bytes and age like the persistent stores; over a bound, the oldest write of the owner holding the
 * most goes first (owner-shares.ts).
 */
export class ConversationRowsInMemory implements ConversationRows {
  readonly #limits: { readonly maxEntries: number; readonly maxBytes: number; readonly maxAgeMs: number };
  readonly #clock: Clock;
  /** Insertion order is write order: a Map iterates oldest first, and a put moves a row last. */
  readonly #rows = new Map<string, { json: string; bytes: number; storedAtMs: number; owner: string }>();
  readonly #owners = new OwnerShares();
  #bytes = 0;

  constructor(limits: { maxEntries: number; maxBytes: number; maxAgeMs: number }, clock: Clock) {
    this.#limits = limits;
    this.#clock = clock;
  }

  async put(row: KeptResponseRow): Promise<void> {
    this.#remove(row.id);
    const bytes = Buffer.byteLength(row.json);
    if (bytes > this.#limits.maxBytes || this.#limits.maxEntries <= 0) return;
    const owner = row.owner ?? UNNAMED_OWNER;
    this.#rows.set(row.id, { json: row.json, bytes, storedAtMs: this.#clock.now(), owner });
    this.#bytes += bytes;
    this.#owners.add(owner, row.id, bytes);
    this.#expire();
    for (;;) {
      const measure =
        this.#rows.size > this.#limits.maxEntries ? "count" : this.#bytes > this.#limits.maxBytes ? "bytes" : undefined;
      const victim = measure === undefined ? undefined : this.#owners.victim(measure);
      if (victim === undefined) return;
      this.#remove(victim);
    }
  }

  async get(id: string): Promise<string | undefined> {
    this.#expire();
    return this.#rows.get(id)?.json;
  }

  async delete(id: string): Promise<boolean> {
    this.#expire();
    return this.#remove(id);
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
