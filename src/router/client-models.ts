// PURE: which deployments a client may use, from the names in its `models` (`server.api_keys` entries `{ key, name,
// models }`). The names are resolved as a request's would be (public names, meta models, `provider/name`,
// `priority-auto`), so a client allowed `fast` may use whatever `fast` resolves to, and nothing else: a comma list,
// a fallback array or `priority-auto` in its request reaches no other deployment. One difference fails closed: a
// `prefix/name` that pins no provider serving it allows nothing (resolveName's `isStrict`), not `name` everywhere.
import { ModelNotFoundError } from "../errors/gateway-error.ts";
import { type NameContext, resolveName } from "./resolve-names.ts";

/** Deployment indexes the names resolve to; a name that resolves to nothing (a typo, a model gone) adds none. */
export function allowedDeployments(names: readonly string[], context: NameContext): ReadonlySet<number> {
  const allowed = new Set<number>();
  for (const name of names) {
    let resolved: ReturnType<typeof resolveName>;
    try {
      resolved = resolveName(name, context, 0, true);
    } catch (error) {
      // A pin to a provider that does not serve the model allows nothing; anything else is a bug to surface.
      if (error instanceof ModelNotFoundError) continue;
      throw error;
    }
    for (const deployment of resolved ?? []) allowed.add(deployment.index);
  }
  return allowed;
}

/**
 * Clients whose `models` name something no provider serves, as warnings (like a meta model's, not config errors:
 * discovery may bring the model later): a list that allows nothing leaves that client only 403s.
 */
export function unservedClientModels(
  clientModels: Readonly<Record<string, readonly string[]>>,
  context: NameContext,
): string[] {
  const warnings: string[] = [];
  for (const [client, names] of Object.entries(clientModels)) {
    const unserved = names.filter((name) => allowedDeployments([name], context).size === 0);
    if (unserved.length === 0) continue;
    const list = unserved.map((name) => `\`${name}\``).join(", ");
    warnings.push(
      unserved.length === names.length
        ? `client \`${client}\`: none of its models (${list}) is served: it may use no model (403)`
        : `client \`${client}\`: no provider serves ${list} of its models; the others are allowed`,
    );
  }
  return warnings;
}
