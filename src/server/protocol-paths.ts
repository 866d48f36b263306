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
  return isAtOrUnder(pathOf(url), MESSAGES_PATHS, MESSAGES_SUBPATHS);
}

/** A request URL's path, without its query (as `url.split("?")[0]`, without the array). */
export function pathOf(url: string): string {
  const query = url.indexOf("?");
  return query === -1 ? url : url.slice(0, query);
}

/**
 * Whether `path` is one of `paths` or below one (`subpaths`: each of them with a `/` appended, made once). Asked in
 * the onRequest hook of every request, twice for most: a `some` with a template string per prefix and a
 * `split("?")` per call were ~1 µs of a JSON request's CPU under load (bench/README.md, section 39).
 */
function isAtOrUnder(path: string, paths: readonly string[], subpaths: readonly string[]): boolean {
  for (let index = 0; index < paths.length; index++) {
    if (path === paths[index] || path.startsWith(subpaths[index] as string)) return true;
  }
  return false;
}

/** The model list and retrieval, which answer Anthropic's clients in Anthropic's shape (`speaksAnthropic`). */
export const MODELS_PATHS = ["/v1/models", "/models"] as const;
const MESSAGES_SUBPATHS = MESSAGES_PATHS.map((path) => `${path}/`);
const MODELS_SUBPATHS = MODELS_PATHS.map((path) => `${path}/`);

/**
 * Whether a request is answered in Anthropic's shape (its errors too): the Messages routes, and the model routes
 * when the client sends `anthropic-version`, as the Anthropic SDKs always do and OpenAI's never do.
 */
export function speaksAnthropic(url: string, headers: Readonly<Record<string, unknown>>): boolean {
  if (isMessagesRoute(url)) return true;
  if (typeof headers["anthropic-version"] !== "string") return false;
  return isAtOrUnder(pathOf(url), MODELS_PATHS, MODELS_SUBPATHS);
}
