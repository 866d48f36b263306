// The body rules as a `responses_api: native` provider's Responses body takes them (docs/configuration.md "Request
// body rules"). Rules are written in Chat Completions names, for the provider's chat requests; OpenAI's /responses
// refuses an unknown parameter with a 400, so a provider-wide `defaults: { reasoning_effort: high }` or
// `drop: [logprobs]`-style rule written as a chat field failed every native request. A chat field the Responses API
// has under another name sets that one (`reasoning_effort` -> `reasoning.effort`, `response_format` ->
// `text.format` in its shape); one it has no place for is left out. Worked out once per deployment (body-rules.ts mergeBodyRules), not per request.
import { isRecord } from "../is-record.ts";

/** Chat fields a Responses request has nested in an object: `reasoning_effort` is `reasoning.effort` there. */
const NESTED_FIELDS: Readonly<Record<string, readonly [parent: string, field: string]>> = {
  reasoning_effort: ["reasoning", "effort"],
  verbosity: ["text", "verbosity"],
  response_format: ["text", "format"],
};

/**
 * A chat `response_format` as the Responses API's `text.format` (OpenAI's API reference, `ResponseFormatTextConfig`):
 * `text` and `json_object` as they are; `json_schema` with the members of its `json_schema` object (`name`,
 * `schema`, `description`, `strict`) one level up, beside `type`, not nested (a nested one is a 400 there: `name`
 * is required). Undefined for a value of another shape, which is left out as before.
 */
function textFormatOf(responseFormat: unknown): Readonly<Record<string, unknown>> | undefined {
  if (!isRecord(responseFormat)) return undefined;
  const { type } = responseFormat;
  if (type === "text" || type === "json_object") return { type };
  if (type !== "json_schema" || !isRecord(responseFormat.json_schema)) return undefined;
  const { name, schema, description, strict } = responseFormat.json_schema;
  if (typeof name !== "string") return undefined;
  return {
    type,
    name,
    ...(schema === undefined ? {} : { schema }),
    ...(description === undefined ? {} : { description }),
    ...(strict === undefined ? {} : { strict }),
  };
}

/** A rule's value as the nested field takes it (only `response_format` changes shape). */
function nestedValueOf(name: string, value: unknown): unknown {
  return name === "response_format" ? textFormatOf(value) : value;
}

/**
 * Chat Completions fields with no place in a Responses request (the OpenAI API reference's request bodies of both,
 * as the `openai` SDK types them): not sent to a native provider. `top_logprobs`, `user`, `metadata`, `service_tier`, `temperature`, `top_p`, `store`,
 * `parallel_tool_calls`, `safety_identifier`, `prompt_cache_key` are the same field in both and go as written, as
 * do names neither API has (a vendor's own, for the host behind the provider).
 */
const CHAT_ONLY_FIELDS: ReadonlySet<string> = new Set([
  "audio",
  "frequency_penalty",
  "function_call",
  "functions",
  "logit_bias",
  "logprobs",
  "modalities",
  "n",
  "prediction",
  "presence_penalty",
  "seed",
  "stop",
  "web_search_options",
]);

const OUTPUT_FIELD = "max_output_tokens";

interface NestedRule {
  readonly parent: string;
  readonly field: string;
  readonly value: unknown;
}

export interface ResponsesBodyRules {
  readonly defaults: Readonly<Record<string, unknown>>;
  readonly override: Readonly<Record<string, unknown>>;
  readonly drop: readonly string[];
  readonly nestedDefaults: readonly NestedRule[];
  readonly nestedOverrides: readonly NestedRule[];
  readonly nestedDrops: readonly Omit<NestedRule, "value">[];
  /** The output limit a rule fills in or sets, as `max_output_tokens` (body-rules.ts chose it from the chat names). */
  readonly outputDefault: number | undefined;
  readonly outputOverride: number | undefined;
  readonly isOutputDropped: boolean;
}

/** The chat rules without their output-limit fields, which body-rules.ts turns into `output*` itself. */
export interface ChatRulesForResponses {
  readonly defaults: Readonly<Record<string, unknown>>;
  readonly override: Readonly<Record<string, unknown>>;
  readonly drop: readonly string[];
  readonly outputDefault: number | undefined;
  readonly outputOverride: number | undefined;
  readonly isOutputDropped: boolean;
}

export function responsesRulesOf(chat: ChatRulesForResponses): ResponsesBodyRules {
  const split = (fields: Readonly<Record<string, unknown>>) => {
    const top: Record<string, unknown> = {};
    const nested: NestedRule[] = [];
    for (const [name, value] of Object.entries(fields)) {
      const path = NESTED_FIELDS[name];
      if (path === undefined) {
        if (!CHAT_ONLY_FIELDS.has(name)) top[name] = value;
        continue;
      }
      const nestedValue = nestedValueOf(name, value);
      if (nestedValue !== undefined) nested.push({ parent: path[0], field: path[1], value: nestedValue });
    }
    return { top, nested };
  };
  const defaults = split(chat.defaults);
  const override = split(chat.override);
  return {
    defaults: defaults.top,
    override: override.top,
    drop: chat.drop.filter((name) => NESTED_FIELDS[name] === undefined),
    nestedDefaults: defaults.nested,
    nestedOverrides: override.nested,
    nestedDrops: chat.drop.flatMap((name) => {
      const path = NESTED_FIELDS[name];
      return path === undefined ? [] : [{ parent: path[0], field: path[1] }];
    }),
    outputDefault: chat.outputDefault,
    outputOverride: chat.outputOverride,
    isOutputDropped: chat.isOutputDropped,
  };
}

/**
 * Applies the rules to a Responses body the caller owns (the attempt's shallow copy): drop, then defaults where
 * absent (or null), then override, as for chat. A nested object the client sent (`reasoning`) is shared with the
 * request the other candidates get: it is replaced by a changed copy, never written into.
 */
export function applyResponsesRules(body: Record<string, unknown>, rules: ResponsesBodyRules): void {
  for (const field of rules.drop) delete body[field];
  for (const { parent, field } of rules.nestedDrops) {
    const object = body[parent];
    if (!isRecord(object) || !Object.hasOwn(object, field)) continue;
    const { [field]: _dropped, ...rest } = object;
    if (Object.keys(rest).length === 0) delete body[parent];
    else body[parent] = rest;
  }
  if (rules.isOutputDropped) delete body[OUTPUT_FIELD];
  for (const field in rules.defaults) if (isAbsent(body, field)) body[field] = rules.defaults[field];
  for (const { parent, field, value } of rules.nestedDefaults) {
    const object = body[parent];
    if (isAbsent(body, parent)) body[parent] = { [field]: value };
    else if (isRecord(object) && isAbsent(object, field)) body[parent] = { ...object, [field]: value };
  }
  if (rules.outputDefault !== undefined && isAbsent(body, OUTPUT_FIELD)) body[OUTPUT_FIELD] = rules.outputDefault;
  for (const field in rules.override) body[field] = rules.override[field];
  for (const { parent, field, value } of rules.nestedOverrides) {
    const object = body[parent];
    body[parent] = isRecord(object) ? { ...object, [field]: value } : { [field]: value };
  }
  if (rules.outputOverride !== undefined) body[OUTPUT_FIELD] = rules.outputOverride;
}

/** Not in the object, or null; an own property only (a field named `toString` is not the prototype's). */
function isAbsent(object: Readonly<Record<string, unknown>>, field: string): boolean {
  return !Object.hasOwn(object, field) || object[field] === undefined || object[field] === null;
}
