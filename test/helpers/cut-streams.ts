// The "cut at every event boundary" scene (test/e2e/cut-streams-*.test.ts): one gateway in front of two scripted
// upstreams, `alpha` (tried first) and `beta`. Alpha streams one of three answers (text; reasoning then text; text
// then two tool calls with streamed arguments) and breaks after its first k events, by a reset or a stall; beta
// answers what it is asked as a well-behaved provider would: the rest of the answer after a prefill (the delivered
// text as a trailing assistant message), the whole answer otherwise. Each door's test loops k inside one scene.
import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import { stringify } from "yaml";
import { send } from "./e2e.ts";
import { startTestGateway, type TestGateway } from "./gateway.ts";
import {
  type MockStep,
  type MockUpstream,
  type RecordedRequest,
  type SseScript,
  startMockUpstream,
} from "./mock-upstream.ts";

export const MODEL = "m";
const CHAT_ROUTE = "POST /v1/chat/completions";
/** Alpha's idle timeout: the stall cases wait this long once per k. */
export const IDLE_TIMEOUT_MS = 400;

export type AnswerStep =
  | { readonly kind: "text"; readonly text: string }
  | { readonly kind: "reasoning"; readonly text: string }
  | { readonly kind: "tool"; readonly index: number; readonly id: string; readonly name: string }
  | { readonly kind: "arguments"; readonly index: number; readonly text: string };

export interface Answer {
  readonly name: string;
  readonly steps: readonly AnswerStep[];
  readonly finishReason: "stop" | "tool_calls";
}

export interface ExpectedToolCall {
  readonly name: string;
  readonly arguments: string;
}

// Multi-byte characters at the seams: a seam counted in bytes, or cut inside a surrogate pair, shows as a wrong text.
const WORDS = ["Héllo", " wörld", ",", " this", " is", " 🙂", " a", " streamed", " answer", "."];

export const ANSWERS: readonly Answer[] = [
  { name: "text", steps: WORDS.map((text) => ({ kind: "text", text })), finishReason: "stop" },
  {
    name: "reasoning+text",
    steps: [
      ...["First", " I", " think", " it", " over."].map((text) => ({ kind: "reasoning" as const, text })),
      ...WORDS.slice(0, 6).map((text) => ({ kind: "text" as const, text })),
    ],
    finishReason: "stop",
  },
  {
    name: "text+tools",
    steps: [
      ...["Let", " me", " look", " that", " up."].map((text) => ({ kind: "text" as const, text })),
      { kind: "tool", index: 0, id: "call_weather_1", name: "get_weather" },
      { kind: "arguments", index: 0, text: '{"city":' },
      { kind: "arguments", index: 0, text: ' "Zürich",' },
      { kind: "arguments", index: 0, text: ' "unit": "c"}' },
      { kind: "tool", index: 1, id: "call_time_2", name: "get_time" },
      { kind: "arguments", index: 1, text: '{"zone":' },
      { kind: "arguments", index: 1, text: ' "Europe/Zurich"}' },
    ],
    finishReason: "tool_calls",
  },
];

/** The tools a request must offer so that a door passes the tool calls on. */
export const TOOL_NAMES = ["get_weather", "get_time"] as const;

export function textOf(answer: Answer): string {
  return answer.steps.map((step) => (step.kind === "text" ? step.text : "")).join("");
}

export function reasoningOf(answer: Answer): string {
  return answer.steps.map((step) => (step.kind === "reasoning" ? step.text : "")).join("");
}

export function toolCallsOf(answer: Answer): ExpectedToolCall[] {
  const calls: { name: string; arguments: string }[] = [];
  for (const step of answer.steps) {
    if (step.kind === "tool") calls[step.index] = { name: step.name, arguments: "" };
    else if (step.kind === "arguments") {
      const call = calls[step.index];
      if (call !== undefined) call.arguments += step.text;
    }
  }
  return calls;
}

