// The refused features as they travel on the cooldown channel and are stored in a deployment's hash
// (redis-refused-features.ts shares them, redis-refusal-load.ts reads them back): their types, and the checks that
// turn what another process published or stored into one, skipping what is not.
import { isRecord } from "../is-record.ts";
import { type FeatureRefusal, featureRefusalOf } from "../limits/refused-features.ts";

/** What travels on the channel (beside redis-learned-facts.ts's kinds; a process that knows neither skips it). */
export type RefusalFact =
  | { readonly kind: "refused-feature"; readonly deploymentKey: string; readonly refusal: FeatureRefusal }
  | { readonly kind: "accepted-features"; readonly deploymentKey: string; readonly features: readonly string[] }
  | { readonly kind: "forgotten-refusals"; readonly deploymentKey: string; readonly forgetId?: string };

/** A lesson as a deployment's hash stores it (one field per feature); undefined for what is not one. */
export function parseStoredRefusal(text: string): FeatureRefusal | undefined {
  try {
    return featureRefusalOf(JSON.parse(text));
  } catch {
    return undefined;
  }
}

/** A fact another process published; undefined for another kind of learned fact or what is not a fact. */
export function parseRefusalFact(value: unknown): RefusalFact | undefined {
  if (!isRecord(value)) return undefined;
  const { kind, deploymentKey } = value;
  if (typeof deploymentKey !== "string" || deploymentKey === "") return undefined;
  if (kind === "forgotten-refusals") {
    const { forgetId } = value;
    return typeof forgetId === "string" && forgetId !== ""
      ? { kind, deploymentKey, forgetId }
      : { kind, deploymentKey };
  }
  if (kind === "refused-feature") {
    const refusal = featureRefusalOf(value.refusal);
    return refusal === undefined ? undefined : { kind, deploymentKey, refusal };
  }
  if (kind !== "accepted-features" || !Array.isArray(value.features)) return undefined;
  const features = value.features.filter((feature): feature is string => typeof feature === "string" && feature !== "");
  return features.length === 0 ? undefined : { kind, deploymentKey, features };
}
