// What a conversation's and its items' ids look like (anything else is a 400, not a lookup), and the conversation
// object the Conversations API answers with.
import { InvalidRequestError } from "../../errors/gateway-error.ts";
import type { StoredConversation } from "./conversation-shapes.ts";

/** The conversation object the API answers with (its items are listed apart). */
export interface ConversationObject {
  readonly id: string;
  readonly object: "conversation";
  readonly created_at: number;
  readonly metadata: Readonly<Record<string, string>>;
}

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
