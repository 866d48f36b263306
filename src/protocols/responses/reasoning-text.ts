// The text of a Responses `reasoning` item, sent upstream as `reasoning_content` (docs/protocols.md "Reasoning").

/**
 * A reasoning item's text: its `content` (`reasoning_text` parts, the whole reasoning) when it has any, else its
 * `summary` (where the gateway puts a chat provider's reasoning); undefined when neither has text. Only the text
 * parts are read: `encrypted_content` is for the provider that made it, which a chat provider is not.
 */
export function reasoningText(item: object): string | undefined {
  for (const field of ["content", "summary"]) {
    const parts = (item as Record<string, unknown>)[field];
    if (!Array.isArray(parts)) continue;
    const texts = parts.flatMap((part: unknown) => {
      const text = (part as { text?: unknown } | null)?.text;
      return typeof text === "string" && text !== "" ? [text] : [];
    });
    if (texts.length > 0) return texts.join("\n");
  }
  return undefined;
}
