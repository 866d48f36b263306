// `GET /v1/responses/{id}/input_items`: what a kept response answered, as OpenAI's list of input items (newest
// first by default, `limit` / `after` / `order` paging). The items are made from the kept conversation (the
// response's input, after the earlier turns it continued), so their ids are derived, stable per response.
import { type CursorList, type CursorQuery, cursorPage } from "./cursor-page.ts";
import { chatToInputItems } from "./native.ts";
import { outputToChatMessages } from "./response-mapping.ts";
import type { StoredResponse } from "./response-store.ts";
import { asClientCalls, ToolNames } from "./tool-names.ts";

type JsonObject = Record<string, unknown>;

export type InputItemsQuery = CursorQuery;

export function listInputItems(stored: StoredResponse, query: InputItemsQuery): CursorList<JsonObject> {
  return cursorPage(inputItemsOf(stored), query, (id) => `No input item with id '${id}' in this response.`);
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
