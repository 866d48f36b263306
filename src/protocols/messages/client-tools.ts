// Anthropic's schema-less client tools (bash, the text editor) as chat function tools. The client runs them as it
// always does; only their input schema, which Anthropic's models know built in, has to be spelled out for a chat
// model. Server tools (web search, code execution, ...) run on Anthropic's side and stay refused (request-mapping.ts).

/** The function a chat model is given for a client tool: its description and JSON schema. */
export interface ClientToolFunction {
  readonly description: string;
  readonly parameters: Record<string, unknown>;
}

const BASH: ClientToolFunction = {
  description:
    "Run commands in a persistent bash shell. State (working directory, variables, files) persists between calls. Set `restart` to true to restart the shell.",
  parameters: {
    type: "object",
    properties: {
      command: { type: "string", description: "The bash command to run. Required unless restarting." },
      restart: { type: "boolean", description: "Restart the shell." },
    },
  },
};

/** Anthropic's text editor commands, per tool version (the 2025-04-29 and later versions dropped `undo_edit`). */
function textEditor(commands: readonly string[]): ClientToolFunction {
  return {
    description:
      "View, create and edit files. `view` shows a file with line numbers (or lists a directory); `create` writes `file_text` to a new file; `str_replace` replaces `old_str`, which must occur exactly once, with `new_str`; `insert` inserts `new_str` after line `insert_line` (0: the file's start)." +
      (commands.includes("undo_edit") ? " `undo_edit` reverts the last edit of `path`." : ""),
    parameters: {
      type: "object",
      properties: {
        command: { type: "string", enum: commands, description: "The command to run." },
        path: { type: "string", description: "Absolute path of the file or directory." },
        file_text: { type: "string", description: "`create`: the new file's content." },
        old_str: { type: "string", description: "`str_replace`: the exact text to replace." },
        new_str: { type: "string", description: "`str_replace`: the new text; `insert`: the text to insert." },
        insert_line: { type: "integer", description: "`insert`: the line after which to insert (0: the start)." },
        view_range: {
          type: "array",
          items: { type: "integer" },
          description: "`view`: [first line, last line], 1-based; -1 as the last: to the end.",
        },
      },
      required: ["command", "path"],
    },
  };
}

const EDITOR_WITH_UNDO = textEditor(["view", "create", "str_replace", "insert", "undo_edit"]);
const EDITOR = textEditor(["view", "create", "str_replace", "insert"]);

/** By the tool's `type`, as the Anthropic SDK's `ToolBash20250124`, `ToolTextEditor20250728`, ... name it. */
const CLIENT_TOOLS: Readonly<Record<string, ClientToolFunction>> = {
  bash_20241022: BASH,
  bash_20250124: BASH,
  text_editor_20241022: EDITOR_WITH_UNDO,
  text_editor_20250124: EDITOR_WITH_UNDO,
  text_editor_20250429: EDITOR,
  text_editor_20250728: EDITOR,
};

/**
 * The chat function for a client tool's `type`, or undefined for any other type (a server tool's). A copy: the chat
 * body is the request's own, and later steps may rewrite a schema for a provider.
 */
export function clientToolFunction(type: string): ClientToolFunction | undefined {
  const known = Object.hasOwn(CLIENT_TOOLS, type) ? CLIENT_TOOLS[type] : undefined;
  return known === undefined ? undefined : structuredClone(known);
}
