// The text of a chat `tool` message for a tool result that may hold images (an Anthropic `tool_result`, a Responses
// `function_call_output`). Chat takes only text in a `tool` message, so both doors send a result's images after the
// run of tool messages, in a user message.

/**
 * Said in place of a result that is images only. Left empty, the `tool` message was refused by providers that check
 * tool content (a 400 "content must not be empty"), failing every later turn of an agent that took a screenshot;
 * the words also tell the model where the result went. Only when there are images: an empty result without one
 * (a command with no output) stays empty, or the model would look for an image that is not there.
 */
export function toolResultText(text: string, imageCount: number): string {
  if (text !== "" || imageCount === 0) return text;
  return imageCount === 1 ? "(image attached below)" : `(${imageCount} images attached below)`;
}
