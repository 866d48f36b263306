// What the Chat Completions reference refuses in `messages` and `tools` that the gateway can see without a provider:
// a role no chat API has, a content that is neither text nor parts, a part of no known type, a `tool` message
// answering no earlier tool call, an empty `tools` list. Sent on, each was the first candidate's 400 in its own words
// (or a provider's quirk, or a failover through every candidate, each spending a request of its budget). Pure: zod's
// chatBodySchema and the quick check (pipeline/chat-body-check.ts) both ask it, so they refuse the same bodies.
import { isRecord } from "../is-record.ts";
import { TOOL_RESULT_ROLES } from "./tool-result-text.ts";

/** The first thing refused in a body: where (`["messages", 2, "role"]`) and why, in the door's words. */
export interface ChatBodyProblem {
  readonly path: readonly (string | number)[];
  readonly message: string;
}

/**
 * OpenAI's roles (`function` is its deprecated one, which some clients still send) and the tool-result roles of two
 * models' chat formats: Llama 3.1's `ipython` (vLLM's Llama 3.1 tool template, examples/tool_chat_template_llama3.1_json
 * .jinja, renders it as a `tool` message) and ChatGLM3's `observation` (THUDM/ChatGLM3 PROMPT_en.md: "External return
 * result", after an assistant's tool call). vLLM takes any role (chat_utils.py CustomChatCompletionMessageParam:
 * "Enables custom roles in the Chat Completion API") and leaves it to the model's chat template; Z.ai's own API
 * documents only OpenAI's four. Other names stay refused: a typo (`usr`, `robot`) is no provider's role.
 */
const ROLES: ReadonlySet<string> = new Set([
  "system",
  "developer",
  "user",
  "assistant",
  "tool",
  "function",
  "ipython",
  "observation",
]);

/**
 * Content part types: OpenAI's (`text`, `image_url`, `input_audio`, `file`, `refusal`, `audio`) and the ones chat
 * providers the gateway routes to document for input: vLLM's (its chat parser's map: `video_url`, `audio_url`,
 * `image_embeds`, `audio_embeds`, `prompt_embeds`, `thinking`, `tool_reference`, and the Responses-style `input_text`,
 * `output_text`, `input_image`), Mistral's (`document_url`, `reference`, and `thinking`, which its recommended system
 * prompt for its reasoning models holds), Alibaba Model Studio's (alibabacloud.com/help/en/model-studio/vision: its
 * OpenAI-compatible Qwen-VL takes a video as the list of its frames, `{"type": "video", "video": [urls]}`, beside a
 * `video_url` file) and Z.ai's (docs.z.ai/api-reference/llm/chat-completion, its OpenAPI's vision content
 * `{"type": "file_url", "file_url": {"url"}}`, as Perplexity's docs take it too).
 * An assistant message's parts are not checked: they are history, replayed from answers whose parts vary by provider,
 * and a client sends them back as it got them.
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
  "video",
  "file_url",
]);

/**
 * The keys by which vLLM reads a part without `type` (chat_utils.py `_parse_chat_message_content_mm_part`, its
 * CustomChatCompletionContentSimpleImageParam etc.: `{"image_url": "https://..."}`; "supported by OpenAI API, although
 * it is not documented"), but `image_pil`, a Python object no JSON body holds. Any other untyped part is its 400
 * ("Missing 'type' field in multimodal part").
 */
const UNTYPED_PART_KEYS = [
  "image_url",
  "audio_url",
  "video_url",
  "input_audio",
  "image_embeds",
  "audio_embeds",
  "prompt_embeds",
  "tool_reference",
] as const;

/** What a refusal says is taken: OpenAI's, then that providers' own exist (the list stays short; docs list them all). */
const ROLES_TAKEN =
  "system, developer, user, assistant, tool or function, or a provider's documented role (ipython, observation)";
const PART_TYPES_TAKEN =
  "text, image_url, input_audio or file, or a provider's documented type (video_url, file_url, document_url, ...)";

/**
 * Roles whose `content` may be `null`: an assistant turn that only called tools, a tool result (`tool`, `ipython`,
 * `observation`: filled, tool-result-text.ts), OpenAI's deprecated `function` result (its reference takes `null`).
 */
const NULL_CONTENT_ROLES: ReadonlySet<string> = new Set(["assistant", "function", ...TOOL_RESULT_ROLES]);

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
        message: `${shown} is not a message role: use ${ROLES_TAKEN}`,
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
    if (isRecord(part) && (part.type === undefined || part.type === null) && isUntypedMediaPart(part)) continue;
    if (!isRecord(part) || typeof part.type !== "string") {
      return {
        path: [index],
        message: `a content part must be an object with a string \`type\` (or vLLM's untyped \`image_url\`, \`audio_url\`, \`video_url\`), not ${describe(part)}`,
      };
    }
    if (!PART_TYPES.has(part.type)) {
      return {
        path: [index, "type"],
        message: `${JSON.stringify(part.type.slice(0, 40))} is not a content part type: use ${PART_TYPES_TAKEN}`,
      };
    }
  }
  return undefined;
}

function isUntypedMediaPart(part: Record<string, unknown>): boolean {
  return UNTYPED_PART_KEYS.some((key) => Object.hasOwn(part, key));
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
