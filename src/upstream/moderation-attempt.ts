// A moderation attempt: the candidate's call (or, for Llama Guard, one call per input, in turn) through the JSON
// attempt, then the answer read back into OpenAI's moderation object (moderation-dialect.ts). Any call that fails
// fails the attempt as it failed (a 429 cools the candidate, a 5xx counts against its health); an answer that is no
// moderation result or no Llama Guard verdict is a `bad_response`: the next candidate is tried.
import { firstChoice } from "../chat-choice.ts";
import { isRecord } from "../is-record.ts";
import type { TokenUsage } from "../streaming/relay-types.ts";
import { type AttemptContext, type AttemptResult, failed } from "./attempt-context.ts";
import { jsonAttempt } from "./json-attempt.ts";
import { failureLesson } from "./lessons.ts";
import {
  llamaGuardAnswer,
  type ModerationCall,
  moderationCalls,
  readLlamaGuardVerdict,
  readNativeModeration,
} from "./moderation-dialect.ts";
import type { UpstreamCall } from "./upstream-request.ts";

type Answered = Extract<AttemptResult, { ok: true }>;

/** `call`: the attempt's call as built for the endpoint; its path and payload are replaced by each moderation call. */
export async function moderationAttempt(
  context: AttemptContext,
  call: UpstreamCall,
  headersTimeoutMs: number,
): Promise<AttemptResult> {
  const { deployment, request } = context;
  try {
    const planned = moderationCalls(request.body, deployment);
    if (planned === undefined) {
      // The router leaves such models out (router/unserved-skip.ts); reached only through a plan made otherwise.
      const reason = `${deployment.model.id} is a moderation model this gateway calls in no way (neither a /moderations model nor Llama Guard 3 or 4)`;
      return failed({ outcome: "unserved_endpoint", reason, effects: [] });
    }
    if (planned.api === "native") return await nativeAttempt(context, call, planned.calls, headersTimeoutMs);
    return await llamaGuardAttempt(context, call, planned.calls, headersTimeoutMs);
  } finally {
    // The calls below keep the provider's slot until the last of them has ended.
    context.releaseSlot();
  }
}

async function nativeAttempt(
  context: AttemptContext,
  call: UpstreamCall,
  calls: readonly ModerationCall[],
  headersTimeoutMs: number,
): Promise<AttemptResult> {
  const [only] = calls;
  if (only === undefined) return failed(failureLesson("bad_response", "no moderation call was built"));
  const result = await jsonAttempt(heldSlot(context), { ...call, ...only }, headersTimeoutMs);
  if (!result.ok || result.json === undefined) return result;
  const json = JSON.parse(result.json.bodyText) as Record<string, unknown>;
  const answer = readNativeModeration(json, context.request.body, context.deployment, result.json.bodyText);
  if (!answer.ok) {
    return failed(
      failureLesson("bad_response", `HTTP ${result.status} without an answer: ${answer.missing}`),
      result.status,
    );
  }
  const { usage: _reported, ...rest } = result;
  return {
    ...rest,
    json: { ...result.json, bodyText: answer.bodyText },
    ...(answer.usage === undefined ? {} : { usage: answer.usage }),
  };
}

/**
 * Llama Guard: one chat call per input, one after another (in parallel they would meet the provider's rate limits
 * at once, and a failure would waste the calls already sent). Each call's route refusal is about `/chat/completions`.
 */
async function llamaGuardAttempt(
  context: AttemptContext,
  call: UpstreamCall,
  calls: readonly ModerationCall[],
  headersTimeoutMs: number,
): Promise<AttemptResult> {
  const chatContext: AttemptContext = {
    ...heldSlot(context),
    request: { ...context.request, endpointPath: "/chat/completions" },
  };
  const verdicts: (readonly string[])[] = [];
  const answers: Answered[] = [];
  for (const [index, each] of calls.entries()) {
    const result = await jsonAttempt(chatContext, { ...call, ...each }, headersTimeoutMs);
    if (!result.ok || result.json === undefined) return result;
    const verdict = readLlamaGuardVerdict(contentOf(result.json.bodyText));
    if (!verdict.ok) {
      const which = calls.length > 1 ? ` (input ${index})` : "";
      const reason = `HTTP ${result.status} without a Llama Guard verdict${which}: ${verdict.missing}`;
      return failed(failureLesson("bad_response", reason), result.status);
    }
    answers.push(result);
    verdicts.push(verdict.codes);
  }
  const [first] = answers;
  const last = answers.at(-1);
  if (first === undefined || last?.json === undefined) {
    return failed(failureLesson("bad_response", "no moderation call was built"));
  }
  const usage: TokenUsage = {
    promptTokens: answers.reduce((sum, answer) => sum + (answer.usage?.promptTokens ?? 0), 0),
    completionTokens: answers.reduce((sum, answer) => sum + (answer.usage?.completionTokens ?? 0), 0),
  };
  return {
    ok: true,
    json: { ...last.json, bodyText: llamaGuardAnswer(verdicts, context.request.body, context.deployment) },
    status: last.status,
    // What every call's headers taught (the rate-limit headers of each).
    effects: answers.flatMap((answer) => answer.effects),
    headersMs: first.headersMs,
    // None reported: the reservation keeps its estimate.
    ...(usage.promptTokens + usage.completionTokens > 0 ? { usage } : {}),
  };
}

/** The context each call runs in: the slot is given back by moderationAttempt once all of them ended. */
function heldSlot(context: AttemptContext): AttemptContext {
  let isSent = false;
  return {
    ...context,
    releaseSlot: () => {},
    // The budgets count the attempt as sent once, at its first call.
    onSent: () => {
      if (isSent) return;
      isSent = true;
      context.onSent();
    },
  };
}

/** Choice 0's message text of a chat answer that json-attempt.ts already checked has one. */
function contentOf(bodyText: string): unknown {
  const json = JSON.parse(bodyText) as Record<string, unknown>;
  const choices = Array.isArray(json.choices) ? json.choices : [];
  const message = firstChoice(choices)?.message;
  return isRecord(message) ? message.content : undefined;
}
