// The tool call items of a Responses stream (function_call_arguments.delta* -> .done -> output_item.done). They stay
// open until the answer ends, because some providers interleave the argument deltas of parallel calls; each delta
// goes to its call's own output index. A call of a `custom` tool (custom-tools.ts) is a `custom_tool_call` item: its
// input is the `input` string inside the function arguments streamed upstream, read once they are whole, so it comes
// as one delta when the call closes. A call of the client-run `tool_search` (tool-search.ts) is a `tool_search_call`
// item whose `arguments` object is read from the whole arguments at `output_item.done`. A call of a `namespace`
// tool's member names the member and its `namespace` (tool-names.ts).
import { argumentsOrEmptyObject, type ToolCallDelta } from "../chat-completions.ts";
import { StreamedToolCalls } from "../streamed-tool-calls.ts";
import { inputOfArguments } from "./custom-tools.ts";
import type { CustomToolCallItem, FunctionCallItem, ToolSearchCallItem } from "./response-object.ts";
import type { ResponseEvents } from "./stream-events.ts";
import { namedAs, type ToolNames } from "./tool-names.ts";
import { searchArgumentsOf } from "./tool-search.ts";

interface ToolCallState {
  /** Undefined until the call's name is known (some providers send the id first). */
  item: FunctionCallItem | CustomToolCallItem | ToolSearchCallItem | undefined;
  outputIndex: number;
  id: string | undefined;
  name: string | undefined;
  /** Arguments that came before the item opened; for a custom or tool search call, all of its arguments so far. */
  bufferedArguments: string;
}

export class ToolCallItemsWriter {
  readonly #events: ResponseEvents;
  readonly #toolNames: ToolNames;
  /** Closes the open reasoning or message item: a tool call's item closes them as it opens. */
  readonly #closeTextItems: () => string;
  readonly #calls = new StreamedToolCalls<ToolCallState>();

  constructor(events: ResponseEvents, toolNames: ToolNames, closeTextItems: () => string) {
    this.#events = events;
    this.#toolNames = toolNames;
    this.#closeTextItems = closeTextItems;
  }

  append(delta: ToolCallDelta): string {
    const state = this.#calls.callFor(delta, () => ({
      item: undefined,
      outputIndex: -1,
      id: undefined,
      name: undefined,
      bufferedArguments: "",
    }));
    if (state.item === undefined) {
      state.bufferedArguments += delta.arguments;
      return state.name === undefined ? "" : this.#open(state);
    }
    if (state.item.type !== "function_call") {
      state.bufferedArguments += delta.arguments;
      return "";
    }
    return delta.arguments === "" ? "" : this.#appendArguments(state.item, state.outputIndex, delta.arguments);
  }

  /** Calls whose name never came are still calls: opens them with what is known. */
  openUnnamed(): string {
    let text = "";
    for (const state of this.#calls.all) if (state.item === undefined) text += this.#open(state);
    return text;
  }

  /** Closes every open call, in output order, with `status`. */
  closeAll(status: "completed" | "incomplete"): string {
    let text = "";
    for (const state of [...this.#calls.all].sort((a, b) => a.outputIndex - b.outputIndex)) {
      text += this.#close(state, status);
    }
    return text;
  }

  /** The stream failed: the failed response shows a custom call's input as far as it came, as a function call's arguments are. */
  showPartialInputs(): void {
    for (const state of this.#calls.all) {
      if (state.item?.type === "custom_tool_call") state.item.input = inputOfArguments(state.bufferedArguments);
      if (state.item?.type === "tool_search_call") state.item.arguments = searchArgumentsOf(state.bufferedArguments);
    }
  }

  #open(state: ToolCallState): string {
    const events = this.#events;
    const text = this.#closeTextItems();
    const client = this.#toolNames.clientName(state.name ?? "");
    if (client.type === "tool_search") {
      // No argument delta event is documented for a tool search: the item comes whole at output_item.done.
      const search: ToolSearchCallItem = {
        id: events.ids("tsc_"),
        type: "tool_search_call",
        status: "in_progress",
        call_id: state.id ?? events.ids("call_"),
        execution: "client",
        arguments: {},
      };
      state.item = search;
      state.outputIndex = events.addItem(search);
      return text + events.event("response.output_item.added", { output_index: state.outputIndex, item: search });
    }
    if (client.type === "custom") {
      const custom: CustomToolCallItem = {
        id: events.ids("ctc_"),
        type: "custom_tool_call",
        status: "in_progress",
        call_id: state.id ?? events.ids("call_"),
        ...namedAs(client),
        input: "",
      };
      state.item = custom;
      state.outputIndex = events.addItem(custom);
      // Its arguments stay in bufferedArguments until the call closes.
      return text + events.event("response.output_item.added", { output_index: state.outputIndex, item: custom });
    }
    const item: FunctionCallItem = {
      id: events.ids("fc_"),
      type: "function_call",
      status: "in_progress",
      call_id: state.id ?? events.ids("call_"),
      ...namedAs(client),
      arguments: "",
    };
    state.item = item;
    state.outputIndex = events.addItem(item);
    let opened = text + events.event("response.output_item.added", { output_index: state.outputIndex, item });
    if (state.bufferedArguments !== "")
      opened += this.#appendArguments(item, state.outputIndex, state.bufferedArguments);
    state.bufferedArguments = "";
    return opened;
  }

  #appendArguments(item: FunctionCallItem, outputIndex: number, delta: string): string {
    item.arguments += delta;
    return this.#events.event("response.function_call_arguments.delta", {
      item_id: item.id,
      output_index: outputIndex,
      delta,
    });
  }

  #close(state: ToolCallState, status: "completed" | "incomplete"): string {
    const item = state.item;
    if (item === undefined || item.status !== "in_progress") return "";
    item.status = status;
    const events = this.#events;
    if (item.type === "tool_search_call") {
      item.arguments = searchArgumentsOf(state.bufferedArguments);
      return events.event("response.output_item.done", { output_index: state.outputIndex, item });
    }
    if (item.type === "custom_tool_call") {
      item.input = inputOfArguments(state.bufferedArguments);
      const at = { item_id: item.id, output_index: state.outputIndex };
      return (
        (item.input === "" ? "" : events.event("response.custom_tool_call_input.delta", { ...at, delta: item.input })) +
        events.event("response.custom_tool_call_input.done", { ...at, input: item.input }) +
        events.event("response.output_item.done", { output_index: state.outputIndex, item })
      );
    }
    // A whole call that came without arguments gets `{}` as its last delta, so the deltas, `.done` and the item agree.
    const emptyObject =
      status === "completed" && argumentsOrEmptyObject(item.arguments) !== item.arguments
        ? this.#appendArguments(item, state.outputIndex, "{}")
        : "";
    return (
      emptyObject +
      events.event("response.function_call_arguments.done", {
        item_id: item.id,
        output_index: state.outputIndex,
        name: item.name,
        arguments: item.arguments,
      }) +
      events.event("response.output_item.done", { output_index: state.outputIndex, item })
    );
  }
}
