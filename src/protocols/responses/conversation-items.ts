// Conversation items (OpenAI's Conversations API): what a client adds (`POST /v1/conversations`, `.../items`) and
// what a Responses request with `conversation` adds (its input, then its output), each with an id, as a
// conversation keeps and lists them. Items are checked as Responses input is (the chat translation runs over them),
// so whatever is kept can be sent upstream by a later request.
import { InvalidRequestError } from "../../errors/gateway-error.ts";
import { isRecord } from "../../is-record.ts";
import { HOSTED_ITEMS_WITH_IDS } from "../../responses-items.ts";
import type { IdSource } from "../ids.ts";
import { unsupportedAt } from "../validate.ts";
import type { ConversationItem, DeletedItem } from "./conversations.ts";
import { type CursorList, type CursorQuery, cursorPage, listOf } from "./cursor-page.ts";
import { inputMessages, type ResponseLookup, refuseUnansweredOutput } from "./input-messages.ts";
import type { OutputItem } from "./response-object.ts";
import { ToolNames } from "./tool-names.ts";

/** Items one `POST /v1/conversations` or `.../items` may add: OpenAI's bound ("up to 20 items at a time"). */
export const MAX_ITEMS_PER_REQUEST = 20;

/** Id prefixes by item type, as the Responses door names its output items (`msg_`, `fc_`, `ctc_`, `rs_`). */
const PREFIXES: Readonly<Record<string, string>> = {
  message: "msg_",
  function_call: "fc_",
  function_call_output: "fco_",
  custom_tool_call: "ctc_",
  custom_tool_call_output: "ctco_",
  reasoning: "rs_",
};

const NO_LOOKUP: ResponseLookup = { get: () => undefined, findItem: () => undefined };

/**
 * `items` of a Conversations request -> conversation items with fresh ids (an `id` the client sent is replaced:
 * ids must be unique in the conversation, and the gateway cannot know another store's). A malformed item, a type
 * chat providers cannot take, or an `item_reference` (send the item itself) is a 400 naming `items[i]...`.
 */
export function itemsFromRequest(items: unknown, ids: IdSource): ConversationItem[] {
  if (!Array.isArray(items)) {
    throw new InvalidRequestError("`items` must be an array of items.", { param: "items", code: "invalid_value" });
  }
  if (items.length > MAX_ITEMS_PER_REQUEST) {
    throw new InvalidRequestError(
      `\`items\` has ${items.length} items; at most ${MAX_ITEMS_PER_REQUEST} may be added at a time.`,
      { param: "items", code: "invalid_value" },
    );
  }
  for (const [index, item] of items.entries()) {
    if (isRecord(item) && item.type === "item_reference") {
      throw unsupportedAt("`item_reference` cannot be added to a conversation: send the item itself.", [
        "items",
        index,
        "type",
      ]);
    }
  }
  // The same checks as a Responses request's input (types, fields, content parts), with `items[i]` in `param`.
  inputMessages(items, NO_LOOKUP, ToolNames.of([]), "items");
  return items.map((item) => withId(item as Record<string, unknown>, ids));
}

/** The item types that make a call a later output answers by its `call_id` (input-messages.ts reads them so). */
const CALL_TYPES: ReadonlySet<string> = new Set(["function_call", "custom_tool_call", "tool_search_call"]);
const OUTPUT_TYPES: ReadonlySet<string> = new Set([
  "function_call_output",
  "custom_tool_call_output",
  "tool_search_output",
]);

/**
 * OpenAI's 400 for the first of a Conversations request's `items` (made by itemsFromRequest) whose output answers no
 * call before it: none of the conversation's items as they are now (`earlier`; a call item deleted is gone), none of
 * the request's ahead of it, in the words of the Responses door for its `input` (input-messages.ts). OpenAI's
 * Conversations reference (openai-node ItemCreateParams) says nothing of it either way; what it documents is the check
 * on its Realtime API's conversation items ("If passed on a `function_call_output` item, the server will check that a
 * `function_call` item with the same ID exists in the conversation history": openai-node
 * src/resources/realtime/realtime.ts, ConversationItemWithReference.call_id), and a Responses turn reading such a
 * conversation is its 400 above. Kept, the orphan was left out of every later turn sent to a chat provider (an answer
 * the model never saw), and sent as it was to a native Responses provider (native.ts), which refused every turn.
 */
export function refuseUnansweredOutputs(
  items: readonly ConversationItem[],
  earlier: readonly ConversationItem[],
): void {
  const called = new Set<string>();
  const addCall = (item: ConversationItem): void => {
    if (CALL_TYPES.has(item.type) && typeof item.call_id === "string") called.add(item.call_id);
  };
  earlier.forEach(addCall);
  for (const [index, item] of items.entries()) {
    addCall(item);
    if (OUTPUT_TYPES.has(item.type) && typeof item.call_id === "string") {
      refuseUnansweredOutput(called, item.call_id, item.type, ["items", index]);
    }
  }
}

/**
 * A Responses request's input as conversation items: a string is one user message; an `item_reference` is the
 * kept item it names (already resolved by the request's translation, which refused unknown ones).
 */
