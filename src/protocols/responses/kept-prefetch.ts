// What a Responses request body refers to in the kept responses (`previous_response_id`, `item_reference`,
// `conversation`), fetched in one go before the (synchronous) request mapping reads it.
import { isRecord } from "../../is-record.ts";
import { isConversationId, type StoredConversation } from "./conversations.ts";
import { type KeptResponses, NO_EVENTS } from "./kept-responses.ts";
import type { ResponseLookup } from "./request-mapping.ts";
import type { StoredResponse } from "./response-store.ts";

/** The response, item and conversation ids a Responses request body refers to, read leniently (validation comes later). */
export function referencedIds(body: unknown): { responseIds: string[]; itemIds: string[]; conversationId?: string } {
  const record = isRecord(body) ? body : {};
  const responseIds = typeof record.previous_response_id === "string" ? [record.previous_response_id] : [];
  const conversation = isRecord(record.conversation) ? record.conversation.id : record.conversation;
  const itemIds: string[] = [];
  if (Array.isArray(record.input)) {
    for (const item of record.input) {
      if (isRecord(item) && item.type === "item_reference" && typeof item.id === "string") itemIds.push(item.id);
    }
  }
  return { responseIds, itemIds, ...(typeof conversation === "string" ? { conversationId: conversation } : {}) };
}

/**
 * Fetches what `body` refers to, as the synchronous lookup the request mapping reads. `conversation`: reads the
 * conversation a body names, as the asking client may see it (Conversations.get).
 */
export async function prefetch(
  kept: KeptResponses,
  body: unknown,
  conversation?: (id: string) => Promise<StoredConversation | undefined>,
): Promise<ResponseLookup & { readonly conversation?: StoredConversation }> {
  const { responseIds, itemIds, conversationId } = referencedIds(body);
  const responses = new Map<string, StoredResponse>();
  const owners = new Map<string, StoredResponse>();
  let found: StoredConversation | undefined;
  await Promise.all([
    (async () => {
      // An id that is not a conversation id is refused by name; none is looked up.
      if (conversationId === undefined || conversation === undefined || !isConversationId(conversationId)) return;
      found = await conversation(conversationId);
    })(),
    ...responseIds.map(async (id) => {
      const found = await kept.get(id, NO_EVENTS);
      if (found !== undefined) responses.set(id, found);
    }),
    // The response holding the item, not only the item: an item a continuation already brings is refused
    // (duplicate-items.ts).
    ...[...new Set(itemIds)].map(async (id) => {
      const found = await kept.responseWithItem(id);
      if (found !== undefined) owners.set(id, found);
    }),
  ]);
  const conversationFound: StoredConversation | undefined = found;
  return {
    get: (id) => responses.get(id),
    findItem: (id) => owners.get(id)?.response.output.find((item) => item.id === id),
    responseWithItem: (id) => owners.get(id),
    isNotKept: (id) => kept.notKept(id) !== undefined,
    conversationItems: (id) => (conversationFound?.id === id ? conversationFound.items : undefined),
    conversationClientIds: (id) =>
      conversationFound?.id === id ? Object.values(conversationFound.clientIds ?? {}) : undefined,
    ...(conversationFound === undefined ? {} : { conversation: conversationFound }),
  };
}
