// A kept response continuing another (`previous_response_id`) holds its own turn (its input and output messages) and
// the ids of the responses before it back to the last one kept whole, not the whole chain: holding the chain in every
// row wrote O(n²) bytes over n turns (27.8 MB for 200 turns of ~600 B). Every CHAIN_WHOLE_EVERY turns a row holds
// the whole history again, so a read takes at most that many rows (in one round, their ids being in the row) and a
// chain keeps ~n²/(2K) turns' messages. What needs the whole input (a continuation, GET input_items, the duplicate
// check) rebuilds it here; a link gone (deleted, evicted, expired) is a 400 naming it, never a shorter history.
import { InvalidRequestError } from "../../errors/gateway-error.ts";
import type { ChatMessage } from "../chat-completions.ts";
import { type KeptResponses, NO_EVENTS } from "./kept-responses.ts";
import type { KeptChainHistory, StoredResponse } from "./response-store.ts";

/**
 * Every this many turns of a chain a kept row holds the whole history again (the others: a pointer). A fixed count,
 * not "when the turns since the last whole row outweigh a whole row": those turns together never outweigh the whole
 * history they are part of, and a size rule would let a chain of short turns grow its reads without bound. 16 keeps a
 * read to at most 15 rows in one round and the bytes kept to ~1/16 of the whole chain in every row.
 */
export const CHAIN_WHOLE_EVERY = 16;

/**
 * What a response continuing `previous` (its row as kept: `raw`, and rebuilt whole) keeps: its own messages (those
 * past the previous history) and the pointer, or, every CHAIN_WHOLE_EVERY turns, the whole conversation. A previous
 * response on a `conversation` (whose history lives there) or without a kept row keeps the whole conversation.
 */
export function keptChainTurn(
  conversation: readonly ChatMessage[],
  previous: PreviousTurn | undefined,
): { conversation: ChatMessage[]; chainHistory?: KeptChainHistory } {
  const raw = previous?.raw;
  if (previous === undefined || raw === undefined || raw.conversationHistory !== undefined) {
    return { conversation: [...conversation] };
  }
  const previousIds = [...(raw.chainHistory?.previousIds ?? []), raw.response.id];
  if (previousIds.length >= CHAIN_WHOLE_EVERY) return { conversation: [...conversation] };
  return { conversation: conversation.slice(previous.historyLength), chainHistory: { previousIds } };
}

/** Raised where a chain's earlier turn is no longer kept: a 400 as an unknown `previous_response_id` is. */
export function missingLink(missingId: string, readId: string): InvalidRequestError {
  return new InvalidRequestError(
    `Previous response with id '${missingId}' not found: response '${readId}' continues it and cannot be read without it (it was deleted, evicted from the store of kept responses past responses.store.max_bytes or max_entries, or expired past max_age_ms); send the conversation in \`input\` instead.`,
    { param: "previous_response_id", code: "previous_response_not_found" },
  );
}

/**
 * The response with its whole history again: the rows its chain history names, read at once (by `kept.get`: a caller
 * rebuilding several responses of one chain passes one that reads each row once), their turns before its own. A row
 * kept whole is returned as it is. Throws missingLink when one of them is gone.
 */
export async function withChainHistory(
  kept: Pick<KeptResponses, "get">,
  stored: StoredResponse,
): Promise<StoredResponse> {
  const { chainHistory, ...rest } = stored;
  if (chainHistory === undefined) return stored;
  const links = await Promise.all(chainHistory.previousIds.map((id) => kept.get(id, NO_EVENTS)));
  const conversation: ChatMessage[] = [];
  for (const [index, link] of links.entries()) {
    const id = chainHistory.previousIds[index] ?? "";
    // A row written again since (the same id) that no longer points where it did is not this chain's link.
    const isWholeRow = index === 0;
    if (link === undefined || (link.chainHistory === undefined) !== isWholeRow)
      throw missingLink(id, stored.response.id);
    conversation.push(...link.conversation);
  }
  conversation.push(...stored.conversation);
  return { ...rest, conversation };
}

/** The response a request continues: its row as kept, and how many messages its history holds rebuilt. */
export interface PreviousTurn {
  readonly raw: StoredResponse | undefined;
  readonly historyLength: number;
}

/** The previous row's raw and rebuilt forms, as keptChainTurn takes them. */
export function chainPrevious(
  raw: StoredResponse | undefined,
  whole: StoredResponse | undefined,
): PreviousTurn | undefined {
  return whole === undefined ? undefined : { raw, historyLength: whole.conversation.length };
}
