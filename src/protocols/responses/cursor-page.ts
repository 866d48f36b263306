// One page of a cursor-paged list, as OpenAI's list endpoints page (`limit`, `order`, `after`): a kept response's
// input items and a conversation's items are paged the same way, with the same errors.
import { InvalidRequestError } from "../../errors/gateway-error.ts";

export interface CursorQuery {
  readonly limit?: unknown;
  readonly order?: unknown;
  readonly after?: unknown;
}

export interface CursorList<T> {
  readonly object: "list";
  readonly data: T[];
  readonly first_id: string | null;
  readonly last_id: string | null;
  readonly has_more: boolean;
}

const DEFAULT_LIMIT = 20;
const MAX_LIMIT = 100;
/** An unknown `after` is quoted this far: a query may carry kilobytes of it, and the message would echo them whole. */
const QUOTED_ID_CHARS = 64;

/**
 * The page of `items` (oldest first) the query asks for: newest first unless `order=asc`, at most `limit` (1..100,
 * default 20), after the item `after` names; `unknownAfter` words the 400 for an `after` that names none (its id cut).
 */
export function cursorPage<T extends { readonly id?: unknown }>(
  items: readonly T[],
  query: CursorQuery,
  unknownAfter: (quotedId: string) => string,
  startAfterGone?: (id: string, order: "asc" | "desc", ordered: readonly T[]) => number | undefined,
): CursorList<T> {
  const limit = readLimit(query.limit);
  const order = readOrder(query.order);
  const ordered = order === "asc" ? items : [...items].reverse();
  let start = 0;
  if (query.after !== undefined) {
    if (typeof query.after !== "string") throw invalid("`after` must be an item id.", "after");
    const index = ordered.findIndex((item) => item.id === query.after);
    // `startAfterGone`: where the page after an item that was there and is gone begins (undefined: never there).
    const gone = index === -1 ? startAfterGone?.(query.after, order, ordered) : undefined;
    if (index === -1 && gone === undefined) {
      throw invalid(unknownAfter(query.after.slice(0, QUOTED_ID_CHARS)), "after");
    }
    start = gone ?? index + 1;
  }
  return listOf(ordered.slice(start, start + limit), start + limit < ordered.length);
}

export function listOf<T extends { readonly id?: unknown }>(data: T[], hasMore = false): CursorList<T> {
  return { object: "list", data, first_id: idOf(data[0]), last_id: idOf(data.at(-1)), has_more: hasMore };
}

function idOf(item: { readonly id?: unknown } | undefined): string | null {
  return typeof item?.id === "string" ? item.id : null;
}

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
