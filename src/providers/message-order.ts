// The order of chat roles a model accepts (`message_order`), and the rewrite of one candidate's messages into it.
// Pure. Why: Mistral's API (and Mistral models behind NIM, OpenRouter, vLLM with mistral-common) validates the role
// sequence and answers 400 `invalid_request_message_order` (code 3230): "Expected last role User or Tool (or
// Assistant with prefix True) for serving but got assistant|system", "Unexpected role 'user' after role 'tool'";
// Hugging Face chat templates (Gemma, Llama-2 style, Ministral on vLLM) raise "conversation roles must alternate
// user/assistant". OpenAI-style clients send all of these shapes: Claude Code a system turn after the user's, agents
// a user turn right after tool results. Only the candidate that needs it gets the rewrite (upstream-request.ts).

import { createHash } from "node:crypto";
import { MESSAGE_ORDERS, type MessageChange, type MessageOrder } from "../config/message-orders.ts";
import type { Deployment } from "./catalog.ts";
import {
  LEARNED_ORDER_FEATURES,
  type LearnedRefusals,
  learnedOrderOf,
  orderOfFeature,
  PREFIX_REFUSED,
  REASONING_REFUSED,
} from "./learned-message-order.ts";

/**
 * `any`: sent as the client wrote them. `strict`: Mistral's rules (no system message after the conversation started,
 * an assistant turn between a tool result and a user turn, a trailing assistant marked `prefix: true` where the host
 * takes it: MessageOrdering.prefix). `alternate`: `strict`'s first two rules plus consecutive user messages merged
 * (chat templates that require user/assistant alternation), a trailing assistant left as is (a template has no
 * `prefix`).
 */
export type { MessageChange, MessageOrder } from "../config/message-orders.ts";
export {
  LEARNED_ORDER_FEATURES,
  type LearnedRefusals,
  learnedOrderFeature,
  learnedOrderOf,
  PREFIX_REFUSED_FEATURE,
  REASONING_REFUSED_FEATURE,
} from "./learned-message-order.ts";

/**
 * Model ids of the Mistral family, on any provider: Mistral's own API, and its open weights served with Mistral's
 * tokenizer (mistral-common's validator) by NIM, vLLM, OpenRouter's Mistral provider.
 */
const MISTRAL_FAMILY = /mistral|ministral|magistral|codestral|devstral|pixtral|mixtral/i;

/**
 * The text of the assistant turn put between a tool result and a user turn. Not empty: Mistral refuses an assistant
 * message with neither content nor tool calls, and some templates drop an empty turn (which breaks alternation
 * again). Short and neutral, as avante.nvim's ("Ok, I understand.") and pi-ai's bridge turns for the same refusal.
 */
export const BRIDGE_ASSISTANT_TEXT = "Ok.";

/**
 * The order a candidate needs: the config's (model, then provider: a preset's included), else `strict` for a
 * Mistral-family id, else `any`; a learned order (a refusal seen from it) when it asks for more than that.
 */
export function messageOrderOf(
  modelOrder: MessageOrder | undefined,
  providerOrder: MessageOrder | undefined,
  upstreamModelId: string,
  learned: MessageOrder | undefined,
): MessageOrder {
  const configured = modelOrder ?? providerOrder ?? (MISTRAL_FAMILY.test(upstreamModelId) ? "strict" : "any");
  if (learned === undefined) return configured;
  return strength(learned) > strength(configured) ? learned : configured;
}

function strength(order: MessageOrder): number {
  return MESSAGE_ORDERS.indexOf(order);
}

type Message = Record<string, unknown>;

/**
 * What becomes of Mistral's `prefix` flag on a trailing assistant message. `mark`: the host takes it (the mistral and
 * codestral presets, `assistant_prefix: true`): a `strict` order marks a trailing assistant with it. `leave`: the
 * host is not known to take it: the trailing assistant goes as the client wrote it. Not dropped, nor turned into a
 * user turn: either would silently change what the client asked for (a prefill is the start of the answer), while
 * a Mistral model served by vLLM's Mistral tokenizer reads a trailing assistant as a prefix by itself, and a host
 * that refuses it answers a 400 that fails over like any refusal. `remove`: the host refused the field (learned,
 * PREFIX_REFUSED_FEATURE): no message is sent with one, the client's own included.
 */
export type PrefixHandling = "mark" | "leave" | "remove";

