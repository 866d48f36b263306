// What the recorder (recorder.ts) is built on and told: the books it alone changes after an attempt, and how a stream
// segment is settled.
import type { Clock } from "../clock.ts";
import type { AvailabilityBook } from "../limits/availability.ts";
import type { BudgetLedger } from "../limits/budgets.ts";
import type { PromptCalibration } from "../limits/prompt-calibration.ts";
import type { RefusedFeatures } from "../limits/refused-features.ts";
import type { StatsBook } from "../observability/stats.ts";
import type { Deployment } from "../providers/catalog.ts";
import type { LiveScores } from "../scoring/live-scores.ts";
import type { TokenUsage } from "../streaming/relay-types.ts";

export interface RecorderBooks {
  readonly clock: Clock;
  readonly availability: AvailabilityBook;
  readonly budgets: BudgetLedger;
  readonly stats: StatsBook;
  readonly scores: LiveScores;
  readonly promptCalibration: PromptCalibration;
  /** What each deployment refused as not supported (tools, images, a parameter): ranked last for it meanwhile. */
  readonly refusedFeatures: RefusedFeatures;
  /**
   * Whether the books' entries under this deployment's name are about the upstream it was sent to. False for an
   * attempt sent before a reload pointed the name at another key, URL or model id (the books forgot the old one):
   * what the old upstream answered (a 429 of a spent key, a 5xx, its rate-limit headers) says nothing of the new one,
   * and its end must not hand back a probe or an attempt count the new one's requests hold.
   */
  readonly isKnownAs: (deployment: Deployment) => boolean;
  /** `cooldowns.unserved_endpoint_ms` of the serving config: how long a provider's missing route is remembered. */
  readonly unservedEndpointMs: () => number;
}

/** How a stream segment is settled. */
export interface SegmentSettlement {
  /** The first segment's success was already counted for health when the stream opened. */
  readonly isFirst: boolean;
  /** ForwardRequest.calibratingPromptTokens, for the first segment (a continuation's prompt holds a prefill). */
  readonly promptEstimate?: number | undefined;
  /** When the segment's stream started, for its duration. */
  readonly startedAtMs: number;
  /**
   * When it stopped streaming, if before now: the first segment is settled only when the whole answer ends, a broken
   * continuation once the next one opened or none did, and a continued one's duration is its own, not the next's too.
   */
  readonly endedAtMs?: number | undefined;
  /**
   * The gateway's estimate of what the segment cost, when it broke without a usage report (segment-usage.ts): the
   * request record's attempt carries the same numbers, and the budgets and stats count them.
   */
  readonly estimatedUsage: TokenUsage | undefined;
}

/** When a segment streamed: its health counts its duration. */
export type SegmentTiming = Pick<SegmentSettlement, "startedAtMs" | "endedAtMs">;
