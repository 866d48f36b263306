// The text of an answer, for the request log's content (`log.content: true`).
import { firstChoice } from "../chat-choice.ts";
import { isRecord, parseJsonRecord } from "../is-record.ts";

/**
 * The answer's text (chat or completions: the choice the adapters answer with, chat-choice.ts; a native Responses
 * answer's `output_text`).
 */
export function answerText(bodyText: string): string | undefined {
  const answer = parseJsonRecord(bodyText);
  if (answer === undefined) return undefined;
  const choice = firstChoice(answer.choices);
  const message = choice?.message;
  // Chat, legacy completions, the Responses API, a transcription's JSON.
  const text = (isRecord(message) ? message.content : undefined) ?? choice?.text ?? answer.output_text ?? answer.text;
  return typeof text === "string" ? text : undefined;
}
