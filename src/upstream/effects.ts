// What an upstream's answer teaches, as data (upstream/lessons.ts reads answers into these; only the recorder,
// pipeline/recorder.ts, applies them to the books).
import type { CooldownCause } from "../limits/availability.ts";
import type { RefusalFacts } from "../limits/limit-learning.ts";
import type { LearnedWindow } from "../limits/rate-limit-headers.ts";
import type { FeatureSizes } from "../limits/refused-features.ts";
import type { RetryHint } from "../limits/retry-hint.ts";
import type { RequestFeature } from "../router/request-features.ts";

export type Effect =
  /** 5xx, timeouts, connection failures: feed the deployment's circuit breaker. */
  | { readonly kind: "circuit_failure" }
  /** A 429: cool the deployment down (the provider's hint, or exponential backoff). */
  | {
      readonly kind: "cool_down";
      readonly hint: RetryHint | undefined;
      readonly cause: CooldownCause;
      readonly reason: string;
      /**
       * A daily 429 whose reset reads "now" (limits/day-rollover.ts): cooled like a roll-over, unless it ends a streak
       * of them (NOW_RESETS_TAKEN_AS_ROLLOVER before it), which parks the deployment until `untilMs`, the end of the
       * provider's day, with `reason` instead (availability.ts counts the streak).
       */
      readonly dayEnd?: { readonly untilMs: number; readonly reason: string };
    }
  /** Park the deployment until a known time (a daily quota's end, a window the provider says is empty). */
  | {
      readonly kind: "park";
      readonly untilMs: number;
      readonly cause: CooldownCause;
      readonly reason: string;
      readonly source: "provider" | "guessed";
    }
  /**
   * The provider does not serve the model (a 404, "does not exist", decommissioned): the deployment is left out for
   * `cooldowns.model_unavailable_ms`, long enough not to send every request there first, short enough that a model
   * back at the provider (OpenRouter's "No endpoints found" while its hosts are down) is tried again soon.
   */
  | { readonly kind: "model_unavailable"; readonly reason: string }
  /**
   * The provider has no route for this endpoint (a 405, or its router's 404): all its deployments are left out for
   * `endpointPath` for `cooldowns.unserved_endpoint_ms` (limits/unserved-endpoints.ts); nothing else of it is touched.
   */
  | { readonly kind: "unserved_endpoint"; readonly endpointPath: string; readonly reason: string }
  /** The key is bad or out of credits: every model of the provider cools down. */
  | { readonly kind: "park_key"; readonly reason: string; readonly cause: "invalid_key" | "credits_exhausted" }
  /**
   * An account-wide 429 (its answer names the account's pool, or `rate_limit_scope: account`): every model of the
   * key cools as long as the deployment that hit the limit (the effect before it).
   */
  | { readonly kind: "cool_pool"; readonly reason: string }
  /**
   * Rate-limit windows the provider reported: learned into the deployment's own budget scope, or its key's pool
   * when the provider counts per account (`isAccountWide`; budget-types.ts `learningScope`).
   */
  | { readonly kind: "learn_windows"; readonly windows: readonly LearnedWindow[]; readonly isAccountWide: boolean }
  /**
   * A 429 on the key's own limits: infer the limit (limit-learning.ts) and pace to it the deployment, or its key's
   * whole pool when the 429 is account-wide (then every model of the key is paced by what one of them learned).
   */
  | {
      readonly kind: "learn_limits";
      readonly refusal: Omit<RefusalFacts, "sentAtMs">;
      readonly isAccountWide: boolean;
    }
  /**
   * A refusal of one feature (refused-feature.ts): ranked last for requests with it for `cooldowns.unsupported_feature_ms`.
   */
  | {
      readonly kind: "refused_feature";
      readonly feature: RequestFeature;
      readonly reason: string;
      /** A refusal for its size (size-refusal.ts): only requests carrying at least this many entries of it. */
      readonly minEntries?: number;
    }
  /**
   * A success: the deployment takes every feature the request carried, whatever it refused before; a lesson about a
   * size only when the request carried at least that many entries (`sizes`, request-features.ts featureSizesOf).
   */
  | {
      readonly kind: "accepted_features";
      readonly features: readonly RequestFeature[];
      readonly sizes?: FeatureSizes;
    };
