// The text of a Responses `reasoning` item, sent upstream as `reasoning_content` (docs/protocols.md "Reasoning"),
// and the `encrypted_content` the gateway gives a chat provider's reasoning when a client asks for it.

/**
 * What starts an `encrypted_content` the gateway made: the reasoning text itself, base64 (the client was shown it
 * as the item's summary already, so nothing is hidden). Stateless clients (the AI SDK with `store: false`) send a
 * reasoning item back only when it has an `encrypted_content`; without one, a tool-calling turn went back without its
 * reasoning, which DeepSeek's thinking mode refuses.
 */
const GATEWAY_ENCRYPTED_PREFIX = "gateway-reasoning-v1:";

/** The `encrypted_content` for a reasoning item whose text is `text`. */
export function gatewayEncryptedContent(text: string): string {
  return GATEWAY_ENCRYPTED_PREFIX + Buffer.from(text, "utf8").toString("base64");
}

/** Whether an `encrypted_content` is one the gateway made (a native provider could not read it: it is dropped there). */
export function isGatewayEncryptedContent(value: unknown): value is string {
  return typeof value === "string" && value.startsWith(GATEWAY_ENCRYPTED_PREFIX);
}

/**
 * A reasoning item's text: its `content` (`reasoning_text` parts, the whole reasoning) when it has any, else its
 * `summary` (where the gateway puts a chat provider's reasoning), else what an `encrypted_content` the gateway made
 * holds; undefined when none has text. Another provider's `encrypted_content` is for that provider, which a chat
 * provider is not.
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
  const encrypted = (item as Record<string, unknown>).encrypted_content;
  if (!isGatewayEncryptedContent(encrypted)) return undefined;
  const text = Buffer.from(encrypted.slice(GATEWAY_ENCRYPTED_PREFIX.length), "base64").toString("utf8");
  // Only a token the gateway made reads back: Node's base64 decoder skips what it cannot read and decodes the rest,
  // so one cut short, not base64 or of bytes that are no UTF-8 text became garbage sent upstream as the reasoning.
  return text === "" || gatewayEncryptedContent(text) !== encrypted ? undefined : text;
}
