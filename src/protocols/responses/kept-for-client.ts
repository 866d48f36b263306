// The kept responses as one named client may see them (a view over KeptResponses).

import { type KeptResponses, NO_EVENTS } from "./kept-responses.ts";
import type { NotKeptAnswer } from "./not-kept-answers.ts";
import type { StoredResponse } from "./response-store.ts";

/**
 * The kept responses as one client sees them: a named client reads, continues from and deletes only the responses
 * it created (their ids and items are found nowhere else, as its request records are not), and what it keeps is
 * marked as its own. An unnamed key (null) sees every response, as it sees every record.
 */
export function forClient(kept: KeptResponses, client: string | null): KeptResponses {
  const notKept = (id: string): NotKeptAnswer | undefined => {
    const found = kept.notKept(id);
    return client === null || found?.client === client ? found : undefined;
  };
  // One this client was answered but the store failed to keep reads as absent, whether or not the store can be
  // reached (the caller says why); another client's is the store's 503 while it is down, as any id is: a named
  // client learns nothing of another's answers (it was a 404 for those ids, a 503 for the rest).
  const notKeptItem = (itemId: string): NotKeptAnswer | undefined => {
    const found = kept.notKeptItem?.(itemId);
    return client === null || found?.client === client ? found : undefined;
  };
  const get: KeptResponses["get"] = async (id, from, options) => {
    try {
      return await kept.get(id, from, options);
    } catch (error) {
      if (notKept(id) !== undefined) return undefined;
      throw error;
    }
  };
  // The same for `item_reference`: items only of answers this client was told were not kept read as absent.
  const responseWithItem: KeptResponses["responseWithItem"] = async (id) => {
    try {
      return await kept.responseWithItem(id);
    } catch (error) {
      if (notKeptItem(id) !== undefined) return undefined;
      throw error;
    }
  };
  const idsWithItems = kept.responseIdsWithItems?.bind(kept);
  const responseIdsWithItems =
    idsWithItems === undefined
      ? {}
      : {
          responseIdsWithItems: async (ids: readonly string[]) => {
            try {
              return await idsWithItems(ids);
            } catch (error) {
              if (ids.every((id) => notKeptItem(id) !== undefined)) return ids.map(() => undefined);
              throw error;
            }
          },
        };
  if (client === null) return { ...kept, get, responseWithItem, ...responseIdsWithItems, notKeptItem };
  const own = (stored: StoredResponse | undefined) => (stored?.client === client ? stored : undefined);
  return {
    get: async (id, from) => own(await get(id, from)),
    findItem: async (id) => own(await responseWithItem(id))?.response.output.find((item) => item.id === id),
    responseWithItem: async (id) => own(await responseWithItem(id)),
    // Only ids: the responses are then read by `get`, which keeps another client's out.
    ...responseIdsWithItems,
    put: (stored, whole) => kept.put({ ...stored, client }, whole === undefined ? undefined : { ...whole, client }),
    notKept,
    notKeptItem,
    putIfUnchanged: (stored, expected, notAfterMs) => kept.putIfUnchanged({ ...stored, client }, expected, notAfterMs),
    delete: async (id) => (own(await get(id, NO_EVENTS)) === undefined ? false : kept.delete(id)),
  };
}
