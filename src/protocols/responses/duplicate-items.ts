// An input item the request's history already holds, refused as OpenAI refuses it ("Duplicate item found with id
// ..."): an `item_reference` to, or an item sent inline with the id of, an item of the chain `previous_response_id`
// continues (the responses' outputs, the items their inputs sent with ids or referenced, the ids `input_items` lists)
// or of the `conversation` the request names, whose items already go upstream; or an id that comes twice in the same
// `input`. Sent anyway, the model read that turn twice (a question answered twice, a tool call made twice). Refused
// rather than left out, as OpenAI does: the client's idea of the history is wrong, and a client that de-duplicates
// for OpenAI (the Agents SDK with a conversation, the AI SDK with previous_response_id) does it here too.
//
// What a kept response holds for this is the same size whatever the chain's length (KeptChain): its own input's ids,
// indexed by the store under its chain's first response (chainItemKey), and its chain's first response. An item of
// the chain is then found by the store's index, in the response that brought it (its output, or its input), which is
// in the chain when it has the same first response and its kept conversation is where the later one's starts. Until
// 2026-12-07 each response kept every id of its chain (turn n: n ids; 1,000 turns: half a million): rows kept so are
// still read (`chainIds`, `historyItemIds`), and a chain continuing one copies them once (KeptChain.earlier).
import { InvalidRequestError } from "../../errors/gateway-error.ts";
import { isRecord } from "../../is-record.ts";
import type { ChatMessage } from "../chat-completions.ts";
import { formatPath } from "../validate.ts";
import { chainItemKey, chainRootOf, type KeptChain } from "./chain-items.ts";
import type { ResponseLookup } from "./input-messages.ts";
import type { StoredResponse } from "./response-store.ts";

/**
 * What the request continues: the response `previous_response_id` names, or the ids its `conversation` holds
 * (conversationIdsOf).
 */
export interface RequestHistory {
  readonly previous: StoredResponse | undefined;
  readonly conversationIds: readonly string[] | undefined;
}

/**
 * The ids a conversation holds: its items', and the ids the client gave them that the gateway replaced with its own
 * (conversation-items.ts): a client that sends an item again by the id it gave it sends it twice as surely.
 */
export function conversationIdsOf(
  items: readonly Readonly<Record<string, unknown>>[] | undefined,
  clientIds: readonly string[] | undefined,
): readonly string[] | undefined {
  if (items === undefined) return undefined;
  return [...items.flatMap((item) => (typeof item.id === "string" ? [item.id] : [])), ...(clientIds ?? [])];
}

/** The ids `input` carries (inline ids and item references), in order. */
function inputIdsOf(input: unknown): string[] {
  return Array.isArray(input)
    ? input.flatMap((item) => (isRecord(item) && typeof item.id === "string" ? [item.id] : []))
    : [];
}

/**
 * The KeptChain of a response to `input` continuing from `previous` (less `conversation`, known once answered:
 * withConversationOrigin); undefined when `previous` was kept by a version that kept no chain ids (a chain from it is
 * told by its kept conversations, isInChain).
 */
export function chainAfter(
  previous: StoredResponse | undefined,
  input: unknown,
  lookup: ResponseLookup,
): KeptChain | undefined {
  const ids = inputIdsOf(input);
  if (previous === undefined) return { inputIds: ids };
  const rootId = chainRootOf(previous);
  if (rootId === undefined) return undefined;
  // An id the index gives to another response of the chain (not this branch's: the check refused those) keeps that
  // key; this branch carries it instead (KeptChain.carried).
  const isIndexed = (id: string): boolean => lookup.responseWithItem?.(chainItemKey(rootId, id)) !== undefined;
  const inputIds = ids.filter((id) => !isIndexed(id));
  const kept = previous.chain;
  const carried = [...(kept?.carried ?? []), ...ids.filter(isIndexed)];
  const withCarried = carried.length === 0 ? {} : { carried };
  if (kept !== undefined) {
    return {
      rootId,
      inputIds,
      ...(kept.conversation === undefined ? {} : { conversation: kept.conversation }),
      ...withCarried,
      ...(kept.earlier === undefined ? {} : { earlier: kept.earlier }),
    };
  }
  // Kept before 2026-12-07: its ids are in it, not in the store's index.
  const earlier = {
    itemIds: [...(previous.historyItemIds ?? []), ...previous.response.output.map((item) => item.id)],
    responseIds: [...(previous.chainIds ?? []), previous.response.id],
  };
  return { rootId, inputIds, ...withCarried, earlier };
}

