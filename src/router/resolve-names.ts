// PURE: which deployments a requested name means: a public name, an upstream id, `provider/name` (a pin), a meta
// model (a list, or a filter over the catalog), or `priority-auto` (everything); and the requested names of a
// request (`model`, comma lists, `models`), bounded.
import { MAX_MODEL_FIELD_CHARS, MAX_MODEL_NAME_CHARS, MAX_REQUESTED_MODELS } from "../config/request-bounds.ts";
import type { MetaModel, MetaModelFilter } from "../config/types.ts";
import { InvalidRequestError, ModelNotFoundError } from "../errors/gateway-error.ts";
import type { Catalog, Deployment } from "../providers/catalog.ts";

export const PRIORITY_AUTO = "priority-auto";

/** What name resolution reads (a part of the router's context). */
export interface NameContext {
  readonly catalog: Catalog;
  readonly metaModels: Readonly<Record<string, MetaModel>>;
  score(deployment: Deployment): number;
  /** The score on one leaderboard; undefined when that board does not know the model. */
  scoreOnBoard?(deployment: Deployment, board: string): number | undefined;
  /** Parameter count in billions, if known. */
  paramsB?(deployment: Deployment): number | undefined;
}

export interface RequestedNames {
  readonly model: string;
  readonly fallbackModels: readonly string[];
}

/**
 * The requested names in order, without duplicates (a Set: `includes` made 100,000 names quadratic), each at
 * most MAX_MODEL_NAME_CHARS long and at most MAX_REQUESTED_MODELS of them, checked as they are found so that a
 * hostile list costs no more than the limit.
 */
export function splitRequestedNames(request: RequestedNames): string[] {
  if (request.model.length > MAX_MODEL_FIELD_CHARS) {
    throw new InvalidRequestError(
      `\`model\` is longer than ${MAX_MODEL_FIELD_CHARS} characters (at most ${MAX_REQUESTED_MODELS} names of ${MAX_MODEL_NAME_CHARS}).`,
      { param: "model", code: "invalid_value" },
    );
  }
  const names = new Set<string>();
  const add = (raw: string, param: string): void => {
    const name = raw.trim();
    if (name === "" || names.has(name)) return;
    if (name.length > MAX_MODEL_NAME_CHARS) {
      throw new InvalidRequestError(`A model name is longer than ${MAX_MODEL_NAME_CHARS} characters.`, {
        param,
        code: "invalid_value",
      });
    }
    if (names.size >= MAX_REQUESTED_MODELS) {
      throw new InvalidRequestError(
        `Too many model names: at most ${MAX_REQUESTED_MODELS} per request (\`model\` list and \`models\` together).`,
        { param, code: "invalid_value" },
      );
    }
    names.add(name);
  };
  for (const part of request.model.split(",")) add(part, "model");
  if (request.fallbackModels.length > MAX_REQUESTED_MODELS) {
    throw new InvalidRequestError(`\`models\` has more than ${MAX_REQUESTED_MODELS} entries.`, {
      param: "models",
      code: "invalid_value",
    });
  }
  for (const fallback of request.fallbackModels) add(fallback, "models");
  return [...names];
}

/**
 * The meta model of that name, if the config defines one. An own-property check: a plain object answers
 * `constructor`, `toString` and `__proto__` from its prototype.
 */
export function metaModelNamed(context: Pick<NameContext, "metaModels">, name: string): MetaModel | undefined {
  return Object.hasOwn(context.metaModels, name) ? context.metaModels[name] : undefined;
}

/**
 * `isStrict` (a client's allowed models, client-models.ts): a `prefix/name` that is no exact name and no pin to a
 * provider serving it resolves to nothing, instead of to `name` on every provider (the normalised lookup). An
 * allowlist naming `groq/m` must not widen to every provider's `m` when groq is skipped (its key unset) or removed.
 */
