// Test support for the protocol mappings: reads recorded Chat Completions streams and compares translator output
// with golden files (`UPDATE_FIXTURES=1` rewrites them; review the diff before committing).
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  buildResponse,
  type OutputItem,
  type ResponseEcho,
  type ResponseObject,
} from "../responses/response-object.ts";

const CHAT_FIXTURES = import.meta.dirname;

/** The parsed chunk objects of a recorded chat stream (`data:` lines; `[DONE]` left out). */
export function readChatChunks(name: string): unknown[] {
  const text = readFileSync(join(CHAT_FIXTURES, `${name}.chunks.txt`), "utf8");
  return text
    .split("\n")
    .filter((line) => line.startsWith("data: ") && line !== "data: [DONE]")
    .map((line) => JSON.parse(line.slice("data: ".length)) as unknown);
}

export function matchesGolden(path: string, actual: string): void {
  if (process.env.UPDATE_FIXTURES === "1" || !existsSync(path)) {
    writeFileSync(path, actual);
    return;
  }
  assert.equal(actual, readFileSync(path, "utf8"), `output differs from ${path}`);
}

export interface ParsedEvent {
  event: string | undefined;
  data: Record<string, unknown>;
}

/** Splits SSE text into events; every event must be well formed (one `event:` line at most, one `data:` line). */
export function parseSse(text: string): ParsedEvent[] {
  assert.ok(text.endsWith("\n\n"), "SSE text ends with a blank line");
  return text
    .slice(0, -2)
    .split("\n\n")
    .map((block) => {
      const lines = block.split("\n");
      const eventLine = lines.find((line) => line.startsWith("event: "));
      const dataLines = lines.filter((line) => line.startsWith("data: "));
      assert.equal(dataLines.length, 1, `one data line per event: ${block}`);
      return {
        event: eventLine?.slice("event: ".length),
        data: JSON.parse((dataLines[0] as string).slice("data: ".length)) as Record<string, unknown>,
      };
    });
}

/** A fetch `Response` streaming `text`, as the SDKs' SSE parsers read one. */
export function sseResponse(text: string): Response {
  return new Response(text, { headers: { "content-type": "text/event-stream" } });
}

/** Newline-delimited JSON of `items`, as the SDKs' `fromReadableStream` helpers read it. */
export function jsonLines(items: readonly unknown[]): ReadableStream<Uint8Array> {
  const body = new Response(items.map((item) => JSON.stringify(item)).join("\n")).body;
  assert.ok(body !== null);
  return body;
}

/** A recorded non-streamed Chat Completions answer. */
export function readCompletion(name: string): unknown {
  return JSON.parse(readFileSync(join(CHAT_FIXTURES, `${name}.completion.json`), "utf8")) as unknown;
}

/** The request fields a Responses object echoes, as for a request that set none of them. */
export const DEFAULT_ECHO: ResponseEcho = Object.freeze({
  instructions: null,
  max_output_tokens: null,
  metadata: {},
  parallel_tool_calls: true,
  previous_response_id: null,
  reasoning: { effort: null, summary: null },
  store: true,
  temperature: null,
  text: { format: { type: "text" } },
  tool_choice: "auto",
  tools: [],
  top_p: null,
  truncation: "disabled",
  user: null,
});

/**
 * A completed Responses object as a store keeps it: one assistant message saying `text`, its item id `messageId`,
 * then the `more` output items.
 */
export function completedAnswer(
  id: string,
  text: string,
  messageId = `msg_out_${id}`,
  more: readonly OutputItem[] = [],
): ResponseObject {
  return buildResponse(DEFAULT_ECHO, {
    id,
    createdAtSeconds: 1,
    status: "completed",
    model: "m",
    output: [
      {
        id: messageId,
        type: "message",
        status: "completed",
        role: "assistant",
        content: [{ type: "output_text", text, annotations: [], logprobs: [] }],
      },
      ...more,
    ],
    usage: undefined,
  });
}