/** How one candidate's messages are sent: the order, and its trailing assistant's `prefix`. */
export interface MessageOrdering {
  readonly order: MessageOrder;
  readonly prefix: PrefixHandling;
  /** `remove`: the host refused a message's `reasoning_content` (learned, REASONING_REFUSED_FEATURE): none is sent. */
  readonly reasoning?: "remove";
}

/**
 * The messages rewritten into `ordering` (a bare order: its rules, a trailing assistant left as written), or the
 * same array when nothing had to change (so a request that was already in order is sent byte for byte as the client
 * wrote it). The client's objects are never changed: every changed message is a copy.
 */
export function orderMessages(
  messages: readonly unknown[],
  ordering: MessageOrder | MessageOrdering,
): readonly unknown[] {
  return orderMessagesWithChanges(messages, ordering).messages;
}

/** orderMessages, and what it changed (empty: the same array). */
export function orderMessagesWithChanges(
  messages: readonly unknown[],
  ordering: MessageOrder | MessageOrdering,
): { readonly messages: readonly unknown[]; readonly changes: readonly MessageChange[] } {
  const full: MessageOrdering = typeof ordering === "string" ? { order: ordering, prefix: "leave" } : ordering;
  if (!changesAnything(full) || !messages.every(isMessage)) return { messages, changes: [] };
  const { order, prefix, reasoning } = full;
  const changes: MessageChange[] = [];
  let out: readonly Message[] = messages;
  const step = (change: MessageChange, rewrite: (messages: readonly Message[]) => readonly Message[]): void => {
    const next = rewrite(out);
    if (!isSameList(next, out)) changes.push(change);
    out = next;
  };
  if (order !== "any") {
    step("system_folded", foldLateSystem);
    step("tool_bridged", bridgeToolToUser);
    step("tool_ids_fitted", fitToolCallIds);
    if (order === "alternate") step("users_merged", mergeConsecutiveUsers);
    else if (prefix === "mark") step("prefix_marked", markTrailingPrefix);
  }
  if (prefix === "remove") step("prefix_removed", (list) => withoutField(list, "prefix"));
  if (reasoning === "remove") step("reasoning_removed", (list) => withoutField(list, "reasoning_content"));
  return isSameList(out, messages) ? { messages, changes: [] } : { messages: out, changes };
}

/** Whether an ordering may change any message (the usual `any` order changes none). */
export function changesAnything(ordering: MessageOrdering): boolean {
  return ordering.order !== "any" || ordering.prefix === "remove" || ordering.reasoning === "remove";
}

function isSameList(first: readonly unknown[], second: readonly unknown[]): boolean {
  return first.length === second.length && first.every((message, index) => message === second[index]);
}