/** The answer's events as alpha streams them: role chunk, one per step, finish chunk, usage chunk. */
export function eventsOf(answer: Answer, id: string, steps = answer.steps, withRole = true): SseScript[] {
  const chunk = (delta: Record<string, unknown>, finishReason: string | null = null) => ({
    data: {
      id,
      object: "chat.completion.chunk",
      created: 1767225600,
      model: "upstream-model",
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    },
  });
  const events: SseScript[] = withRole ? [chunk({ role: "assistant", content: "" })] : [];
  for (const step of steps) {
    if (step.kind === "text") events.push(chunk({ content: step.text }));
    else if (step.kind === "reasoning") events.push(chunk({ reasoning_content: step.text }));
    else if (step.kind === "tool") {
      events.push(
        chunk({
          tool_calls: [
            { index: step.index, id: step.id, type: "function", function: { name: step.name, arguments: "" } },
          ],
        }),
      );
    } else events.push(chunk({ tool_calls: [{ index: step.index, function: { arguments: step.text } }] }));
  }
  events.push(chunk({}, answer.finishReason));
  const completionTokens = steps.length;
  events.push({
    data: {
      id,
      object: "chat.completion.chunk",
      created: 1767225600,
      model: "upstream-model",
      choices: [],
      usage: { prompt_tokens: 20, completion_tokens: completionTokens, total_tokens: 20 + completionTokens },
    },
  });
  return events;
}

/** How alpha breaks: after its first `cutAt` events, a reset (`destroy`), or a silence past the idle timeout. */
export interface Cut {
  readonly cutAt: number;
  readonly how: "reset" | "stall";
}

