// The "cut at every event boundary" scene (test/e2e/cut-streams-*.test.ts): one gateway in front of two scripted
// upstreams, `alpha` (tried first) and `beta`. Alpha streams one of three answers (text; reasoning then text; text
// then two tool calls with streamed arguments) and breaks after its first k events, by a reset or a stall; beta
// answers what it is asked as a well-behaved provider would: the rest of the answer after a prefill (the delivered
// text as a trailing assistant message), the whole answer otherwise. Each door's test loops k inside one scene.
import assert from "node:assert/strict";
import { type TestContext, test } from "node:test";
import { stringify } from "yaml";
import { countTextTokens } from "../../src/limits/token-estimate.ts";
import {
  ANSWERS,
  type Answer,
  type AnswerStep,
  eventsOf,
  rechunked,
  stepsAfter,
  textOfSteps,
} from "./cut-stream-answers.ts";
import { send } from "./e2e.ts";
import { startTestGateway, type TestGateway } from "./gateway.ts";
import { type MockStep, type MockUpstream, type RecordedRequest, startMockUpstream } from "./mock-upstream.ts";

export {
  ANSWERS,
  type Answer,
  reasoningOf,
  TOOL_NAMES,
  textOf,
  toolCallsOf,
} from "./cut-stream-answers.ts";

export const MODEL = "m";
const CHAT_ROUTE = "POST /v1/chat/completions";
/** Alpha's idle timeout: the stall cases wait this long once per k. */
export const IDLE_TIMEOUT_MS = 400;

/** How a stream breaks: after its first `cutAt` events, a reset (`destroy`), or a silence past the idle timeout. */
export interface Cut {
  readonly cutAt: number;
  /** `partial`: a reset in the middle of the next event (half of its line written). */
  readonly how: "reset" | "stall" | "partial";
}

/** One run: the answer, how alpha's stream breaks, and how beta answers the continuation. */
export interface Run {
  readonly answer: Answer;
  readonly cut?: Cut | undefined;
  /**
   * `prefill` (default): beta extends the delivered text it is sent. `afresh`: beta ignores the prefill and answers
   * from the start, its text in 3-character chunks (OpenAI's own models do; docs/streaming.md, Prefill mode).
   * `rethink`: beta extends the prefill, but reasons again first (a reasoning model does): the client keeps alpha's.
   */
  readonly beta?: "prefill" | "afresh" | "rethink";
  /** Beta's continuation breaks too (then alpha, whose connection broke, is asked last and honours the prefill). */
  readonly betaCut?: Cut | undefined;
}

export interface CutScene {
  readonly gateway: TestGateway;
  readonly alpha: MockUpstream;
  readonly beta: MockUpstream;
  /** The next request's answers. */
  script(run: Run): void;
}

/** The request messages, and whether they end with the gateway's prefill (the delivered text). */
function prefillOf(request: RecordedRequest): string | undefined {
  const messages = (request.body as { messages?: { role?: string; content?: unknown }[] } | undefined)?.messages;
  const last = messages?.at(-1);
  if (last?.role !== "assistant") return undefined;
  if (typeof last.content === "string") return last.content;
  if (Array.isArray(last.content)) {
    return (last.content as { text?: unknown }[])
      .map((part) => (typeof part.text === "string" ? part.text : ""))
      .join("");
  }
  return undefined;
}

const RETHINKING: readonly AnswerStep[] = [
  { kind: "reasoning", text: "Where" },
  { kind: "reasoning", text: " was I?" },
];

