// The one test for "a JSON object": what upstream answers, config files, stored rows and client bodies are narrowed
// with before their fields are read. Every folder may import it (it imports nothing).

/** A non-null object that is not an array (`typeof [] === "object"`), so its fields can be read by name. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/**
 * The JSON object a text holds; undefined when the text is not JSON, or is JSON of anything but an object (an array,
 * a string, a number, null). Plain JSON.parse, no reviver: a `"__proto__"` key stays an own key of the result (it
 * does not set the prototype), as everywhere else a body is parsed. Nothing is built besides the parsed value.
 */
export function parseJsonRecord(text: string): Record<string, unknown> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  return isRecord(value) ? value : undefined;
}
