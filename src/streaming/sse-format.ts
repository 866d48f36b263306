// Writing Server-Sent Events to our clients, in the OpenAI stream dialect (`data:` lines only).

/** The OpenAI end-of-stream marker. */
export const SSE_DONE = "data: [DONE]\n\n";

const LINE_BREAK = /\r\n|\r|\n/;

/**
 * One SSE event carrying `payload`: objects are JSON-encoded (JSON never contains a raw line break); a string
 * with line breaks becomes several `data:` lines, which a parser joins back with `\n`.
 */
export function sseData(payload: string | object): string {
  const text = typeof payload === "string" ? payload : JSON.stringify(payload);
  if (typeof payload === "string" && (text.includes("\n") || text.includes("\r"))) {
    return `data: ${text.split(LINE_BREAK).join("\ndata: ")}\n\n`;
  }
  return `data: ${text}\n\n`;
}