/**
 * The chain of a response started in `conversationId` (no `previous_response_id`): it holds that conversation's items
 * up to its own last one there (its last output item, or without one its last input item).
 */
export function withConversationOrigin(
  chain: KeptChain,
  conversationId: string | undefined,
  ownIdsInConversation: readonly string[],
): KeptChain {
  const throughItemId = ownIdsInConversation.at(-1);
  if (chain.rootId !== undefined || conversationId === undefined || throughItemId === undefined) return chain;
  return { ...chain, conversation: { id: conversationId, throughItemId } };
}

/**
 * The lookups a request continuing from `previous` needs before its check (kept-responses.ts prefetch reads them
 * once `previous` is read): the store's index for each id its input carries, the responses whose items
 * `input_items` lists by id, and the conversation its chain started in.
 */
export function chainLookups(
  previous: StoredResponse,
  input: unknown,
): { itemKeys: string[]; responseIds: string[]; conversationId: string | undefined } {
  const ids = inputIdsOf(input);
  const root = chainRootOf(previous);
  // Also after a row kept before 2026-12-07: another branch from it may have indexed an id (chainAfter).
  const itemKeys = root === undefined ? [] : ids.map((id) => chainItemKey(root, id));
  const responseIds = ids.flatMap((id) => {
    const key = LISTED_INPUT_ITEM.exec(id)?.[1];
    return key === undefined ? [] : [`resp_${key}`];
  });
  return { itemKeys: [...ids, ...itemKeys], responseIds, conversationId: previous.chain?.conversation?.id };
}

export function refuseDuplicateItems(input: unknown, history: RequestHistory, lookup: ResponseLookup): void {
  if (!Array.isArray(input)) return;
  const held = heldItemIds(history, lookup);
  const { previous } = history;
  const root = previous === undefined ? undefined : chainRootOf(previous);
  const seen = new Set<string>();
  for (const [index, item] of input.entries()) {
    if (!isRecord(item) || typeof item.id !== "string") continue;
    const { id } = item;
    const isHeld =
      held.has(id) ||
      isListedInputItem(id, previous, lookup) ||
      isInChain(lookup.responseWithItem?.(id), previous) ||
      (root !== undefined &&
        previous?.chain !== undefined &&
        isInChain(lookup.responseWithItem?.(chainItemKey(root, id)), previous));
    if (seen.has(id) || isHeld) {
      throw new InvalidRequestError(
        `Duplicate item found with id ${id}. Remove duplicate items from your input and try again.`,
        { param: formatPath(["input", index, "id"]), code: "duplicate_item" },
      );
    }
    seen.add(id);
  }
}

/**
 * The ids the history holds that the store's index does not give: the named conversation's, the previous response's
 * own output and what it keeps itself (a row of before 2026-12-07: every id of its chain; else what the chain's
 * earlier rows of that kind held), and the items of the conversation its chain started in, up to where it started.
 */
function heldItemIds({ previous, conversationIds }: RequestHistory, lookup: ResponseLookup): Set<string> {
  const held = new Set<string>(conversationIds);
  if (previous === undefined) return held;
  for (const id of previous.historyItemIds ?? []) held.add(id);
  for (const item of previous.response.output) held.add(item.id);
  for (const id of previous.chain?.earlier?.itemIds ?? []) held.add(id);
  for (const id of previous.chain?.inputIds ?? []) held.add(id);
  for (const id of previous.chain?.carried ?? []) held.add(id);
  const origin = previous.chain?.conversation;
  if (origin !== undefined) {
    for (const id of conversationIdsThrough(origin.id, origin.throughItemId, lookup)) held.add(id);
  }
  return held;
}

