// The one test for "a JSON object": what upstream answers, config files, stored rows and client bodies are narrowed
// with before their fields are read. Every folder may import it (it imports nothing).

/** A non-null object that is not an array (`typeof [] === "object"`), so its fields can be read by name. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
