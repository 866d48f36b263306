// GET /v1/models in Anthropic's shape, for the clients that send `anthropic-version` (the Anthropic SDKs always do,
// OpenAI's never): `{data: [{type: "model", id, display_name, created_at}], has_more, first_id, last_id}`, paged by
// `limit` / `after_id` / `before_id` as Anthropic pages it. The OpenAI list gave the Anthropic SDK models without
// `type`, `display_name` or `created_at`, and a page without `first_id` / `last_id`.
import { InvalidRequestError } from "../../errors/gateway-error.ts";

/** A model as the gateway lists it (the OpenAI entry's fields this shape reads). */
export interface ListedModel {
  readonly id: string;
  /** Unix seconds. */
  readonly created: number;
  readonly kind: string;
  readonly endpoints: readonly string[];
}

export interface AnthropicModel {
  type: "model";
  id: string;
  /** The gateway has no display names: the public name is the one clients use. */
  display_name: string;
  /** RFC 3339, as Anthropic writes it. */
  created_at: string;
  /** The gateway's own fields, as on the OpenAI list (Anthropic's SDK ignores fields it does not know). */
  kind: string;
  endpoints: readonly string[];
}

export interface AnthropicModelPage {
  data: AnthropicModel[];
  has_more: boolean;
  first_id: string | null;
  last_id: string | null;
}

/** Anthropic's default and largest page sizes. */
const DEFAULT_LIMIT = 20;
const MAX_LIMIT = 1000;

export function toAnthropicModel(model: ListedModel): AnthropicModel {
  return {
    type: "model",
    id: model.id,
    display_name: model.id,
    created_at: new Date(model.created * 1000).toISOString(),
    kind: model.kind,
    endpoints: model.endpoints,
  };
}

/** One page of the list; `query` is the request's query string, one value per name. */
export function anthropicModelPage(
  models: readonly ListedModel[],
  query: Readonly<Record<string, string | undefined>>,
): AnthropicModelPage {
  const limit = limitOf(query.limit);
  const all = models.map(toAnthropicModel);
  let start = 0;
  let end = all.length;
  // As Anthropic: `before_id` pages backwards (the `limit` models just before it), `after_id` forwards.
  if (query.before_id !== undefined) {
    end = positionOf(all, query.before_id, "before_id");
    start = Math.max(0, end - limit);
  } else if (query.after_id !== undefined) {
    start = positionOf(all, query.after_id, "after_id") + 1;
    end = Math.min(all.length, start + limit);
  } else {
    end = Math.min(all.length, limit);
  }
  const data = all.slice(start, end);
  return {
    data,
    has_more: query.before_id !== undefined ? start > 0 : end < all.length,
    first_id: data[0]?.id ?? null,
    last_id: data.at(-1)?.id ?? null,
  };
}

function limitOf(text: string | undefined): number {
  if (text === undefined) return DEFAULT_LIMIT;
  const limit = Number(text);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
    throw new InvalidRequestError(`\`limit\` must be an integer from 1 to ${MAX_LIMIT}.`, {
      param: "limit",
      code: "invalid_value",
    });
  }
  return limit;
}

function positionOf(models: readonly AnthropicModel[], id: string, param: string): number {
  const position = models.findIndex((model) => model.id === id);
  if (position === -1) {
    // Not quoted whole: a query string may be kilobytes long.
    throw new InvalidRequestError(`\`${param}\` names no listed model: ${JSON.stringify(id.slice(0, 64))}.`, {
      param,
      code: "invalid_value",
    });
  }
  return position;
}
