// The text of a chat `tool` message for a tool result that may hold images or files (an Anthropic `tool_result`, a
// Responses `function_call_output`). Chat takes only text in a `tool` message, so both doors send a result's other
// parts after the run of tool messages, in a user message.
import type { ChatContentPart } from "./chat-completions.ts";

/**
 * Said in place of a result that is only images or files. Left empty, the `tool` message was refused by providers
 * that check tool content (a 400 "content must not be empty"), failing every later turn of an agent that took a
 * screenshot; the words also tell the model where the result went. Only then: an empty result without any (a
 * command with no output) stays empty, or the model would look for an attachment that is not there.
 */
export function toolResultText(text: string, attached: readonly ChatContentPart[]): string {
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
