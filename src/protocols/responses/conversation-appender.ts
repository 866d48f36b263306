// What adds a Responses request's input and its answer's output items to the conversation it names
// (`conversation`), made when the request is translated so that an input the conversation cannot take is a 400 before
// anything goes upstream.
import { setTimeout as sleep } from "node:timers/promises";
import { InvalidRequestError } from "../../errors/gateway-error.ts";
import { isRecord } from "../../is-record.ts";
import { randomIds } from "../ids.ts";
import { clientIdsOf, itemsFromInput, itemsFromOutput } from "./conversation-items.ts";
import type { Conversations, ConversationUpdate } from "./conversations.ts";
import type { prefetch } from "./prefetch.ts";
import type { ResponseObject } from "./response-object.ts";
import type { KeptJoin } from "./response-store.ts";

/** Times a refused answer's items are tried to be taken out, and the ms between (the final write's own). */
const MAX_REMOVE_ATTEMPTS = 5;
const REMOVE_RETRY_MS = 1_000;

/** What adds a request's items to its conversation once answered, and the ids its input items get there. */
export interface ConversationAppender {
  /** The ids the request's input items are kept under in the conversation (a chain from it holds them). */
  readonly inputIds: readonly string[];
  append(response: ResponseObject): Promise<ConversationUpdate>;
  /** The conversation, and the ids `append` adds for `response` (that `remove` would take out). */
  joinOf(response: ResponseObject): KeptJoin;
  /** Takes out again what `append` added for `response` (the items it has of them, by their ids). */
  remove(response: ResponseObject): Promise<void>;
}

/**
 * With `conversation`: what adds the request's input items and the answer's output items to the conversation once
 * the answer is made (kept whatever `store` says, as OpenAI does). The input is made into items now, so a
 * conversation that could not take it is a 400 before anything goes upstream.
 */
export function conversationAppender(
  conversations: Conversations,
  client: string | null,
  conversationId: string | undefined,
  body: unknown,
  lookup: Awaited<ReturnType<typeof prefetch>>,
): ConversationAppender | undefined {
  const conversation = lookup.conversation;
  if (conversationId === undefined || conversation === undefined) return undefined;
  const input = itemsFromInput(isRecord(body) ? body.input : undefined, lookup, randomIds);
  const clientIds = clientIdsOf(input);
  // As it will be kept: the ids the client gave its items too (they may be long), beside the items.
  const bytes = conversations.bytesWith(conversation, input, clientIds);
  if (bytes > conversations.maxBytes) {
    throw new InvalidRequestError(
      `Conversation '${conversationId}' with this input would take ${bytes} bytes (with the room kept to delete its items), over the gateway's bound of ${conversations.maxBytes} bytes per conversation: start a new conversation.`,
      { param: "conversation", code: "invalid_value" },
    );
  }
  const heldIds = new Set(conversation.items.map((item) => item.id));
  // An output item under an id the conversation already held (a native upstream's ids are relayed as given, and
  // may repeat) is not this answer's to take out: deleting by that id took the earlier turn's item out with it.
  const joinOf = (response: ResponseObject): KeptJoin => ({
    conversationId,
    itemIds: [
      ...input.map((item) => item.id),
      ...response.output.map((item) => item.id).filter((id) => !heldIds.has(id)),
    ],
  });
  return {
    inputIds: input.map((item) => item.id),
    append: (response) =>
      conversations.appendAfterAnswer(
        conversationId,
        client,
        [...input, ...itemsFromOutput(response.output)],
        clientIds,
      ),
    joinOf,
    remove: async (response) => {
      const { itemIds } = joinOf(response);
      // Tried again after a pause, as the final write is: it runs right after that write failed on a store that is
      // often the same one (Redis), so a single attempt left the refused answer's items in for good.
      for (let attempt = 1; attempt <= MAX_REMOVE_ATTEMPTS; attempt++) {
        if (await conversations.removeAfterRefusal(conversationId, client, itemIds)) return;
        if (attempt < MAX_REMOVE_ATTEMPTS) await sleep(REMOVE_RETRY_MS);
      }
    },
  };
}
