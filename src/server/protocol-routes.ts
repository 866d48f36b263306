// The Responses and Messages routes: the POST front doors (protocol-adapters.ts) and those that need no upstream
// call: kept responses (GET / DELETE /v1/responses/{id}, GET .../input_items), conversations (/v1/conversations,
// conversation-routes.ts), the cancel of a background response (background-readers.ts) and the token counts of
// both doors.
import type { FastifyRequest } from "fastify";
import { InvalidRequestError, PermissionDeniedError, ResourceNotFoundError } from "../errors/gateway-error.ts";
import { estimateChatPrompt } from "../limits/token-estimate.ts";
import { truncatedBody } from "../pipeline/context-truncation.ts";
import { RESPONSES_ENDPOINT } from "../pipeline/endpoints.ts";
import type { GatewayRuntime } from "../pipeline/gateway-runtime.ts";
import { randomIds } from "../protocols/ids.ts";
import { toChatRequest as messagesToChat } from "../protocols/messages/request-mapping.ts";
import { ConversationRowsInMemory } from "../protocols/responses/conversation-rows-memory.ts";
import { Conversations } from "../protocols/responses/conversations.ts";
import { type InputItemsQuery, listInputItems } from "../protocols/responses/input-items.ts";
import { withChainHistory } from "../protocols/responses/kept-chain-history.ts";
import { historyConversationId, withConversationHistory } from "../protocols/responses/kept-conversation-history.ts";
import { forClient } from "../protocols/responses/kept-for-client.ts";
import { BEFORE_WRITE } from "../protocols/responses/kept-read-options.ts";
import { inMemory, type KeptResponses, NO_EVENTS } from "../protocols/responses/kept-responses.ts";
import { NOT_STORED } from "../protocols/responses/not-kept-answers.ts";
import { prefetch } from "../protocols/responses/prefetch.ts";
import { type CountedPrompt, toCountedPrompt } from "../protocols/responses/request-mapping.ts";
import { ResponseStore } from "../protocols/responses/response-store.ts";
import type { Deployment } from "../providers/catalog.ts";
import { MemoryToolCallExtras, TOOL_CALL_EXTRAS_LIMITS, type ToolCallExtrasStore } from "../state/tool-call-extras.ts";
import { cancelBackground, followKept, notReplayable, viewOf, writeEvents } from "./background-readers.ts";
import { joinedItemsOutBeforeDelete, settledRun } from "./background-stopped.ts";
import { registerConversationRoutes } from "./conversation-routes.ts";
import { type RouteHandler, RouteRecorder, type RouteShape, type RouteTarget } from "./lazy-routes.ts";
import { messagesAdapter } from "./messages-adapter.ts";
import { type ProtocolAdapter, protocolHandler } from "./protocol-adapters.ts";
import { MESSAGES_PATHS, RESPONSES_PATHS } from "./protocol-paths.ts";
import { responsesAdapter } from "./responses-adapter.ts";
import { keepingToolCallExtras } from "./tool-call-extras-door.ts";

/** The doors' handlers by route (lazy-routes.ts), and the Responses door's adapter (the batch runner's). */
export interface ProtocolDoors {
  readonly handlers: ReadonlyMap<string, RouteHandler>;
  /** The routes as registered (a test holds them equal to protocol-route-shapes.ts). */
  readonly shapes: readonly RouteShape[];
  readonly responses: ProtocolAdapter;
}

/**
 * The handlers of every route registerProtocolRoutes registers: what build-server.ts imports at the first request to
 * one of them (the routes themselves are registered at start: protocol-route-shapes.ts).
 */
export function protocolDoors(
  runtime: GatewayRuntime,
  kept?: KeptResponses,
  keptConversations?: Conversations,
  keptToolCallExtras?: ToolCallExtrasStore,
): ProtocolDoors {
  const recorder = new RouteRecorder();
  const responses = registerProtocolRoutes(recorder, runtime, kept, keptConversations, keptToolCallExtras);
  return { handlers: recorder.handlers, shapes: recorder.shapes, responses };
}

/**
 * `kept`: where kept responses live (a shared store from the composition root); by default in this process's
 * memory, bounded by `responses.store` (read once, at startup: a config reload does not resize it).
 */
