// A moderation attempt: the candidate's call (or, for Llama Guard, one call per input, a few at a time) through the JSON
// attempt, then the answer read back into OpenAI's moderation object (moderation-dialect.ts). Any call that fails
// fails the attempt as it failed (a 429 cools the candidate, a 5xx counts against its health); an answer that is no
// moderation result or no Llama Guard verdict is a `bad_response`: the next candidate is tried.
import { firstChoice } from "../chat-choice.ts";
import { hasProviderCountedPrompt } from "../errors/outcomes.ts";
import { isRecord } from "../is-record.ts";
import type { ReleaseSlot } from "../limits/in-flight-gate.ts";
import { LLAMA_GUARD_MAX_TOKENS } from "../providers/moderation-api.ts";
import type { TokenUsage } from "../streaming/relay-types.ts";
import { estimatedAnswerUsage } from "./answer-usage.ts";
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

/** The first runner's calls go in the attempt's own slot, which moderationAttempt gives back once all have ended. */
const HELD_SLOT: ReleaseSlot = () => {};

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
 * Most calls of one Llama Guard attempt in flight at once. Its budgets were reserved for every call up front
 * (failover.ts admits the attempt as `upstreamCallsOf` requests), so running a few together spends no request or token
 * the reservation does not hold; 20 inputs at 50 ms each take about 250 ms instead of a second. Each call beyond the
 * first takes a slot of its own among the provider's `max_in_flight`, as any request does, and one more request in
 * flight in each budget scope (AttemptContext.anotherSlot): never more in flight to the provider than its limit, nor
 * than a configured or learned `concurrency` (the reservation's own slot is the first call's), whatever other requests
 * hold; with Redis, the fleet's calls in flight count against it.
 */
export const LLAMA_GUARD_PARALLEL_CALLS = 4;

/** One Llama Guard call's end: its answer and verdict, or the failure that ends the attempt. */
type CallEnd =
  | { readonly ok: true; readonly answer: Answered; readonly codes: readonly string[] }
  | { readonly ok: false; readonly result: AttemptResult };

/**
 * Llama Guard: one chat call per input, a few at a time (LLAMA_GUARD_PARALLEL_CALLS). The first call that fails ends
 * the attempt as it failed: no call is started after it, the ones in flight are let finish, and what every call that
 * answered spent is kept on the failure (the provider billed them). Each call's route refusal is about
 * `/chat/completions`.
 *
 * One runner makes its calls in the attempt's own slot; each other runner takes a slot before each of its calls
 * (AttemptContext.anotherSlot) and gives it back when the call has ended, so a request waiting for one of the
 * provider's slots gets it between two calls. A runner that finds none stops: the calls left go to the others. Each
 * call's answer goes to its input's place, whichever answers first.
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
  const ends: (CallEnd | undefined)[] = calls.map(() => undefined);
  /** Which calls went out (handed to a connection): a provider takes a call's prompt in only then. */
  const sent: boolean[] = calls.map(() => false);
  let failure: AttemptResult | undefined;
  let next = 0;
  const isDone = (): boolean => failure !== undefined || next >= calls.length;
  const runCalls = async (takeSlot: AttemptContext["anotherSlot"]): Promise<void> => {
    while (!isDone()) {
      const taken = takeSlot();
      // A shared ledger's slot is a round trip: the other runners may have made every call, or one failed, meanwhile.
      const releaseSlot = taken instanceof Promise ? await taken : taken;
      if (releaseSlot === undefined) return;
      if (isDone()) {
        releaseSlot();
        return;
      }
      const index = next++;
      const which = calls.length > 1 ? ` (input ${index})` : "";
      const each = { ...call, ...(calls[index] as ModerationCall) };
      try {
        const onSent = (): void => {
          sent[index] = true;
          chatContext.onSent();
        };
        const end = await llamaGuardCall({ ...chatContext, onSent }, each, headersTimeoutMs, which);
        ends[index] = end;
        if (!end.ok) failure ??= end.result;
      } finally {
        // Once the attempt has failed, its calls' slots go back when the failure is recorded (its cooldown, a 529's),
        // not before: a request waiting for one would be sent where the failure said not to go (held-slot.ts).
        if (failure === undefined) releaseSlot();
        else context.holdSlot(releaseSlot);
      }
    }
  };
  const runners = [runCalls(() => HELD_SLOT)];
  const parallel = Math.min(LLAMA_GUARD_PARALLEL_CALLS, calls.length);
  for (let runner = 1; runner < parallel; runner++) runners.push(runCalls(context.anotherSlot));
  await Promise.all(runners);
  const answers = ends.flatMap((end) => (end?.ok === true ? [end.answer] : []));
  // Every call that answered, a verdict or not, was billed.
  const usage = summedUsage(ends.map((end) => (end === undefined ? {} : end.ok ? end.answer : end.result)));
  // And told what the provider has left: their rate-limit headers are news whether or not a later call failed.
  // The calls never started were reserved and never sent: the budgets give them back (recorder.ts).
  if (failure !== undefined) {
    const charged = withUsage(withEffectsFirst(failure, answers), usage);
    return withUnsent(withUnreportedPrompt(charged, unreportedPromptTokens(calls, ends, sent)), calls.length - next);
  }
  const [first] = answers;
  const last = answers.at(-1);
  if (first === undefined || last?.json === undefined || answers.length !== calls.length) {
    return failed(failureLesson("bad_response", "no moderation call was built"));
  }
  const verdicts = ends.map((end) => (end?.ok === true ? end.codes : []));
  const estimated = unreportedCallsUsage(calls, answers, context.promptTokens);
  const spent = estimated === undefined ? usage : addedUsage(usage, estimated);
  const bodyText = llamaGuardAnswer(verdicts, context.request.body, context.deployment);
  return {
    ok: true,
    json: { ...last.json, bodyText, ...(estimated === undefined ? {} : { isUsageEstimated: true }) },
    status: last.status,
    // What every call's headers taught (the rate-limit headers of each).
    effects: answers.flatMap((answer) => answer.effects),
    headersMs: first.headersMs,
    ...(spent === undefined ? {} : { usage: spent }),
  };
}