export function itemsFromInput(input: unknown, lookup: ResponseLookup, ids: IdSource): ConversationItem[] {
  if (typeof input === "string") return [withId({ type: "message", role: "user", content: input }, ids)];
  if (!Array.isArray(input)) return [];
  return input.flatMap((raw) => {
    if (!isRecord(raw)) return [];
    if (raw.type !== "item_reference") return [withId(raw, ids)];
    const found = typeof raw.id === "string" ? lookup.findItem(raw.id) : undefined;
    return found === undefined ? [] : [withId(found as unknown as Record<string, unknown>, ids, raw.id)];
  });
}

/** A response's output items, kept with their own ids (the ids the response showed the client). */
export function itemsFromOutput(output: readonly OutputItem[]): ConversationItem[] {
  return output.map((item) => ({ ...item }) as unknown as ConversationItem);
}

/**
 * The id the client gave each item made here (or the item an `item_reference` named), by the item: read by
 * `clientIdsOf` for the conversation to keep beside its items (StoredConversation.clientIds). Kept apart rather than on
 * the item, which is listed to clients and sent upstream as it is.
 */
const givenIds = new WeakMap<ConversationItem, string>();

/** Each item's id -> the id the client gave it, for the items made here from a client's items that had one. */
export function clientIdsOf(items: readonly ConversationItem[]): Record<string, string> {
  const clientIds: Record<string, string> = {};
  for (const item of items) {
    const given = givenIds.get(item);
    if (given !== undefined) clientIds[item.id] = given;
  }
  return clientIds;
}

/** One item as kept: a fresh id, message content as parts, and a `status` as OpenAI lists items. */
function withId(item: Record<string, unknown>, ids: IdSource, givenId = item.id): ConversationItem {
  const made = madeItem(item, ids);
  if (typeof givenId === "string" && givenId !== "") givenIds.set(made, givenId);
  return made;
}

function madeItem(item: Record<string, unknown>, ids: IdSource): ConversationItem {
  const { id: _clientId, ...rest } = item;
  const type = typeof rest.type === "string" ? rest.type : "message";
  // A hosted tool's item keeps the id its provider gave it: it goes back to a native provider with that id
  // (native.ts), and OpenAI refuses one it did not issue ("Expected an ID that begins with 'ws'").
  const id =
    HOSTED_ITEMS_WITH_IDS.has(type) && typeof item.id === "string" && item.id !== ""
      ? item.id
      : ids(PREFIXES[type] ?? "item_");
  if (type !== "message") return { ...rest, id, type, ...(type === "reasoning" ? {} : { status: "completed" }) };
  const isAssistant = rest.role === "assistant";
  const content =
    typeof rest.content === "string"
      ? [
          isAssistant
            ? { type: "output_text", text: rest.content, annotations: [] }
            : { type: "input_text", text: rest.content },
        ]
      : rest.content;
  return { id, type: "message", ...rest, status: messageStatus(rest.status), content };
}

/** The statuses OpenAI lists a message item with (its SDKs type `status` as one of them). */
const MESSAGE_STATUSES: ReadonlySet<unknown> = new Set(["in_progress", "completed", "incomplete"]);

/**
 * A message's status as the client sent it when it is one of OpenAI's, else `completed`: the input checks read no
 * `status`, and `status: 5` (or an object) was kept and listed as it came, a shape no SDK reads.
 */
function messageStatus(status: unknown): string {
  return MESSAGE_STATUSES.has(status) ? (status as string) : "completed";
}

export type ItemListQuery = CursorQuery;
export type ItemList = CursorList<ConversationItem>;

/**
 * `GET /v1/conversations/{id}/items`: newest first by default, `limit` / `after` / `order` paging. An `after` naming an
 * item deleted meanwhile (one of the conversation's last deleted) pages on from where that item was, as a cursor
 * should: a client paging through a conversation while another deletes from it neither fails nor skips items.
 */
export function listItems(
  items: readonly ConversationItem[],
  query: ItemListQuery,
  deleted: readonly DeletedItem[] = [],
): ItemList {
  return cursorPage(
    items,
    query,
    (id) => `No item with id '${id}' in this conversation.`,
    (id, order, ordered) => startAfterDeleted(id, order, ordered, deleted),
  );
}

/**
 * The page start after a deleted item: found by the item that was before it (items are only ever added at the end),
 * followed back through items deleted since; undefined when `id` was never one of the remembered deleted items.
 */
function startAfterDeleted(
  id: string,
  order: "asc" | "desc",
  ordered: readonly ConversationItem[],
  deleted: readonly DeletedItem[],
): number | undefined {
  const previousOf = new Map(deleted.map((item) => [item.id, item.previousId]));
  if (!previousOf.has(id)) return undefined;
  let previous = previousOf.get(id) ?? null;
  // Each step moves to an earlier item: a chain ends within the deleted list's length.
  for (let step = 0; previous !== null && step <= deleted.length; step++) {
    const index = ordered.findIndex((item) => item.id === previous);
    // Ascending: the items after the one before it; descending: that one and the older ones.
    if (index !== -1) return order === "asc" ? index + 1 : index;
    // Gone, and no longer remembered: where it was is not known (an unknown `after`).
    if (!previousOf.has(previous)) return undefined;
    previous = previousOf.get(previous) ?? null;
  }
  // It was first (or everything before it is gone too): ascending, from the start; descending, nothing older.
  return order === "asc" ? 0 : ordered.length;
}

export { listOf };