function registerProtocolRoutes(
  app: RouteTarget,
  runtime: GatewayRuntime,
  kept?: KeptResponses,
  keptConversations?: Conversations,
  keptToolCallExtras?: ToolCallExtrasStore,
): ProtocolAdapter {
  const limits = runtime.snapshot.config.responses.store;
  const store = kept ?? inMemory(new ResponseStore(limits, runtime.clock));
  const conversations =
    keptConversations ??
    new Conversations(
      new ConversationRowsInMemory(limits, runtime.clock),
      limits.maxBytes,
      runtime.clock,
      randomIds,
      () => {},
    );
  const hasNativeProviders = (): boolean =>
    runtime.snapshot.config.providers.some((provider) => provider.responsesApi === "native");
  // One store for both doors: a Claude Code session never continues a Codex one, but call ids are unique anyway.
  const toolCallExtras =
    keptToolCallExtras ??
    runtime.state.toolCallExtras ??
    new MemoryToolCallExtras(TOOL_CALL_EXTRAS_LIMITS, runtime.clock);
  const responsesDoor = keepingToolCallExtras(
    responsesAdapter(store, conversations, runtime.clock, hasNativeProviders),
    toolCallExtras,
  );
  const responses = protocolHandler(runtime, responsesDoor);
  for (const path of RESPONSES_PATHS) app.post(path, responses);
  const messages = protocolHandler(runtime, keepingToolCallExtras(messagesAdapter(), toolCallExtras));
  for (const path of MESSAGES_PATHS) app.post(path, messages);
  registerKeptResponseRoutes(app, runtime, store, conversations);
  registerConversationRoutes(app, conversations, runtime);
  registerCountTokensRoute(app, runtime);
  registerInputTokensRoute(app, runtime, store, conversations);
  // The batch runner serves `/v1/responses` lines through the same adapter (batch-routes.ts).
  return responsesDoor;
}

function registerKeptResponseRoutes(
  app: RouteTarget,
  runtime: GatewayRuntime,
  store: KeptResponses,
  conversations: Conversations,
): void {
  for (const base of RESPONSES_PATHS) {
    app.get(`${base}/:id`, async (request, reply) => {
      const id = idOf(request);
      const kept = forClient(store, request.clientName);
      // No events read here: a poll needs none, and a follower reads them from its sequence number on.
      const read = await kept.get(id, NO_EVENTS);
      if (read === undefined) throw notKept(kept, id);
      // A run found stopped (its process died) is kept failed and its items leave its conversation, here.
      const stored = await settledRun(runtime, kept, conversations, read, request.log);
      const query = request.query as { stream?: string; starting_after?: string };
      if (query.stream !== "true") return viewOf(runtime, stored);
      // Resuming a background stream: the events after `starting_after` (a sequence number), then the live ones.
      if (stored.events === undefined) throw notReplayable(id);
      const from = startingAfter(query.starting_after) + 1;
      const followed = new AbortController();
      const events =
        runtime.backgroundRuns.follow(id, from, followed.signal) ??
        followKept(
          id,
          (eventsFrom) => kept.get(id, eventsFrom),
          from,
          () => runtime.clock.now(),
          followed.signal,
        );
      await writeEvents(request, reply, events, followed, runtime.snapshot.config.server.streamKeepaliveMs);
      return reply;
    });
    app.post(`${base}/:id/cancel`, async (request) => {
      const id = idOf(request);
      const kept = forClient(store, request.clientName);
      const read = await kept.get(id, undefined, BEFORE_WRITE);
      if (read === undefined) throw notKept(kept, id);
      return cancelBackground(runtime, kept, await settledRun(runtime, kept, conversations, read, request.log));
    });
    app.get(`${base}/:id/input_items`, async (request) => {
      const id = idOf(request);
      const kept = forClient(store, request.clientName);
      const row = await kept.get(id, NO_EVENTS);
      if (row === undefined) throw notKept(kept, id);
      // A continuation keeps its own turn: the earlier ones are in the rows it names (a 400 naming one gone).
      const stored = await withChainHistory(kept, row);
      // A conversation turn keeps its own items: the earlier ones are its conversation's, as they are now.
      const historyId = historyConversationId(stored);
      const found = historyId === undefined ? undefined : await conversations.get(historyId, request.clientName);
      return listInputItems(
        withConversationHistory(stored, found?.items, found?.deleted),
        request.query as InputItemsQuery,
      );
    });
    app.delete(`${base}/:id`, async (request) => {
      const id = idOf(request);
      const kept = forClient(store, request.clientName);
      // A background response still running here is cancelled first: its run would keep it again when it ends. The
      // items a run elsewhere (or one whose process died) named as joining its conversation go before the row does.
      const row = await kept.get(id, NO_EVENTS);
      if (row !== undefined) {
        await joinedItemsOutBeforeDelete(runtime, conversations, row);
        await runtime.backgroundRuns.cancel(id);
      }
      // One this process failed to keep has nothing to delete: said so, not a 503 while the store is down.
      else if (kept.notKept(id) !== undefined) throw notKept(kept, id);
      if (!(await kept.delete(id))) throw notKept(kept, id);
      return { id, object: "response", deleted: true };
    });
  }
}

