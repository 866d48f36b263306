// The shapes of kept conversations (conversations.ts): the items, the view a read assembles, and the row stores they
// live in.

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
  /** The bytes it takes in its store (its head's JSON and its log's entries), what MAX_CONVERSATION_BYTES bounds. */
  readonly bytes: number;
}

export interface DeletedItem {
  readonly id: string;
  readonly previousId: string | null;
}

/** One conversation's head as a row store holds it: the shape of the kept responses' rows (it has no item index). */
export interface KeptResponseRow {
  readonly id: string;
  readonly json: string;
  readonly itemIds: readonly string[];
  /** The named client that wrote it (absent: an unnamed key): over a bound, the owner holding the most loses first. */
  readonly owner?: string;
}

/**
 * Where conversation rows live: the kept responses' row stores, in tables or keys of their own. A row's events
 * (appended in the compare and set, read from index `from` on) are its log (conversation-log.ts); a put or a delete
 * drops them.
 */
export interface ConversationRows {
  put(row: KeptResponseRow): Promise<unknown>;
  get(id: string): Promise<string | undefined>;
  delete(id: string): Promise<boolean>;
  /**
   * Writes the row only if it is still the JSON that was read (false: changed or gone meanwhile), its events appended
   * first in the same step (`keptCount`: how many the caller knows kept; see the stores' appendEvents).
   */
  putIfUnchanged(
    row: KeptResponseRow,
    expectedJson: string,
    options?: { readonly events?: { readonly keptCount: number; readonly events: readonly string[] } },
  ): Promise<boolean>;
  getEvents(id: string, from: number): Promise<string[]>;
}
