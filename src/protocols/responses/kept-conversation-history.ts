// A kept response of a turn on a conversation (`conversation`) holds only what that turn brought (its input and
// output messages) and where the turns before it live: its conversation, up to the item before the turn. Holding the
// whole conversation in every turn's row wrote O(n²) bytes over n turns (26 MB for 200 turns of ~600 B each) while
// the conversation itself is an append-only log. What needs the whole input (a continuation by
// `previous_response_id`, GET input_items) rebuilds it here from the conversation as it is when read.
import type { ChatMessage } from "../chat-completions.ts";
import type { ConversationItem, DeletedItem } from "./conversation-shapes.ts";
import { inputMessages } from "./input-messages.ts";
import type { KeptConversationHistory, StoredResponse } from "./response-store.ts";
import { ToolNames } from "./tool-names.ts";

/**
 * What a turn keeps: its own messages (`conversation` less its first `historyLength`, the conversation's earlier
 * items as the request read them) and where those live. Unchanged without a conversation, or one that was empty.
 */
export function keptTurn(
  conversation: readonly ChatMessage[],
  historyLength: number,
  history: { readonly id: string; readonly items: readonly ConversationItem[] } | undefined,
  ownItemIds: readonly string[],
): { conversation: ChatMessage[]; conversationHistory?: KeptConversationHistory } {
  const throughItemId = history?.items.at(-1)?.id;
  if (history === undefined || throughItemId === undefined) return { conversation: [...conversation] };
  const nextItemId = ownItemIds[0];
  return {
    conversation: conversation.slice(historyLength),
    conversationHistory: { id: history.id, throughItemId, ...(nextItemId === undefined ? {} : { nextItemId }) },
  };
}

/**
 * The response with its whole conversation again: the items of its conversation before its turn, as they are now
 * (an item deleted since is not in it; the conversation deleted or expired: none), then its own messages. A response
 * kept whole (without a conversation, or by an earlier version) is returned as it is. `deleted`: the conversation's
 * remembered deleted items (StoredConversation.deleted), to find where the turn was when the item before it is gone.
 */
export function withConversationHistory(
  stored: StoredResponse,
  items: readonly ConversationItem[] | undefined,
  deleted: readonly DeletedItem[] = [],
): StoredResponse {
  const { conversationHistory: history, ...rest } = stored;
  if (history === undefined) return stored;
  const earlier = itemsBefore(items ?? [], history, deleted);
  // Kept items were checked as input when they were added, so they translate as they did then (request-mapping.ts).
  const messages = inputMessages([...earlier], NO_LOOKUP, ToolNames.of(stored.response.tools), "conversation");
  return { ...rest, conversation: [...messages, ...stored.conversation] };
}

/** The conversation whose items `withConversationHistory` needs for this response (undefined: none). */
export function historyConversationId(stored: StoredResponse | undefined): string | undefined {
  return stored?.conversationHistory?.id;
}

function itemsBefore(
  items: readonly ConversationItem[],
  history: KeptConversationHistory,
  deleted: readonly DeletedItem[],
): readonly ConversationItem[] {
  const through = items.findIndex((item) => item.id === history.throughItemId);
  if (through >= 0) return items.slice(0, through + 1);
  // Deleted: the item that was before it when it went, followed back through items deleted since (items are only
  // ever added at the end), as a page's `after` is (conversation-items.ts). Not only the turn's own first item: that
  // one may be deleted too, and the items before both are still the turn's history.
  const previousOf = new Map(deleted.map((item) => [item.id, item.previousId]));
  let id = history.throughItemId;
  for (let step = 0; previousOf.has(id) && step <= deleted.length; step++) {
    const previous = previousOf.get(id) ?? null;
    // It was the conversation's first item when it went (or all before it went first): nothing before the turn.
    if (previous === null) return [];
    const index = items.findIndex((item) => item.id === previous);
    if (index >= 0) return items.slice(0, index + 1);
    id = previous;
  }
  const next = history.nextItemId === undefined ? -1 : items.findIndex((item) => item.id === history.nextItemId);
  return next >= 0 ? items.slice(0, next) : [];
}

/** A conversation's items hold no `item_reference` (conversation-items.ts refuses one): nothing is looked up. */
const NO_LOOKUP = { get: () => undefined, findItem: () => undefined };
