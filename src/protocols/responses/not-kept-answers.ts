// The ids of answers this process sent but the store of kept responses failed to keep (a Redis down or paused, a
// disk that refused the write): a GET or a `previous_response_id` naming one is told it was not stored, instead of a
// 503 while the store is down and then the 404 of a response "never kept (`store: false`)" once it is back. Only
// this process knows (the store never had the row); bounded, oldest forgotten first.

/** Why a response named by id is not found, when `put` failed for it: the GET's 404 and the continuation's 400 say it. */
export const NOT_STORED =
  "could not be stored: the store of kept responses failed when it was answered (the answer was sent; the gateway's log says why), so it cannot be retrieved or continued from";

/** Ids remembered at most: ~50 bytes each, so well under a megabyte. */
const MAX_REMEMBERED = 10_000;

export interface NotKeptAnswer {
  /** The named client that was answered (undefined: an unnamed key): only it, or an unnamed key, is told. */
  readonly client: string | undefined;
  /** The answer's id (the response's). */
  readonly responseId: string;
  /** Its output items' ids: an `item_reference` naming one is told the answer was not stored. */
  readonly itemIds: readonly string[];
}

export class NotKeptAnswers {
  /** Insertion order is age order. */
  readonly #answers = new Map<string, NotKeptAnswer>();
  /** Output item id -> its answer (as remembered in #answers). */
  readonly #items = new Map<string, NotKeptAnswer>();

  remember(id: string, client: string | undefined, itemIds: readonly string[] = []): void {
    this.forget(id);
    const answer: NotKeptAnswer = { client, responseId: id, itemIds };
    this.#answers.set(id, answer);
    for (const itemId of itemIds) this.#items.set(itemId, answer);
    if (this.#answers.size <= MAX_REMEMBERED) return;
    const oldest = this.#answers.keys().next();
    if (oldest.done !== true) this.forget(oldest.value);
  }

  /** Kept after all (a later write of the same id landed). */
  forget(id: string): void {
    const answer = this.#answers.get(id);
    if (answer === undefined) return;
    this.#answers.delete(id);
    for (const itemId of answer.itemIds) if (this.#items.get(itemId) === answer) this.#items.delete(itemId);
  }

  get(id: string): NotKeptAnswer | undefined {
    return this.#answers.get(id);
  }

  /** The answer not kept whose output item this is. */
  ofItem(itemId: string): NotKeptAnswer | undefined {
    return this.#items.get(itemId);
  }
}
