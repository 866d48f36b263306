// Incremental Server-Sent Events parser (WHATWG "event stream interpretation") for upstream LLM streams.
// It sits on the hot path and sees every upstream byte, hence the index-based scanning below.
import { isAscii } from "node:buffer";

export interface SseEvent {
  data: string;
  /** The `event:` field; absent when the event had none (the spec then calls it "message"). */
  event?: string;
  /** The last event ID; like the spec's, it persists across events until another `id:` line changes it. */
  id?: string;
}

export interface SseFinishResult {
  /** Bytes of an event that was never dispatched were pending: the stream ended mid-event. */
  hadPartialEvent: boolean;
}

/** A line or an event grew past the parser's bound (`upstream_limits.max_stream_event_chars`). */
export class SseLimitError extends Error {
  readonly maxChars: number;
  constructor(what: "line" | "event", maxChars: number) {
    super(`an event stream ${what} longer than max_stream_event_chars (${maxChars} characters)`);
    this.name = "SseLimitError";
    this.maxChars = maxChars;
  }
}

export interface SseParserOptions {
  /**
   * Characters one line, and one event's data, may have. Past it `push` throws an SseLimitError: an upstream
   * sending `data: ` and then bytes without a newline must not grow memory without end.
   */
  readonly maxEventChars?: number;
}

const LINE_FEED = 10;
/** `data: ` before an event's data and the blank line after it: what bytesOf counts per event. */
const CANONICAL_FRAME_CHARS = 8;
const SPACE = 32;
const COLON = 58;
const BYTE_ORDER_MARK = 0xfeff;
const LOWERCASE_A = 97;
const LOWERCASE_D = 100;
const LOWERCASE_T = 116;

export class SseParser {
  readonly #onEvent: (event: SseEvent) => void;
  readonly #maxEventChars: number;
  #decoder = new TextDecoder("utf-8");

  // The unterminated last line, kept as pieces: a long line arriving in many small chunks is joined once when
  // its line end arrives, instead of being re-concatenated (and re-scanned) on every chunk.
  #pendingLineParts: string[] = [];
  #pendingLineChars = 0;
  // A chunk ended in `\r`: if the next text starts with `\n`, that `\n` belongs to the same line end.
  #isCarriageReturnPending = false;
  #isStreamStart = true;

  #data = "";
  #hasData = false;
  #eventType = "";
  #lastEventId = "";
  // Any field line (not a comment, not blank) was seen since the last blank line.
  #hasPendingFields = false;
  #completedLines = 0;
  // The last push, while its bytes are nothing but whole `data: <data>` events (see bytesOf): those bytes, and the
  // data of each event they held, in order. Undefined from the first line that breaks the form.
  #lastBytes: Uint8Array | undefined;
  readonly #lastData: string[] = [];

  constructor(onEvent: (event: SseEvent) => void, options: SseParserOptions = {}) {
    this.#onEvent = onEvent;
    this.#maxEventChars = options.maxEventChars ?? Number.POSITIVE_INFINITY;
  }

