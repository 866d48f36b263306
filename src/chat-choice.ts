// Which choice of a Chat Completions answer is "the" answer. One rule, because two places read it: the upstream
// attempt decides a 2xx is an answer (or fails over), the protocol adapters then translate that same choice; when
// they disagreed, an answer the attempt accepted could be refused by the adapter with no other candidate tried. Here
// and not in protocols/, which upstream/ may not import.
import { isRecord } from "./is-record.ts";

/**
 * The first choice whose `index` is 0 or absent (some providers leave it out), in the order sent; entries that are
 * not objects are skipped. Undefined when `choices` is not an array or holds no such choice.
 */
export function firstChoice(choices: unknown): Record<string, unknown> | undefined {
  if (!Array.isArray(choices)) return undefined;
  return (choices as readonly unknown[]).find(isFirst);
}

function isFirst(choice: unknown): choice is Record<string, unknown> {
  return isRecord(choice) && (choice.index === 0 || choice.index === undefined);
}

/**
 * A stream chunk's first choice: firstChoice's; else, when no choice's `index` is a number above 0 (with n > 1 a chunk
 * may hold the second choice alone), the one at position 0, whatever its `index` (`null`, `"0"`, -1), as the relay's
 * other readers count it (streaming/continuation-splice.ts: ChoiceTracker takes it for choice 0, hasManyChoices for a
 * stream that may be continued). Read by firstChoice alone, such a chunk's text was nobody's: a cut stream was
 * continued from no delivered text, and its client got the answer twice.
 */
export function firstChunkChoice(choices: unknown): Record<string, unknown> | undefined {
  const first = firstChoice(choices);
  if (first !== undefined || !Array.isArray(choices)) return first;
  const [head] = choices as readonly unknown[];
  if (!isRecord(head)) return undefined;
  return (choices as readonly unknown[]).some(isLaterChoice) ? undefined : head;
}

function isLaterChoice(choice: unknown): boolean {
  return isRecord(choice) && typeof choice.index === "number" && choice.index > 0;
}
