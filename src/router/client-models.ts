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
