// Prompt estimates calibrated per deployment from the `usage` its provider reports. The estimator
// (token-estimate.ts) is built to stay above every common tokenizer, which makes it 1.3-1.7x what o200k counts on
// English, code and JSON: a 100,000-token prompt looked like ~150,000, so a 128k-context model was skipped as too
// small and a token budget refused it early, though the provider would have taken it. Each answer's reported
// prompt tokens against the estimate teach a factor for that deployment (its tokenizer, and what its provider adds
// around a prompt); estimates for it are then scaled by that factor, with a safety margin. Pure: no clock, no I/O.

import { DirtyTracked } from "./dirty-tracked.ts";
import type { PromptFacts } from "./token-estimate.ts";

/** Only prompts estimated at this many tokens or more teach: below, per-message framing drowns the text. */
export const MIN_LEARNING_TOKENS = 256;
/** A factor is used once the (decayed) estimated tokens behind it reach this much. */
export const MIN_EVIDENCE_TOKENS = 1_000;
/** Each lesson keeps this share of the past (the last ~10 large prompts count most). */
const DECAY = 0.9;
/** The learned ratio is raised by this margin: one prompt's text may tokenize denser than the average. */
export const SAFETY_MARGIN = 1.2;
/** Bounds on the factor: a provider whose report is absurd cannot make every prompt look free or huge. */
const MIN_FACTOR = 0.25;
export const MAX_FACTOR = 4;

/** What one deployment taught: decayed sums of estimated and reported prompt tokens. */
export interface PromptEvidence {
  readonly estimated: number;
  readonly reported: number;
}

/**
 * What one context-length refusal taught a deployment (PromptCalibration.learnTooLong), for a shared store to pass
 * on at once: the deployment's evidence when the refusal raised it, and whether its window turned out shared.
 */
export interface ContextLesson {
  readonly deploymentKey: string;
  readonly evidence: PromptEvidence | undefined;
  readonly isSharedWindow: boolean;
}

/** A deployment's context limits as the fit check reads them (router/context-fit.ts). */
export interface WindowLimits {
  readonly contextTokens: number | undefined;
  readonly maxOutputTokens: number | undefined;
}

export class PromptCalibration extends DirtyTracked {
  readonly #evidence = new Map<string, PromptEvidence>();
  /**
   * Deployments listed with an output limit of their own whose context-length refusal showed that the output counts
   * against the input limit after all (see `learnTooLong`). Kept with the calibrations (the embedded store's file,
   * Redis: docs/routing.md "Context fit"), so neither a restart nor another replica pays a refusal to learn it again.
   */
  readonly #sharedWindows = new Set<string>();
  /** Told of every context-length refusal that taught something (the Redis backend shares it at once). */
  #onLesson: ((lesson: ContextLesson) => void) | undefined;
  /** Told of every deployment forgotten (the Redis backend deletes what is stored of it). */
  #onForget: ((deploymentKey: string) => void) | undefined;

  /** The factor applied to this deployment's estimates: 1 until it has evidence enough. */
  factorOf(deploymentKey: string): number {
    const evidence = this.#evidence.get(deploymentKey);
    if (evidence === undefined || evidence.estimated < MIN_EVIDENCE_TOKENS) return 1;
    const factor = (evidence.reported / evidence.estimated) * SAFETY_MARGIN;
    return Math.min(MAX_FACTOR, Math.max(MIN_FACTOR, factor));
  }

  /** An estimate of prompt tokens, scaled for this deployment (bound: the router and failover take it as is). */
  readonly promptTokensFor = (deployment: { readonly key: string }, estimatedTokens: number): number => {
    const factor = this.factorOf(deployment.key);
    return factor === 1 ? estimatedTokens : Math.ceil(estimatedTokens * factor);
  };

