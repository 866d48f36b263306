// The pairing of tool calls and results in a Messages history, as Anthropic's API checks it: each `tool_use` of an
// assistant turn is answered by a `tool_result` in the user turn right after it, and each `tool_result` answers a
// `tool_use`. Translated as they came, an unanswered call or an orphan result became a chat history every chat
// provider refuses in its own words (or a failover through every candidate); here it is Anthropic's 400, in its words.
import { InvalidRequestError } from "../../errors/gateway-error.ts";
import { isRecord } from "../../is-record.ts";
import { formatPath } from "../validate.ts";
import { anthropicPath } from "./content-blocks.ts";

/** A turn as the schema checked it; its blocks were checked by the translation (tool_use `id`, tool_result `tool_use_id`). */
interface Turn {
  readonly role: string;
  readonly content: string | readonly unknown[];
}

/** A run of consecutive turns of one role: Anthropic reads them as one turn. */
interface Run {
  readonly role: string;
  readonly indices: number[];
}

/** Throws Anthropic's 400 for the first unanswered `tool_use` or orphan `tool_result`, in the order of the history. */
export function checkToolPairing(messages: readonly Turn[]): void {
  const runs = runsOf(messages);
  const called = new Set<string>();
  for (const [position, run] of runs.entries()) {
    if (run.role === "assistant") {
      const ids = run.indices.flatMap((index) => blockIds(messages[index], "tool_use", "id"));
      for (const id of ids) called.add(id);
      const next = runs[position + 1];
      // A last assistant turn (a prefill) has no next turn to answer it: Anthropic's own check is about the next one.
      if (ids.length === 0 || next?.role !== "user") continue;
      const answered = new Set(
        next.indices.flatMap((index) => blockIds(messages[index], "tool_result", "tool_use_id")),
      );
      const missing = ids.filter((id) => !answered.has(id));
      if (missing.length > 0) {
        const path = ["messages", run.indices.at(-1) ?? 0];
        throw pairingError(
          `${anthropicPath(path)}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${shown(missing)}. Each \`tool_use\` block must have a corresponding \`tool_result\` block in the next message.`,
          path,
        );
      }
    } else if (run.role === "user") {
      for (const index of run.indices) checkResults(messages[index], index, called);
    }
  }
}

/** Each `tool_result` of a user turn answers a call made before it (any earlier one: Anthropic asks the turn before). */
function checkResults(turn: Turn | undefined, index: number, called: ReadonlySet<string>): void {
  if (turn === undefined || typeof turn.content === "string") return;
  for (const [position, block] of turn.content.entries()) {
    if (!isRecord(block) || block.type !== "tool_result" || typeof block.tool_use_id !== "string") continue;
    if (called.has(block.tool_use_id)) continue;
    const path = ["messages", index, "content", position, "tool_use_id"];
    throw pairingError(
      `${anthropicPath(path.slice(0, 4))}: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${shown([block.tool_use_id])}. Each \`tool_result\` block must have a corresponding \`tool_use\` block in the previous message.`,
      path,
    );
  }
}

function runsOf(messages: readonly Turn[]): Run[] {
  const runs: Run[] = [];
  for (const [index, turn] of messages.entries()) {
    // A `system` turn inside `messages` goes as a chat system message: it neither answers nor breaks a call's turn.
    if (turn.role === "system") continue;
    const last = runs.at(-1);
    if (last?.role === turn.role) last.indices.push(index);
    else runs.push({ role: turn.role, indices: [index] });
  }
  return runs;
}

function blockIds(turn: Turn | undefined, type: string, field: string): string[] {
  if (turn === undefined || typeof turn.content === "string") return [];
  const ids: string[] = [];
  for (const block of turn.content) {
    if (isRecord(block) && block.type === type && typeof block[field] === "string") ids.push(block[field]);
  }
  return ids;
}

/** The ids as Anthropic lists them, each bounded (a client's id may be long), at most 10 of them. */
function shown(ids: readonly string[]): string {
  const listed = ids.slice(0, 10).map((id) => id.slice(0, 80));
  return ids.length > 10 ? `${listed.join(", ")}, and ${ids.length - 10} more` : listed.join(", ");
}

function pairingError(message: string, path: readonly PropertyKey[]): InvalidRequestError {
  return new InvalidRequestError(message, { param: formatPath(path), code: "invalid_value" });
}