/** `starting_after`: a sequence number (-1, or absent: from the first event). */
function startingAfter(value: string | undefined): number {
  if (value === undefined || value === "") return -1;
  const number = Number(value);
  if (!Number.isInteger(number) || number < -1) {
    throw new InvalidRequestError("`starting_after` must be an integer sequence number (-1 or more).", {
      param: "starting_after",
      code: "invalid_value",
    });
  }
  return number;
}

function idOf(request: FastifyRequest): string {
  return (request.params as { id: string }).id;
}

function notKept(kept: KeptResponses, id: string): ResourceNotFoundError {
  return new ResourceNotFoundError(
    kept.notKept(id) !== undefined
      ? `Response with id '${id}' ${NOT_STORED}.`
      : `Response with id '${id}' not found: it was never kept (\`store: false\`), has expired or was deleted.`,
    { param: "response_id", code: "response_not_found" },
  );
}

/**
 * `POST /v1/messages/count_tokens`: the gateway's own estimate of the translated prompt (no upstream call),
 * calibrated for the candidate that would serve the model now (limits/prompt-calibration.ts): clients size their
 * context by it, and the plain estimate is well above most tokenizers' count. Planned as the asking client's request
 * would be (its `models` and `paid`, client-rules.ts): a model its key may not use is the 403 that /v1/messages
 * answers, not a count that tells it the model is there and which deployment would serve it.
 */
function registerCountTokensRoute(app: RouteTarget, runtime: GatewayRuntime): void {
  for (const base of MESSAGES_PATHS) {
    app.post(`${base}/count_tokens`, async (request) => {
      const { chatBody } = messagesToChat(request.body, "count");
      const estimate = estimateChatPrompt(chatBody.messages, chatBody.tools).promptTokens;
      return { input_tokens: calibratedFor(runtime, chatBody.model, request.clientName, estimate) };
    });
  }
}

/**
 * `POST /v1/responses/input_tokens` (OpenAI's `responses.inputTokens.count()`): as count_tokens, the gateway's
 * estimate of the translated prompt, `previous_response_id` and `item_reference`s read from the client's own kept
 * responses; calibrated when the body names a model, planned as the asking client's request (a model its key may not
 * use is a 403).
 */
function registerInputTokensRoute(
  app: RouteTarget,
  runtime: GatewayRuntime,
  store: KeptResponses,
  conversations: Conversations,
): void {
  for (const base of RESPONSES_PATHS) {
    app.post(`${base}/input_tokens`, async (request) => {
      const lookup = await prefetch(forClient(store, request.clientName), request.body, (id) =>
        conversations.get(id, request.clientName),
      );
      const prompt = toCountedPrompt(request.body, lookup);
      const messages = sentMessages(prompt, runtime, request.clientName);
      const estimate = estimateChatPrompt(messages, prompt.tools).promptTokens;
      const inputTokens =
        prompt.model === undefined ? estimate : calibratedFor(runtime, prompt.model, request.clientName, estimate);
      return { object: "response.input_tokens", input_tokens: inputTokens };
    });
  }
}

/**
 * The messages a request would send: with `truncation: "auto"`, its oldest items left out as the pipeline leaves them
 * out for the asking client (context-truncation.ts), planned with the chat body the request would be planned with
 * (its `models` fallbacks, tools, schema, `max_output_tokens` and features: a fallback that holds it whole is why
 * nothing is left out). The plan reads what refusals taught each deployment (its calibrated estimate, a window it
 * shares with the output), as the request's would. Without a `model` nothing is planned, so nothing is left out.
 */
function sentMessages(prompt: CountedPrompt, runtime: GatewayRuntime, client: string | null): readonly unknown[] {
  if (!prompt.isTruncated || prompt.plannedBody === undefined) return prompt.messages;
  const truncated = truncatedBody(runtime, RESPONSES_ENDPOINT, { ...prompt.plannedBody }, client ?? undefined);
  return Array.isArray(truncated.messages) ? truncated.messages : prompt.messages;
}

/** The estimate scaled for the first candidate of `model`'s route; as it is when nothing would serve it. */
function calibratedFor(runtime: GatewayRuntime, model: string, client: string | null, estimate: number): number {
  let first: Deployment | undefined;
  try {
    const plan = runtime.plan({ model, fallbackModels: [], kind: "chat", client });
    first = (plan.candidates[0] ?? plan.waitFor)?.deployment;
  } catch (error) {
    // The client's `models` do not allow it: refused as a request for it would be.
    if (error instanceof PermissionDeniedError) throw error;
    // an unknown model: the plain estimate, as before there was a route to ask
  }
  return first === undefined ? estimate : runtime.promptCalibration.promptTokensFor(first, estimate);
}
