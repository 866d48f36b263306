// The Anthropic Messages door (`POST /v1/messages`): the request translated into chat, the answer (JSON or stream
// events) translated back. The generic handler it plugs into is protocol-adapters.ts.
import { estimateChatPrompt } from "../limits/token-estimate.ts";
import { MESSAGES_ENDPOINT } from "../pipeline/endpoints.ts";
import { randomIds } from "../protocols/ids.ts";
import { toChatRequest as messagesToChat } from "../protocols/messages/request-mapping.ts";
import { toMessageObject } from "../protocols/messages/response-mapping.ts";
import { MessagesStreamTranslator } from "../protocols/messages/stream-mapping.ts";
import type { ProtocolAdapter } from "./protocol-adapters.ts";

/** Anthropic Messages (`POST /v1/messages`). */
export function messagesAdapter(): ProtocolAdapter {
  return {
    endpoint: MESSAGES_ENDPOINT,
    begin(body) {
      const translated = messagesToChat(body);
      const estimatePromptTokens = (): number =>
        estimateChatPrompt(translated.chatBody.messages, translated.chatBody.tools).promptTokens;
      return {
        chatBody: translated.chatBody,
        isAnswerCacheSkipped: translated.isOutputDropped,
        answer: (completion, servedModel) =>
          toMessageObject(completion, {
            ids: randomIds,
            stopSequences: translated.stopSequences,
            isThinkingShown: translated.isThinkingShown,
            isThinkingOmitted: translated.isThinkingOmitted,
            isOutputDropped: translated.isOutputDropped,
            fallbackModel: servedModel,
            estimatePromptTokens,
            toolNames: translated.toolNames,
          }),
        stream: (servedModel, _api, promptTokensEstimate) =>
          new MessagesStreamTranslator({
            ids: randomIds,
            stopSequences: translated.stopSequences,
            isThinkingShown: translated.isThinkingShown,
            isThinkingOmitted: translated.isThinkingOmitted,
            isOutputDropped: translated.isOutputDropped,
            fallbackModel: servedModel,
            // The pipeline's (calibrated, of the body sent), not the plain estimate: `message_start` and an estimated
            // final usage say the same input_tokens.
            promptTokensEstimate,
            toolNames: translated.toolNames,
          }),
      };
    },
  };
}
