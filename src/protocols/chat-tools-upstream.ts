// The Chat Completions door's request, where its client wrote tools in a way chat providers refuse: tool names longer
// than 64 characters or with characters providers refuse (renamed: chat-tool-names.ts) and `tool` messages with no text (filled: tool-result-text.ts).
// The Responses and Messages doors do the same in their own translations.
import { isRecord } from "../is-record.ts";
import { shortenChatToolNames } from "./chat-tool-names.ts";
import type { LongToolNames } from "./long-tool-names.ts";
import { filledToolResults } from "./tool-result-text.ts";

export interface UpstreamChatTools {
  readonly body: Record<string, unknown>;
  /** The names to map the answer's calls back by; undefined when no name was shortened. */
  readonly names: LongToolNames | undefined;
}

/** The body as it goes upstream, or undefined when nothing in it needs changing (it goes as it came, not copied). */
export function chatToolsForUpstream(body: unknown): UpstreamChatTools | undefined {
  const shortened = shortenChatToolNames(body);
  const source = shortened?.body ?? body;
  const messages = isRecord(source) ? filledToolResults(source.messages) : undefined;
  if (messages === undefined) return shortened === undefined ? undefined : shortened;
  return { body: { ...(source as Record<string, unknown>), messages }, names: shortened?.names };
}