  /** One answer's reported prompt tokens against the request's estimate. */
  learn(deploymentKey: string, estimatedTokens: number, reportedTokens: number): void {
    if (!(estimatedTokens >= MIN_LEARNING_TOKENS) || !(reportedTokens > 0) || !Number.isFinite(reportedTokens)) return;
    const previous = this.#evidence.get(deploymentKey) ?? { estimated: 0, reported: 0 };
    this.#evidence.set(deploymentKey, {
      estimated: previous.estimated * DECAY + estimatedTokens,
      reported: previous.reported * DECAY + reportedTokens,
    });
    this.markDirty();
  }

  /**
   * The deployment refused a prompt as longer than its context (router/context-fit.ts reads `limits` as one window
   * shared with the output, or an input limit with a separate output limit). What that proves whatever the kind of
   * window: the prompt was more than the limit less the output asked for. Learned as a report of that many when the
   * calibrated estimate said fewer, so that prompts of that size stop being sent there to fail.
   *
   * On a deployment listed with a separate output limit, a request whose prompt fitted the input limit but whose
   * prompt plus output did not is better explained by a shared window than by a larger prompt: LiteLLM's table gives
   * OpenAI's gpt-4o 128,000 in and 16,384 out, while OpenAI counts `max_tokens` in its 128,000. Taking the whole input
   * limit as the prompt's size there inflated every later estimate of the deployment by up to `max_tokens` (prompts
   * that fit were then skipped); the deployment is checked as one shared window from then on instead.
   */
  learnTooLong(
    deploymentKey: string,
    estimatedTokens: number,
    limits: WindowLimits,
    requestedOutputTokens: number,
  ): void {
    const limitTokens = limits.contextTokens;
    if (limitTokens === undefined) return;
    const calibrated = this.promptTokensFor({ key: deploymentKey }, estimatedTokens);
    const isListedSeparate = limits.maxOutputTokens !== undefined && limits.maxOutputTokens !== limitTokens;
    let isSharedWindow = false;
    if (isListedSeparate && calibrated + requestedOutputTokens > limitTokens) {
      isSharedWindow = !this.#sharedWindows.has(deploymentKey);
      this.#sharedWindows.add(deploymentKey);
      if (isSharedWindow) this.markDirty();
    }
    const minimumTokens = limitTokens - requestedOutputTokens;
    const before = this.#evidence.get(deploymentKey);
    if (calibrated < minimumTokens) this.learn(deploymentKey, estimatedTokens, minimumTokens);
    const evidence = this.#evidence.get(deploymentKey);
    if (!isSharedWindow && evidence === before) return;
    this.#onLesson?.({ deploymentKey, evidence: evidence === before ? undefined : evidence, isSharedWindow });
  }

  /** Calls `listener` with each context-length refusal that taught something (one listener: the state backend). */
  onLesson(listener: (lesson: ContextLesson) => void): void {
    this.#onLesson = listener;
  }

  /** Calls `listener` with each deployment `forget` is called for (one listener: the state backend). */
  onForget(listener: (deploymentKey: string) => void): void {
    this.#onForget = listener;
  }

  /**
   * What another replica's refusal taught (or a store kept): the deployment's evidence replaces this process's own
   * (the last lesson wins, as between flushes), and a shared window is one from now on. Not marked dirty: it is
   * already where it came from.
   */
  adopt(lesson: ContextLesson): void {
    if (lesson.evidence !== undefined) this.import({ [lesson.deploymentKey]: lesson.evidence });
    if (lesson.isSharedWindow) this.#sharedWindows.add(lesson.deploymentKey);
  }

  /**
   * The limits the fit check should read for a deployment: as configured or listed, or one shared window once a
   * refusal showed it shares one (`learnTooLong`).
   */
  readonly limitsFor = (deployment: { readonly key: string } & WindowLimits): WindowLimits =>
    this.#sharedWindows.has(deployment.key)
      ? { contextTokens: deployment.contextTokens, maxOutputTokens: undefined }
      : deployment;

  /**
   * Forgets what the deployment taught (a reload pointed its name at another upstream model, URL or key: another
   * tokenizer, another window). Written to the state file at the next flush; with Redis, what is stored of it is
   * deleted (told whether or not this process knew anything: another replica's flush may have stored evidence).
   */
  forget(deploymentKey: string): void {
    const hadEvidence = this.#evidence.delete(deploymentKey);
    const hadSharedWindow = this.#sharedWindows.delete(deploymentKey);
    if (hadEvidence || hadSharedWindow) this.markDirty();
    this.#onForget?.(deploymentKey);
  }

  /**
   * Another replica forgot the deployment (`forget` there: a reload pointed its name elsewhere) and deleted what was
   * stored of it: this copy goes too, so that it is neither used here nor written back by this process's next flush.
   * Tells no one.
   */
  adoptForgotten(deploymentKey: string): void {
    this.#evidence.delete(deploymentKey);
    this.#sharedWindows.delete(deploymentKey);
  }

  /**
   * A reload of what is shared no longer found the deployment's evidence stored (another replica forgot it while this
   * one did not hear it): dropped, so that it is neither used nor written back by the next flush. Tells no one.
   */
  adoptUnstoredEvidence(deploymentKey: string): void {
    this.#evidence.delete(deploymentKey);
  }

  /** As `adoptUnstoredEvidence`, for a shared window. Tells no one. */
  adoptUnstoredWindow(deploymentKey: string): void {
    this.#sharedWindows.delete(deploymentKey);
  }

  /** Whether the deployment taught anything (evidence, perhaps not enough to be used yet). */
  hasEvidence(deploymentKey: string): boolean {
    return this.#evidence.has(deploymentKey);
  }

  /** Whether a refusal showed this deployment's output counts against its input limit (for /stats and explain). */
  sharesWindow(deploymentKey: string): boolean {
    return this.#sharedWindows.has(deploymentKey);
  }

  export(): Record<string, PromptEvidence> {
    return Object.fromEntries(this.#evidence);
  }

  /** The deployments known to share one window between prompt and output (see `learnTooLong`). */
  exportSharedWindows(): string[] {
    return [...this.#sharedWindows];
  }

  /** Shared windows a previous run learned; what is not a list of strings is skipped. Returns how many. */
  importSharedWindows(persisted: unknown): number {
    if (!Array.isArray(persisted)) return 0;
    let imported = 0;
    for (const key of persisted) {
      if (typeof key !== "string" || key === "") continue;
      this.#sharedWindows.add(key);
      imported++;
    }
    return imported;
  }

  /** What a previous run learned; entries that are not two positive numbers are skipped. */
  import(persisted: unknown): number {
    if (persisted === null || typeof persisted !== "object") return 0;
    let imported = 0;
    for (const [key, value] of Object.entries(persisted)) {
      const { estimated, reported } = (value ?? {}) as { estimated?: unknown; reported?: unknown };
      if (typeof estimated !== "number" || typeof reported !== "number") continue;
      if (!(estimated > 0 && reported > 0 && Number.isFinite(estimated) && Number.isFinite(reported))) continue;
      this.#evidence.set(key, { estimated, reported });
      imported++;
    }
    return imported;
  }
}

/**
 * The estimate an answer's reported prompt tokens may calibrate: not with images (the estimate's flat 765 each) nor
 * documents (counted by size), which are no tokenizer's count and would skew the factor for every text prompt.
 */
export function calibratingTokens(prompt: PromptFacts): number | undefined {
  return prompt.hasImages || prompt.hasDocuments === true ? undefined : prompt.promptTokens;
}
