// A streamed tool call as the Messages stream translator holds it until (and while) its tool_use block is open.
import { parseJsonRecord } from "../../is-record.ts";
import { JsonObjectPrefix } from "./json-object-prefix.ts";

/** A call's state: waiting for its block (no `index` yet), or with its block started. */
export interface ToolBlock {
  /** Undefined until the call's block starts: its name is known and no other tool block is open. */
  index: number | undefined;
  id: string | undefined;
  name: string | undefined;
  /** The arguments sent in the block's deltas. */
  argumentsText: string;
  /** Arguments received before the block started, sent right after its content_block_start. */
  bufferedArguments: string;
  /** What of the arguments may be sent: as long as they stay one JSON object (json-object-prefix.ts). */
  readonly sendable: JsonObjectPrefix;
}

/** A call the stream has just begun: no block, no name, no arguments yet. */
export function newToolBlock(): ToolBlock {
  return {
    index: undefined,
    id: undefined,
    name: undefined,
    argumentsText: "",
    bufferedArguments: "",
    sendable: new JsonObjectPrefix(),
  };
}

/**
 * Whether streamed tool arguments are a whole JSON object: nothing but whitespace can follow, so the call's block
 * may stop. Parsing is tried only when the text ends with `}`, and only while another call waits for the block.
 */
export function isCompleteObject(argumentsText: string): boolean {
  const trimmed = argumentsText.trim();
  return trimmed.startsWith("{") && trimmed.endsWith("}") && parseJsonRecord(trimmed) !== undefined;
}

export function hasName(call: ToolBlock): boolean {
  return call.name !== undefined;
}
