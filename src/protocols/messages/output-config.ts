// Anthropic `output_config` (structured output and effort), the older `output_format` and `thinking` -> the chat
// request's `response_format` and reasoning effort (request-mapping.ts translates the rest).
import { z } from "zod";
import type { ChatRequestBody, ChatResponseFormat } from "../chat-completions.ts";
import { validateAt } from "../validate.ts";
import { anthropicProblemText } from "./content-blocks.ts";
import type { MessagesRequest } from "./request-schema.ts";

type Path = readonly PropertyKey[];

function check<T extends z.ZodType>(schema: T, value: unknown, path: Path): z.infer<T> {
  return validateAt(schema, value, path, anthropicProblemText);
}

/**
 * `thinking.budget_tokens` -> a chat reasoning effort, at LiteLLM's thresholds (it maps low/medium/high to budgets
 * of 1024/2048/4096 tokens the other way): below 2048 `low`, below 4096 `medium`, else `high`. `adaptive` leaves
 * the effort to the provider; `disabled` (or none) asks for none.
 */
export function thinkingEffort(thinking: MessagesRequest["thinking"]): string | undefined {
  if (thinking?.type !== "enabled" || thinking.budget_tokens === undefined) return undefined;
  if (thinking.budget_tokens < 2048) return "low";
  if (thinking.budget_tokens < 4096) return "medium";
  return "high";
}

/**
 * `output_config.effort` -> a chat reasoning effort. Chat's scale stops at `high` for most providers that take
 * `reasoning_effort`, so `xhigh` and `max` ask for `high`, the most any of them is sure to accept.
 */
const CHAT_EFFORTS = { low: "low", medium: "medium", high: "high", xhigh: "high", max: "high" } as const;

const outputFormatSchema = z.looseObject({
  type: z.literal("json_schema", { error: "`type` must be `json_schema` (the only output format)" }),
  schema: z.record(z.string(), z.unknown(), { error: "`schema` is required: a JSON schema object" }),
});
const outputConfigSchema = z.looseObject({
  effort: z
    .enum(["low", "medium", "high", "xhigh", "max"], { error: "`effort` must be low, medium, high, xhigh or max" })
    .nullish(),
});

/**
 * Chat's `json_schema` needs a name and Anthropic's format has none. `strict` is not sent: Anthropic accepts
 * schemas with optional properties, which chat providers' strict mode refuses with a 400; without it the provider
 * still answers JSON shaped by the schema.
 */
const OUTPUT_SCHEMA_NAME = "output";

/**
 * `output_config.format` (or the beta API's older `output_format`) -> `response_format`, which routing then sends
 * only to models that take `json_schema`. `output_config.effort`, else `thinking`, becomes an effort, sent only to
 * candidates that take `reasoning_effort` (docs/protocols.md "Reasoning"): the effort is the client's explicit
 * level, a thinking budget only a guess at one.
 */
export function applyOutputConfig(
  request: { output_config?: unknown; output_format?: unknown; thinking?: MessagesRequest["thinking"] },
  chatBody: ChatRequestBody,
): void {
  const outputConfig = isGiven(request.output_config)
    ? check(outputConfigSchema, request.output_config, ["output_config"])
    : undefined;
  const responseFormat = isGiven(outputConfig?.format)
    ? toResponseFormat(outputConfig?.format, ["output_config", "format"])
    : toResponseFormat(request.output_format, ["output_format"]);
  if (responseFormat !== undefined) chatBody.response_format = responseFormat;
  const effort = outputConfig?.effort ? CHAT_EFFORTS[outputConfig.effort] : thinkingEffort(request.thinking);
  if (effort !== undefined) chatBody.x_gateway_reasoning_effort = effort;
}

function isGiven(value: unknown): boolean {
  return value !== undefined && value !== null;
}

function toResponseFormat(format: unknown, path: Path): ChatResponseFormat | undefined {
  if (!isGiven(format)) return undefined;
  const { schema } = check(outputFormatSchema, format, path);
  return { type: "json_schema", json_schema: { name: OUTPUT_SCHEMA_NAME, schema } };
}
