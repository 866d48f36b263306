// What a Responses request refers to (the previous response, the items it references, its conversation), read
// from the kept responses before the request mapping, which is synchronous, looks at it.
import { InvalidRequestError } from "../../errors/gateway-error.ts";
import { isRecord } from "../../is-record.ts";
import { isConversationId, type StoredConversation } from "./conversations.ts";
import { chainLookups } from "./duplicate-items.ts";
import { chainPrevious, type PreviousTurn, withChainHistory } from "./kept-chain-history.ts";
import { historyConversationId, withConversationHistory } from "./kept-conversation-history.ts";
import { type KeptResponses, NO_EVENTS } from "./kept-responses.ts";
import type { ResponseLookup } from "./request-mapping.ts";
import type { StoredResponse } from "./response-store.ts";

/** The response, item and conversation ids a Responses request body refers to, read leniently (validation comes later). */
function referencedIds(body: unknown): { responseIds: string[]; itemIds: string[]; conversationId?: string } {
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
 * conversation a body names, as the asking client may see it (Conversations.get). A continuation's duplicate-item
 * check (duplicate-items.ts) needs a second round once the previous response is read: the store's index for the ids
 * its input carries, the responses `input_items` ids name, and the conversation its chain started in.
 */
export async function prefetch(
  kept: KeptResponses,
  body: unknown,
  conversation?: (id: string) => Promise<StoredConversation | undefined>,
): Promise<
  ResponseLookup & { readonly conversation?: StoredConversation; readonly previousTurn?: PreviousTurn | undefined }
> {
  const { responseIds, itemIds, conversationId } = referencedIds(body);
  const responses = new Map<string, StoredResponse>();
  const owners = new Map<string, StoredResponse>();
  const conversations = new Map<string, StoredConversation>();
  const readConversation = async (id: string | undefined): Promise<void> => {
    // An id that is not a conversation id is refused by name; none is looked up.
    if (id === undefined || conversation === undefined || !isConversationId(id) || conversations.has(id)) return;
    const found = await conversation(id);
    if (found !== undefined) conversations.set(id, found);
  };
  /** Each response read once, whether named by id or found by an item's id (a row is a whole conversation). */
  const reads = new Map<string, Promise<StoredResponse | undefined>>();
  const readOnce = (id: string): Promise<StoredResponse | undefined> => {
    let read = reads.get(id);
    if (read === undefined) {
      read = kept.get(id, NO_EVENTS);
      reads.set(id, read);
    }
    return read;
  };
  const rowsOnce = { get: readOnce };
  /**
   * Each response rebuilt once (its chain's rows read once, through readOnce): many ids of one response's turn named
   * it once per id, and each rebuild read its chain's rows again.
   */
  const rebuilds = new Map<string, Promise<StoredResponse>>();
  const rebuilt = (stored: StoredResponse): Promise<StoredResponse> => {
    let rebuild = rebuilds.get(stored.response.id);
    if (rebuild === undefined) {
      rebuild = withChainHistory(rowsOnce, stored).catch(unlessBroken(stored));
      rebuilds.set(stored.response.id, rebuild);
    }
    return rebuild;
  };
  const readResponse = async (id: string): Promise<void> => {
    const found = await readOnce(id);
    if (found !== undefined) responses.set(id, found);
  };
  // The response holding the item, not only the item: an item a continuation already brings is refused. A store
  // that gives the index's response ids at once: each response read once, however many of its ids `input` carries.
  const readOwners = async (ids: readonly string[]): Promise<void> => {
    const unread = [...new Set(ids)].filter((id) => !owners.has(id));
    if (kept.responseIdsWithItems === undefined || unread.length === 0) {
      await Promise.all(unread.map(readOwner));
      return;
    }
    const ownerIds = await kept.responseIdsWithItems(unread);
    await Promise.all(
      unread.map(async (id, index) => {
        const ownerId = ownerIds[index];
        const found = ownerId === undefined ? undefined : await readOnce(ownerId);
        if (found !== undefined) owners.set(id, found);
      }),
    );
  };
  const readOwner = async (id: string): Promise<void> => {
    const found = await kept.responseWithItem(id);
    if (found !== undefined) owners.set(id, found);
  };
  await Promise.all([readConversation(conversationId), ...responseIds.map(readResponse), readOwners(itemIds)]);
  // The previous response's row as kept (its turn and a pointer, or whole): what the answer's row points to. Its
  // chain is rebuilt first: a link gone is the request's 400, before anything else is read.
  const previousRow = responseIds[0] === undefined ? undefined : responses.get(responseIds[0]);
  const previous = previousRow === undefined ? undefined : await withChainHistory(rowsOnce, previousRow);
  if (previous !== undefined && responseIds[0] !== undefined) responses.set(responseIds[0], previous);
  if (previous !== undefined) {
    const chain = chainLookups(previous, isRecord(body) ? body.input : undefined);
    await Promise.all([
      readConversation(chain.conversationId),
      ...chain.responseIds.map(readResponse),
      readOwners(chain.itemKeys),
    ]);
  }
  // A continuation's kept response holds its own turn: the rest is read from the rows it names. One whose chain is
  // broken stays as kept (its own turn, still pointing): the duplicate check finds that turn in the chain
  // (duplicate-items.ts isInChain); its output items are still the owners' (item_reference reads them alone).
  await Promise.all([
    ...[...responses].map(async ([id, stored]) => {
      responses.set(id, await rebuilt(stored));
    }),
    ...[...owners].map(async ([id, stored]) => {
      owners.set(id, await rebuilt(stored));
    }),
  ]);
  // A conversation turn's kept response holds its own items: the rest is read from its conversation.
  const found = [...responses.values(), ...owners.values()];
  await Promise.all(found.map((stored) => readConversation(historyConversationId(stored))));
  const whole = (stored: StoredResponse | undefined): StoredResponse | undefined => {
    const historyId = historyConversationId(stored);
    if (stored === undefined || historyId === undefined) return stored;
    const history = conversations.get(historyId);
    return withConversationHistory(stored, history?.items, history?.deleted);
  };
  for (const [id, stored] of responses) responses.set(id, whole(stored) ?? stored);
  for (const [id, stored] of owners) owners.set(id, whole(stored) ?? stored);
  const conversationFound = conversationId === undefined ? undefined : conversations.get(conversationId);
  return {
    get: (id) => responses.get(id),
    findItem: (id) => owners.get(id)?.response.output.find((item) => item.id === id),
    responseWithItem: (id) => owners.get(id),
    isNotKept: (id) => kept.notKept(id) !== undefined,
    notKeptResponseOfItem: (id) => kept.notKeptItem?.(id)?.responseId,
    conversationItems: (id) => conversations.get(id)?.items,
    conversationClientIds: (id) => {
      const found = conversations.get(id);
      return found === undefined ? undefined : Object.values(found.clientIds ?? {});
    },
    conversationClientIdMap: (id) => conversations.get(id)?.clientIds,
    ...(conversationFound === undefined ? {} : { conversation: conversationFound }),
    previousTurn: chainPrevious(previousRow, previous),
  };
}

/** A chain whose link is gone reads as `instead`; a store that cannot be read is still its 503. */
function unlessBroken<T>(instead: T): (error: unknown) => T {
  return (error) => {
    if (error instanceof InvalidRequestError) return instead;
    throw error;
  };
}
