// The routes of the Responses and Messages doors (protocol-routes.ts, conversation-routes.ts), registered at start while
// their handlers load at the first request (lazy-routes.ts). Kept by hand, next to the paths: a test records what
// protocol-routes.ts registers and holds it equal to this list (src/server/lazy-routes.test.ts).
import type { RouteShape } from "./lazy-routes.ts";
import { CONVERSATIONS_PATHS, MESSAGES_PATHS, RESPONSES_PATHS } from "./protocol-paths.ts";

export const PROTOCOL_ROUTES: readonly RouteShape[] = [
  ...RESPONSES_PATHS.flatMap((base): RouteShape[] => [
    { method: "POST", url: base },
    { method: "GET", url: `${base}/:id` },
    { method: "POST", url: `${base}/:id/cancel` },
    { method: "GET", url: `${base}/:id/input_items` },
    { method: "DELETE", url: `${base}/:id` },
    { method: "POST", url: `${base}/input_tokens` },
  ]),
  ...MESSAGES_PATHS.flatMap((base): RouteShape[] => [
    { method: "POST", url: base },
    { method: "POST", url: `${base}/count_tokens` },
  ]),
  ...CONVERSATIONS_PATHS.flatMap((base): RouteShape[] => [
    { method: "POST", url: base },
    { method: "GET", url: `${base}/:id` },
    { method: "POST", url: `${base}/:id` },
    { method: "DELETE", url: `${base}/:id` },
    { method: "GET", url: `${base}/:id/items` },
    { method: "POST", url: `${base}/:id/items` },
    { method: "GET", url: `${base}/:id/items/:itemId` },
    { method: "DELETE", url: `${base}/:id/items/:itemId` },
  ]),
];
