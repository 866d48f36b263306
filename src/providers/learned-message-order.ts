// A role order, a `prefix` refusal or a `reasoning_content` refusal learned from a deployment's 400s, kept as refused
// "features" of it (limits/refused-features.ts), and how providers/message-order.ts reads them back.
import type { MessageOrder } from "../config/message-orders.ts";
import type { Deployment } from "./catalog.ts";

/** What a lesson book answers: a learned refusal of one of `features` (limits/refused-features.ts). */
export interface LearnedRefusals {
  refusalOf?(
    deployment: Deployment,
    features: readonly string[],
  ): { readonly feature: string; readonly reason?: string } | undefined;
}

/**
 * A learned order is kept as a refused "feature" of the deployment (limits/refused-features.ts: its lifetime, state
 * file, Redis sharing and admin reset). No request carries such a feature, so the router never ranks a candidate
 * lower for it: the lesson only changes what the candidate is sent.
 */
export const LEARNED_ORDER_FEATURES: readonly string[] = ["message_order:alternate", "message_order:strict"];

/** Its host refused a message's `prefix` / `reasoning_content` field: kept like a learned order, sent no more. */
export const PREFIX_REFUSED_FEATURE = "message_order:prefix";
export const REASONING_REFUSED_FEATURE = "message_order:reasoning_content";
// The lists refusalOf is asked with, made once: every attempt asks (deploymentMessageOrdering).
export const PREFIX_REFUSED: readonly string[] = [PREFIX_REFUSED_FEATURE];
export const REASONING_REFUSED: readonly string[] = [REASONING_REFUSED_FEATURE];

export function learnedOrderFeature(order: MessageOrder): string {
  return `message_order:${order}`;
}

export function orderOfFeature(feature: string): MessageOrder | undefined {
  if (feature === "message_order:alternate") return "alternate";
  if (feature === "message_order:strict") return "strict";
  return undefined;
}

/** The order a deployment has learned (LEARNED_ORDER_FEATURES), the stronger one first. */
export function learnedOrderOf(book: LearnedRefusals, deployment: Deployment): MessageOrder | undefined {
  const feature = book.refusalOf?.(deployment, LEARNED_ORDER_FEATURES)?.feature;
  return feature === undefined ? undefined : orderOfFeature(feature);
}
