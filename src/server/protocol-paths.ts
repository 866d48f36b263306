// The paths of the protocol front doors, in one place: routes register them, the error handler picks the error
// shape by them.

export const RESPONSES_PATHS = ["/v1/responses", "/responses"] as const;
export const CONVERSATIONS_PATHS = ["/v1/conversations", "/conversations"] as const;
export const MESSAGES_PATHS = ["/v1/messages", "/messages"] as const;

/** Whether a request URL is on the Anthropic Messages API (its errors take Anthropic's shape). */
export function isMessagesRoute(url: string): boolean {
  const path = url.split("?")[0] ?? "";
  return MESSAGES_PATHS.some((prefix) => path === prefix || path.startsWith(`${prefix}/`));
}
