// How many tool calls a Responses answer may hold: one with `parallel_tool_calls: false`, `max_tool_calls` at most.
// Chat providers are sent `parallel_tool_calls: false`, but many ignore it (open-model hosts, some proxies) and answer
// several calls where OpenAI answers one; a client that sent false runs one call per turn and may not expect more.
// The first calls are kept, the rest dropped before translation (JSON and streamed alike): the model is asked again
// for what it still needs in the next turn, after the kept call's output. docs/protocols.md "Tool call limits".
import { firstChoice } from "../../chat-choice.ts";
import { isRecord } from "../../is-record.ts";
import { readChatChunk } from "../chat-completions.ts";
import { type StreamedCall, StreamedToolCalls } from "../streamed-tool-calls.ts";
import { type ResponsesStreamOptions, ResponsesStreamTranslator } from "./stream-mapping.ts";

/** The most tool calls an answer may hold; undefined: no limit. */
export function toolCallLimitOf(request: {
  readonly parallel_tool_calls?: boolean | null | undefined;
  readonly max_tool_calls?: number | null | undefined;
}): number | undefined {
  const parallelLimit = request.parallel_tool_calls === false ? 1 : undefined;
  const maxCalls = typeof request.max_tool_calls === "number" ? request.max_tool_calls : undefined;
  if (parallelLimit === undefined) return maxCalls;
  return maxCalls === undefined ? parallelLimit : Math.min(parallelLimit, maxCalls);
}

/** A chat completion with its first choice's tool calls past `limit` left out (the answer itself is not changed). */
export function limitAnswerToolCalls(answer: unknown, limit: number | undefined): unknown {
  if (limit === undefined || !isRecord(answer) || !Array.isArray(answer.choices)) return answer;
  const choice = firstChoice(answer.choices);
  const message = choice?.message;
  if (choice === undefined || !isRecord(message) || !Array.isArray(message.tool_calls)) return answer;
  if (message.tool_calls.length <= limit) return answer;
  const { tool_calls: calls, ...rest } = message;
  const kept = calls.slice(0, limit);
  const limited = { ...choice, message: kept.length === 0 ? rest : { ...rest, tool_calls: kept } };
  return { ...answer, choices: answer.choices.map((each: unknown) => (each === choice ? limited : each)) };
}

/**
 * Streamed chunks with the deltas of calls past `limit` left out. Calls are told apart as the translator tells them
 * (streamed-tool-calls.ts: an index, a new id, a name after a whole call), so a kept call keeps every one of its deltas
 * however the provider numbers them.
 */
export class StreamedToolCallLimit {
  readonly #limit: number;
  readonly #calls = new StreamedToolCalls<StreamedCall>();

  constructor(limit: number) {
    this.#limit = limit;
  }

  filter(chunk: unknown): unknown {
    if (!isRecord(chunk) || !Array.isArray(chunk.choices)) return chunk;
    const choice = firstChoice(chunk.choices);
    const delta = choice?.delta;
    if (choice === undefined || !isRecord(delta) || !Array.isArray(delta.tool_calls)) return chunk;
    const kept = delta.tool_calls.filter((raw: unknown) => this.#isKept(raw));
    if (kept.length === delta.tool_calls.length) return chunk;
    const { tool_calls: _calls, ...rest } = delta;
    const limited = { ...choice, delta: kept.length === 0 ? rest : { ...rest, tool_calls: kept } };
    return { ...chunk, choices: chunk.choices.map((each: unknown) => (each === choice ? limited : each)) };
  }

  #isKept(raw: unknown): boolean {
    // Read as the translator reads it (readChatChunk), one delta at a time.
    const [delta] = readChatChunk({ choices: [{ index: 0, delta: { tool_calls: [raw] } }] }).toolCalls;
    if (delta === undefined) return true;
    const call = this.#calls.callFor(delta, () => ({ id: undefined, name: undefined }));
    return this.#calls.all.indexOf(call) < this.#limit;
  }
}

/** The stream translator, fed each chunk without the calls past the request's limit. */
export class LimitedResponsesStream extends ResponsesStreamTranslator {
  readonly #limit: StreamedToolCallLimit;

  constructor(options: ResponsesStreamOptions, limit: number) {
    super(options);
    this.#limit = new StreamedToolCallLimit(limit);
  }

  override push(chunk: unknown): string {
    return super.push(this.#limit.filter(chunk));
  }
}

/** A translator for the request: limited only when the request sets a limit (no copy of chunks otherwise). */
export function responsesStreamFor(
  options: ResponsesStreamOptions,
  limit: number | undefined,
): ResponsesStreamTranslator {
  return limit === undefined ? new ResponsesStreamTranslator(options) : new LimitedResponsesStream(options, limit);
}
