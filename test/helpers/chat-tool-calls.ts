// Chat Completions answers with tool calls, as a provider sends them, for the mock upstream: a JSON answer and
// a stream (id and name first, the arguments in two pieces, `finish_reason: tool_calls`, a usage chunk).
import type { ServerResponse } from "node:http";
import type { MockStep, RecordedRequest, SseScript } from "./mock-upstream.ts";

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

/** OpenAI's rule for a function's name, which most chat providers copy. */
export const FUNCTION_NAME = /^[a-zA-Z0-9_-]{1,64}$/;

/**
 * An upstream that checks the function names of `tools` and of the history's calls as OpenAI does (a 400
 * `string_above_max_length` for a longer one) and answers with a call (`call_search`, `args`) of the first tool it
 * got, as JSON or streamed; `answeredName` names the call from that tool's name (a provider lower-casing names).
 */
export function functionNameCheckingUpstream(
  model: string,
  isStream: boolean,
  args: string,
  answeredName: (offered: string) => string = (offered) => offered,
): MockStep {
  return {
    kind: "handler",
    handle: (request: RecordedRequest, response: ServerResponse) => {
      const body = request.body as {
        tools?: { function: { name: string } }[];
        messages: { tool_calls?: { function: { name: string } }[] }[];
      };
      const names = [
        ...(body.tools ?? []).map((tool) => tool.function.name),
        ...body.messages.flatMap((message) => (message.tool_calls ?? []).map((call) => call.function.name)),
      ];
      const invalid = names.find((name) => !FUNCTION_NAME.test(name));
      if (invalid !== undefined) {
        response.writeHead(400, { "content-type": "application/json" });
        const message = `Invalid 'tools[0].function.name': string too long. Expected a string with maximum length 64, but got a string with length ${invalid.length} instead.`;
        response.end(
          JSON.stringify({ error: { message, type: "invalid_request_error", code: "string_above_max_length" } }),
        );
        return;
      }
      const call = { id: "call_search", name: answeredName(names[0] ?? ""), arguments: args };
      if (!isStream) {
        response.writeHead(200, { "content-type": "application/json" });
        response.end(JSON.stringify(toolCallCompletion(model, [call])));
        return;
      }
      response.writeHead(200, { "content-type": "text/event-stream" });
      for (const event of toolCallStream(model, [call])) {
        if ("data" in event) response.write(`data: ${JSON.stringify(event.data)}\n\n`);
      }
      response.end("data: [DONE]\n\n");
    },
  };
}
