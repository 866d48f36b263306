// The OpenAI Responses door (`POST /v1/responses`): the request translated into chat (with what it continues from:
// `previous_response_id`, `item_reference`, `conversation`), the answer translated back and kept, and a background
// request handed to background-responses.ts. The generic handler it plugs into is protocol-adapters.ts.
import type { Clock } from "../clock.ts";
import { RESPONSES_ENDPOINT } from "../pipeline/endpoints.ts";
import { randomIds } from "../protocols/ids.ts";
import { backgroundView } from "../protocols/responses/background.ts";
import type { KeptChain } from "../protocols/responses/chain-items.ts";
import { conversationAppender } from "../protocols/responses/conversation-appender.ts";
import type { Conversations, ConversationUpdate } from "../protocols/responses/conversations.ts";
import { withConversationOrigin } from "../protocols/responses/duplicate-items.ts";
import { keptChainTurn } from "../protocols/responses/kept-chain-history.ts";
import { keptTurn } from "../protocols/responses/kept-conversation-history.ts";
import { forClient } from "../protocols/responses/kept-for-client.ts";
import type { KeptResponses } from "../protocols/responses/kept-responses.ts";
import {
  fromNativeResponse,
  type NativeContext,
  NativeResponsesRelay,
  toNativeBody,
} from "../protocols/responses/native.ts";
import { shortenNativeToolNames } from "../protocols/responses/native-tool-names.ts";
import { prefetch } from "../protocols/responses/prefetch.ts";
import { toChatRequest as responsesToChat } from "../protocols/responses/request-mapping.ts";
import { outputToChatMessages, toResponseObject } from "../protocols/responses/response-mapping.ts";
import { buildResponse, type ResponseObject } from "../protocols/responses/response-object.ts";
import type { KeptJoin } from "../protocols/responses/response-store.ts";
import type { ResponsesStreamTranslator } from "../protocols/responses/stream-mapping.ts";
import { limitAnswerToolCalls, responsesStreamFor } from "../protocols/responses/tool-call-limit.ts";
import type { NativeCall } from "../upstream/forward-types.ts";
import type { BackgroundExchange } from "./background-responses.ts";
import type { Exchange, ProtocolAdapter } from "./protocol-adapters.ts";

/** Said on an answer whose items were not added to the conversation it named (conversations.ts ConversationUpdate). */
const CONVERSATION_NOT_UPDATED_HEADER = "x-gateway-conversation-not-updated";

/** Below a native provider's base URL. */
const RESPONSES_UPSTREAM_PATH = "/responses";

function nowSeconds(clock: Clock): number {
  return Math.floor(clock.now() / 1000);
}

/**
 * OpenAI Responses (`POST /v1/responses`), kept unless the request says `store: false`. `hasNativeProviders`: some
 * provider is marked `responses_api: native` (only then is the native body built).
 */
