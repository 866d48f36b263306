// Response headers as Node's IncomingHttpHeaders (and undici) hand them over: lower-case names; a repeated header
// may arrive as a list.
export type HeaderMap = Record<string, string | string[] | undefined>;

/**
 * The first non-empty value of a header, trimmed; `undefined` when absent or blank.
 * `name` must be lower-case, as the map's keys are.
 */
export function headerValue(headers: HeaderMap, name: string): string | undefined {
  const raw = headers[name];
  if (raw === undefined) return undefined;
  if (typeof raw === "string") return nonBlank(raw);
  for (const item of raw) {
    const value = nonBlank(item);
    if (value !== undefined) return value;
  }
  return undefined;
}

function nonBlank(text: string): string | undefined {
  const trimmed = text.trim();
  return trimmed === "" ? undefined : trimmed;
}