/** What a provider streams for `request`: the rest after a prefill it honours, else the whole answer. */
function answerStep(
  answer: Answer,
  request: RecordedRequest,
  id: string,
  behaviour: "prefill" | "afresh" | "rethink",
  cut: Cut | undefined,
): MockStep {
  const prefill = behaviour === "afresh" ? undefined : prefillOf(request);
  let steps =
    prefill === undefined ? (behaviour === "afresh" ? rechunked(answer) : answer.steps) : stepsAfter(answer, prefill);
  if (prefill !== undefined && behaviour === "rethink" && steps !== undefined) steps = [...RETHINKING, ...steps];
  if (steps === undefined) {
    const message = `mock: prefill ${JSON.stringify(prefill)} is not a prefix`;
    return { kind: "json", status: 400, body: { error: { message, type: "invalid_request_error" } } };
  }
  const events = eventsOf(answer, id, steps);
  if (cut === undefined) return { kind: "sse", events };
  const sent = events.slice(0, cut.cutAt);
  const next = events[cut.cutAt];
  if (cut.how === "partial" && next !== undefined && "data" in next) {
    sent.push({ raw: `data: ${JSON.stringify(next.data).slice(0, 40)}` });
  }
  return { kind: "sse", events: sent, end: cut.how === "stall" ? "hang" : "destroy" };
}

export async function startCutScene(t: TestContext): Promise<CutScene> {
  const alpha = await startMockUpstream();
  const beta = await startMockUpstream();
  const common = {
    retries: 0,
    timeout_ms: 5000,
    first_token_timeout_ms: 5000,
    stream_idle_timeout_ms: IDLE_TIMEOUT_MS,
  };
  const models = (priority: number) => ({ [MODEL]: { priority, reasoning: true } });
  const config = {
    providers: [
      { name: "alpha", base_url: alpha.baseUrl, api_key: "sk-alpha-secret", ...common, models: models(10) },
      { name: "beta", base_url: beta.baseUrl, api_key: "sk-beta-secret", ...common, models: models(1) },
    ],
    // Alpha breaks on purpose dozens of times: its circuit must not open, or beta would serve from the start.
    cooldowns: { failure_threshold: 1_000_000, failure_rate_threshold: 1, suspect_single_flight: false },
    request_log: { enabled: true },
  };
  const gateway = await startTestGateway(stringify(config));
  t.after(async () => {
    await alpha.close();
    await beta.close();
    await gateway.close();
  });
  let run: Run = { answer: ANSWERS[0] as Answer };
  let alphaCalls = 0;
  let betaCalls = 0;
  alpha.setDefault(CHAT_ROUTE, (request) => {
    alphaCalls++;
    return answerStep(run.answer, request, "chatcmpl-alpha", "prefill", alphaCalls === 1 ? run.cut : undefined);
  });
  beta.setDefault(CHAT_ROUTE, (request) => {
    betaCalls++;
    return answerStep(
      run.answer,
      request,
      "chatcmpl-beta",
      run.beta ?? "prefill",
      betaCalls === 1 ? run.betaCut : undefined,
    );
  });
  return {
    gateway,
    alpha,
    beta,
    script(next) {
      run = next;
      alphaCalls = 0;
      betaCalls = 0;
    },
  };
}

/** What `/v1/gateway/requests/:id` says about a request. */
export interface LoggedRequest {
  readonly status: number;
  readonly outcome?: string;
  readonly tokensIn?: number;
  readonly tokensOut?: number;
  readonly attempts: readonly { provider: string; role: string; outcome: string; tokensOut?: number }[];
  readonly continuations: readonly { provider: string; afterChars: number; mode: string }[];
}

