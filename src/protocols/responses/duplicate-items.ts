// An input item the request's history already holds, refused as OpenAI refuses it ("Duplicate item found with id
// ..."): an `item_reference` to, or an item sent inline with the id of, an item of the chain `previous_response_id`
// continues (the responses' outputs, the items their inputs sent with ids or referenced, the ids `input_items` lists)
// or of the `conversation` the request names, whose items already go upstream; or an id that comes twice in the same
// `input`. Sent anyway, the model read that turn twice (a question answered twice, a tool call made twice). Refused
// rather than left out, as OpenAI does: the client's idea of the history is wrong, and a client that de-duplicates
// for OpenAI (the Agents SDK with a conversation, the AI SDK with previous_response_id) does it here too.
import { InvalidRequestError } from "../../errors/gateway-error.ts";
import { isRecord } from "../../is-record.ts";
import type { ChatMessage } from "../chat-completions.ts";
import { formatPath } from "../validate.ts";
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

export function refuseDuplicateItems(input: unknown, history: RequestHistory, lookup: ResponseLookup): void {
  if (!Array.isArray(input)) return;
  const held = heldItemIds(history);
  const seen = new Set<string>();
  for (const [index, item] of input.entries()) {
    if (!isRecord(item) || typeof item.id !== "string") continue;
    const { id } = item;
    const isHeld =
      held.has(id) ||
      isListedInputItem(id, history.previous) ||
      (item.type === "item_reference" && isInChain(lookup.responseWithItem?.(id), history.previous));
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
 * StoredResponse.chainIds of a response continuing from `previous` (none: it starts a chain); undefined when
 * `previous` was kept without them.
 */
export function chainIdsAfter(previous: StoredResponse | undefined): readonly string[] | undefined {
  if (previous === undefined) return [];
  return previous.chainIds === undefined ? undefined : [...previous.chainIds, previous.response.id];
}

/**
 * StoredResponse.historyItemIds of a response to `input` continuing from `previous`, or from the conversation whose
 * ids are `conversationIds` (conversationIdsOf): the ids its history holds, its own input's (inline ids and
 * references) last; undefined when `previous` was kept without them. A conversation's ids are kept with the response:
 * a chain `previous_response_id` continues from it holds that conversation's items as they were then.
 */
export function historyItemIdsAfter(
  previous: StoredResponse | undefined,
  input: unknown,
  conversationIds: readonly string[] | undefined,
): readonly string[] | undefined {
  const own = Array.isArray(input)
    ? input.flatMap((item) => (isRecord(item) && typeof item.id === "string" ? [item.id] : []))
    : [];
  if (previous === undefined) return [...(conversationIds ?? []), ...own];
  if (previous.historyItemIds === undefined) return undefined;
  return [...previous.historyItemIds, ...previous.response.output.map((item) => item.id), ...own];
}

/** The ids of the items the history holds (a response kept by an earlier version: its own output's only). */
function heldItemIds({ previous, conversationIds }: RequestHistory): Set<string> {
  const held = new Set<string>(conversationIds);
  if (previous === undefined) return held;
  for (const id of previous.historyItemIds ?? []) held.add(id);
  for (const item of previous.response.output) held.add(item.id);
  return held;
}

/** The ids `input_items` gives a response's items (input-items.ts): `msg_<response id without resp_>_<index>`. */
const LISTED_INPUT_ITEM = /^(?:msg|fc|fco|ctc|ctco)_([A-Za-z0-9]+)_\d+$/;

/** An id `input_items` listed for `previous` or a response before it: every item it lists is in the chain. */
function isListedInputItem(id: string, previous: StoredResponse | undefined): boolean {
  const key = LISTED_INPUT_ITEM.exec(id)?.[1];
  if (key === undefined || previous === undefined) return false;
  const responseId = `resp_${key}`;
  return responseId === previous.response.id || (previous.chainIds?.includes(responseId) ?? false);
}

/** `owner` is `previous` or a response before it in its chain. */
function isInChain(owner: StoredResponse | undefined, previous: StoredResponse | undefined): boolean {
  if (owner === undefined || previous === undefined) return false;
  if (owner.response.id === previous.response.id) return true;
  if (previous.chainIds !== undefined) return previous.chainIds.includes(owner.response.id);
  // Kept by an earlier version, without its chain's ids: each kept conversation is the one it continued plus its own
  // input and output, so an earlier response's is where the later one's starts. Text alone: an unrelated response
  // whose history reads the same is taken as in the chain (why chainIds are kept now).
  return isPrefix(owner.conversation, previous.conversation);
}

function isPrefix(head: readonly ChatMessage[], whole: readonly ChatMessage[]): boolean {
  if (head.length === 0 || head.length > whole.length) return false;
  return head.every((message, index) => JSON.stringify(message) === JSON.stringify(whole[index]));
}
