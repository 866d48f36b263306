// How a conversation is kept: a small head row (id, metadata, owner, the last deleted items, and how many log
// entries it has with their bytes) and an append-only log beside it (the row stores' appended events, the ones a
// background response's stream uses; the state file's `kept_conversation_events`, Redis's
// `{conversations}:events:<id>`): each change appends its entries in the same compare-and-set as the head's write, so
// a turn writes its own items only. A deleted item is an entry too, its item's entry left in place (its bytes count
// until the conversation goes): dropping it would need a write replacing the events, which no store has, for a
// rare operation. Until 2026-12-07 the head held every item (`items`, `clientIds`) and
// each turn rewrote it whole: n turns wrote O(n²) bytes (bench/conversation-turns.ts). Such a row still reads; its
// first change moves its items into the log (one entry), and so does a new conversation's first change, whose create
// writes its initial items (at most 20) in the head.
import type { ConversationItem, DeletedItem } from "./conversation-shapes.ts";

/** A conversation's row as the store keeps it. */
export interface ConversationHead {
  readonly id: string;
  readonly created_at: number;
  readonly metadata: Readonly<Record<string, string>>;
  readonly client?: string;
  readonly deleted?: readonly DeletedItem[];
  /** How many log entries are the conversation's (the store's list may hold more, appended by a change that lost). */
  readonly log?: number;
  /** The bytes of those entries (UTF-8 of their JSON). */
  readonly logBytes?: number;
  /** Items kept in the head: a row written before the log, or a create's; moved into the log by the next change. */
  readonly items?: readonly ConversationItem[];
  readonly clientIds?: Readonly<Record<string, string>>;
}

/** One log entry: items added (with the ids their clients gave them), or an item deleted. */
type LogEntry =
  | { readonly add: readonly ConversationItem[]; readonly clientIds?: Readonly<Record<string, string>> }
  | { readonly remove: string };

/** A conversation's items and the ids their clients gave them, as its head and log say. */
export interface ConversationContent {
  readonly items: readonly ConversationItem[];
  readonly clientIds: Readonly<Record<string, string>>;
}

export function addEntry(items: readonly ConversationItem[], clientIds: Readonly<Record<string, string>>): string {
  return JSON.stringify(Object.keys(clientIds).length === 0 ? { add: items } : { add: items, clientIds });
}

export function removeEntry(itemId: string): string {
  return JSON.stringify({ remove: itemId });
}

/** Bytes kept for the head's growth as items are deleted (its `log` and `logBytes` counts taking more digits). */
const HEAD_GROWTH_BYTES = 64;
/** A deleted-list entry's JSON besides its two ids: `{"id":"","previousId":""},`. */
const DELETED_ENTRY_BYTES = 32;

/**
 * The room a conversation keeps, under its bound, for deleting every one of `items` later: each one's "removed"
 * entry, the head's list of the last `maxDeleted` deleted items filled with them, and the head's counts growing. An
 * addition is checked with it, a deletion without (its room was kept): a conversation at its bound can still have
 * its items deleted (a client taking out what it sent), though that makes no room.
 */
export function deletionRoom(items: readonly ConversationItem[], maxDeleted: number): number {
  let bytes = HEAD_GROWTH_BYTES;
  let longestId = 0;
  for (const item of items) {
    bytes += Buffer.byteLength(removeEntry(item.id));
    longestId = Math.max(longestId, Buffer.byteLength(JSON.stringify(item.id)));
  }
  return bytes + Math.min(items.length, maxDeleted) * (DELETED_ENTRY_BYTES + 2 * longestId);
}

/** The head's own items (a row of the earlier format, or a create's) as the entry that moves them into the log. */
export function headItemsEntry(head: ConversationHead): string[] {
  return head.items === undefined || head.items.length === 0 ? [] : [addEntry(head.items, head.clientIds ?? {})];
}

/** The content after `entries` (JSON log entries, oldest first) are applied to `content`. */
export function applyEntries(content: ConversationContent, entries: readonly string[]): ConversationContent {
  if (entries.length === 0) return content;
  const items = new Map(content.items.map((item) => [item.id, item]));
  const clientIds: Record<string, string> = { ...content.clientIds };
  for (const text of entries) {
    const entry = JSON.parse(text) as LogEntry;
    if ("remove" in entry) {
      items.delete(entry.remove);
      delete clientIds[entry.remove];
      continue;
    }
    for (const item of entry.add) items.set(item.id, item);
    Object.assign(clientIds, entry.clientIds);
  }
  return { items: [...items.values()], clientIds };
}

/** The head's items, then its log's entries. */
export function contentOf(head: ConversationHead, entries: readonly string[]): ConversationContent {
  return applyEntries({ items: head.items ?? [], clientIds: head.clientIds ?? {} }, entries);
}
