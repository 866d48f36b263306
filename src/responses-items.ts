// The Responses input items the gateway takes, one schema per type: one rule for protocols/ (the door's input, a
// conversation's items), upstream/ (a native provider's JSON answer) and streaming/ (its streamed answer), which may not
// import each other. An answer is kept and its items are read back as the next turn's input: an item this rule refuses
// would make every later turn of its conversation a 400, so such an answer is a `bad_response` instead.
import { z } from "zod";
import { isRecord } from "./is-record.ts";
import { MAX_NAMESPACE_CHARS } from "./responses-namespace.ts";
import { arrayOf } from "./zod-arrays.ts";

export const nonEmpty = z.string().min(1, "must not be empty");

export const namespaceName = nonEmpty.max(
  MAX_NAMESPACE_CHARS,
  `must be at most ${MAX_NAMESPACE_CHARS} characters (a namespace's name is part of each of its tools' names)`,
);

export const inputTextSchema = z.looseObject({ type: z.literal("input_text"), text: z.string() });
export const inputImageSchema = z.looseObject({
  type: z.literal("input_image"),
  image_url: z.string().nullish(),
  file_id: z.string().nullish(),
  detail: z.string().nullish(),
});
export const inputFileSchema = z.looseObject({
  type: z.literal("input_file"),
  file_data: z.string().nullish(),
  file_id: z.string().nullish(),
  file_url: z.string().nullish(),
  filename: z.string().nullish(),
});
/** `annotations` may be left out or null (some compatible providers do); given, it is a list, as OpenAI types it. */
export const outputTextSchema = z.looseObject({
  type: z.literal("output_text"),
  text: z.string(),
  annotations: z.array(z.unknown()).nullish(),
});
export const refusalSchema = z.looseObject({ type: z.literal("refusal"), refusal: z.string() });

export const messageItemSchema = z.looseObject({
  type: z.literal("message").optional(),
  role: z.enum(["user", "assistant", "system", "developer"]),
  content: z.union([z.string(), arrayOf(z.looseObject({ type: z.string() }))]),
});

/** The part types a message of each role may hold: chat takes an assistant's and a system message's as text only. */
export const ASSISTANT_PART_TYPES: readonly string[] = ["output_text", "input_text", "refusal"];
export const INSTRUCTION_PART_TYPES: readonly string[] = ["input_text"];
const USER_PART_TYPES: readonly string[] = ["input_text", "output_text", "input_image", "input_file"];

const PART_SCHEMAS: Readonly<Record<string, z.ZodType>> = {
  input_text: inputTextSchema,
  output_text: outputTextSchema,
  refusal: refusalSchema,
  input_image: inputImageSchema,
  input_file: inputFileSchema,
};

/** The `namespace` tool a called function or custom tool belongs to (protocols/responses/tool-names.ts). */
const callNamespace = namespaceName.nullish();

const toolOutput = z.union([z.string(), arrayOf(z.looseObject({ type: z.string() }))]);

export const functionCallItemSchema = z.looseObject({
  type: z.literal("function_call"),
  call_id: nonEmpty,
  name: nonEmpty,
  namespace: callNamespace,
  arguments: z.string(),
});

export const functionCallOutputItemSchema = z.looseObject({
  type: z.literal("function_call_output"),
  call_id: nonEmpty,
  output: toolOutput,
});

export const customToolCallItemSchema = z.looseObject({
  type: z.literal("custom_tool_call"),
  call_id: nonEmpty,
  name: nonEmpty,
  namespace: callNamespace,
  input: z.string(),
});

export const customToolCallOutputItemSchema = z.looseObject({
  type: z.literal("custom_tool_call_output"),
  call_id: nonEmpty,
  output: toolOutput,
});

export const toolSearchCallItemSchema = z.looseObject({
  type: z.literal("tool_search_call"),
  call_id: nonEmpty,
  arguments: z.unknown(),
});

export const toolSearchOutputItemSchema = z.looseObject({
  type: z.literal("tool_search_output"),
  call_id: nonEmpty,
  tools: arrayOf(
    z.looseObject({ type: z.string() }),
    z.array(z.unknown(), { error: "`tools` must be an array of the tools the search loaded, each with a `type`" }),
  ),
});

