// The answers the cut-stream scene streams (cut-streams.ts): text; reasoning then text; text then two tool calls with
// streamed arguments. As Chat Completions events, whole, after a prefill, or split as another provider would.
import type { SseScript } from "./mock-upstream.ts";

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

/** The steps left after the text `prefill` (a reasoning model continuing a prefill does not think again). */
export function stepsAfter(answer: Answer, prefill: string): readonly AnswerStep[] | undefined {
  let text = "";
  for (const [index, step] of answer.steps.entries()) {
    if (text === prefill) return answer.steps.slice(index).filter((later) => later.kind !== "reasoning");
    if (step.kind === "text") text += step.text;
  }
  return text === prefill ? [] : undefined;
}

/** The answer with its text in 3-character chunks (whole code points), as another provider would split it. */
export function rechunked(answer: Answer): readonly AnswerStep[] {
  const steps: AnswerStep[] = [];
  for (const step of answer.steps) {
    if (step.kind !== "text") {
      steps.push(step);
      continue;
    }
    const previous = steps.at(-1);
    const joined = previous?.kind === "text" ? previous.text + step.text : step.text;
    if (previous?.kind === "text") steps.pop();
    const points = Array.from(joined);
    for (let index = 0; index < points.length; index += 3) {
      steps.push({ kind: "text", text: points.slice(index, index + 3).join("") });
    }
  }
  return steps;
}

export function textOfSteps(steps: readonly AnswerStep[]): string {
  return steps.map((step) => (step.kind === "text" ? step.text : "")).join("");
}
