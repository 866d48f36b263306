// The routes that are no model door but whose requests leave a record too (the Conversations, Files and Batch APIs,
// kept responses, the two token counts): each family's record `endpoint` and protocol, by path. And the names a
// record of a request the HTTP server refused before routing it carries. Here, beside front-doors.ts, because
// observability/ (the metrics' label sets, trace operation names) may not import server/ (docs/architecture.md).
import { ALL_FRONT_DOORS, type ClientProtocol } from "./front-doors.ts";

/**
 * A record's `clientProtocol`: its door's, `openai-batch` for the Files and Batch APIs (no door speaks it), or
 * `unknown` for a request the HTTP server refused before it knew where the request was going.
 */
export type RecordedProtocol = ClientProtocol | "openai-batch" | "unknown";

/** A record's `endpoint` and `route` when the request's route is not known (the HTTP server refused it first). */
export const UNKNOWN_ROUTE = "unknown";

export interface RouteFamily {
  /** The records' `endpoint` and the metrics' `endpoint` label. */
  readonly name: string;
  /** Under `/v1` (also served without it); the family is this path and every route below it. */
  readonly path: string;
  readonly protocol: RecordedProtocol;
  /** Only the routes below `path`: the path itself is a model door's (POST /v1/responses). */
  readonly isBelowOnly?: true;
}

/** In matching order: a token count before the kept responses whose path it is under. */
export const ROUTE_FAMILIES: readonly RouteFamily[] = [
  { name: "conversations", path: "/v1/conversations", protocol: "openai-responses" },
  { name: "files", path: "/v1/files", protocol: "openai-batch" },
  { name: "batches", path: "/v1/batches", protocol: "openai-batch" },
  { name: "count_tokens", path: "/v1/messages/count_tokens", protocol: "anthropic-messages" },
  { name: "input_tokens", path: "/v1/responses/input_tokens", protocol: "openai-responses" },
  // GET and DELETE /v1/responses/{id}, its cancel and input_items.
  { name: "kept_responses", path: "/v1/responses", protocol: "openai-responses", isBelowOnly: true },
];

/** Every `endpoint` a record may have: the doors', the families' and `unknown` (the metrics' label set). */
export const RECORDED_ENDPOINTS: ReadonlySet<string> = new Set([
  ...ALL_FRONT_DOORS.map((door) => door.name),
  ...ROUTE_FAMILIES.map((family) => family.name),
  UNKNOWN_ROUTE,
]);

/** Every `clientProtocol` a record may have (the metrics' label set). */
export const RECORDED_PROTOCOLS: ReadonlySet<string> = new Set<RecordedProtocol>([
  ...ALL_FRONT_DOORS.map((door) => door.protocol),
  ...ROUTE_FAMILIES.map((family) => family.protocol),
  UNKNOWN_ROUTE,
]);

/** The family of a route as Fastify registered it (`/v1/conversations/:id`), or of a request's path; none: not one. */
export function routeFamilyOf(path: string): RouteFamily | undefined {
  for (const family of ROUTE_FAMILIES) {
    for (const base of pathsOf(family)) {
      if ((path === base && family.isBelowOnly !== true) || path.startsWith(`${base}/`)) return family;
    }
  }
  return undefined;
}

/**
 * What a request's path says of its record (a request line the HTTP server could not finish parsing): a door's
 * endpoint and protocol when it is a door's path, a family's when it is at or below one, else `unknown` for both.
 */
export function recordedRouteOf(path: string): { readonly endpoint: string; readonly protocol: RecordedProtocol } {
  const family = routeFamilyOf(path);
  if (family !== undefined) return { endpoint: family.name, protocol: family.protocol };
  const door = ALL_FRONT_DOORS.find((candidate) => pathsOf(candidate).includes(path));
  if (door !== undefined) return { endpoint: door.name, protocol: door.protocol };
  return { endpoint: UNKNOWN_ROUTE, protocol: "unknown" };
}

/** Under `/v1` and without it, as front-doors.ts `pathsOf` (for doors and families alike). */
function pathsOf(route: { readonly path: string }): readonly [string, string] {
  return [route.path, route.path.slice("/v1".length)];
}
