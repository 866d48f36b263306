// The Responses API's `truncation: "auto"` (RequestContext.truncatesToFit): when no candidate's context holds the
// prompt, its oldest messages are left out until one does, instead of the 400 every candidate skipped for context
// gives (also when other candidates are left out for tools, images or a schema: truncatedBody). OpenAI drops "items
// from the beginning of the conversation"; the gateway does so against the context it knows (each deployment's
// `context`, the prompt estimate the plan counts, calibrated per deployment), and only when the plan itself would
// refuse: a candidate that holds the whole conversation is served it whole (docs/protocols.md "Truncation").
import { NoCapableModelError } from "../errors/gateway-error.ts";
import type { ChatMessage } from "../protocols/chat-completions.ts";
import type { EndpointSpec } from "./endpoints.ts";
import type { GatewayRuntime } from "./gateway-runtime.ts";
import type { PipelineRequest, RequestContext, RequestFacts } from "./pipeline-types.ts";
import { requestFactsOf, routeRequestOf } from "./plan-request.ts";

type Body = PipelineRequest["body"];

/** A body and, when known already (a batch line's: CheckedLine), its facts. */
interface GivenBody {
  readonly body: Body;
  readonly facts: RequestFacts | undefined;
}

/**
 * The body as it goes on: as it came unless the request asks to be truncated and no candidate's context holds it;
 * then with the fewest oldest units left out that makes one hold it (a binary search over that count: each step is
 * one estimate and one plan, and a conversation may hold thousands of messages), without facts (they were the whole
 * body's). When even the last unit alone is too long, the body as it came: the plan's 400 says why.
 *
 * A cut body goes without the native body (`responses_api: native`, RequestContext.native), which holds the whole
 * input: the plan cut it because no candidate's window, a native one's included (its `context`, or what a refusal
 * taught), holds it whole, so a native candidate is sent the cut input too, as the chat translation (a native
 * provider speaks both), as after a refusal (refused-context.ts). OpenAI truncates against the model's own window
 * with `truncation: "auto"`, but a native server that is not OpenAI may not honour it, and the window listed for it
 * says the whole input does not fit (docs/protocols.md "Truncation").
 */
export function truncatedToFit(
  runtime: GatewayRuntime,
  endpoint: EndpointSpec,
  given: GivenBody,
  context: RequestContext,
): GivenBody & { readonly context: RequestContext } {
  if (context.truncatesToFit !== true) return { ...given, context };
  const truncated = truncatedBody(runtime, endpoint, given.body, context.client);
  if (truncated === given.body) return { ...given, context };
  return { body: truncated, facts: undefined, context: { ...context, native: undefined } };
}

/**
 * The body with the fewest oldest units left out that some candidate plans it with (truncatedToFit), as the client
 * `client` would be planned; the body itself when it is planned whole, or when nothing left out makes it planned.
 * Also what `POST /v1/responses/input_tokens` counts for `truncation: "auto"`.
 */
export function truncatedBody(
  runtime: GatewayRuntime,
  endpoint: EndpointSpec,
  body: Body,
  client: string | undefined,
): Body {
  if (!Array.isArray(body.messages)) return body;
  const messages = body.messages as ChatMessage[];
  const starts = unitStarts(messages);
  const fits = (dropped: number): boolean => {
    const candidate = dropped === 0 ? body : withoutOldest(body, messages, starts, dropped);
    return planRefusal(runtime, endpoint, candidate, client) === undefined;
  };
  if (!(planRefusal(runtime, endpoint, body, client) instanceof NoCapableModelError)) return body;
  // The last unit (the turn being asked) is never left out. Truncated only when the shortest input a candidate may
  // be sent is planned: then some candidate's context was its only obstacle (a candidate also without tools, images
  // or a schema the request needs is refused all the same, and nothing is left out for it).
  const dropped = fewestDropped(starts, fits);
  return dropped === undefined ? body : withoutOldest(body, messages, starts, dropped);
}

/**
 * The fewest oldest units left out (at least one) with which `fits` holds, by a binary search over that count (each
 * step one estimate, and a conversation may hold thousands of messages); undefined when even all but the last unit
 * left out does not fit. Shared by the first truncation and the rounds after refusals (refused-context.ts).
 */
export function fewestDropped(starts: readonly number[], fits: (dropped: number) => boolean): number | undefined {
  let most = starts.length - 1;
  if (most < 1 || !fits(most)) return undefined;
  let least = 1;
  while (least < most) {
    const middle = Math.floor((least + most) / 2);
    if (fits(middle)) most = middle;
    else least = middle + 1;
  }
  return most;
}

/**
 * Where each unit that may be left out starts: every message but the system ones (the instructions, and `system` /
 * `developer` input items, which are never left out), where an assistant message's tool calls and the tool messages
 * answering them are one unit: a call without its output, or an output without its call, is refused by chat
 * providers and misread by models.
 */
export function unitStarts(messages: readonly ChatMessage[]): number[] {
  const starts: number[] = [];
  for (const [index, message] of messages.entries()) {
    if (message.role === "system" || message.role === "developer") continue;
    if (message.role === "tool" && isAnsweringCall(messages, index)) continue;
    starts.push(index);
  }
  return starts;
}

/** A tool message right after an assistant's tool calls (or after other tool messages answering them). */
function isAnsweringCall(messages: readonly ChatMessage[], index: number): boolean {
  for (let before = index - 1; before >= 0; before--) {
    const message = messages[before];
    if (message?.role === "tool") continue;
    return message?.role === "assistant" && (message.tool_calls?.length ?? 0) > 0;
  }
  return false;
}

export function withoutOldest(
  body: Body,
  messages: readonly ChatMessage[],
  starts: readonly number[],
  dropped: number,
): Body {
  const keptFrom = starts[dropped] ?? messages.length;
  const kept = messages.filter(
    (message, index) => index >= keptFrom || message.role === "system" || message.role === "developer",
  );
  return { ...body, messages: kept };
}

/**
 * Why the plan refuses the body, or undefined when it takes it. Truncation starts only from a NoCapableModelError:
 * the candidates' fit, their context among the reasons, alone or beside tools, images or a schema some lack
 * (planRoute names `model` for mixed reasons, the prompt's field for context alone). Any other refusal (an unknown
 * model, a client's `models`) is the plan's to answer, whatever the input's length.
 */
function planRefusal(
  runtime: GatewayRuntime,
  endpoint: EndpointSpec,
  body: Body,
  client: string | undefined,
): NonNullable<unknown> | undefined {
  const facts = requestFactsOf(endpoint, body, false);
  const route = routeRequestOf({ runtime, body, endpoint, sessionKey: undefined, context: { client }, ...facts });
  try {
    runtime.plan(route);
    return undefined;
  } catch (error) {
    return error ?? "refused";
  }
}
