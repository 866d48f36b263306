// What a kept response holds to tell which items its chain (`previous_response_id` followed back) holds, and the
// keys a store's item index keeps its items under: the same size whatever the chain's length (duplicate-items.ts
// says how the check reads them).

/** StoredResponse.chain: what a kept response holds to tell the items its chain holds. */
export interface KeptChain {
  /** The first response of its chain (`previous_response_id` followed back); absent: this one. */
  readonly rootId?: string;
  /**
   * The ids its input items carried (inline ids, references) and those its conversation gave them
   * (conversation-appender.ts): indexed by the store as chainItemKey(root, id), so a continuation finds who brought
   * them.
   */
  readonly inputIds: readonly string[];
  /**
   * The conversation (`conversation`) its chain started in, and its chain's first response's last item there: the
   * chain holds that conversation's items up to it (the conversation is read, not copied into every response).
   */
  readonly conversation?: { readonly id: string; readonly throughItemId: string };
  /**
   * Ids its chain's responses brought that the store's index already gave to a response of another branch of the
   * chain (two continuations of one response bringing the same client id): the index keeps one response per key, the
   * first, so these are kept here instead, copied into each later response of this branch (only such ids: a branch
   * that brings no id again keeps none).
   */
  readonly carried?: readonly string[];
  /** What a row kept before 2026-12-07 that the chain continues held (its ids and its chain's), copied once. */
  readonly earlier?: { readonly itemIds: readonly string[]; readonly responseIds: readonly string[] };
}

/** What the keys are read from: a kept response (response-store.ts StoredResponse). */
interface ChainedRow {
  readonly response: { readonly id: string; readonly output: readonly { readonly id: string }[] };
  readonly chain?: KeptChain;
  readonly chainIds?: readonly string[];
}

/** The key under which a store's item index holds an input item `id` of a chain whose first response is `rootId`. */
export function chainItemKey(rootId: string, id: string): string {
  return `${rootId}/${id}`;
}

/** The first response of the chain a kept response is in; undefined for a row kept without chain ids. */
export function chainRootOf(stored: ChainedRow): string | undefined {
  if (stored.chain !== undefined) return stored.chain.rootId ?? stored.response.id;
  if (stored.chainIds !== undefined) return stored.chainIds[0] ?? stored.response.id;
  return undefined;
}

/** The keys a store indexes a kept response under: its output items' ids and its input's (chainItemKey). */
export function indexedItemKeys(stored: ChainedRow): string[] {
  const outputIds = stored.response.output.map((item) => item.id);
  const root = chainRootOf(stored);
  const inputIds = stored.chain?.inputIds ?? [];
  return root === undefined ? outputIds : [...outputIds, ...inputIds.map((id) => chainItemKey(root, id))];
}
