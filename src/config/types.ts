// Names for the resolved, frozen config the rest of the gateway reads: each is what schema.ts produces, so no
// other module needs to know a default value or a snake_case key.
import type { z } from "zod";
import type { configSchema, providerSettingsSchema } from "./schema.ts";
import type { scoringSchema } from "./scoring-schema.ts";

/** Read-only all the way down, as `deepFreeze` makes it. */
type DeepReadonly<T> = T extends (...args: never[]) => unknown
  ? T
  : T extends object
    ? { readonly [Key in keyof T]: DeepReadonly<T[Key]> }
    : T;

type ParsedConfig = z.output<typeof configSchema>;

export type ProviderSettings = DeepReadonly<z.output<typeof providerSettingsSchema>>;
export type ModelSettings = NonNullable<ProviderSettings["models"]>[number];
export type ModelKind = NonNullable<ModelSettings["kind"]>;
/** Budgets of a provider or a model: requests or tokens per window, and concurrency. */
export type Limits = NonNullable<ProviderSettings["limits"]>;

export type ServerSettings = DeepReadonly<ParsedConfig["server"]>;
export type RoutingSettings = DeepReadonly<ParsedConfig["routing"]>;
export type CooldownSettings = DeepReadonly<ParsedConfig["cooldowns"]>;
export type DiscoverySettings = DeepReadonly<ParsedConfig["discovery"]>;
export type StateSettings = DeepReadonly<ParsedConfig["state"]>;
/** The Files and Batch APIs' bounds (docs/protocols.md "Batches"). */
export type BatchSettings = DeepReadonly<ParsedConfig["batches"]>;
/** Bounds on what an upstream may send (docs/streaming.md, "Upstream limits"). */
export type UpstreamLimits = DeepReadonly<ParsedConfig["upstreamLimits"]>;
export type ScoringConfig = DeepReadonly<z.output<typeof scoringSchema>>;
export type MetaModel = DeepReadonly<ParsedConfig["metaModels"][string]>;
export type MetaModelFilter = Extract<MetaModel, { kind: "filter" }>["filter"];

/** The whole resolved config: the schema's sections, plus the providers load.ts resolved (one per key). */
export type GatewayConfig = DeepReadonly<
  Omit<ParsedConfig, "providers"> & {
    /** The file it came from, or undefined when built without one. */
    sourcePath: string | undefined;
    providers: ProviderSettings[];
    /**
     * Providers left out (no key, disabled), with the reason and where each is written; shown at startup, in `check`
     * and (without the location: the config's file is the operator's) in /health.
     */
    skippedProviders: SkippedProvider[];
  }
>;

/** A provider entry left out (no key, disabled), why, and where it is written (`file:line`) when it is in a file. */
export interface SkippedProvider {
  readonly name: string;
  readonly reason: string;
  readonly location?: string;
}
