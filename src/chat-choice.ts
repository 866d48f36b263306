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