export function resolveName(
  name: string,
  context: NameContext,
  depth: number,
  isStrict = false,
): readonly Deployment[] | undefined {
  const { catalog } = context;
  if (name === PRIORITY_AUTO) return catalog.deployments;
  const meta = metaModelNamed(context, name);
  if (meta !== undefined && depth < 3) {
    if (meta.kind === "filter")
      return catalog.deployments.filter((deployment) => matchesFilter(deployment, meta.filter, context));
    const union = new Set<Deployment>();
    for (const member of meta.names) {
      for (const deployment of resolveName(member, context, depth + 1, isStrict) ?? []) union.add(deployment);
    }
    return union.size === 0 ? undefined : [...union];
  }
  const exact = catalog.byNameAsWritten(name);
  if (exact !== undefined) return exact;
  // `provider/public-name` pins one provider. Upstream ids often contain '/' too; those matched above. The pin
  // comes before the normalised lookup, which drops everything up to the last '/' and so would match the
  // public name on every provider.
  const slash = name.indexOf("/");
  if (slash > 0) {
    const providerName = name.slice(0, slash).toLowerCase();
    const inner = catalog.byName(name.slice(slash + 1));
    const pinned = inner?.filter((deployment) => deployment.provider.settings.name.toLowerCase() === providerName);
    if (pinned !== undefined && pinned.length > 0) return pinned;
    // A pin names a provider that exists but does not serve the model: falling back to other providers would
    // silently ignore the pin.
    if (catalog.byProvider(providerName) !== undefined) {
      throw new ModelNotFoundError(`The provider \`${providerName}\` does not serve \`${name.slice(slash + 1)}\`.`, {
        param: "model",
      });
    }
    if (isStrict) return undefined;
  }
  return catalog.byName(name);
}

function matchesFilter(deployment: Deployment, filter: MetaModelFilter, context: NameContext): boolean {
  // `groq` also matches the extra keys of that provider (`groq.2`, `groq.3`: one provider per key).
  const providerName = deployment.provider.settings.name;
  if (
    filter.providers !== undefined &&
    !filter.providers.some((name) => providerName === name || providerName.startsWith(`${name}.`))
  ) {
    return false;
  }
  if (filter.minContext !== undefined && (deployment.contextTokens ?? 0) < filter.minContext) return false;
  if (filter.minParamsB !== undefined) {
    const paramsB = context.paramsB?.(deployment) ?? deployment.model.paramsB;
    if ((paramsB ?? 0) < filter.minParamsB) return false;
  }
  if (filter.tools === true && deployment.capabilities.tools !== true) return false;
  if (filter.vision === true && deployment.capabilities.vision !== true) return false;
  if (filter.include !== undefined) {
    const id = deployment.model.id.toLowerCase();
    if (!filter.include.some((part) => id.includes(part.toLowerCase()))) return false;
  }
  // `leaderboard: X` selects the models that board knows (and ranks them by it, see planRoute).
  if (filter.leaderboard !== undefined && context.scoreOnBoard?.(deployment, filter.leaderboard) === undefined)
    return false;
  return context.score(deployment) > Number.NEGATIVE_INFINITY;
}

/**
 * Meta models that name nothing the catalog serves, as warnings: a list member no provider serves (a typo, a model
 * renamed upstream), a list of which no member is served, a filter that matches no model. Not config errors:
 * discovery may bring the model later, and the rest of the config is fine to serve.
 */
export function unservedMetaModels(context: NameContext): string[] {
  const warnings: string[] = [];
  const servedBy = (name: string): number => {
    try {
      return resolveName(name, context, 1)?.length ?? 0;
    } catch {
      return 0; // a pin to a provider that does not serve the model
    }
  };
  for (const [name, meta] of Object.entries(context.metaModels)) {
    if (meta.kind === "filter") {
      if (servedBy(name) === 0) {
        warnings.push(
          `meta model \`${name}\`: its filter matches no model the providers serve (requests for it get 404)`,
        );
      }
      continue;
    }
    const unserved = meta.names.filter((member) => servedBy(member) === 0);
    if (unserved.length === 0) continue;
    const list = unserved.map((member) => `\`${member}\``).join(", ");
    warnings.push(
      unserved.length === meta.names.length
        ? `meta model \`${name}\`: no provider serves any of its models (${list}); requests for it get 404`
        : `meta model \`${name}\`: no provider serves ${list}; the others are used`,
    );
  }
  return warnings;
}

/** `priority-auto` found no model of the endpoint's kind: none is configured (a 404 saying so, not "a chat model"). */
export function noModelOfKind(kind: string): ModelNotFoundError {
  const message = `No ${kind} model is configured: \`${PRIORITY_AUTO}\` (the best model of this endpoint's kind) found none on any enabled provider. Add a model of kind ${kind} (GET /v1/models shows each model's kind).`;
  return new ModelNotFoundError(message, { param: "model" });
}
