// `GET /v1/responses/{id}/input_items`: what a kept response answered, as OpenAI's list of input items (newest
// first by default, `limit` / `after` / `order` paging). The items are made from the kept conversation (the
// response's input, after the earlier turns it continued), so their ids are derived, stable per response.
import { InvalidRequestError } from "../../errors/gateway-error.ts";
import { chatToInputItems } from "./native.ts";
import { outputToChatMessages } from "./response-mapping.ts";
import type { StoredResponse } from "./response-store.ts";
import { asClientCalls, ToolNames } from "./tool-names.ts";

type JsonObject = Record<string, unknown>;

export interface InputItemsQuery {
  readonly limit?: unknown;
  readonly order?: unknown;
  readonly after?: unknown;
}

export interface InputItemList {
  readonly object: "list";
  readonly data: JsonObject[];
  readonly first_id: string | null;
  readonly last_id: string | null;
  readonly has_more: boolean;
}

const DEFAULT_LIMIT = 20;
const MAX_LIMIT = 100;

export function listInputItems(stored: StoredResponse, query: InputItemsQuery): InputItemList {
  const limit = readLimit(query.limit);
  const order = readOrder(query.order);
  const items = inputItemsOf(stored);
  const ordered = order === "asc" ? items : [...items].reverse();
  let start = 0;
  if (query.after !== undefined) {
    if (typeof query.after !== "string") throw invalid("`after` must be an item id.", "after");
    const index = ordered.findIndex((item) => item.id === query.after);
    if (index === -1) throw invalid(`No input item with id '${query.after}' in this response.`, "after");
    start = index + 1;
  }
  const data = ordered.slice(start, start + limit);
  return {
    object: "list",
    data,
    first_id: (data[0]?.id as string | undefined) ?? null,
    last_id: (data.at(-1)?.id as string | undefined) ?? null,
    has_more: start + limit < ordered.length,
  };
}

/** The kept conversation without the response's own output (the last message it adds), as input items with ids. */
function inputItemsOf(stored: StoredResponse): JsonObject[] {
  const names = ToolNames.of(stored.response.tools);
  const outputMessages = outputToChatMessages(stored.response.output, names).length;
  const input = stored.conversation.slice(0, stored.conversation.length - outputMessages);
  const key = stored.response.id.replace(/^resp_/, "");
  return asClientCalls(chatToInputItems(input), names).map((item, index) => {
    const prefix = PREFIXES[String(item.type)] ?? "msg";
    const content = item.content;
    const withParts =
      typeof content === "string"
        ? { content: [{ type: item.role === "assistant" ? "output_text" : "input_text", text: content }] }
        : {};
    return { id: `${prefix}_${key}_${index}`, ...item, ...withParts, status: "completed" };
  });
}

const PREFIXES: Readonly<Record<string, string>> = {
  function_call: "fc",
  function_call_output: "fco",
  custom_tool_call: "ctc",
  custom_tool_call_output: "ctco",
};

function readLimit(value: unknown): number {
  if (value === undefined) return DEFAULT_LIMIT;
  const limit = Number(value);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
    throw invalid(`\`limit\` must be an integer from 1 to ${MAX_LIMIT}.`, "limit");
  }
  return limit;
}

function readOrder(value: unknown): "asc" | "desc" {
  if (value === undefined) return "desc";
  if (value === "asc" || value === "desc") return value;
  throw invalid("`order` must be `asc` or `desc`.", "order");
}

function invalid(message: string, param: string): InvalidRequestError {
  return new InvalidRequestError(message, { param, code: "invalid_value" });
}