/**
 * The estimate of the calls that answered without a usage report (a host that leaves `usage` out): each call's prompt
 * (its input and the template the model wraps it in, ModerationCall.promptTokens), calibrated as the attempt's
 * reservation is (`calibratedPromptTokens`: every call's prompt together, as the deployment counts them), plus its
 * verdict. Its provider billed them: until 2026-12-07 the answer carried no usage, so its client was charged its own
 * reservation, the inputs' text without the templates (pipeline/segment-charge.ts clientCharge), while the deployment
 * kept the reservation that counts them. Undefined when every call reported its usage. `answers`: in the calls' order.
 */
function unreportedCallsUsage(
  calls: readonly ModerationCall[],
  answers: readonly Answered[],
  calibratedPromptTokens: number,
): TokenUsage | undefined {
  const plainPromptTokens = calls.reduce((sum, call) => sum + (call.promptTokens ?? 0), 0);
  let promptTokens = 0;
  let completionTokens = 0;
  for (const [index, answer] of answers.entries()) {
    if (isReported(answer.usage) || answer.json === undefined) continue;
    const estimate = estimatedAnswerUsage(
      JSON.parse(answer.json.bodyText) as Record<string, unknown>,
      calls[index]?.promptTokens ?? 0,
    );
    promptTokens += estimate.promptTokens;
    completionTokens += estimate.completionTokens;
  }
  if (promptTokens + completionTokens === 0) return undefined;
  const factor = plainPromptTokens > 0 ? calibratedPromptTokens / plainPromptTokens : 1;
  return { promptTokens: Math.ceil(promptTokens * factor), completionTokens };
}

function addedUsage(reported: TokenUsage | undefined, estimated: TokenUsage): TokenUsage {
  return {
    promptTokens: (reported?.promptTokens ?? 0) + estimated.promptTokens,
    completionTokens: (reported?.completionTokens ?? 0) + estimated.completionTokens,
  };
}

/** A call's usage states a count (an answer without `usage` reads as 0 tokens: json-attempt.ts readUsage). */
function isReported(usage: TokenUsage | undefined): boolean {
  return usage !== undefined && usage.promptTokens + usage.completionTokens > 0;
}

