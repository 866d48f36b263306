// What the Chat Completions reference refuses in `messages` and `tools` that the gateway can see without a provider:
// a role no chat API has, a content that is neither text nor parts, a part of no known type, a `tool` message
// answering no earlier tool call, an empty `tools` list. Sent on, each was the first candidate's 400 in its own words
// (or a provider's quirk, or a failover through every candidate, each spending a request of its budget). Pure: zod's
// chatBodySchema and the quick check (pipeline/chat-body-check.ts) both ask it, so they refuse the same bodies.
import { isRecord } from "../is-record.ts";

/** The first thing refused in a body: where (`["messages", 2, "role"]`) and why, in the door's words. */
export interface ChatBodyProblem {
  readonly path: readonly (string | number)[];
  readonly message: string;
}

/** OpenAI's roles (`function` is its deprecated one, which some clients still send). */
const ROLES: ReadonlySet<string> = new Set(["system", "developer", "user", "assistant", "tool", "function"]);

/**
 * Content part types: OpenAI's (`text`, `image_url`, `input_audio`, `file`, `refusal`, `audio`) and the ones chat
 * providers the gateway routes to document for input: vLLM's (its chat parser's map: `video_url`, `audio_url`,
 * `image_embeds`, `audio_embeds`, `prompt_embeds`, `thinking`, `tool_reference`, and the Responses-style `input_text`,
 * `output_text`, `input_image`), Mistral's (`document_url`, `reference`, and `thinking`, which its recommended system
 * prompt for its reasoning models holds). An assistant message's parts are not checked: they are history, replayed
 * from answers whose parts vary by provider, and a client sends them back as it got them.
 */
const PART_TYPES: ReadonlySet<string> = new Set([
  "text",
  "image_url",
  "input_audio",
  "file",
  "refusal",
  "audio",
  "video_url",
  "audio_url",
  "image_embeds",
  "audio_embeds",
  "prompt_embeds",
  "thinking",
  "tool_reference",
  "input_text",
  "output_text",
  "input_image",
  "document_url",
  "reference",
]);

/** Roles whose `content` may be `null`: an assistant turn that only called tools, a tool result (filled: tool-result-text.ts). */
const NULL_CONTENT_ROLES: ReadonlySet<string> = new Set(["assistant", "tool", "function"]);

/**
 * The first problem of a chat body's `messages` (each an object with a string role: the schema checked) and `tools`,
 * or undefined. One pass; a message's tool calls are remembered for the `tool` messages after it.
 */
export function chatBodyProblem(
  messages: readonly unknown[],
  tools: unknown,
  toolChoice: unknown,
): ChatBodyProblem | undefined {
  const callIds = new Set<string>();
  // A call without an id (a client's odd history) could be the one any `tool` message answers: none is refused then.
  let hasCallWithoutId = false;
  for (let index = 0; index < messages.length; index++) {
    const message = messages[index] as Record<string, unknown>;
    const role = message.role as string;
    if (!ROLES.has(role)) {
      const shown = JSON.stringify(role.slice(0, 40));
      return {
        path: ["messages", index, "role"],
        message: `${shown} is not a message role: use system, developer, user, assistant, tool or function`,
      };
    }
    const contentProblem = checkContent(message.content, role);
    if (contentProblem !== undefined)
      return { path: ["messages", index, "content", ...contentProblem.path], message: contentProblem.message };
    if (role === "assistant" && Array.isArray(message.tool_calls)) {
      for (const call of message.tool_calls) {
        const id = isRecord(call) ? call.id : undefined;
        if (typeof id === "string") callIds.add(id);
        else hasCallWithoutId = true;
      }
    } else if (role === "tool" && typeof message.tool_call_id === "string" && !hasCallWithoutId) {
      if (!callIds.has(message.tool_call_id)) {
        return {
          path: ["messages", index, "tool_call_id"],
          message: `${JSON.stringify(message.tool_call_id.slice(0, 80))} answers no tool call: a \`tool\` message must answer one of the \`tool_calls\` of an assistant message before it`,
        };
      }
    }
  }
  if (Array.isArray(tools) && tools.length === 0 && !isEmptyToolsDropped(toolChoice)) {
    return {
      path: ["tools"],
      message: "`tools` is empty while `tool_choice` asks for a tool: send the tools, or leave out both",
    };
  }
  return undefined;
}

function checkContent(content: unknown, role: string): ChatBodyProblem | undefined {
  if (content === undefined || typeof content === "string") return undefined;
  if (content === null) {
    return NULL_CONTENT_ROLES.has(role)
      ? undefined
      : { path: [], message: `a ${role} message's content must be a string or an array of content parts, not null` };
  }
  if (!Array.isArray(content)) {
    return { path: [], message: `must be a string or an array of content parts, not ${describe(content)}` };
  }
  if (role === "assistant") return undefined;
  for (let index = 0; index < content.length; index++) {
    const part: unknown = content[index];
    if (!isRecord(part) || typeof part.type !== "string") {
      return {
        path: [index],
        message: `a content part must be an object with a string \`type\`, not ${describe(part)}`,
      };
    }
    if (!PART_TYPES.has(part.type)) {
      return {
        path: [index, "type"],
        message: `${JSON.stringify(part.type.slice(0, 40))} is not a content part type: use text, image_url, input_audio or file`,
      };
    }
  }
  return undefined;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

/**
 * An empty `tools` goes upstream as no tools at all when `tool_choice` asks for none in particular (left out, "auto",
 * "none"): OpenAI refuses `tools: []` ("empty array. Expected an array with minimum length 1"), as DeepSeek does, while
 * many clients send it for "no tools"; "required" or a named function cannot be served without tools.
 */
function isEmptyToolsDropped(toolChoice: unknown): boolean {
  return toolChoice === undefined || toolChoice === null || toolChoice === "auto" || toolChoice === "none";
}

/**
 * The body without an empty `tools` and what only goes with tools (`tool_choice`, `parallel_tool_calls`, which OpenAI
 * refuses without tools), in place; chatBodyProblem refused an empty `tools` that cannot be dropped.
 */
export function dropEmptyTools<T extends Record<string, unknown>>(body: T): T {
  if (!Array.isArray(body.tools) || body.tools.length > 0) return body;
  delete body.tools;
  delete body.tool_choice;
  delete body.parallel_tool_calls;
  return body;
}
