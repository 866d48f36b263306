// OpenAI's Conversations API (`/v1/conversations`, the routes `client.conversations.*` of the OpenAI SDKs call): kept
// conversations whose items a Responses request with `conversation` reads and adds to. No upstream call; a named
// client reaches only its own conversations (404 for another's, as for its kept responses). A create and added
// items count as one request of a named client's own budgets (`limits`, pipeline/client-budget.ts): they cost no
// upstream call but grow the store every client shares.
import type { FastifyRequest } from "fastify";
import { InvalidRequestError, ResourceNotFoundError } from "../errors/gateway-error.ts";
import { isRecord } from "../is-record.ts";
import { asClientRequest } from "../pipeline/client-budget.ts";
import type { GatewayRuntime } from "../pipeline/gateway-runtime.ts";
import { randomIds } from "../protocols/ids.ts";
import { readMetadata } from "../protocols/metadata.ts";
import {
  clientIdsOf,
  type ItemListQuery,
  itemsFromRequest,
  listItems,
  listOf,
  refuseUnansweredOutputs,
} from "../protocols/responses/conversation-items.ts";
import {
  type Conversations,
  checkConversationId,
  checkItemId,
  type StoredConversation,
  toConversationObject,
} from "../protocols/responses/conversations.ts";
import { conversationNotFound } from "../protocols/responses/request-mapping.ts";
import type { RouteTarget } from "./lazy-routes.ts";
import { CONVERSATIONS_PATHS } from "./protocol-paths.ts";

export function registerConversationRoutes(
  app: RouteTarget,
  conversations: Conversations,
  runtime: GatewayRuntime,
): void {
  for (const base of CONVERSATIONS_PATHS) {
    app.post(base, async (request) => {
      const body = bodyOf(request);
      const items = body.items === undefined || body.items === null ? [] : itemsFromRequest(body.items, randomIds);
      refuseUnansweredOutputs(items, []);
      const metadata = readMetadata(body.metadata);
      const created = await asClientRequest(runtime, request.clientName, () =>
        conversations.create(request.clientName, metadata, items, clientIdsOf(items)),
      );
      return toConversationObject(created);
    });
    app.get(`${base}/:id`, async (request) => toConversationObject(await found(conversations, request)));
    app.post(`${base}/:id`, async (request) => {
      const id = conversationIdOf(request);
      const body = bodyOf(request);
      if (!("metadata" in body)) {
        throw new InvalidRequestError("`metadata` is required: the new metadata of the conversation (or null).", {
          param: "metadata",
          code: "invalid_value",
        });
      }
      const changed = await conversations.setMetadata(id, request.clientName, readMetadata(body.metadata));
      if (changed === undefined) throw conversationNotFound(id, "conversation_id");
      return toConversationObject(changed);
    });
    app.delete(`${base}/:id`, async (request) => {
      const id = conversationIdOf(request);
      if (!(await conversations.delete(id, request.clientName))) throw conversationNotFound(id, "conversation_id");
      return { id, object: "conversation.deleted", deleted: true };
    });
    app.get(`${base}/:id/items`, async (request) => {
      const stored = await found(conversations, request);
      return listItems(stored.items, request.query as ItemListQuery, stored.deleted);
    });
    app.post(`${base}/:id/items`, async (request) => {
      const id = conversationIdOf(request);
      const items = itemsFromRequest(bodyOf(request).items, randomIds);
      // Checked against the conversation as the write reads it: a call item deleted meanwhile answers no output.
      const refuseOrphans = (stored: StoredConversation) => refuseUnansweredOutputs(items, stored.items);
      const appended = await asClientRequest(runtime, request.clientName, () =>
        conversations.append(id, request.clientName, items, "items", clientIdsOf(items), refuseOrphans),
      );
      if (appended === undefined) {
        throw conversationNotFound(id, "conversation_id");
      }
      return listOf(items);
    });
    app.get(`${base}/:id/items/:itemId`, async (request) => {
      const itemId = itemIdOf(request);
      const item = (await found(conversations, request)).items.find((candidate) => candidate.id === itemId);
      if (item === undefined) throw itemNotFound(itemId);
      return item;
    });
    app.delete(`${base}/:id/items/:itemId`, async (request) => {
      const id = conversationIdOf(request);
      const itemId = itemIdOf(request);
      const changed = await conversations.deleteItem(id, request.clientName, itemId);
      if (changed === undefined) throw conversationNotFound(id, "conversation_id");
      if (changed === "no item") throw itemNotFound(itemId);
      // As OpenAI: the conversation the item was deleted from.
      return toConversationObject(changed);
    });
  }
}

async function found(conversations: Conversations, request: FastifyRequest): Promise<StoredConversation> {
  const id = conversationIdOf(request);
  const stored = await conversations.get(id, request.clientName);
  if (stored === undefined) throw conversationNotFound(id, "conversation_id");
  return stored;
}

function conversationIdOf(request: FastifyRequest): string {
  const id = (request.params as { id: string }).id;
  checkConversationId(id, "conversation_id");
  return id;
}

function itemIdOf(request: FastifyRequest): string {
  const itemId = (request.params as { itemId: string }).itemId;
  checkItemId(itemId);
  return itemId;
}

/** A POST's body: a JSON object (the body parser refused anything that is not JSON). */
function bodyOf(request: FastifyRequest): Record<string, unknown> {
  if (request.body === undefined || request.body === null) return {};
  if (!isRecord(request.body)) {
    throw new InvalidRequestError("The request body must be a JSON object.", { code: "invalid_body" });
  }
  return request.body;
}

function itemNotFound(itemId: string): ResourceNotFoundError {
  return new ResourceNotFoundError(`Item with id '${itemId}' not found in this conversation.`, {
    param: "item_id",
    code: "item_not_found",
  });
}