/** `which`: the input it classifies, named in a failure's reason (` (input 3)`; "" for a single input). */
async function llamaGuardCall(
  context: AttemptContext,
  call: UpstreamCall & ModerationCall,
  headersTimeoutMs: number,
  which: string,
): Promise<CallEnd> {
  const result = await jsonAttempt(context, call, headersTimeoutMs);
  if (!result.ok && result.lesson.outcome === "context_length" && call.promptTokens !== undefined) {
    // The window refused this call's prompt, not the attempt's inputs together (the calibration learns it alone).
    return {
      ok: false,
      result: { ...result, refusedCall: { estimate: call.promptTokens, maxOutputTokens: LLAMA_GUARD_MAX_TOKENS } },
    };
  }
  if (!result.ok || result.json === undefined) return { ok: false, result };
  const verdict = readLlamaGuardVerdict(contentOf(result.json.bodyText));
  if (verdict.ok) return { ok: true, answer: result, codes: verdict.codes };
  const reason = `HTTP ${result.status} without a Llama Guard verdict${which}: ${verdict.missing}`;
  // The call answered (and was billed) even though its answer is no verdict; its headers still count.
  const failure = withEffectsFirst(failed(failureLesson("bad_response", reason), result.status), [result]);
  return { ok: false, result: withUsage(failure, result.usage) };
}

/**
 * A failure carrying, before its own effects, those of calls that answered (their rate-limit headers: windows to
 * learn, a park for one the provider says is empty). Its own come last: they are the failure's verdict.
 */
function withEffectsFirst(result: AttemptResult, answered: readonly Answered[]): AttemptResult {
  const effects = answered.flatMap((answer) => answer.effects);
  if (result.ok || effects.length === 0) return result;
  return { ...result, lesson: { ...result.lesson, effects: [...effects, ...result.lesson.effects] } };
}

function withUnsent(result: AttemptResult, unsentCalls: number): AttemptResult {
  return result.ok || unsentCalls <= 0 ? result : { ...result, unsentCalls };
}

function withUnreportedPrompt(result: AttemptResult, promptTokens: number): AttemptResult {
  return result.ok ? result : { ...result, unreportedPromptTokens: promptTokens };
}

/**
 * The prompts of the calls whose provider took them in and reported no usage: a call that answered without a report,
 * and one sent and then abandoned or broken before an answer (errors/outcomes.ts hasProviderCountedPrompt). Each call
 * is a request of its own, counted by its provider as it arrives: until 2026-12-07 a failed attempt was charged the
 * prompt of every input when no call reported usage (those never sent included), and none of them when one did (the
 * timed-out call's prompt left out).
 */
function unreportedPromptTokens(
  calls: readonly ModerationCall[],
  ends: readonly (CallEnd | undefined)[],
  sent: readonly boolean[],
): number {
  let tokens = 0;
  for (const [index, end] of ends.entries()) {
    if (end === undefined) continue;
    // An answer without `usage` reads as 0 tokens (json-attempt.ts readUsage), as summedUsage takes it.
    if (isReported(end.ok ? end.answer.usage : end.result.usage)) continue;
    const isCounted =
      end.ok ||
      (!end.result.ok && hasProviderCountedPrompt(end.result.lesson.outcome, sent[index] === true, end.result.status));
    if (isCounted) tokens += calls[index]?.promptTokens ?? 0;
  }
  return tokens;
}

function withUsage(result: AttemptResult, usage: TokenUsage | undefined): AttemptResult {
  return result.ok || usage === undefined ? result : { ...result, usage };
}

/** The calls' usage summed; undefined when none reported any. */
function summedUsage(answers: readonly { readonly usage?: TokenUsage | undefined }[]): TokenUsage | undefined {
  const usage: TokenUsage = {
    promptTokens: answers.reduce((sum, answer) => sum + (answer.usage?.promptTokens ?? 0), 0),
    completionTokens: answers.reduce((sum, answer) => sum + (answer.usage?.completionTokens ?? 0), 0),
  };
  return usage.promptTokens + usage.completionTokens > 0 ? usage : undefined;
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