const list = z.array(z.unknown());
const object = z.record(z.string(), z.unknown());
/** A status is a string: OpenAI adds values (`searching`, `generating`, `calling`), and none changes what is sent. */
const status = z.string();

/**
 * Not here, so still refused as input: `compaction_trigger` (it asks the provider to compact the conversation: left
 * out, a chat provider would answer without the compaction Codex waits for) and `additional_tools` (tools the model
 * may call: left out, they would be lost unseen).
 *
 * Items of the tools OpenAI runs (web and file search, code interpreter, image generation, MCP, compaction) and of
 * those the client runs whose calls a chat model cannot make (computer, local shell, shell, apply_patch), with the
 * fields OpenAI's reference requires of them as input (openai-node 6.49 `ResponseInputItem`): a native provider's
 * answer may hold them, and a conversation keeps them. A native provider is sent them as they are; a chat provider
 * is not (protocols/responses/input-messages.ts): nothing behind it ran them or can.
 */
export const HOSTED_ITEM_SCHEMAS: Readonly<Record<string, z.ZodType>> = {
  web_search_call: z.looseObject({ id: nonEmpty, action: object, status }),
  file_search_call: z.looseObject({ id: nonEmpty, queries: z.array(z.string()), status, results: list.nullish() }),
  code_interpreter_call: z.looseObject({
    id: nonEmpty,
    code: z.string().nullable(),
    container_id: z.string(),
    outputs: list.nullable(),
    status,
  }),
  image_generation_call: z.looseObject({ id: nonEmpty, result: z.string().nullable(), status }),
  computer_call: z.looseObject({
    id: nonEmpty,
    call_id: nonEmpty,
    pending_safety_checks: list,
    status,
    action: object.optional(),
    actions: list.optional(),
  }),
  computer_call_output: z.looseObject({
    call_id: nonEmpty,
    output: object,
    acknowledged_safety_checks: list.nullish(),
  }),
  local_shell_call: z.looseObject({ id: nonEmpty, call_id: nonEmpty, action: object, status }),
  local_shell_call_output: z.looseObject({ id: nonEmpty, output: z.string() }),
  shell_call: z.looseObject({ call_id: nonEmpty, action: object }),
  shell_call_output: z.looseObject({ call_id: nonEmpty, output: list }),
  apply_patch_call: z.looseObject({ call_id: nonEmpty, operation: object, status }),
  apply_patch_call_output: z.looseObject({ call_id: nonEmpty, status, output: z.string().nullish() }),
  mcp_list_tools: z.looseObject({ id: nonEmpty, server_label: z.string(), tools: list, error: z.string().nullish() }),
  mcp_approval_request: z.looseObject({
    id: nonEmpty,
    arguments: z.string(),
    name: z.string(),
    server_label: z.string(),
  }),
  mcp_approval_response: z.looseObject({ approval_request_id: nonEmpty, approve: z.boolean() }),
  mcp_call: z.looseObject({
    id: nonEmpty,
    arguments: z.string(),
    name: z.string(),
    server_label: z.string(),
    output: z.string().nullish(),
    error: z.string().nullish(),
  }),
  compaction: z.looseObject({ encrypted_content: z.string() }),
  program: z.looseObject({ id: nonEmpty, call_id: nonEmpty, code: z.string(), fingerprint: z.string() }),
  program_output: z.looseObject({ id: nonEmpty, call_id: nonEmpty, result: z.string(), status }),
};

/**
 * A tool search OpenAI ran itself (`execution: "server"`): its items' `call_id` is null (openai-node 6.49
 * `ResponseToolSearchCall`, `ResponseToolSearchOutputItem`: `string | null`; as input, optional). Held to the
 * client-run rule, every native answer that used a server tool search was a `bad_response`. It is a hosted item:
 * a native provider is sent it as it came, a chat provider is not (nothing behind it ran the search).
 */
const SERVER_TOOL_SEARCH_SCHEMAS: Readonly<Record<string, z.ZodType>> = {
  tool_search_call: z.looseObject({ call_id: z.string().nullish(), arguments: z.unknown() }),
  tool_search_output: z.looseObject({ call_id: z.string().nullish(), tools: list }),
};

