// An `item_reference` naming an item the request already has, refused as OpenAI refuses it ("Duplicate item found with
// id ..."): an output item of the response `previous_response_id` continues from (or of one before it in that chain),
// whose kept conversation already goes upstream, or an item referenced earlier in the same `input`. Sent anyway, the
// model read that turn twice (a question answered twice, a tool call made twice). Refused rather than left out, as
// OpenAI does: the client's idea of the history is wrong, and a client that de-duplicates for OpenAI does it here too.
import { InvalidRequestError } from "../../errors/gateway-error.ts";
import { isRecord } from "../../is-record.ts";
import type { ChatMessage } from "../chat-completions.ts";
import { formatPath } from "../validate.ts";
import type { ResponseLookup } from "./input-messages.ts";
import type { StoredResponse } from "./response-store.ts";

export function refuseDuplicateItems(
  input: unknown,
  previous: StoredResponse | undefined,
  lookup: ResponseLookup,
): void {
  if (!Array.isArray(input)) return;
  const seen = new Set<string>();
  for (const [index, item] of input.entries()) {
    if (!isRecord(item) || item.type !== "item_reference" || typeof item.id !== "string") continue;
    const { id } = item;
    if (seen.has(id) || isInChain(lookup.responseWithItem?.(id), previous)) {
      throw new InvalidRequestError(
        `Duplicate item found with id ${id}. Remove duplicate items from your input and try again.`,
        { param: formatPath(["input", index, "id"]), code: "duplicate_item" },
      );
    }
    seen.add(id);
  }
}

/**
 * StoredResponse.chainIds of a response continuing from `previous` (none: it starts a chain); undefined when
 * `previous` was kept without them.
 */
export function chainIdsAfter(previous: StoredResponse | undefined): readonly string[] | undefined {
  if (previous === undefined) return [];
  return previous.chainIds === undefined ? undefined : [...previous.chainIds, previous.response.id];
}

/** `owner` is `previous` or a response before it in its chain. */
function isInChain(owner: StoredResponse | undefined, previous: StoredResponse | undefined): boolean {
  if (owner === undefined || previous === undefined) return false;
  if (owner.response.id === previous.response.id) return true;
  if (previous.chainIds !== undefined) return previous.chainIds.includes(owner.response.id);
  // Kept by an earlier version, without its chain's ids: each kept conversation is the one it continued plus its own
  // input and output, so an earlier response's is where the later one's starts. Text alone: an unrelated response
  // whose history reads the same is taken as in the chain (why chainIds are kept now).
  return isPrefix(owner.conversation, previous.conversation);
}

function isPrefix(head: readonly ChatMessage[], whole: readonly ChatMessage[]): boolean {
  if (head.length === 0 || head.length > whole.length) return false;
  return head.every((message, index) => JSON.stringify(message) === JSON.stringify(whole[index]));
}
