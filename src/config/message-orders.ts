// The values of `message_order` (providers/message-order.ts says what each one does to a candidate's messages).
export const MESSAGE_ORDERS = ["any", "strict", "alternate"] as const;
export type MessageOrder = (typeof MESSAGE_ORDERS)[number];

/**
 * What a role order's rewrite changed in the messages a candidate was sent, as the request record says it
 * (`messageChanges`): a late system message folded into a user turn, an assistant turn put between a tool result and
 * a user turn, consecutive user messages merged, a trailing assistant marked `prefix: true`, a `prefix` removed for a
 * host that refused it, tool call ids made ones Mistral takes. Here rather than in providers/ because observability/
 * reads it.
 */
export type MessageChange =
  | "system_folded"
  | "tool_bridged"
  | "users_merged"
  | "prefix_marked"
  | "prefix_removed"
  | "reasoning_removed"
  | "tool_ids_fitted";
