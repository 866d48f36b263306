// The paths of the protocol front doors, in one place: routes register them, the error handler picks the error
// shape by them.
import { FRONT_DOORS, pathsOf } from "../front-doors.ts";

export const RESPONSES_PATHS = pathsOf(FRONT_DOORS.responses);
// The Conversations API is no front door of the pipeline (it stores items, it forwards nothing): its paths only.
export const CONVERSATIONS_PATHS = ["/v1/conversations", "/conversations"] as const;
// The Files and Batch APIs (batch-routes.ts): management routes, no door of their own (a batch's lines go through the
// doors' pipeline).
export const FILES_PATHS = ["/v1/files", "/files"] as const;
export const BATCHES_PATHS = ["/v1/batches", "/batches"] as const;
export const MESSAGES_PATHS = pathsOf(FRONT_DOORS.messages);

/** The doors whose POST routes protocol-routes.ts registers with their own adapters (not the forwarding handler). */
export const PROTOCOL_DOORS: ReadonlySet<string> = new Set([FRONT_DOORS.responses.name, FRONT_DOORS.messages.name]);

/** Whether a request URL is on the Anthropic Messages API (its errors take Anthropic's shape). */
export function isMessagesRoute(url: string): boolean {
  const path = url.split("?")[0] ?? "";
  return MESSAGES_PATHS.some((prefix) => path === prefix || path.startsWith(`${prefix}/`));
}

/** The model list and retrieval, which answer Anthropic's clients in Anthropic's shape (`speaksAnthropic`). */
export const MODELS_PATHS = ["/v1/models", "/models"] as const;

/**
 * Whether a request is answered in Anthropic's shape (its errors too): the Messages routes, and the model routes
 * when the client sends `anthropic-version`, as the Anthropic SDKs always do and OpenAI's never do.
 */
export function speaksAnthropic(url: string, headers: Readonly<Record<string, unknown>>): boolean {
  if (isMessagesRoute(url)) return true;
  if (typeof headers["anthropic-version"] !== "string") return false;
  const path = url.split("?")[0] ?? "";
  return MODELS_PATHS.some((prefix) => path === prefix || path.startsWith(`${prefix}/`));
}
