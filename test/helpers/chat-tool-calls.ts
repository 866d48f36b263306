// Chat Completions answers with tool calls, as a provider sends them, for the mock upstream: a JSON answer and
// a stream (id and name first, the arguments in two pieces, `finish_reason: tool_calls`, a usage chunk).
import type { SseScript } from "./mock-upstream.ts";

export interface ScriptedCall {
  readonly id: string;
  readonly name: string;
  readonly arguments: string;
}

const CREATED_SECONDS = 1767225600;

export function toolCallCompletion(model: string, calls: readonly ScriptedCall[]): unknown {
  return {
    id: "chatcmpl-tools",
    object: "chat.completion",
    created: CREATED_SECONDS,
    model,
    choices: [
      {
        index: 0,
        message: {
          role: "assistant",
          content: null,
          tool_calls: calls.map((call) => ({
            id: call.id,
            type: "function",
            function: { name: call.name, arguments: call.arguments },
          })),
        },
        logprobs: null,
        finish_reason: "tool_calls",
      },
    ],
    usage: { prompt_tokens: 40, completion_tokens: 12, total_tokens: 52 },
  };
}

export function toolCallStream(model: string, calls: readonly ScriptedCall[]): SseScript[] {
  const chunk = (delta: unknown, finishReason: string | null = null) => ({
    data: {
      id: "chatcmpl-tools",
      object: "chat.completion.chunk",
      created: CREATED_SECONDS,
      model,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    },
  });
  const events: SseScript[] = [chunk({ role: "assistant", content: null })];
  for (const [index, call] of calls.entries()) {
    const half = Math.floor(call.arguments.length / 2);
    events.push(
      chunk({ tool_calls: [{ index, id: call.id, type: "function", function: { name: call.name, arguments: "" } }] }),
      chunk({ tool_calls: [{ index, function: { arguments: call.arguments.slice(0, half) } }] }),
      chunk({ tool_calls: [{ index, function: { arguments: call.arguments.slice(half) } }] }),
    );
  }
  events.push(chunk({}, "tool_calls"), {
    data: {
      id: "chatcmpl-tools",
      object: "chat.completion.chunk",
      created: CREATED_SECONDS,
      model,
      choices: [],
      usage: { prompt_tokens: 40, completion_tokens: 12, total_tokens: 52 },
    },
  });
  return events;
}