/** The schema of a server-run tool search's item, or undefined for any other item. */
export function serverToolSearchSchema(item: Readonly<Record<string, unknown>>): z.ZodType | undefined {
  return item.execution === "server" ? schemaOf(SERVER_TOOL_SEARCH_SCHEMAS, String(item.type)) : undefined;
}

/** Hosted items keep their `id` when sent to a native provider: OpenAI's reference requires it of these. */
export const HOSTED_ITEMS_WITH_IDS: ReadonlySet<string> = new Set([
  "web_search_call",
  "file_search_call",
  "code_interpreter_call",
  "image_generation_call",
  "computer_call",
  "local_shell_call",
  "local_shell_call_output",
  "mcp_list_tools",
  "mcp_approval_request",
  "mcp_call",
  "program",
  "program_output",
]);

/** Every item type with a schema of its own here (messages and `item_reference` are read apart). */
const ITEM_SCHEMAS: Readonly<Record<string, z.ZodType>> = {
  function_call: functionCallItemSchema,
  function_call_output: functionCallOutputItemSchema,
  custom_tool_call: customToolCallItemSchema,
  custom_tool_call_output: customToolCallOutputItemSchema,
  tool_search_call: toolSearchCallItemSchema,
  tool_search_output: toolSearchOutputItemSchema,
  ...HOSTED_ITEM_SCHEMAS,
};

/**
 * What keeps an answer's `output` from being the next turn's input, or undefined: not a list, or an item
 * `keptItemFault` finds fault with.
 */
export function outputFault(output: unknown): string | undefined {
  if (!Array.isArray(output)) return "no `output` array";
  for (const item of output) {
    const fault = keptItemFault(item);
    if (fault !== undefined) return fault;
  }
  return undefined;
}

/**
 * Why the next turn's input would refuse this output item (the door's schemas above, by type), or undefined. Item
 * types the gateway does not know (`reasoning`, newer ones) pass as they come: the chat translation reads reasoning
 * only where it is guarded, and refusing a type OpenAI adds would fail every answer that holds one.
 */
export function keptItemFault(item: unknown): string | undefined {
  if (!isRecord(item)) return "an `output` item that is not an object";
  const { type } = item;
  if (typeof type !== "string") return "an `output` item with no `type`";
  if (type === "message") return messageFault(item);
  const schema = serverToolSearchSchema(item) ?? schemaOf(ITEM_SCHEMAS, type);
  return schema === undefined ? undefined : issueOf(`a \`${type}\``, schema, item);
}

function messageFault(item: Record<string, unknown>): string | undefined {
  const result = messageItemSchema.safeParse(item);
  if (!result.success) return issueText("an `output` message", result.error.issues);
  const { role, content } = result.data;
  if (typeof content === "string") return undefined;
  const allowed =
    role === "assistant" ? ASSISTANT_PART_TYPES : role === "user" ? USER_PART_TYPES : INSTRUCTION_PART_TYPES;
  for (const part of content) {
    if (!allowed.includes(part.type)) return `an \`output\` ${role} message with a \`${part.type.slice(0, 64)}\` part`;
    const schema = schemaOf(PART_SCHEMAS, part.type);
    const fault = schema === undefined ? undefined : issueOf(`an \`${part.type}\` part`, schema, part);
    if (fault !== undefined) return fault;
  }
  return undefined;
}

/** The schema of a hosted item type (HOSTED_ITEM_SCHEMAS), or undefined for any other type. */
export function hostedItemSchema(type: string): z.ZodType | undefined {
  return schemaOf(HOSTED_ITEM_SCHEMAS, type);
}

/** Own keys only: a `type` of `constructor` or `__proto__` would read Object.prototype's. */
function schemaOf(schemas: Readonly<Record<string, z.ZodType>>, type: string): z.ZodType | undefined {
  return Object.hasOwn(schemas, type) ? schemas[type] : undefined;
}

function issueOf(what: string, schema: z.ZodType, value: unknown): string | undefined {
  const result = schema.safeParse(value);
  return result.success ? undefined : issueText(what, result.error.issues);
}

function issueText(what: string, issues: z.ZodError["issues"]): string {
  const issue = issues[0];
  const field = (issue?.path ?? []).map(String).join(".");
  return `${what} whose \`${field}\` is not as the next turn's input takes it (${issue?.message ?? "invalid"})`;
}