export function responsesAdapter(
  allKept: KeptResponses,
  conversations: Conversations,
  clock: Clock,
  hasNativeProviders: () => boolean,
): ProtocolAdapter {
  return {
    endpoint: RESPONSES_ENDPOINT,
    async begin(body, client) {
      // A named client continues from, refers to and keeps only responses (and conversations) of its own.
      const kept = forClient(allKept, client);
      const prefetched = await prefetch(kept, body, (id) => conversations.get(id, client));
      // A kept background response as GET shows it: one whose run stopped without an end reads failed, not running.
      const lookup: typeof prefetched = {
        ...prefetched,
        get: (id) => {
          const stored = prefetched.get(id);
          return stored === undefined ? undefined : { ...stored, response: backgroundView(stored, false, clock.now()) };
        },
      };
      const translated = responsesToChat(body, lookup);
      // Kept with the answer: a continuation from it offers them again (request-mapping.ts withLoadedTools).
      const loadedTools = translated.loadedTools.length === 0 ? {} : { loadedTools: translated.loadedTools };
      const appender = conversationAppender(conversations, client, translated.conversationId, body, lookup);
      const addToConversation = appender?.append;
      // Kept with the answer: what tells the items its chain holds (duplicate-items.ts), the ids its input items get
      // in its conversation too (a client may send one back by the id the conversation's items list shows), and where
      // in that conversation a chain from it starts.
      const chainOf = (response: ResponseObject): { chain?: KeptChain } => {
        if (translated.chain === undefined) return {};
        const inputIds = [...translated.chain.inputIds, ...(appender?.inputIds ?? [])];
        const inConversation = [...(appender?.inputIds ?? []), ...response.output.map((item) => item.id)];
        const conversationId = appender === undefined ? undefined : translated.conversationId;
        return { chain: withConversationOrigin({ ...translated.chain, inputIds }, conversationId, inConversation) };
      };
      // What the answer keeps of its conversation: on a named conversation, its own messages and where the rest lives.
      // A continuation's (put alone: a background run's rows are compared whole) its own turn and where the rest is.
      const keptConversation = (output: ResponseObject["output"] | undefined, isPointing = false) => {
        const outputMessages = output === undefined ? [] : outputToChatMessages(output, translated.toolNames);
        if (isPointing && appender === undefined && prefetched.previousTurn !== undefined) {
          const turn = keptChainTurn(translated.conversation, prefetched.previousTurn);
          return { ...turn, conversation: [...turn.conversation, ...outputMessages] };
        }
        const history =
          appender === undefined || translated.conversationId === undefined || lookup.conversation === undefined
            ? undefined
            : { id: translated.conversationId, items: lookup.conversation.items };
        const ownIds = [...(appender?.inputIds ?? []), ...(output ?? []).map((item) => item.id)];
        const turn = keptTurn(translated.conversation, translated.historyLength, history, ownIds);
        return { ...turn, conversation: [...turn.conversation, ...outputMessages] };
      };
      const nativeBody = hasNativeProviders() ? toNativeBody(body, lookup) : undefined;
      // Long (or invalid) tool names go to a native provider renamed too (OpenAI refuses them); its answer maps back.
      const shortened = nativeBody === undefined ? undefined : shortenNativeToolNames(nativeBody);
      const native: NativeCall | undefined =
        nativeBody === undefined
          ? undefined
          : { api: "responses", endpointPath: RESPONSES_UPSTREAM_PATH, body: shortened?.body ?? nativeBody };
      // A background response is known by its id before anything is served: the answer keeps it.
      const backgroundId = translated.isBackground ? randomIds("resp_") : undefined;
      const ids = (prefix: string): string =>
        prefix === "resp_" && backgroundId !== undefined ? backgroundId : randomIds(prefix);
      const nativeContext = (servedModel: string): NativeContext => ({
        id: ids("resp_"),
        echo: translated.echo,
        createdAtSeconds: nowSeconds(clock),
        fallbackModel: servedModel,
        ...(shortened === undefined ? {} : { toolNames: shortened.names }),
      });
      /** The store failed to keep the answer (reported by it): the request's record says so (Exchange.isAnswerNotKept). */
      let isAnswerNotKept = false;
      /** Keeps the answer; what became of its conversation when it was not updated (else undefined). */
      const keep = async (response: ResponseObject | undefined): Promise<ConversationUpdate | undefined> => {
        // A failed answer (the upstream failed it inside a stream that still ended cleanly) is nothing to continue
        // from.
        if (response === undefined || response.status === "failed") return undefined;
        const update = await addToConversation?.(response);
        if (translated.shouldStore) {
          const row = { response, ...loadedTools, ...chainOf(response) };
          // Kept whole instead when a row it points to went while it was answered (KeptResponses.put).
          const whole = { ...row, ...keptConversation(response.output) };
          isAnswerNotKept = !(await kept.put({ ...row, ...keptConversation(response.output, true) }, whole));
        }
        return update === undefined || update === "added" ? undefined : update;
      };
      let translator: ResponsesStreamTranslator | NativeResponsesRelay | undefined;
      let latest: ResponseObject | undefined;
      const exchange: Exchange = {
        chatBody: translated.chatBody,
        // Said on the answer: the model answered without them, and the client would not know it otherwise.
        headers:
          translated.droppedTools.length === 0
            ? undefined
            : { "x-gateway-dropped-tools": translated.droppedTools.join(", ") },
        native,
        truncatesToFit: translated.echo.truncation === "auto",
        isAnswerNotKept: () => isAnswerNotKept,
        answer(upstreamAnswer, servedModel, api) {
          const response =
            api === "chat"
              ? toResponseObject(limitAnswerToolCalls(upstreamAnswer, translated.toolCallLimit), {
                  echo: translated.echo,
                  ids,
                  createdAtSeconds: nowSeconds(clock),
                  fallbackModel: servedModel,
                  includesEncryptedReasoning: translated.includesEncryptedReasoning,
                })
              : fromNativeResponse(upstreamAnswer, nativeContext(servedModel));
          latest = response;
          return response;
        },
        stream(servedModel, api) {
          translator =
            api === "chat"
              ? responsesStreamFor(
                  {
                    echo: translated.echo,
                    ids,
                    createdAtSeconds: nowSeconds(clock),
                    fallbackModel: servedModel,
                    includesEncryptedReasoning: translated.includesEncryptedReasoning,
                  },
                  translated.toolCallLimit,
                )
              : new NativeResponsesRelay(nativeContext(servedModel));
          return translator;
        },
        // The answer was sent, its items not added to its conversation: the client is told, or it would believe the
        // next turn continues from this one.
        answered: async () => {
          const update = await keep(latest);
          return update === undefined ? undefined : { [CONVERSATION_NOT_UPDATED_HEADER]: update };
        },
        // A failed stream leaves nothing to continue from. Its headers are sent: an SSE comment says it instead
        // (clients and SDKs skip comments; the events stay OpenAI's).
        streamEnded: async (isSuccess) => {
          if (!isSuccess) return "";
          const update = await keep(translator?.result);
          return update === undefined ? "" : `: ${CONVERSATION_NOT_UPDATED_HEADER}: ${update}\n\n`;
        },
      };
      if (backgroundId === undefined) return exchange;
      const isAnswer = (response: ResponseObject): boolean =>
        response.status === "completed" || response.status === "incomplete";
      // The items its answer is adding to its conversation, once the run said so (willJoin): its running writes carry
      // them, so that a reader finding the run stopped takes them out (background-stopped.ts); its final write not.
      let joining: KeptJoin | undefined;
      const background: BackgroundExchange = {
        id: backgroundId,
        queued: {
          ...buildResponse(translated.echo, {
            id: backgroundId,
            createdAtSeconds: nowSeconds(clock),
            status: "queued",
            model: translated.chatBody.model,
            output: [],
            usage: undefined,
          }),
          background: true,
        },
        isStream: translated.isStream,
        answer: (upstreamAnswer, servedModel, api) =>
          exchange.answer(upstreamAnswer, servedModel, api) as ResponseObject,
        stream: (servedModel, api) => {
          // The Responses translator shows no prompt count before the answer's usage: it takes no estimate.
          exchange.stream(servedModel, api, 0);
          if (translator === undefined) throw new Error("the Responses door made no stream translator");
          return translator;
        },
        keep: async (response, events, isFinal, expected, notAfterMs) => {
          const written = await kept.putIfUnchanged(
            {
              response,
              // What a continuation from it sends: its output only once it has one to continue from.
              ...keptConversation(isAnswer(response) ? response.output : undefined),
              ...loadedTools,
              ...chainOf(response),
              ...(events === undefined ? {} : { events }),
              ...(isFinal ? {} : { heartbeatAtMs: clock.now() }),
              ...(isFinal || joining === undefined ? {} : { joining }),
            },
            expected,
            notAfterMs,
          );
          return written;
        },
        read: () => kept.get(backgroundId),
        // Only an answer joins its conversation, before its final write; one whose final write is refused (cancelled
        // or deleted meanwhile, or too late) leaves it again (background-final-write.ts).
        willJoin: (response) => {
          if (appender === undefined || !isAnswer(response)) return false;
          joining = appender.joinOf(response);
          return true;
        },
        join: async (response) => {
          if (appender === undefined || !isAnswer(response)) return false;
          await appender.append(response);
          return true;
        },
        leave: async (response) => appender?.remove(response),
      };
      return { ...exchange, background };
    },
  };
}