export interface CutScene {
  readonly gateway: TestGateway;
  readonly alpha: MockUpstream;
  readonly beta: MockUpstream;
  /** The answer and cut of the next requests. */
  script(answer: Answer, cut: Cut | undefined): void;
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

/** Beta, a provider that honours a prefill: the steps after the text it was given, else the whole answer. */
function betaStep(answer: Answer, request: RecordedRequest): MockStep {
  const prefill = prefillOf(request);
  if (prefill === undefined) return { kind: "sse", events: eventsOf(answer, "chatcmpl-beta") };
  let text = "";
  for (const [index, step] of answer.steps.entries()) {
    if (text === prefill) {
      // A reasoning model continuing a prefill goes on with the answer; it does not think again.
      const rest = answer.steps.slice(index).filter((later) => later.kind !== "reasoning");
      return { kind: "sse", events: eventsOf(answer, "chatcmpl-beta", rest) };
    }
    if (step.kind === "text") text += step.text;
  }
  if (text === prefill) return { kind: "sse", events: eventsOf(answer, "chatcmpl-beta", []) };
  return {
    kind: "json",
    status: 400,
    body: {
      error: { message: `mock: prefill ${JSON.stringify(prefill)} is not a prefix`, type: "invalid_request_error" },
    },
  };
}

export async function startCutScene(t: TestContext): Promise<CutScene> {
  const alpha = await startMockUpstream();
  const beta = await startMockUpstream();
  const common = { retries: 0, timeout_ms: 5000, first_token_timeout_ms: 5000 };
  const models = (priority: number) => ({ [MODEL]: { priority, reasoning: true } });
  const config = {
    providers: [
      {
        name: "alpha",
        base_url: alpha.baseUrl,
        api_key: "sk-alpha-secret",
        ...common,
        stream_idle_timeout_ms: IDLE_TIMEOUT_MS,
        models: models(10),
      },
      {
        name: "beta",
        base_url: beta.baseUrl,
        api_key: "sk-beta-secret",
        ...common,
        stream_idle_timeout_ms: 5000,
        models: models(1),
      },
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
  let answer: Answer = ANSWERS[0] as Answer;
  let cut: Cut | undefined;
  alpha.setDefault(CHAT_ROUTE, () => {
    const events = eventsOf(answer, "chatcmpl-alpha");
    if (cut === undefined) return { kind: "sse", events };
    return { kind: "sse", events: events.slice(0, cut.cutAt), end: cut.how === "reset" ? "destroy" : "hang" };
  });
  beta.setDefault(CHAT_ROUTE, (request) => betaStep(answer, request));
  return {
    gateway,
    alpha,
    beta,
    script(next, nextCut) {
      answer = next;
      cut = nextCut;
    },
  };
}

/** What `/v1/gateway/requests/:id` says about a request. */
export interface LoggedRequest {
  readonly status: number;
  readonly outcome?: string;
  readonly tokensIn?: number;
  readonly tokensOut?: number;
  readonly attempts: readonly { provider: string; role: string; outcome: string }[];
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

/**
 * What a correct gateway does with a cut after `cutAt` of alpha's events: `uncut` (nothing lost: none, or the
 * finish went out), `failover` (nothing of the answer went out: beta answers from scratch), `continued`, or `error`
 * (a tool call was under way: it cannot be continued).
 */
export function expectedFate(answer: Answer, cutAt: number): "uncut" | "failover" | "continued" | "error" {
  const events = answer.steps.length + 3;
  // Past the finish chunk (index steps + 1), the answer is whole.
  if (cutAt >= events - 1) return "uncut";
  // Event 0 is the role chunk: a cut after it (or before it) delivered nothing yet.
  if (cutAt <= 1) return "failover";
  const delivered = answer.steps.slice(0, cutAt - 1);
  if (delivered.some((step) => step.kind === "tool" || step.kind === "arguments")) return "error";
  // The finish chunk went out (cutAt = steps + 2 delivers it): whole.
  if (cutAt >= answer.steps.length + 2) return "uncut";
  return "continued";
}

/** The k to try for each answer: every boundary from 0 to the whole stream. */
export function boundaries(answer: Answer): number[] {
  return Array.from({ length: answer.steps.length + 4 }, (_, index) => index);
}

/** The first-choice text alpha delivered before a cut after `cutAt` events. */
export function deliveredTextOf(answer: Answer, cutAt: number): string {
  return textOf({ ...answer, steps: answer.steps.slice(0, Math.max(0, cutAt - 1)) });
}

/** The k that also get a stall instead of a reset (a stall costs the idle timeout): a continued one and an error. */
export function stallBoundaries(answer: Answer): number[] {
  const all = boundaries(answer);
  const continued = all.filter((cutAt) => expectedFate(answer, cutAt) === "continued");
  const failed = all.filter((cutAt) => expectedFate(answer, cutAt) === "error");
  return [continued[0], continued.at(-1), failed[0]].filter((cutAt): cutAt is number => cutAt !== undefined);
}

/** Asserts what the request's record says about a run with the given fate. */
export function assertRecord(
  record: LoggedRequest,
  fate: ReturnType<typeof expectedFate>,
  expected: { readonly afterChars: number; readonly context: string },
): void {
  const attempts = record.attempts.map((attempt) => `${attempt.provider}:${attempt.role}:${attempt.outcome}`);
  const context = `${expected.context}; record: ${JSON.stringify({ status: record.status, attempts, continuations: record.continuations })}`;
  if (fate === "error") {
    assert.equal(record.status, 502, context);
    assert.equal(record.continuations.length, 0, context);
    return;
  }
  assert.equal(record.status, 200, context);
  assert.equal(record.outcome, "success", context);
  if (fate === "continued") {
    assert.equal(record.continuations.length, 1, `the record says continued: ${context}`);
    assert.equal(record.continuations[0]?.provider, "beta", context);
    assert.equal(record.continuations[0]?.afterChars, expected.afterChars, context);
    assert.equal(record.attempts.at(-1)?.role, "continuation", context);
    assert.equal(record.attempts.at(-1)?.outcome, "success", context);
  } else {
    assert.equal(record.continuations.length, 0, context);
    assert.equal(record.attempts.at(-1)?.provider, fate === "failover" ? "beta" : "alpha", context);
  }
  assert.ok((record.tokensIn ?? 0) > 0 && (record.tokensOut ?? 0) > 0, `the record has tokens: ${context}`);
}
