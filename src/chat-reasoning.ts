// The reasoning text of a chat message or delta. One rule, because two folders read the same chunks and may not import
// each other: streaming/ (is a chunk content, what a segment generated, the estimated usage) and protocols/ (the
// reasoning the Responses and Messages doors show). They disagreed on a chunk naming it twice, `reasoning_content: ""`
// beside `reasoning: "text"` (a host filling one field and sending the other empty): the relay read `??` (no
// reasoning), the doors `||` (the text), so a door showed reasoning its estimated usage and a cut stream's charge left
// out.

/**
 * `reasoning_content` (DeepSeek, vLLM, Groq's `parsed` format) when it is a non-empty string, else `reasoning`
 * (OpenRouter, Ollama, newer vLLM); "" when neither holds text.
 */
export function reasoningOf(fields: Readonly<Record<string, unknown>>): string {
  const content = fields.reasoning_content;
  if (typeof content === "string" && content !== "") return content;
  const reasoning = fields.reasoning;
  return typeof reasoning === "string" ? reasoning : "";
}