function isMessage(value: unknown): value is Message {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/**
 * A system message after the first non-system one becomes text of the next user message (put before it: it is an
 * instruction for what follows); when an assistant turn comes first, text of the user message right before that
 * turn (after its text), or a user turn of its own in its place; when no user or assistant message follows, of the last user message before it (after its
 * text), or a user message of its own when the conversation otherwise ends with an assistant answer. With no user
 * message at all it stays where it is: there is nothing to fold it into.
 */
function foldLateSystem(messages: readonly Message[]): Message[] {
  const out: Message[] = [];
  const pending: string[] = [];
  let hasStarted = false;
  for (const message of messages) {
    if (message.role === "system" && hasStarted) {
      const text = textOf(message.content);
      // Parts that are not text (an image) cannot be folded as text: kept in place, never silently dropped (the
      // upstream's refusal then fails the candidate over). An empty system message carries nothing and goes.
      if (text === "" && !isEmpty(message.content)) out.push(message);
      else if (text !== "") pending.push(text);
      continue;
    }
    if (message.role !== "system") hasStarted = true;
    if (message.role === "user" && pending.length > 0) {
      out.push(withText(message, pending.splice(0).join("\n\n"), "before"));
      continue;
    }
    // An assistant turn came after the instruction, so was written with it in force: the instruction stays before
    // it. Moved past it (to a later user turn, or to the end as a turn of its own) it split two assistant turns'
    // order, and made a trailing prefill (a client's, or a stream continuation's delivered text) a finished answer
    // followed by a new question.
    if (message.role === "assistant" && pending.length > 0) {
      const text = pending.splice(0).join("\n\n");
      const previous = out.at(-1);
      if (previous?.role === "user") out[out.length - 1] = withText(previous, text, "after");
      else out.push({ role: "user", content: text });
    }
    out.push(message);
  }
  if (pending.length === 0) return out;
  // After an assistant answer a folded text would leave the conversation ending with that answer, which Mistral
  // then reads as a prefix to continue: the instruction becomes the user turn it was meant to precede instead.
  if (out.at(-1)?.role === "assistant") {
    out.push({ role: "user", content: pending.join("\n\n") });
    return out;
  }
  const lastUser = out.findLastIndex((message) => message.role === "user");
  if (lastUser < 0) {
    // No user turn to carry it: put the system messages back as they were sent.
    return messages.slice();
  }
  out[lastUser] = withText(out[lastUser] as Message, pending.join("\n\n"), "after");
  return out;
}

/** A user message right after a tool message gets an assistant turn between them (BRIDGE_ASSISTANT_TEXT). */
function bridgeToolToUser(messages: readonly Message[]): Message[] {
  const out: Message[] = [];
  for (const message of messages) {
    if (message.role === "user" && out.at(-1)?.role === "tool") {
      out.push({ role: "assistant", content: BRIDGE_ASSISTANT_TEXT });
    }
    out.push(message);
  }
  return out;
}

/** What mistral-common's validator takes as a tool call id (Mistral's API, and its models' templates and tokenizer). */
const MISTRAL_TOOL_CALL_ID = /^[a-zA-Z0-9]{9}$/;
const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/**
 * Tool call ids Mistral did not make (another provider's `call_...` after a failover, Claude Code's `toolu_...`, the
 * gateway's own for a call that came without one) become 9 letters and digits, as Mistral requires: it refused the
 * whole request ("Tool call id was call_... but must be a-z, A-Z, 0-9, with a length of 9", code 3280), so every
 * turn after a tool result failed. Made from a hash of the id, so a call and its result (and every later request
 * of the conversation) get the same one; only this candidate's copy changes, the client keeps its ids.
 */
function fitToolCallIds(messages: readonly Message[]): readonly Message[] {
  const fit = (id: unknown): unknown =>
    typeof id !== "string" || MISTRAL_TOOL_CALL_ID.test(id) ? id : mistralToolCallId(id);
  let isChanged = false;
  const out = messages.map((message) => {
    if (message.role === "tool" && fit(message.tool_call_id) !== message.tool_call_id) {
      isChanged = true;
      return { ...message, tool_call_id: fit(message.tool_call_id) };
    }
    const calls = message.tool_calls;
    if (message.role !== "assistant" || !Array.isArray(calls)) return message;
    if (calls.every((call) => !isMessage(call) || fit(call.id) === call.id)) return message;
    isChanged = true;
    return { ...message, tool_calls: calls.map((call) => (isMessage(call) ? { ...call, id: fit(call.id) } : call)) };
  });
  return isChanged ? out : messages;
}

function mistralToolCallId(id: string): string {
  const digest = createHash("sha256").update(id).digest();
  let fitted = "";
  for (let index = 0; index < 9; index++) fitted += BASE62[(digest[index] ?? 0) % BASE62.length];
  return fitted;
}

/** Consecutive user messages become one (their texts, or their parts, in order). */
function mergeConsecutiveUsers(messages: readonly Message[]): Message[] {
  const out: Message[] = [];
  for (const message of messages) {
    const previous = out.at(-1);
    if (message.role === "user" && previous?.role === "user") {
      out[out.length - 1] = { ...previous, content: joinedContent(previous.content, message.content) };
      continue;
    }
    out.push(message);
  }
  return out;
}

/**
 * Mistral serves a conversation ending with an assistant message only as a prefix of its answer (`prefix: true`),
 * which is what such a request means (a prefill). An assistant turn with tool calls is not a prefix: left as is.
 */
function markTrailingPrefix(messages: readonly Message[]): readonly Message[] {
  const last = messages.at(-1);
  if (last === undefined || last.role !== "assistant" || last.prefix === true) return messages;
  if (Array.isArray(last.tool_calls) && last.tool_calls.length > 0) return messages;
  return [...messages.slice(0, -1), { ...last, prefix: true }];
}

/** Every message without its `prefix` field (a host that refuses unknown message fields refused it). */
/** The messages without a field a host refused (`prefix`, `reasoning_content`): copies of those that had it. */
function withoutField(messages: readonly Message[], field: string): readonly Message[] {
  if (!messages.some((message) => field in message)) return messages;
  return messages.map((message) => {
    if (!(field in message)) return message;
    const { [field]: _refused, ...rest } = message;
    return rest;
  });
}

function isEmpty(content: unknown): boolean {
  return (
    content === "" || content === null || content === undefined || (Array.isArray(content) && content.length === 0)
  );
}

/** A message's text: a string, or the text parts of an array of parts joined by newlines. */
function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  const texts: string[] = [];
  for (const part of content) {
    if (isMessage(part) && part.type === "text" && typeof part.text === "string") texts.push(part.text);
  }
  return texts.join("\n");
}

