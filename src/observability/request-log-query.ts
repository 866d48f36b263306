// Query parameters of GET /v1/gateway/requests, checked once: a bad value is a 400 naming the parameter.
import { InvalidRequestError } from "../errors/gateway-error.ts";
import type { RequestLogFilter } from "./request-log.ts";

export const DEFAULT_QUERY_LIMIT = 50;
export const MAX_QUERY_LIMIT = 1_000;
/** Longer names exist nowhere; a longer value is a mistake (or a probe). */
const MAX_NAME_LENGTH = 256;

const KNOWN = new Set(["model", "provider", "client", "status", "since", "limit"]);

/** `query` as Fastify parsed it (a repeated parameter arrives as an array). */
export function parseRequestLogQuery(query: Readonly<Record<string, unknown>>): RequestLogFilter {
  for (const name of Object.keys(query)) {
    if (!KNOWN.has(name)) {
      throw invalid(name, `Unknown query parameter \`${name}\`; known: model, provider, client, status, since, limit.`);
    }
  }
  const model = nameParameter(query, "model");
  const provider = nameParameter(query, "provider");
  const client = nameParameter(query, "client");
  const statusText = single(query, "status");
  let status: number | undefined;
  if (statusText !== undefined) {
    status = Number(statusText);
    if (!/^\d{3}$/.test(statusText) || status < 100 || status > 599) {
      throw invalid("status", "Query parameter `status` must be an HTTP status code, e.g. status=429.");
    }
  }
  const sinceText = single(query, "since");
  let sinceMs: number | undefined;
  if (sinceText !== undefined) {
    sinceMs = parseSince(sinceText);
    if (sinceMs === undefined) {
      throw invalid(
        "since",
        "Query parameter `since` must be an ISO 8601 time (2026-01-31T12:00:00Z) or epoch milliseconds.",
      );
    }
  }
  const limitText = single(query, "limit");
  let limit = DEFAULT_QUERY_LIMIT;
  if (limitText !== undefined) {
    limit = Number(limitText);
    if (!/^\d+$/.test(limitText) || limit < 1 || limit > MAX_QUERY_LIMIT) {
      throw invalid("limit", `Query parameter \`limit\` must be a whole number from 1 to ${MAX_QUERY_LIMIT}.`);
    }
  }
  return { model, provider, client, status, sinceMs, limit };
}

function parseSince(text: string): number | undefined {
  if (/^\d{1,15}$/.test(text)) return Number(text);
  // Date.parse accepts much more than ISO 8601 ("March 7"); require the ISO shape first.
  if (!/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(text)) return undefined;
  const ms = Date.parse(text);
  return Number.isFinite(ms) ? ms : undefined;
}

function nameParameter(query: Readonly<Record<string, unknown>>, name: string): string | undefined {
  const value = single(query, name);
  if (value === undefined) return undefined;
  if (value.length > MAX_NAME_LENGTH) {
    throw invalid(name, `Query parameter \`${name}\` is longer than ${MAX_NAME_LENGTH} characters.`);
  }
  return value;
}

function single(query: Readonly<Record<string, unknown>>, name: string): string | undefined {
  const value = query[name];
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw invalid(name, `Query parameter \`${name}\` must be given once.`);
  if (value === "") throw invalid(name, `Query parameter \`${name}\` is empty.`);
  return value;
}

function invalid(param: string, message: string): InvalidRequestError {
  return new InvalidRequestError(message, { param, code: "invalid_value" });
}