/**
 * A conversation's item ids up to and including `throughItemId`, with the ids the client gave those items; none
 * when that item is no longer there (deleted, or the conversation is gone): which of its items the chain held is then
 * not known, and none is refused for it.
 */
function conversationIdsThrough(conversationId: string, throughItemId: string, lookup: ResponseLookup): string[] {
  const items = lookup.conversationItems?.(conversationId) ?? [];
  const end = items.findIndex((item) => item.id === throughItemId);
  if (end < 0) return [];
  const ids = items.slice(0, end + 1).flatMap((item) => (typeof item.id === "string" ? [item.id] : []));
  const clientIds = lookup.conversationClientIdMap?.(conversationId) ?? {};
  return [...ids, ...ids.flatMap((id) => (clientIds[id] === undefined ? [] : [clientIds[id]]))];
}

/** The ids `input_items` gives a response's items (input-items.ts): `msg_<response id without resp_>_<index>`. */
const LISTED_INPUT_ITEM = /^(?:msg|fc|fco|ctc|ctco)_([A-Za-z0-9]+)_\d+$/;

/** An id `input_items` listed for `previous` or a response before it: every item it lists is in the chain. */
function isListedInputItem(id: string, previous: StoredResponse | undefined, lookup: ResponseLookup): boolean {
  const key = LISTED_INPUT_ITEM.exec(id)?.[1];
  if (key === undefined || previous === undefined) return false;
  const responseId = `resp_${key}`;
  return (
    responseId === previous.response.id ||
    (previous.chainIds?.includes(responseId) ?? false) ||
    (previous.chain?.earlier?.responseIds.includes(responseId) ?? false) ||
    (previous.chain !== undefined && isInChain(lookup.get(responseId), previous))
  );
}

/** `owner` is `previous` or a response before it in its chain. */
function isInChain(owner: StoredResponse | undefined, previous: StoredResponse | undefined): boolean {
  if (owner === undefined || previous === undefined) return false;
  if (owner.response.id === previous.response.id) return true;
  if (previous.chain !== undefined) {
    // The same first response, and its kept conversation where the later one's starts: a response of another branch
    // of the chain (two continuations of one response) holds another conversation, unless both read the same.
    if (previous.chain.earlier?.responseIds.includes(owner.response.id)) return true;
    if (chainRootOf(owner) !== chainRootOf(previous)) return false;
    // Still pointing: a row its history is read from is gone (prefetch could not rebuild it), its own turn is all it
    // holds, and it is in the chain when that turn is in the later one's conversation (its rows before a whole one).
    if (owner.chainHistory !== undefined) return isRun(owner.conversation, previous.conversation);
    return isPrefix(owner.conversation, previous.conversation);
  }
  if (previous.chainIds !== undefined) return previous.chainIds.includes(owner.response.id);
  // Kept by an earlier version, without its chain's ids: each kept conversation is the one it continued plus its own
  // input and output, so an earlier response's is where the later one's starts. Text alone: an unrelated response
  // whose history reads the same is taken as in the chain (why chain roots are kept now).
  return isPrefix(owner.conversation, previous.conversation);
}

/** `whole`'s messages as JSON, once per conversation however many items a request names. */
const messageTexts = new WeakMap<readonly ChatMessage[], string[]>();

/** `run` is somewhere in `whole`, in order and without a gap. */
function isRun(run: readonly ChatMessage[], whole: readonly ChatMessage[]): boolean {
  const texts = run.map((message) => JSON.stringify(message));
  const wholeTexts = messageTexts.get(whole) ?? whole.map((message) => JSON.stringify(message));
  messageTexts.set(whole, wholeTexts);
  if (texts.length === 0) return false;
  for (let start = 0; start + texts.length <= wholeTexts.length; start += 1) {
    if (texts.every((text, index) => text === wholeTexts[start + index])) return true;
  }
  return false;
}

function isPrefix(head: readonly ChatMessage[], whole: readonly ChatMessage[]): boolean {
  if (head.length === 0 || head.length > whole.length) return false;
  return head.every((message, index) => JSON.stringify(message) === JSON.stringify(whole[index]));
}
