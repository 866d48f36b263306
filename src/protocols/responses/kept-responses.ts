// Where kept responses live, as the Responses adapter sees it: asynchronous, so that a shared store (Redis) can
// stand in for the in-memory one. The request mapping itself stays synchronous: the ids a request refers to are
// read from its body first and fetched in one go (`prefetch`).
import type { ResponseLookup } from "./request-mapping.ts";
import type { OutputItem } from "./response-object.ts";
import type { ResponseStore, StoredResponse } from "./response-store.ts";

export interface KeptResponses {
  get(id: string): Promise<StoredResponse | undefined>;
  /** An output item of a kept response, by its id (`msg_...`, `fc_...`). */
  findItem(id: string): Promise<OutputItem | undefined>;
  put(stored: StoredResponse): Promise<void>;
  delete(id: string): Promise<boolean>;
}

export function inMemory(store: ResponseStore): KeptResponses {
  return {
    get: async (id) => store.get(id),
    findItem: async (id) => store.findItem(id),
    put: async (stored) => {
      store.put(stored);
    },
    delete: async (id) => store.delete(id),
  };
}

/** The response and item ids a Responses request body refers to, read leniently (validation comes later). */
export function referencedIds(body: unknown): { responseIds: string[]; itemIds: string[] } {
  const record = isObject(body) ? body : {};
  const responseIds = typeof record.previous_response_id === "string" ? [record.previous_response_id] : [];
  const itemIds: string[] = [];
  if (Array.isArray(record.input)) {
    for (const item of record.input) {
      if (isObject(item) && item.type === "item_reference" && typeof item.id === "string") itemIds.push(item.id);
    }
  }
  return { responseIds, itemIds };
}

/** Fetches what `body` refers to, as the synchronous lookup the request mapping reads. */
export async function prefetch(kept: KeptResponses, body: unknown): Promise<ResponseLookup> {
  const { responseIds, itemIds } = referencedIds(body);
  const responses = new Map<string, StoredResponse>();
  const items = new Map<string, OutputItem>();
  await Promise.all([
    ...responseIds.map(async (id) => {
      const found = await kept.get(id);
      if (found !== undefined) responses.set(id, found);
    }),
    ...[...new Set(itemIds)].map(async (id) => {
      const found = await kept.findItem(id);
      if (found !== undefined) items.set(id, found);
    }),
  ]);
  return { get: (id) => responses.get(id), findItem: (id) => items.get(id) };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