  /**
   * Feeds the next chunk of the stream; complete events are passed to `onEvent` synchronously.
   * Bytes are decoded as a UTF-8 stream (a character split across chunks is fine); strings are taken as decoded
   * text. Do not interleave strings with byte chunks that end inside a multibyte character. If `onEvent` throws,
   * the error propagates and the rest of this chunk is dropped.
   */
  push(chunk: Uint8Array | string): void {
    this.#lastData.length = 0;
    if (typeof chunk === "string") {
      this.#lastBytes = undefined;
      // TextDecoder drops a leading byte order mark of byte input itself; do the same for text input.
      if (this.#isStreamStart && chunk.charCodeAt(0) === BYTE_ORDER_MARK) chunk = chunk.slice(1);
      this.#pushText(chunk);
    } else {
      // Only from an event's start, and in ASCII: then the text is the bytes, character for byte (bytes the decoder
      // held from the chunk before come out first as U+FFFD, which no line of the form starts with).
      const isAtEventStart =
        this.#pendingLineParts.length === 0 && !this.#hasPendingFields && !this.#isCarriageReturnPending;
      this.#lastBytes = isAtEventStart && isAscii(chunk) ? chunk : undefined;
      // An event left open at the end is no event of this push's, and the next push does not start at one.
      this.#pushText(this.#decoder.decode(chunk, { stream: true }));
    }
  }

  /**
   * The leading bytes of the last pushed chunk that hold exactly `events`, when each is an event of that chunk as it
   * came, in order from its first: the chunk was nothing but events of one `data: <data>` line each and a blank line
   * (no other field, comment, `\r`, or event begun in another chunk; one left open at its end is none of them), in
   * ASCII. Those bytes are what writing the same
   * events again as `data: <data>\n\n` (sse-format.ts `sseData`) would produce, so a writer may send them as they
   * came instead of building and encoding that text (the chat door: bench/README.md, section 49). Undefined otherwise,
   * and for none.
   */
  bytesOf(events: readonly { readonly data: string }[]): Uint8Array | undefined {
    const bytes = this.#lastBytes;
    if (bytes === undefined || events.length === 0 || events.length > this.#lastData.length) return undefined;
    let end = 0;
    for (let index = 0; index < events.length; index++) {
      const data = this.#lastData[index] as string;
      if ((events[index] as { readonly data: string }).data !== data) return undefined;
      end += data.length + CANONICAL_FRAME_CHARS;
    }
    return bytes.subarray(0, end);
  }

  /**
   * Lines (events, fields, comments, blank lines) completed so far: the relay's measure of progress, so that
   * bytes trickled into one endless line do not count as a live stream.
   */
  get completedLines(): number {
    return this.#completedLines;
  }

  /**
   * Ends the stream. Per the spec, an event not terminated by a blank line is discarded, not dispatched; the
   * result says whether that happened (a truncated upstream stream). The parser is reset and may be reused.
   */
  finish(): SseFinishResult {
    this.#lastBytes = undefined;
    this.#lastData.length = 0;
    // Flushes an incomplete UTF-8 sequence as U+FFFD, which then counts as a pending partial line.
    this.#pushText(this.#decoder.decode());
    let hadPartialEvent = this.#hasPendingFields;
    if (!hadPartialEvent && this.#pendingLineParts.length > 0) {
      // An unterminated comment (`: keep-alive` without a newline) is not part of an event.
      const firstPart = this.#pendingLineParts[0] ?? "";
      hadPartialEvent = firstPart.charCodeAt(0) !== COLON;
    }
    this.#decoder = new TextDecoder("utf-8");
    this.#pendingLineParts = [];
    this.#pendingLineChars = 0;
    this.#isCarriageReturnPending = false;
    this.#isStreamStart = true;
    this.#data = "";
    this.#hasData = false;
    this.#eventType = "";
    this.#lastEventId = "";
    this.#hasPendingFields = false;
    return { hadPartialEvent };
  }

  #pushText(text: string): void {
    const length = text.length;
    if (length === 0) return;
    this.#isStreamStart = false;

    let lineStart = 0;
    if (this.#isCarriageReturnPending) {
      this.#isCarriageReturnPending = false;
      if (text.charCodeAt(0) === LINE_FEED) lineStart = 1;
    }

    // Next `\n` and `\r` positions, each searched natively and only again once passed: linear in the text.
    let nextLineFeed = text.indexOf("\n", lineStart);
    let nextCarriageReturn = text.indexOf("\r", lineStart);
    // The form bytesOf passes on has `\n` line ends only.
    if (nextCarriageReturn !== -1) this.#lastBytes = undefined;

    while (nextLineFeed !== -1 || nextCarriageReturn !== -1) {
      let lineEnd: number;
      let nextLineStart: number;
      if (nextCarriageReturn === -1 || (nextLineFeed !== -1 && nextLineFeed < nextCarriageReturn)) {
        lineEnd = nextLineFeed;
        nextLineStart = lineEnd + 1;
      } else {
        lineEnd = nextCarriageReturn;
        nextLineStart = lineEnd + 1;
        if (nextLineStart === length) this.#isCarriageReturnPending = true;
        else if (text.charCodeAt(nextLineStart) === LINE_FEED) nextLineStart++;
      }

      if (this.#pendingLineParts.length > 0) {
        this.#pendingLineParts.push(text.slice(lineStart, lineEnd));
        const line = this.#pendingLineParts.join("");
        this.#pendingLineParts.length = 0;
        this.#pendingLineChars = 0;
        this.#processLine(line, 0, line.length);
      } else {
        this.#processLine(text, lineStart, lineEnd);
      }

      lineStart = nextLineStart;
      if (nextLineFeed !== -1 && nextLineFeed < lineStart) nextLineFeed = text.indexOf("\n", lineStart);
      if (nextCarriageReturn !== -1 && nextCarriageReturn < lineStart) {
        nextCarriageReturn = text.indexOf("\r", lineStart);
      }
    }

    if (lineStart < length) {
      this.#pendingLineChars += length - lineStart;
      if (this.#pendingLineChars > this.#maxEventChars) throw new SseLimitError("line", this.#maxEventChars);
      this.#pendingLineParts.push(lineStart === 0 ? text : text.slice(lineStart));
    }
  }

  /** Interprets `text[start, end)`, one line without its line end. */
  #processLine(text: string, start: number, end: number): void {
    if (end - start > this.#maxEventChars) throw new SseLimitError("line", this.#maxEventChars);
    this.#completedLines++;
    if (start === end) {
      this.#dispatch();
      return;
    }
    if (text.charCodeAt(start) === COLON) {
      this.#lastBytes = undefined;
      return;
    }
    this.#hasPendingFields = true;

    // Fast path for nearly every upstream line, `data: ...`. The character at `end` is a line end (or past the
    // text), never a colon or a space, so these reads cannot match beyond the line.
    if (
      text.charCodeAt(start + 4) === COLON &&
      text.charCodeAt(start) === LOWERCASE_D &&
      text.charCodeAt(start + 1) === LOWERCASE_A &&
      text.charCodeAt(start + 2) === LOWERCASE_T &&
      text.charCodeAt(start + 3) === LOWERCASE_A
    ) {
      const hasSpace = text.charCodeAt(start + 5) === SPACE;
      // Only `data: ` and one data line per event are written again as they came (sseData's form).
      if (!hasSpace || this.#hasData) this.#lastBytes = undefined;
      this.#appendData(text.slice(hasSpace ? start + 6 : start + 5, end));
      return;
    }
    this.#lastBytes = undefined;

    // Field names are short, so this loop stops early on every real line.
    let nameEnd = start;
    while (nameEnd < end && text.charCodeAt(nameEnd) !== COLON) nameEnd++;
    let valueStart = nameEnd;
    if (nameEnd < end) {
      valueStart = nameEnd + 1;
      if (valueStart < end && text.charCodeAt(valueStart) === SPACE) valueStart++;
    }
    const nameLength = nameEnd - start;

    if (nameLength === 4 && text.startsWith("data", start)) {
      this.#appendData(text.slice(valueStart, end));
    } else if (nameLength === 5 && text.startsWith("event", start)) {
      this.#eventType = text.slice(valueStart, end);
    } else if (nameLength === 2 && text.startsWith("id", start)) {
      const value = text.slice(valueStart, end);
      // The spec ignores IDs containing NULL.
      if (!value.includes("\u0000")) this.#lastEventId = value;
    }
    // `retry` and unknown fields are ignored: the gateway never reconnects an upstream stream by itself.
  }

  #appendData(value: string): void {
    if (this.#hasData && this.#data.length + value.length + 1 > this.#maxEventChars) {
      throw new SseLimitError("event", this.#maxEventChars);
    }
    if (this.#hasData) {
      this.#data += `\n${value}`;
    } else {
      this.#data = value;
      this.#hasData = true;
    }
  }

  #dispatch(): void {
    this.#hasPendingFields = false;
    if (!this.#hasData) {
      // A blank line that ends no event: bytes no event holds.
      this.#lastBytes = undefined;
      this.#eventType = "";
      return;
    }
    if (this.#lastBytes !== undefined) this.#lastData.push(this.#data);
    const event: SseEvent = { data: this.#data };
    if (this.#eventType !== "") event.event = this.#eventType;
    if (this.#lastEventId !== "") event.id = this.#lastEventId;
    this.#data = "";
    this.#hasData = false;
    this.#eventType = "";
    // Called last, so the parser is consistent even if the callback throws.
    this.#onEvent(event);
  }
}