function withText(message: Message, text: string, where: "before" | "after"): Message {
  const content = message.content;
  if (Array.isArray(content)) {
    const part = { type: "text", text };
    return { ...message, content: where === "before" ? [part, ...content] : [...content, part] };
  }
  const own = typeof content === "string" ? content : "";
  if (own === "") return { ...message, content: text };
  return { ...message, content: where === "before" ? `${text}\n\n${own}` : `${own}\n\n${text}` };
}

function joinedContent(first: unknown, second: unknown): unknown {
  if (typeof first === "string" && typeof second === "string") {
    return first === "" ? second : second === "" ? first : `${first}\n\n${second}`;
  }
  return [...partsOf(first), ...partsOf(second)];
}

function partsOf(content: unknown): unknown[] {
  if (Array.isArray(content)) return content;
  if (typeof content === "string" && content !== "") return [{ type: "text", text: content }];
  return [];
}

/** Where a candidate's order comes from, as route explanations say it. */
export type MessageOrderSource = "config" | "model_id" | "learned" | "default";

export interface ExplainedMessageOrdering extends MessageOrdering {
  readonly source: MessageOrderSource;
  /** The refusal a learned order or a learned `prefix` refusal came from. */
  readonly learnedFrom?: string;
}

/** The order a deployment's messages are sent in: its config (model, provider), its id, what it taught. */
export function deploymentMessageOrder(deployment: Deployment, learned: MessageOrder | undefined): MessageOrder {
  return messageOrderOf(
    deployment.model.messageOrder,
    deployment.provider.settings.messageOrder,
    deployment.model.id,
    learned,
  );
}

/** How a deployment's messages are sent now: its order, and its trailing assistant's `prefix` (PrefixHandling). */
// explainMessageOrdering's answer without its explanation (source, learnedFrom), which no attempt needs.
export function deploymentMessageOrdering(deployment: Deployment, book: LearnedRefusals): MessageOrdering {
  const order = deploymentMessageOrder(deployment, learnedOrderOf(book, deployment));
  const isPrefixRefused = book.refusalOf?.(deployment, PREFIX_REFUSED) !== undefined;
  const prefix = isPrefixRefused ? "remove" : deployment.provider.settings.assistantPrefix ? "mark" : "leave";
  if (book.refusalOf?.(deployment, REASONING_REFUSED) === undefined) return { order, prefix };
  return { order, prefix, reasoning: "remove" };
}

/** deploymentMessageOrdering with where it comes from (route explanations). */
export function explainMessageOrdering(deployment: Deployment, book: LearnedRefusals): ExplainedMessageOrdering {
  const learned = book.refusalOf?.(deployment, LEARNED_ORDER_FEATURES);
  const learnedOrder = learned === undefined ? undefined : orderOfFeature(learned.feature);
  const configured = deployment.model.messageOrder ?? deployment.provider.settings.messageOrder;
  const order = deploymentMessageOrder(deployment, learnedOrder);
  const isLearned = order !== deploymentMessageOrder(deployment, undefined);
  const source: MessageOrderSource = isLearned
    ? "learned"
    : configured !== undefined
      ? "config"
      : order === "strict"
        ? "model_id"
        : "default";
  const prefixRefusal = book.refusalOf?.(deployment, PREFIX_REFUSED);
  const prefix: PrefixHandling =
    prefixRefusal !== undefined ? "remove" : deployment.provider.settings.assistantPrefix ? "mark" : "leave";
  const reasoningRefusal = book.refusalOf?.(deployment, REASONING_REFUSED);
  const learnedFrom = [isLearned ? learned?.reason : undefined, prefixRefusal?.reason, reasoningRefusal?.reason].filter(
    (reason): reason is string => reason !== undefined,
  );
  const reasoning = reasoningRefusal === undefined ? {} : { reasoning: "remove" as const };
  return {
    order,
    prefix,
    ...reasoning,
    source,
    ...(learnedFrom.length === 0 ? {} : { learnedFrom: learnedFrom.join("; ") }),
  };
}

/** Two orderings send the same messages differently. */
export function isSameOrdering(first: MessageOrdering, second: MessageOrdering): boolean {
  return first.order === second.order && first.prefix === second.prefix && first.reasoning === second.reasoning;
}