/** The request's record, once it is written (the stream's end settles it a moment after the client's last byte). */
export async function loggedRequest(gateway: TestGateway, id: string | null | undefined): Promise<LoggedRequest> {
  assert.ok(typeof id === "string" && id !== "", "the response names its request id");
  const deadline = performance.now() + 3000;
  for (;;) {
    const response = await send(gateway, "GET", `/v1/gateway/requests/${encodeURIComponent(id)}`);
    if (response.status === 200) return response.json as LoggedRequest;
    assert.ok(performance.now() < deadline, `no record of request ${id}: ${response.status} ${response.text}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** What a stream of `steps` delivered before a cut after `cutAt` events (role chunk, steps, finish, usage). */
function streamFate(steps: readonly AnswerStep[], cutAt: number): "whole" | "nothing" | "broken" | "tool" {
  // Past the finish chunk (event steps + 1) the answer is whole; event 0 is the role chunk, which is no content.
  if (cutAt >= steps.length + 2) return "whole";
  if (cutAt <= 1) return "nothing";
  const delivered = steps.slice(0, cutAt - 1);
  return delivered.some((step) => step.kind === "tool" || step.kind === "arguments") ? "tool" : "broken";
}

/** What a correct gateway does with a run, and what its record must say. */
export interface Expectation {
  /**
   * `uncut` (nothing lost), `failover` (nothing of alpha's answer went out: beta answers before the commit),
   * `continued`, or `error` (a tool call was under way: it cannot be continued).
   */
  readonly fate: "uncut" | "failover" | "continued" | "error";
  /** The record's continuations: provider and `afterChars`, in order. */
  readonly continuations: readonly (readonly [string, number])[];
}

export function expectationOf(run: Run): Expectation {
  const alphaCut = run.cut?.cutAt ?? Number.MAX_SAFE_INTEGER;
  const alpha = streamFate(run.answer.steps, alphaCut);
  if (alpha === "whole") return { fate: "uncut", continuations: [] };
  if (alpha === "nothing") return { fate: "failover", continuations: [] };
  if (alpha === "tool") return { fate: "error", continuations: [] };
  const firstText = textOfSteps(run.answer.steps.slice(0, alphaCut - 1));
  const first: readonly [string, number] = ["beta", firstText.length];
  if (run.betaCut === undefined) return { fate: "continued", continuations: [first] };
  // Beta honours the prefill: its stream is the steps after the delivered text (double cuts are only scripted so).
  const rest = stepsAfter(run.answer, firstText) ?? [];
  const beta = streamFate(rest, run.betaCut.cutAt);
  if (beta === "whole") return { fate: "continued", continuations: [first] };
  if (beta === "tool") return { fate: "error", continuations: [first] };
  // Alpha is asked last when its own connection broke (not after its stall, whatever broke beta's stream): it
  // continues from everything delivered so far.
  const isAlphaAsked = run.cut?.how !== "stall";
  if (beta === "nothing") {
    return isAlphaAsked
      ? { fate: "continued", continuations: [["alpha", firstText.length]] }
      : { fate: "error", continuations: [] };
  }
  if (!isAlphaAsked) return { fate: "error", continuations: [first] };
  const secondText = firstText + textOfSteps(rest.slice(0, run.betaCut.cutAt - 1));
  return { fate: "continued", continuations: [first, ["alpha", secondText.length]] };
}

/** The k to try for a stream of `steps`: every boundary from 0 to the whole stream. */
export function boundaries(steps: readonly AnswerStep[]): number[] {
  return Array.from({ length: steps.length + 4 }, (_, index) => index);
}

/** The k that also get a stall instead of a reset (a stall costs the idle timeout): a continued one and an error. */
export function stallBoundaries(answer: Answer): number[] {
  const all = boundaries(answer.steps);
  const fates = all.map((cutAt) => streamFate(answer.steps, cutAt));
  const continued = all.filter((_, index) => fates[index] === "broken");
  const failed = all.filter((_, index) => fates[index] === "tool");
  return [continued[0], continued.at(-1), failed[0]].filter((cutAt): cutAt is number => cutAt !== undefined);
}

/** Alpha's cut for the double-cut runs (after two words), and beta's continuation's steps then. */
export function doubleCutOf(
  answer: Answer,
): { readonly cut: Cut; readonly betaSteps: readonly AnswerStep[] } | undefined {
  const firstText = answer.steps.findIndex((step) => step.kind === "text");
  if (firstText === -1) return undefined;
  const cutAt = firstText + 3;
  const delivered = textOfSteps(answer.steps.slice(0, cutAt - 1));
  return { cut: { cutAt, how: "reset" }, betaSteps: stepsAfter(answer, delivered) ?? [] };
}

/** All the runs of one answer: every cut with a prefill-honouring beta, every cut with beta answering afresh, a few
 * stalls, and alpha cut after two words with beta's continuation cut at each of its own boundaries. */
export function runsOf(answer: Answer): Run[] {
  const runs: Run[] = [{ answer }];
  for (const cutAt of boundaries(answer.steps)) runs.push({ answer, cut: { cutAt, how: "reset" } });
  for (const cutAt of boundaries(answer.steps)) runs.push({ answer, cut: { cutAt, how: "reset" }, beta: "afresh" });
  for (const cutAt of boundaries(answer.steps)) runs.push({ answer, cut: { cutAt, how: "reset" }, beta: "rethink" });
  for (const cutAt of stallBoundaries(answer)) runs.push({ answer, cut: { cutAt, how: "stall" } });
  // Cut inside the next event, wherever the answer can still be continued.
  for (const cutAt of boundaries(answer.steps).filter((k) => streamFate(answer.steps, k) === "broken")) {
    runs.push({ answer, cut: { cutAt, how: "partial" } });
  }
  const double = doubleCutOf(answer);
  if (double !== undefined) {
    for (const cutAt of boundaries(double.betaSteps))
      runs.push({ answer, cut: double.cut, betaCut: { cutAt, how: "reset" } });
    // Beta's continuation stalls after its first word: alpha, whose connection broke, continues again.
    runs.push({ answer, cut: double.cut, betaCut: { cutAt: 2, how: "stall" } });
    // Alpha stalled (it is unwell), beta's connection broke after its first word: alpha is not asked again.
    runs.push({ answer, cut: { ...double.cut, how: "stall" }, betaCut: { cutAt: 2, how: "reset" } });
  }
  return runs;
}

/** A short name for a run, for messages and request ids. */
export function nameOf(run: Run): string {
  const cut = run.cut === undefined ? "uncut" : `${run.cut.how}${run.cut.cutAt}`;
  const beta = run.betaCut === undefined ? "" : `-beta${run.betaCut.how}${run.betaCut.cutAt}`;
  return `${ANSWERS.indexOf(run.answer)}-${cut}-${run.beta ?? "prefill"}${beta}`;
}

/** Asserts what the request's record says about a run. */
export function assertRecord(record: LoggedRequest, run: Run, expected: Expectation, context: string): void {
  const attempts = record.attempts.map((attempt) => `${attempt.provider}:${attempt.role}:${attempt.outcome}`);
  const shown = `${context}; record: ${JSON.stringify({ status: record.status, attempts, continuations: record.continuations })}`;
  assert.deepEqual(
    record.continuations.map((continuation) => [continuation.provider, continuation.afterChars]),
    expected.continuations,
    `the record's continuations: ${shown}`,
  );
  if (expected.fate === "error") {
    assert.equal(record.status, 502, shown);
    return;
  }
  assert.equal(record.status, 200, shown);
  assert.equal(record.outcome, "success", shown);
  const last = record.attempts.at(-1);
  assert.equal(last?.outcome, "success", shown);
  if (expected.fate === "continued") {
    assert.equal(last?.role, "continuation", shown);
    // Alpha broke without a report: its attempt is charged the gateway's count of what it delivered, reasoning too.
    const delivered = run.answer.steps.slice(0, (run.cut?.cutAt ?? 0) - 1);
    const reasoning = reasoningOfSteps(delivered);
    const alphaTokens = countTextTokens(textOfSteps(delivered)) + (reasoning === "" ? 0 : countTextTokens(reasoning));
    assert.equal(record.attempts[0]?.tokensOut, alphaTokens, `alpha's estimated output: ${shown}`);
  } else assert.equal(last?.provider, expected.fate === "failover" ? "beta" : "alpha", shown);
  assert.ok((record.tokensIn ?? 0) > 0 && (record.tokensOut ?? 0) > 0, `the record has tokens: ${shown}`);
}

/**
 * The reasoning the client must end with: all of it, except after a cut while only reasoning had gone out, which is
 * replayed: the replay's reasoning is dropped (docs/streaming.md, "How it is spliced in"), the client keeps alpha's.
 */
export function expectedReasoningOf(run: Run, expected: Expectation): string {
  const all = reasoningOfSteps(run.answer.steps);
  if (expected.fate !== "continued" || run.cut === undefined) return all;
  const delivered = run.answer.steps.slice(0, run.cut.cutAt - 1);
  return textOfSteps(delivered) === "" ? reasoningOfSteps(delivered) : all;
}

function reasoningOfSteps(steps: readonly AnswerStep[]): string {
  return steps.map((step) => (step.kind === "reasoning" ? step.text : "")).join("");
}

/**
 * The output tokens a client must be told of after a single prefill continuation (docs/streaming.md, "Usage"): what
 * alpha delivered (reasoning and text, counted with the gateway's tokenizer: alpha never reported) plus beta's own
 * report (the mock counts one token per step). Undefined for the other runs.
 */
export function expectedOutputTokensOf(run: Run, expected: Expectation): number | undefined {
  if (expected.fate !== "continued" || run.cut === undefined || run.betaCut !== undefined) return undefined;
  if (run.beta === "afresh") return undefined;
  const delivered = run.answer.steps.slice(0, run.cut.cutAt - 1);
  const text = textOfSteps(delivered);
  if (text === "") return undefined; // replayed: the fresh answer's own usage
  const rest = stepsAfter(run.answer, text) ?? [];
  const betaTokens = rest.length + (run.beta === "rethink" ? RETHINKING.length : 0);
  return countTextTokens(text) + countTextTokens(reasoningOfSteps(delivered)) + betaTokens;
}

/** One run begun: alpha and beta scripted for it, its request id (`cut-<door>-<name>`), what a correct gateway does. */
export interface BegunRun {
  readonly answer: Answer;
  readonly requestId: string;
  /** The answer's name and the request id, for assertion messages. */
  readonly context: string;
  readonly expected: Expectation;
}

export function beginRun(scene: CutScene, run: Run, door: string): BegunRun {
  scene.script(run);
  const requestId = `cut-${door}-${nameOf(run)}`;
  return { answer: run.answer, requestId, context: `${run.answer.name}, ${requestId}`, expected: expectationOf(run) };
}

/** Every event an SDK stream yields, and what it threw instead of ending (the cut a client sees), if anything. */
export async function drain<Event>(stream: AsyncIterable<Event>): Promise<{ events: Event[]; thrown: unknown }> {
  const events: Event[] = [];
  let thrown: unknown;
  try {
    for await (const event of stream) events.push(event);
  } catch (error) {
    thrown = error;
  }
  return { events, thrown };
}

/** Asserts the run's record, once written. */
export async function assertRunRecord(scene: CutScene, run: Run, begun: BegunRun): Promise<void> {
  const record = await loggedRequest(scene.gateway, begun.requestId);
  assertRecord(record, run, begun.expected, begun.context);
}

/** One test per answer, titled `<label> (<answer>) cut at every …`, running every cut of it in one scene. */
export function testEveryCut<Client>(
  label: string,
  clientOf: (gateway: TestGateway) => Client,
  runOnce: (scene: CutScene, client: Client, run: Run) => Promise<void>,
): void {
  for (const answer of ANSWERS) {
    test(`${label} (${answer.name}) cut at every event boundary: the uncut answer, or a clean error`, async (t) => {
      const scene = await startCutScene(t);
      const client = clientOf(scene.gateway);
      for (const run of runsOf(answer)) await runOnce(scene, client, run);
    });
  }
}
