// The resolved, frozen config the rest of the gateway reads. Every default is applied here, so no other
// module needs to know a default value.
import type { DayReset } from "./day-reset.ts";
import type { Limits, MetaModelFilter } from "./schema.ts";

export type ModelKind = "chat" | "embedding" | "audio" | "image" | "rerank" | "moderation";

export interface ModelSettings {
  /** The name clients send. */
  readonly publicName: string;
  /** The id sent upstream. */
  readonly id: string;
  readonly priority: number;
  readonly contextTokens: number | undefined;
  readonly paramsB: number | undefined;
  readonly leaderboardName: string | undefined;
  readonly tools: boolean | undefined;
  readonly vision: boolean | undefined;
  readonly jsonSchema: boolean | undefined;
  readonly prefill: boolean | undefined;
  readonly kind: ModelKind | undefined;
  readonly limits: Limits | undefined;
}

export interface ProviderSettings {
  readonly name: string;
  /** Base URL without a trailing slash, e.g. `https://api.groq.com/openai/v1`. */
  readonly baseUrl: string;
  /** Base URL for `GET /models` discovery. */
  readonly modelUrl: string;
  /**
   * The key, never logged. Exactly one: a provider with several keys is expanded by config loading into one
   * provider per key (`groq`, `groq.2`, ...), so each key has its own budgets, cooldowns and invalid-key state.
   * A one-element list so that code redacting secrets can treat it like any list of secrets.
   */
  readonly apiKeys: readonly [string];
  readonly basePriority: number;
  readonly timeoutMs: number;
  readonly firstTokenTimeoutMs: number;
  readonly streamIdleTimeoutMs: number;
  readonly retries: number;
  readonly headers: Readonly<Record<string, string>>;
  /** Configured models; `undefined` means "discover them from GET /models". */
  readonly models: readonly ModelSettings[] | undefined;
  readonly rateLimitDialect: string;
  readonly limits: Limits | undefined;
  /** When daily/monthly windows reset; default 00:00 UTC. */
  readonly dayReset: DayReset;
  /** Ask the upstream for a usage chunk on streams (stripped again when the client did not ask for it). */
  readonly injectStreamUsage: boolean;
  /** Charge the requested max_tokens against token budgets up front (most providers reserve it). */
  readonly countMaxTokens: boolean;
  /** What is known about upstream models (usually from a preset), by lower-cased upstream id. */
  readonly knownModels: Readonly<Record<string, KnownModel>>;
  /** Discovered ids must match one of these (case-insensitive JavaScript regular expressions); empty = all. */
  readonly discoveryInclude: readonly string[];
  /** Discovered ids matching one of these are dropped. */
  readonly discoveryExclude: readonly string[];
  /** The /models entry field holding the id; undefined = `id`, else `name`. */
  readonly discoveryIdField: "id" | "name" | undefined;
  /** Prefix removed from discovered ids (Gemini's `models/`). */
  readonly discoveryIdStripPrefix: string | undefined;
}

/** Known facts about one upstream model; a field configured under `models:` wins over it. */
export interface KnownModel {
  readonly contextTokens: number | undefined;
  readonly paramsB: number | undefined;
  readonly tools: boolean | undefined;
  readonly vision: boolean | undefined;
  readonly jsonSchema: boolean | undefined;
  readonly prefill: boolean | undefined;
  readonly kind: ModelKind | undefined;
  readonly limits: Limits | undefined;
}

export type MetaModel =
  | { readonly kind: "list"; readonly names: readonly string[] }
  | { readonly kind: "filter"; readonly filter: MetaModelFilter };

export interface ServerSettings {
  readonly port: number;
  readonly host: string;
  readonly apiKeys: readonly string[];
  readonly adminKeys: readonly string[];
  readonly bodyLimitBytes: number;
  readonly shutdownTimeoutMs: number;
  readonly logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  /** Origins browsers may call from (CORS): exact origins, `*`, or `scheme://host:*` for any port. */
  readonly corsOrigins: readonly string[];
}

/** Bounds of the in-memory store of Responses API answers (`store`, `previous_response_id`). */
export interface ResponsesStoreSettings {
  readonly maxEntries: number;
  readonly maxBytes: number;
  readonly maxAgeMs: number;
}

export interface RoutingSettings {
  readonly maxAttempts: number;
  readonly totalTimeoutMs: number;
  readonly maxStreamDurationMs: number;
  readonly maxWaitForBetterMs: number;
  readonly waitScoreRatio: number;
  readonly strategy: "best" | "spread";
  readonly queueTimeoutMs: number;
  readonly maxQueued: number;
  /** ms a session (body `user` or `x-session-id`) keeps its deployment; 0 = sticky routing off. */
  readonly stickyTtlMs: number;
}

export interface CooldownSettings {
  readonly rateLimitBaseMs: number;
  readonly rateLimitMaxMs: number;
  readonly invalidKeyMs: number;
  readonly failureThreshold: number;
  readonly failureWindowMs: number;
  readonly circuitOpenMs: number;
}

export interface DiscoverySettings {
  readonly cacheDir: string;
  readonly maxAgeMs: number;
  readonly timeoutMs: number;
}

export interface GatewayConfig {
  /** The file it came from, or undefined when built without one. */
  readonly sourcePath: string | undefined;
  readonly server: ServerSettings;
  readonly providers: readonly ProviderSettings[];
  /** Providers left out (no key, disabled), with the reason; shown at startup and in /health. */
  readonly skippedProviders: readonly { readonly name: string; readonly reason: string }[];
  readonly metaModels: Readonly<Record<string, MetaModel>>;
  readonly routing: RoutingSettings;
  readonly cooldowns: CooldownSettings;
  readonly discovery: DiscoverySettings;
  readonly scoring: Readonly<Record<string, unknown>>;
  readonly state: StateSettings;
  readonly responsesStore: ResponsesStoreSettings;
}

export interface StateSettings {
  /** Embedded store file (node:sqlite); "" or ":memory:" keeps state in memory only. */
  readonly path: string;
  /** When set, budgets and cooldowns are shared with other gateway processes through Redis. */
  readonly redisUrl: string | undefined;
  readonly redisKeyPrefix: string;
  /** ms between batched writes of dirty state to the embedded store. */
  readonly flushIntervalMs: number;
}
