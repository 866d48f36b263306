// The order of chat roles a model accepts (`message_order`), and the rewrite of one candidate's messages into it.
// Pure. Why: Mistral's API (and Mistral models behind NIM, OpenRouter, vLLM with mistral-common) validates the role
// sequence and answers 400 `invalid_request_message_order` (code 3230): "Expected last role User or Tool (or
// Assistant with prefix True) for serving but got assistant|system", "Unexpected role 'user' after role 'tool'";
// Hugging Face chat templates (Gemma, Llama-2 style, Ministral on vLLM) raise "conversation roles must alternate
// user/assistant". OpenAI-style clients send all of these shapes: Claude Code a system turn after the user's, agents
// a user turn right after tool results. Only the candidate that needs it gets the rewrite (upstream-request.ts).

import { MESSAGE_ORDERS, type MessageOrder } from "../config/message-orders.ts";
import type { Deployment } from "./catalog.ts";

/**
 * `any`: sent as the client wrote them. `strict`: Mistral's rules (no system message after the conversation started,
 * an assistant turn between a tool result and a user turn, a trailing assistant marked `prefix: true`).
 * `alternate`: `strict`'s first two rules plus consecutive user messages merged (chat templates that require
 * user/assistant alternation), a trailing assistant left as is (a template has no `prefix`).
 */
export type { MessageOrder } from "../config/message-orders.ts";

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

/**
 * Which order a 400's message asks for, when it is one of the known role-order refusals: Mistral's wording
 * (`strict`), a chat template's alternation error (`alternate`). Undefined otherwise.
 */
export function orderRefusedBy(message: string): MessageOrder | undefined {
  if (/roles? must alternate/i.test(message)) return "alternate";
  if (/expected last role .* but got|unexpected role '?\w+'? after role|invalid_request_message_order/i.test(message))
    return "strict";
  return undefined;
}

type Message = Record<string, unknown>;

/**
 * The messages rewritten into `order`, or the same array when nothing had to change (so a request that was already
 * in order is sent byte for byte as the client wrote it). The client's objects are never changed: every changed
 * message is a copy.
 */
export function orderMessages(messages: readonly unknown[], order: MessageOrder): readonly unknown[] {
  if (order === "any" || !messages.every(isMessage)) return messages;
  let out: Message[] = foldLateSystem(messages);
  out = bridgeToolToUser(out);
  if (order === "alternate") out = mergeConsecutiveUsers(out);
  else out = markTrailingPrefix(out);
  const isSame = out.length === messages.length && out.every((message, index) => message === messages[index]);
  return isSame ? messages : out;
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
function markTrailingPrefix(messages: Message[]): Message[] {
  const last = messages.at(-1);
  if (last === undefined || last.role !== "assistant" || last.prefix === true) return messages;
  if (Array.isArray(last.tool_calls) && last.tool_calls.length > 0) return messages;
  return [...messages.slice(0, -1), { ...last, prefix: true }];
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

/** The order a deployment's messages are sent in: its config (model, provider), its id, what it taught. */
export function deploymentMessageOrder(deployment: Deployment, learned: MessageOrder | undefined): MessageOrder {
  return messageOrderOf(
    deployment.model.messageOrder,
    deployment.provider.settings.messageOrder,
    deployment.model.id,
    learned,
  );
}

/**
 * A learned order is kept as a refused "feature" of the deployment (limits/refused-features.ts: its lifetime, state
 * file, Redis sharing and admin reset). No request carries such a feature, so the router never ranks a candidate
 * lower for it: the lesson only changes what the candidate is sent.
 */
export const LEARNED_ORDER_FEATURES: readonly string[] = ["message_order:alternate", "message_order:strict"];

export function learnedOrderFeature(order: MessageOrder): string {
  return `message_order:${order}`;
}

/** The order a deployment has learned (LEARNED_ORDER_FEATURES), the stronger one first. */
export function learnedOrderOf(
  book: { refusalOf?(deployment: Deployment, features: readonly string[]): { readonly feature: string } | undefined },
  deployment: Deployment,
): MessageOrder | undefined {
  const feature = book.refusalOf?.(deployment, LEARNED_ORDER_FEATURES)?.feature;
  if (feature === "message_order:alternate") return "alternate";
  if (feature === "message_order:strict") return "strict";
  return undefined;
}
