// A named client's own routing rules (`server.api_keys` entries `{ key, name, paid, models }`), read from the config
// a request is planned on: a request waiting in the queue across a reload is planned on the new config, rules too.
import type { ServerSettings } from "../config/types.ts";
import type { RouteRequest } from "../router/plan-route.ts";

/** A route request, with the name of the client that sends it (its rules are applied when it is planned). */
export interface ClientRouteRequest extends RouteRequest {
  /** The request's client (a named key); undefined or null: no rules of its own. */
  readonly client?: string | null | undefined;
}

type ClientRules = Pick<RouteRequest, "paid" | "allowedModels">;

const NO_RULES: ClientRules = Object.freeze({});

/** The client's `paid` and `models`; none for an unnamed key, or a name that states neither. */
export function clientRules(server: ServerSettings, client: string | null | undefined): ClientRules {
  if (client === undefined || client === null) return NO_RULES;
  // Own properties only: `constructor` and `toString` are valid client names, and a plain object answers them
  // from its prototype (a function taken for the client's models made every request of that client a 500).
  return {
    paid: Object.hasOwn(server.clientPaid, client) ? server.clientPaid[client] : undefined,
    allowedModels: Object.hasOwn(server.clientModels, client) ? server.clientModels[client] : undefined,
  };
}

/** Whether the client states rules of its own: what it may use is not what every client may. */
export function hasClientRules(server: ServerSettings, client: string | null | undefined): boolean {
  const rules = clientRules(server, client);
  return rules.paid !== undefined || rules.allowedModels !== undefined;
}

/** The request as the router plans it: the client's rules (on this config) in place of any it carried. */
export function withClientRules(request: ClientRouteRequest, server: ServerSettings): RouteRequest {
  const rules = clientRules(server, request.client);
  // A client without rules of its own (most named clients) plans with the request as it is: no copy per plan.
  if (rules.paid === request.paid && rules.allowedModels === request.allowedModels) return request;
  return { ...request, ...rules };
}

/**
 * The queue a waiting request joins (`routing.queue_timeout_ms`): one per requested model and client rules. Waiters
 * are served in arrival order, each after the one before it; a client whose rules leave it nothing ready (`paid:
 * never` while the free model cools) must not hold up the requests of clients that may use what is ready now.
 */
export function queueKey(request: ClientRouteRequest, server: ServerSettings): string {
  const { paid, allowedModels } = clientRules(server, request.client);
  if (paid === undefined && allowedModels === undefined) return request.model;
  return JSON.stringify([request.model, paid ?? null, allowedModels ?? null]);
}
