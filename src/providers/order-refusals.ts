// Reading a provider's 400 for what it says about message order: a role-order refusal (which order it asks for) or a
// refusal of Mistral's `prefix` field. Pure. Kept apart from the rewrite (message-order.ts): what counts as the
// provider's own words, and not an echo of the request, is its own concern.
import type { MessageOrder } from "../config/message-orders.ts";
import { requestTextOf } from "./request-echo.ts";

const ALTERNATE_REFUSAL = /roles? must alternate/gi;
// Mistral's refusal of a tool call id it did not make is mistral-common's too: `strict` fits the ids (message-order.ts).
const STRICT_REFUSAL =
  /expected last role .* but got|unexpected role '?\w+'? after role|invalid_request_message_order|tool call id was .* but must be/gi;
/** Mistral's error `type` (its `code` is 3230) for a role-order refusal. */
const ORDER_REFUSAL_CODE = "invalid_request_message_order";

/**
 * Which order a 400 asks for, when it is one of the known role-order refusals: Mistral's wording or its error type
 * (`strict`), a chat template's alternation error (`alternate`). Undefined otherwise.
 *
 * `request`: what was sent, when known. Some servers echo the request in their error (a validation error quoting the
 * offending value, a proxy wrapping the whole body), so a prompt that merely contains "roles must alternate" would
 * otherwise teach the deployment an order for hours. A phrase counts only when that text is not in the request
 * itself: a match that is also in the request may be a copy of it, and nothing is learned from it (the cost of a
 * missed lesson is one refusal passed on; a wrong lesson rewrites every later request). The error's `type`/`code`
 * fields are the provider's own and always count.
 */
export function orderRefusedBy(
  error: { readonly message: string; readonly type?: string | undefined; readonly code?: string | undefined },
  request?: unknown,
): MessageOrder | undefined {
  // The body as JSON (an echo of the body itself) and its strings as they are (an echo of the prompt: JSON escapes a
  // prompt's quotes and newlines, which an error quoting it carries raw).
  const text = requestTextOf(request);
  const isOwnMatch = (pattern: RegExp): boolean => {
    for (const match of error.message.matchAll(pattern)) {
      const phrase = match[0].toLowerCase();
      if (!text.json.includes(phrase) && !text.strings.includes(phrase)) return true;
    }
    return false;
  };
  if (isOwnMatch(ALTERNATE_REFUSAL)) return "alternate";
  if (isOwnMatch(STRICT_REFUSAL)) return "strict";
  if (error.type === ORDER_REFUSAL_CODE || error.code === ORDER_REFUSAL_CODE) return "strict";
  return undefined;
}

/**
 * Whether an `unsupported` refusal is about the `prefix` field of a message (a host that refuses unknown message
 * fields: vLLM's and NIM's "messages.1.prefix: Extra inputs are not permitted", OpenAI-style "Additional properties
 * are not allowed ('prefix' was unexpected)"): isMessageFieldRefusal of `prefix`.
 */
export function isPrefixRefusal(
  error: { readonly message: string; readonly param?: string | undefined },
  request?: unknown,
): boolean {
  return isMessageFieldRefusal("prefix", error, request);
}

/**
 * What a message field holds in an echo of the messages sent (the field itself, in a message the error quotes: a proxy
 * echoing its request in a refusal of something else, LiteLLM's "Received Messages=[...]", a validator quoting the
 * message it failed), not a naming of it. Such a request carried the field, so every refusal that echoes it would
 * teach the host refuses the field (prefills sent without `prefix`, no reasoning sent, for hours) and leave the real
 * refusal unlearned. A key holding anything else (`{"prefix": ["Unknown field."]}`) is a refusal keyed by the field.
 */
const ECHOED_VALUES = {
  prefix: String.raw`(?:true|false)\b`,
  reasoning_content: String.raw`(?:['"]|None\b|null\b)`,
} as const;

/**
 * Whether an `unsupported` refusal is about `field` of a message, by its `param` or the field named in quotes or as a
 * path segment (Cerebras: "messages.2.assistant.reasoning_content: property 'messages.2.assistant.reasoning_content'
 * is unsupported"; vLLM: "messages.1.reasoning_content: Extra inputs are not permitted"). A quoted key holding what
 * an echo holds (ECHOED_VALUES) does not count, nor does a naming that is also in one of the request's strings (a
 * prompt asking about the `'prefix'` option, quoted back by a content filter: as for an order phrase, orderRefusedBy).
 * Only the strings: the body's JSON holds the field's name as the key of the very field refused.
 */
export function isMessageFieldRefusal(
  field: keyof typeof ECHOED_VALUES,
  error: { readonly message: string; readonly param?: string | undefined },
  request?: unknown,
): boolean {
  if (error.param !== undefined && new RegExp(`(?:^|[.\\]])${field}$`).test(error.param)) return true;
  const { strings } = requestTextOf(request);
  const named = new RegExp(
    `['"\`]${field}['"\`](?!\\s*:\\s*${ECHOED_VALUES[field]})|[.\\]]${field}\\b|argument supplied: ${field}\\b`,
    "gi",
  );
  for (const match of error.message.matchAll(named)) {
    if (!strings.includes(match[0].toLowerCase())) return true;
  }
  return false;
}
