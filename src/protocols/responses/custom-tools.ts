// Responses `custom` tools (free-form text input, optionally constrained by a Lark or regex grammar; Codex sends
// its `apply_patch` as one for GPT-5 models) over chat providers, which know only JSON-schema function tools.
// A custom tool goes upstream as a function taking one string, `input`, with the grammar in its description (a
// chat provider cannot enforce a grammar; the model is told it). Its calls come back as `custom_tool_call` items
// whose `input` is that string, and the items a client sends back become function calls again.
import { parseJsonRecord } from "../../is-record.ts";
import type { ChatTool } from "../chat-completions.ts";
import { validateAt } from "../validate.ts";
import { customToolSchema } from "./request-schema.ts";

/** The one parameter of the function a custom tool becomes. */
const INPUT_PARAMETERS = {
  type: "object",
  properties: { input: { type: "string", description: "The tool's whole input, as free-form text." } },
  required: ["input"],
  additionalProperties: false,
} as const;

export function customToolAsFunction(tool: unknown, path: readonly PropertyKey[]): ChatTool {
  const parsed = validateAt(customToolSchema, tool, path);
  const parts: string[] = [];
  if (typeof parsed.description === "string" && parsed.description !== "") parts.push(parsed.description);
  const format = parsed.format;
  if (format?.type === "grammar") {
    parts.push(
      `Put the whole input in \`input\`. It must match this ${format.syntax ?? "Lark"} grammar:\n${format.definition}`,
    );
  } else {
    parts.push("Put the whole input in `input`, as free-form text.");
  }
  return {
    type: "function",
    function: {
      name: parsed.name,
      description: parts.join("\n\n"),
      parameters: structuredClone(INPUT_PARAMETERS) as unknown as Record<string, unknown>,
    },
  };
}

/** A custom call's input as the arguments of the function call it was. */
export function inputAsArguments(input: string): string {
  return JSON.stringify({ input });
}

/**
 * The input of a custom call from the function arguments a model wrote: their `input` string (none for `{}`). A model
 * that wrote something else (plain text, other keys) gets its arguments passed on as they are: the tool sees what the
 * model meant rather than nothing.
 */
export function inputOfArguments(argumentsText: string): string {
  const parsed = parseJsonRecord(argumentsText);
  if (parsed !== undefined) {
    const { input } = parsed;
    if (typeof input === "string") return input;
    // `{}`: a call that came without arguments, completed as OpenAI sends one (upstream/complete-tool-calls.ts,
    // streaming/tool-call-deltas.ts): no input, not the text "{}".
    if (Object.keys(parsed).length === 0) return "";
  }
  return argumentsText;
}
