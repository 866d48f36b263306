// The text of a chat `tool` message for a tool result that may hold images or files (an Anthropic `tool_result`, a
// Responses `function_call_output`), or none at all (the chat door's own `tool` messages too). Chat takes only text in
// a `tool` message, so both doors send a result's other parts after the run of tool messages, in a user message.
import { isRecord } from "../is-record.ts";
import type { ChatContentPart } from "./chat-completions.ts";

/**
 * Said in place of a tool result with no text (a command that printed nothing, an MCP tool answering nothing). Left
 * empty (or white space only), the `tool` message was refused by providers that check tool content (a 400 "content
 * must not be empty": Anthropic models behind OpenAI-compatible endpoints, Bedrock and Vertex proxies), failing every
 * later turn of the agent's session. Words the model reads as "the tool ran and said nothing", not an attachment.
 */
export const EMPTY_TOOL_RESULT_TEXT = "(no output)";

/**
 * The `tool` message's text: the result's own, or for one that is only images or files what follows it (the words
 * tell the model where the result went, and fill the message as EMPTY_TOOL_RESULT_TEXT does an empty one's).
 */
export function toolResultText(text: string, attached: readonly ChatContentPart[]): string {
  if (isBlank(text) && attached.length === 0) return EMPTY_TOOL_RESULT_TEXT;
  if (text !== "" || attached.length === 0) return text;
  const images = attached.filter((part) => part.type === "image_url").length;
  const files = attached.length - images;
  const counted = [counting(images, "image"), counting(files, "file")].filter((words) => words !== "");
  return `(${counted.join(" and ")} attached below)`;
}

function counting(count: number, noun: string): string {
  if (count === 0) return "";
  return count === 1 ? noun : `${count} ${noun}s`;
}

function isBlank(text: string): boolean {
  return text.trim() === "";
}

/**
 * The roles of a tool's result a client writes itself: OpenAI's `tool`, Llama 3.1's `ipython` and ChatGLM3's
 * `observation` (chat-message-rules.ts ROLES: vLLM renders them through the model's template as its tool result). An
 * empty one is refused by the same providers, so each is filled as a `tool` message is, and may come with `null`.
 */
export const TOOL_RESULT_ROLES: ReadonlySet<string> = new Set(["tool", "ipython", "observation"]);

/**
 * A chat request's tool results (TOOL_RESULT_ROLES) with no text (`""`, white space, `null`, missing, or no parts, or only empty text
 * parts) given EMPTY_TOOL_RESULT_TEXT, for the chat door, where clients write the `tool` messages themselves. Undefined
 * when none is empty (the messages go as they came). Read leniently: the body is not validated yet.
 */
export function filledToolResults(messages: unknown): unknown[] | undefined {
  if (!Array.isArray(messages) || !messages.some(isEmptyToolMessage)) return undefined;
  return messages.map((message) =>
    isRecord(message) && isEmptyToolMessage(message) ? { ...message, content: EMPTY_TOOL_RESULT_TEXT } : message,
  );
}

function isEmptyToolMessage(message: unknown): boolean {
  if (!isRecord(message) || typeof message.role !== "string" || !TOOL_RESULT_ROLES.has(message.role)) return false;
  const content = message.content;
  if (content === undefined || content === null) return true;
  if (typeof content === "string") return isBlank(content);
  // Only text parts are taken in a tool result: an array of other parts is the provider's to judge, not emptied.
  return (
    Array.isArray(content) &&
    content.every(
      (part) => isRecord(part) && part.type === "text" && typeof part.text === "string" && isBlank(part.text),
    )
  );
}
