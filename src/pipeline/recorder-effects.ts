// What an attempt's answer teaches the books (upstream/effects.ts: cool down, park, learn windows and limits, a
// refused feature or endpoint, a circuit failure), applied by the recorder (recorder.ts) when the attempt ends: one of
// the recorder's own modules, the only files besides it that change the books after an attempt.
import { keyFingerprint, type SentAt } from "../limits/availability.ts";
import { type BudgetScope, learningScope, type Reservation } from "../limits/budgets.ts";
import { learnUnservedEndpoint } from "../limits/unserved-endpoints.ts";
import type { Deployment } from "../providers/catalog.ts";
import type { Effect } from "../upstream/effects.ts";
import type { RecorderBooks } from "./recorder-books.ts";

/** Applies an ended attempt's effects to the books, in order. */
export function applyEffects(
  books: RecorderBooks,
  deployment: Deployment,
  scopes: readonly BudgetScope[],
  effects: readonly Effect[],
  reservation: Reservation,
  sentAt: SentAt,
): void {
  const { availability, budgets, clock } = books;
  const settings = deployment.provider.settings;
  const key = deployment.key;
  // Reasons quote the upstream, which may echo any secret it was sent; /health, /stats, route explanations and the
  // state file show them. They arrive redacted by the gateway's one redaction (FailoverServices.redact, failover.ts).
  for (const effect of effects) {
    switch (effect.kind) {
      case "circuit_failure":
        availability.recordFailure(key, sentAt);
        break;
      case "cool_down":
        availability.recordRateLimited(key, effect.hint, effect.cause, effect.reason, sentAt, effect.dayEnd);
        break;
      case "park":
        availability.park(key, effect.untilMs, effect.cause, effect.reason, effect.source);
        break;
      case "model_unavailable":
        availability.recordModelUnavailable(key, effect.reason);
        break;
      case "park_key":
        // The key this request sent: after a reload to another key, a late 401 parks the old key only.
        availability.recordInvalidKey(settings.name, effect.reason, effect.cause, keyFingerprint(settings.apiKeys[0]));
        break;
      case "cool_pool": {
        // The pool cools exactly as long as the deployment that hit it (set by the effect before this one).
        const own = availability.cooldownOf(key, settings.name);
        if (own !== undefined) {
          availability.coolPool(settings.name, { ...own, reason: `account-wide limit: ${effect.reason}` });
        }
        break;
      }
      case "learn_windows": {
        // Into the deployment's own scope, or its key's pool when the provider counts per account.
        const scope = learningScope(scopes, effect.isAccountWide);
        if (scope !== undefined) budgets.learn(scope, effect.windows, clock.now());
        break;
      }
      case "refused_feature": {
        const { feature, reason, minEntries } = effect;
        books.refusedFeatures.learn(key, feature, reason, clock.now(), undefined, minEntries);
        break;
      }
      case "unserved_endpoint":
        // The provider's, not the deployment's: each of its models is left out for this endpoint (and only this one).
        learnUnservedEndpoint(
          books.refusedFeatures,
          settings.name,
          effect.endpointPath,
          effect.reason,
          clock.now(),
          books.unservedEndpointMs(),
        );
        break;
      case "accepted_features":
        books.refusedFeatures.unlearn(key, effect.features, sentAt.sentAtMs, effect.sizes);
        break;
      case "learn_limits": {
        // An account-wide 429 teaches the pool's limit (from the pool's spacing): every model of the key is paced.
        const scope = learningScope(scopes, effect.isAccountWide);
        if (scope !== undefined) {
          budgets.learnLimits(scope, { ...effect.refusal, sentAtMs: reservation.atMs }, clock.now());
        }
        break;
      }
    }
  }
}
