// One line of a batch's input file read for what the batch's validation checks (batch-objects.ts checkingBatchInput),
// without building the line's object: JSON.parse of one 60 MB line held the event loop for most of a second, and a
// parse cannot be cut in pieces. This scanner reads the line's bytes a slice at a time (its caller yields to the event
// loop between slices), checks the JSON grammar as JSON.parse does, and keeps only what the validation reads: the
// top-level `custom_id`, `method`, `url`, whether `body` is an object, and `body.model`. It allocates nothing per byte;
// only those few values are decoded (with JSON.parse of their own slice, so escapes read exactly as JSON.parse reads
// them). The JSON bounds (json-shape.ts) are counted in the same pass, with the same result as jsonShapeOverBounds on
// the line's text: a bound passed anywhere is named before the line's syntax. The module stays whole: one state
// machine (its states, one loop over them, the resumable shape-only pass it falls back to) and the line's framing.
// Why not a streaming JSON library: @streamparser/json 0.0.26 (the maintained one; `paths` keeping only the four
// fields) read a 52 MB line in about the time JSON.parse takes (3.0-4.6 s against 2.8-4.4 s, loaded 2-core machine,
// 2026-12-06), building a string per token of `body`; this scanner read it in 0.15-0.5 s, and a library counts none
// of json-shape.ts's bounds, which would then need a second pass.

/** What a line's scan found. */
export interface ScannedLine {
  /** A JSON bound passed (json-shape.ts jsonShapeOverBounds on the same text says the same). */
  readonly overBounds: "deep" | "wide" | undefined;
  /** JSON.parse would take the line. */
  readonly isJson: boolean;
  /** The line is one JSON object. */
  readonly isObject: boolean;
  /** Its `custom_id` when that is a string (the last one, as JSON.parse keeps the last of a repeated name). */
  readonly customId: string | undefined;
  /** Its `method`, `url` when those are short strings (longer ones cannot be "POST" or an endpoint). */
  readonly method: string | undefined;
  readonly url: string | undefined;
  readonly isBodyObject: boolean;
  /** `body.model` when it is a string. */
  readonly model: string | undefined;
}

const NOT_AN_OBJECT: ScannedLine = {
  overBounds: undefined,
  isJson: false,
  isObject: false,
  customId: undefined,
  method: undefined,
  url: undefined,
  isBodyObject: false,
  model: undefined,
};

// The scanner's states: what the next byte may be.
const VALUE = 0; // a value (the line's start, after `:`, after `,` in an array)
const ARRAY_FIRST = 1; // a value or `]`, after `[`
const OBJECT_FIRST = 2; // a member's name or `}`, after `{`
const NAME = 3; // a member's name, after `,` in an object
const COLON = 4;
const AFTER_VALUE = 5; // `,` or the container's close
const STRING = 6;
const ESCAPE = 7; // after `\` in a string
const UNICODE = 8; // the hex digits of `\u`
const MINUS = 9; // a number after its `-`
const ZERO = 10; // a number's leading 0
const INTEGER = 11;
const DOT = 12; // after `.`: a digit must follow
const FRACTION = 13;
const EXPONENT = 14; // after `e`: a sign or a digit
const EXPONENT_SIGN = 15; // after the exponent's sign: a digit
const EXPONENT_DIGITS = 16;
const LITERAL = 17; // inside true, false or null
const DONE = 18; // the line's value ended: only whitespace may follow
const SHAPE_ONLY = 19; // not JSON: only the bounds are still counted, as jsonShapeOverBounds counts them

// The fields the validation reads, by where they are.
const NO_FIELD = 0;
const CUSTOM_ID = 1;
const METHOD = 2;
const URL = 3;
const BODY = 4;
const MODEL = 5;

/** A member's name longer than this (as written) is none of the fields read: "custom_id" escaped is 56 bytes. */
const MAX_FIELD_NAME_BYTES = 64;
/** A `method` or `url` longer than this (as written) is no endpoint: they are read only to be compared. */
const MAX_COMPARED_BYTES = 256;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** A string's bytes in the input, quotes included: [start, end]. */
interface StringSpan {
  readonly start: number;
  readonly end: number;
  readonly hasEscape: boolean;
}

/**
 * A resumable scan of input[start, end): `step` reads a slice, `result` says what was found once `isDone`. The state
 * is a few numbers and the open containers' member counts (as jsonShapeOverBounds keeps them): a line of any size
 * costs its depth in memory.
 */
export class LineScanner {
  readonly #input: Buffer;
  readonly #end: number;
  readonly #maxDepth: number;
  readonly #maxMembers: number;
  #at: number;
  #state = VALUE;
  /** Each open container's members so far (an object), or -1 (an array). */
  readonly #members: number[] = [];
  #overBounds: "deep" | "wide" | undefined;
  #isJson = true;
  #isObject = false;
  // A string being read.
  #stringStart = 0;
  #stringHasEscape = false;
  #isName = false;
  #unicodeLeft = 0;
  #literal = "";
  #literalAt = 0;
  // The field whose name was read last at the levels watched, and the one whose string value is being read.
  #nameField = NO_FIELD;
  #stringField = NO_FIELD;
  #isInBody = false;
  #customId: StringSpan | undefined;
  #method: StringSpan | undefined;
  #url: StringSpan | undefined;
  #isBodyObject = false;
  #model: StringSpan | undefined;
  // SHAPE_ONLY's own state: inside a string, after a backslash there.
  #isShapeInString = false;
  #isShapeEscaped = false;

  constructor(input: Buffer, start: number, end: number, maxDepth: number, maxMembers: number) {
    this.#input = input;
    this.#at = start;
    this.#end = end;
    this.#maxDepth = maxDepth;
    this.#maxMembers = maxMembers;
  }

  get isDone(): boolean {
    return this.#at >= this.#end || this.#overBounds !== undefined;
  }

  /** Reads up to `maxBytes` more bytes; the bytes read (a slice's cost, for the caller's turns of the event loop). */
  step(maxBytes: number): number {
    const from = this.#at;
    const limit = Math.min(this.#end, from + maxBytes);
    if (this.#state === SHAPE_ONLY) this.#shapeOnly(limit);
    else this.#validate(limit);
    return this.#at - from;
  }

  result(): ScannedLine {
    const steps = this.reading({ bytesLeft: Number.POSITIVE_INFINITY }, Number.POSITIVE_INFINITY);
    for (;;) {
      const step = steps.next();
      if (step.done === true) return step.value;
    }
  }

  /**
   * What was found once `isDone`, its `custom_id` and `body.model` decoded `budget.bytesLeft` bytes at a time (as
   * `step` reads): a line whose custom_id and model were 40 MB each was scanned in slices, then held the event loop
   * 1.1-2.7 s while both were decoded in one step.
   */
  *reading(budget: { bytesLeft: number }, stepBytes: number): Generator<void, ScannedLine, void> {
    // A number ends at the line's end, as at any byte that is not part of it.
    if (this.#overBounds === undefined && this.#isNumberEnding()) this.#valueDone();
    const isJson = this.#overBounds === undefined && this.#isJson && this.#state === DONE;
    // The fields of a line that is no JSON object are none: what was read before its fault is not the line's.
    if (!isJson || !this.#isObject) {
      return { ...NOT_AN_OBJECT, overBounds: this.#overBounds, isJson };
    }
    const customId =
      this.#customId === undefined ? undefined : yield* this.#decoding(this.#customId, budget, stepBytes);
    const model = this.#model === undefined ? undefined : yield* this.#decoding(this.#model, budget, stepBytes);
    return {
      overBounds: undefined,
      isJson,
      isObject: true,
      customId,
      method: this.#decoded(this.#method, MAX_COMPARED_BYTES),
      url: this.#decoded(this.#url, MAX_COMPARED_BYTES),
      isBodyObject: this.#isBodyObject,
      model,
    };
  }

  /**
   * A string's value in pieces of about `budget.bytesLeft` bytes, each decoded alone and joined (V8 joins without a
   * copy): a piece never ends inside a UTF-8 character or an escape, and each is read as JSON.parse reads it (a
   * surrogate pair split between two pieces gives the same two code units).
   */
  *#decoding(span: StringSpan, budget: { bytesLeft: number }, stepBytes: number): Generator<void, string, void> {
    const input = this.#input;
    let text = "";
    for (let at = span.start + 1; at < span.end; ) {
      if (budget.bytesLeft <= 0) {
        yield;
        budget.bytesLeft = stepBytes;
      }
      // At least one escape or character whole, whatever is left of the budget.
      const to = pieceEnd(input, at, Math.min(span.end, at + Math.max(budget.bytesLeft, MIN_PIECE_BYTES)), span);
      text += span.hasEscape
        ? (JSON.parse(`"${input.toString("utf8", at, to)}"`) as string)
        : input.toString("utf8", at, to);
      budget.bytesLeft -= to - at;
      at = to;
    }
    return text;
  }

  /**
   * The grammar, byte by byte. One long loop on purpose: the hot paths (a string's plain bytes, above all) stay
   * inside it, with no call per byte.
   */
  #validate(limit: number): void {
    const input = this.#input;
    let at = this.#at;
    while (at < limit) {
      const byte = input[at] ?? 0;
      switch (this.#state) {
        case STRING: {
          // The plain bytes of a string, the bulk of a large line, in a tight loop.
          let next = at;
          let code = byte;
          while (code !== QUOTE && code !== BACKSLASH && code >= 0x20) {
            next += 1;
            if (next >= limit) break;
            code = input[next] ?? 0;
          }
          at = next;
          if (at >= limit) continue;
          if (code === QUOTE) this.#stringDone(at);
          else if (code === BACKSLASH) {
            this.#stringHasEscape = true;
            this.#state = ESCAPE;
          } else {
            this.#at = at;
            this.#notJson();
            return;
          }
          at += 1;
          continue;
        }
        case ESCAPE:
          if (byte === 0x75) {
            this.#state = UNICODE;
            this.#unicodeLeft = 4;
          } else if (isSimpleEscape(byte)) this.#state = STRING;
          else {
            this.#failAt(at);
            return;
          }
          at += 1;
          continue;
        case UNICODE:
          if (!isHexDigit(byte)) {
            this.#failAt(at);
            return;
          }
          this.#unicodeLeft -= 1;
          if (this.#unicodeLeft === 0) this.#state = STRING;
          at += 1;
          continue;
        case MINUS:
          if (byte === 0x30) this.#state = ZERO;
          else if (isDigit(byte)) this.#state = INTEGER;
          else {
            this.#failAt(at);
            return;
          }
          at += 1;
          continue;
        case ZERO:
        case INTEGER:
        case FRACTION:
        case EXPONENT_DIGITS:
          if (isDigit(byte) && this.#state !== ZERO) {
            at += 1;
            continue;
          }
          if (byte === 0x2e && (this.#state === ZERO || this.#state === INTEGER)) this.#state = DOT;
          else if ((byte === 0x65 || byte === 0x45) && this.#state !== EXPONENT_DIGITS) this.#state = EXPONENT;
          else {
            // The number ended: this byte is read again after it.
            this.#valueDone();
            continue;
          }
          at += 1;
          continue;
        case DOT:
          if (!isDigit(byte)) {
            this.#failAt(at);
            return;
          }
          this.#state = FRACTION;
          at += 1;
          continue;
        case EXPONENT:
          if (byte === 0x2b || byte === 0x2d) this.#state = EXPONENT_SIGN;
          else if (isDigit(byte)) this.#state = EXPONENT_DIGITS;
          else {
            this.#failAt(at);
            return;
          }
          at += 1;
          continue;
        case EXPONENT_SIGN:
          if (!isDigit(byte)) {
            this.#failAt(at);
            return;
          }
          this.#state = EXPONENT_DIGITS;
          at += 1;
          continue;
        case LITERAL:
          if (byte !== this.#literal.charCodeAt(this.#literalAt)) {
            this.#failAt(at);
            return;
          }
          this.#literalAt += 1;
          if (this.#literalAt === this.#literal.length) this.#valueDone();
          at += 1;
          continue;
      }
      if (isWhitespace(byte)) {
        at += 1;
        continue;
      }
      switch (this.#state) {
        case VALUE:
        case ARRAY_FIRST:
          if (byte === 0x5d && this.#state === ARRAY_FIRST) this.#close();
          else if (!this.#valueStarts(byte, at)) {
            this.#failAt(at);
            return;
          }
          break;
        case OBJECT_FIRST:
        case NAME:
          if (byte === QUOTE) {
            this.#isName = true;
            this.#stringStarts(at);
          } else if (byte === 0x7d && this.#state === OBJECT_FIRST) this.#close();
          else {
            this.#failAt(at);
            return;
          }
          break;
        case COLON: {
          if (byte !== 0x3a) {
            this.#failAt(at);
            return;
          }
          const top = this.#members.length - 1;
          const count = (this.#members[top] ?? 0) + 1;
          if (count > this.#maxMembers) {
            this.#overBounds = "wide";
            this.#at = at;
            return;
          }
          this.#members[top] = count;
          this.#state = VALUE;
          break;
        }
        case AFTER_VALUE: {
          const isInObject = (this.#members.at(-1) ?? -1) >= 0;
          if (byte === 0x2c) this.#state = isInObject ? NAME : VALUE;
          else if ((byte === 0x7d && isInObject) || (byte === 0x5d && !isInObject)) this.#close();
          else {
            this.#failAt(at);
            return;
          }
          break;
        }
        default: {
          // DONE: anything but whitespace after the line's value.
          this.#failAt(at);
          return;
        }
      }
      if (this.#overBounds !== undefined) {
        this.#at = at;
        return;
      }
      at += 1;
    }
    this.#at = at;
  }

  /** A value's first byte; false when no value starts so. */
  #valueStarts(byte: number, at: number): boolean {
    const field = this.#fieldOfValue();
    if (byte === QUOTE) {
      this.#isName = false;
      this.#stringField = field;
      this.#stringStarts(at);
      if (field === BODY) {
        this.#isBodyObject = false;
        this.#model = undefined;
      }
      return true;
    }
    // Any other value of a field read is not a string: JSON.parse keeps the last value of a repeated name.
    if (field === CUSTOM_ID) this.#customId = undefined;
    else if (field === METHOD) this.#method = undefined;
    else if (field === URL) this.#url = undefined;
    else if (field === MODEL) this.#model = undefined;
    else if (field === BODY) {
      this.#isBodyObject = byte === 0x7b;
      this.#model = undefined;
      this.#isInBody = byte === 0x7b;
    }
    if (byte === 0x7b || byte === 0x5b) {
      if (this.#members.length === 0 && byte === 0x7b) this.#isObject = true;
      this.#members.push(byte === 0x7b ? 0 : -1);
      if (this.#members.length > this.#maxDepth) this.#overBounds = "deep";
      this.#state = byte === 0x7b ? OBJECT_FIRST : ARRAY_FIRST;
      return true;
    }
    if (byte === 0x2d) this.#state = MINUS;
    else if (byte === 0x30) this.#state = ZERO;
    else if (isDigit(byte)) this.#state = INTEGER;
    else if (byte === 0x74 || byte === 0x66 || byte === 0x6e) {
      this.#literal = byte === 0x74 ? "true" : byte === 0x66 ? "false" : "null";
      this.#literalAt = 1;
      this.#state = LITERAL;
    } else return false;
    return true;
  }

  /** The field a value at this place is (the line's own members, and `body`'s). */
  #fieldOfValue(): number {
    const depth = this.#members.length;
    if (depth === 1 && (this.#members[0] ?? -1) >= 0) return this.#nameField;
    if (depth === 2 && this.#isInBody) return this.#nameField;
    return NO_FIELD;
  }

  #stringStarts(at: number): void {
    this.#stringStart = at;
    this.#stringHasEscape = false;
    this.#state = STRING;
  }

  #stringDone(at: number): void {
    const span = { start: this.#stringStart, end: at, hasEscape: this.#stringHasEscape };
    if (this.#isName) {
      this.#nameField = this.#fieldNamed(span);
      this.#state = COLON;
      return;
    }
    const field = this.#stringField;
    this.#stringField = NO_FIELD;
    if (field === CUSTOM_ID) this.#customId = span;
    else if (field === METHOD) this.#method = span;
    else if (field === URL) this.#url = span;
    else if (field === MODEL) this.#model = span;
    this.#valueDone();
  }

  /** Which field a member's name names, at the levels watched (the line's own members; `body`'s `model`). */
  #fieldNamed(span: StringSpan): number {
    const depth = this.#members.length;
    const isLineMember = depth === 1;
    const isBodyMember = depth === 2 && this.#isInBody;
    if ((!isLineMember && !isBodyMember) || span.end - span.start - 1 > MAX_FIELD_NAME_BYTES) return NO_FIELD;
    const name = this.#decoded(span, MAX_FIELD_NAME_BYTES + 2);
    if (isBodyMember) return name === "model" ? MODEL : NO_FIELD;
    if (name === "custom_id") return CUSTOM_ID;
    if (name === "method") return METHOD;
    if (name === "url") return URL;
    return name === "body" ? BODY : NO_FIELD;
  }

  #close(): void {
    this.#members.pop();
    // `body`'s own object closed.
    if (this.#members.length === 1) this.#isInBody = false;
    this.#valueDone();
  }

  #valueDone(): void {
    this.#state = this.#members.length === 0 ? DONE : AFTER_VALUE;
  }

  #isNumberEnding(): boolean {
    const state = this.#state;
    return state === ZERO || state === INTEGER || state === FRACTION || state === EXPONENT_DIGITS;
  }

  /**
   * Not JSON from byte `at` on: the line is refused, but its bounds are still counted from there to its end (in
   * steps), as jsonShapeOverBounds counts them on text that does not parse, so the line is named as before.
   */
  #failAt(at: number): void {
    this.#at = at;
    this.#notJson();
  }

  #notJson(): void {
    this.#isJson = false;
    const state = this.#state;
    this.#isShapeInString = state === STRING || state === ESCAPE || state === UNICODE;
    this.#isShapeEscaped = state === ESCAPE;
    this.#state = SHAPE_ONLY;
  }

  /** jsonShapeOverBounds's pass, resumable: brackets and colons outside strings. */
  #shapeOnly(limit: number): void {
    const input = this.#input;
    const members = this.#members;
    let at = this.#at;
    for (; at < limit; at++) {
      const byte = input[at] ?? 0;
      if (this.#isShapeInString) {
        if (this.#isShapeEscaped) this.#isShapeEscaped = false;
        else if (byte === BACKSLASH) this.#isShapeEscaped = true;
        else if (byte === QUOTE) this.#isShapeInString = false;
      } else if (byte === QUOTE) this.#isShapeInString = true;
      else if (byte === 0x7b || byte === 0x5b) {
        members.push(byte === 0x7b ? 0 : -1);
        if (members.length > this.#maxDepth) {
          this.#overBounds = "deep";
          break;
        }
      } else if (byte === 0x7d || byte === 0x5d) members.pop();
      else if (byte === 0x3a) {
        const top = members.length - 1;
        const count = members[top];
        if (count === undefined || count < 0) continue;
        if (count + 1 > this.#maxMembers) {
          this.#overBounds = "wide";
          break;
        }
        members[top] = count + 1;
      }
    }
    this.#at = at;
  }

  /** A string's value, read as JSON.parse reads it; undefined for none, or one longer than `maxBytes` as written. */
  #decoded(span: StringSpan | undefined, maxBytes: number): string | undefined {
    if (span === undefined || span.end - span.start + 1 > maxBytes) return undefined;
    if (!span.hasEscape) return this.#input.toString("utf8", span.start + 1, span.end);
    return JSON.parse(this.#input.toString("utf8", span.start, span.end + 1)) as string;
  }
}

/**
 * The index of the line's `\n` from `start`, or the input's end (a `\n` byte is never inside a UTF-8 character),
 * looked for `budget.bytesLeft` bytes at a time (a yield when they are spent, then `stepBytes` more): one indexOf over a 40 MB line just uploaded took 140-200 ms (the bytes' first
 * read since they were written), as long as the parse it replaced.
 */
export function* lineEndFrom(
  input: Buffer,
  start: number,
  budget: { bytesLeft: number },
  stepBytes: number,
): Generator<void, number, void> {
  for (let from = start; ; ) {
    if (budget.bytesLeft <= 0) {
      yield;
      budget.bytesLeft = stepBytes;
    }
    const to = Math.min(input.length, from + budget.bytesLeft);
    const found = input.subarray(from, to).indexOf(NEWLINE);
    if (found >= 0) {
      budget.bytesLeft -= found + 1;
      return from + found;
    }
    budget.bytesLeft -= to - from;
    if (to === input.length) return input.length;
    from = to;
  }
}

const NEWLINE = 0x0a;

/** A piece of a decoded string holds at least this many bytes: the longest escape (6) or character (4) fits whole. */
const MIN_PIECE_BYTES = 16;

/**
 * Where a piece of the string `span` from `at` (a character's start, outside any escape) ends, at `to` or before:
 * not inside an escape (read from `at`: only a forward read knows which backslash starts one) nor a UTF-8 character.
 */
function pieceEnd(input: Buffer, at: number, to: number, span: StringSpan): number {
  if (to >= span.end) return span.end;
  let end = to;
  if (span.hasEscape) {
    let next = at;
    while (next < to) {
      if (input[next] !== BACKSLASH) next += 1;
      else if (next + (input[next + 1] === 0x75 ? 6 : 2) <= to) next += input[next + 1] === 0x75 ? 6 : 2;
      else break;
    }
    end = next;
  }
  // A continuation byte (10xxxxxx) may be inside a character: the piece ends before that character's lead byte
  // (11xxxxxx), at most 3 bytes back (a decoder restarts at a lead byte whatever came before). Without a lead there
  // (ASCII, or more continuation bytes: not UTF-8), each of them decodes to its own U+FFFD wherever it is cut.
  if (((input[end] ?? 0) & 0xc0) !== 0x80) return end;
  for (let lead = end - 1; lead > at && end - lead <= 3; lead--) {
    const byte = input[lead] ?? 0;
    if (byte >= 0xc0) return lead;
    if (byte < 0x80) break;
  }
  return end;
}

/**
 * The line's bytes less what String.prototype.trim would take off its text (CR of a CRLF line end, a BOM, spaces):
 * the bytes a line's JSON is, and what its length is measured on (a line at exactly the body limit with a CRLF end
 * was refused as one byte over). Read `budget.bytesLeft` bytes at a time, as lineEndFrom reads: a line of 24 MB of
 * NBSP around a small JSON was trimmed in one step, a Buffer decode and a trim per character, 2-3 s of event loop.
 */
export function* trimmingLine(
  input: Buffer,
  start: number,
  end: number,
  budget: { bytesLeft: number },
  stepBytes: number,
): Generator<void, { start: number; end: number }, void> {
  let from = start;
  let to = end;
  for (let isTrimming = true; isTrimming; ) {
    if (budget.bytesLeft <= 0) {
      yield;
      budget.bytesLeft = stepBytes;
    }
    const limit = Math.min(to, from + budget.bytesLeft);
    const first = from;
    isTrimming = false;
    while (from < to) {
      if (from >= limit) {
        isTrimming = true;
        break;
      }
      const length = leadingWhitespaceBytes(input, from, to);
      if (length === 0) break;
      from += length;
    }
    budget.bytesLeft -= Math.max(1, from - first);
  }
  for (let isTrimming = true; isTrimming; ) {
    if (budget.bytesLeft <= 0) {
      yield;
      budget.bytesLeft = stepBytes;
    }
    const limit = Math.max(from, to - budget.bytesLeft);
    const last = to;
    isTrimming = false;
    while (to > from) {
      if (to <= limit) {
        isTrimming = true;
        break;
      }
      const length = trailingWhitespaceBytes(input, from, to);
      if (length === 0) break;
      to -= length;
    }
    budget.bytesLeft -= Math.max(1, last - to);
  }
  return { start: from, end: to };
}

/** trimmingLine in one step (tests, and lines known to be short). */
export function trimmedLine(input: Buffer, start: number, end: number): { start: number; end: number } {
  const steps = trimmingLine(input, start, end, { bytesLeft: Number.POSITIVE_INFINITY }, Number.POSITIVE_INFINITY);
  for (;;) {
    const step = steps.next();
    if (step.done === true) return step.value;
  }
}

/**
 * The characters beyond ASCII that String.prototype.trim removes (Unicode's White_Space less what is not JavaScript
 * whitespace; none is outside the BMP), as their UTF-8 bytes in one number: line-scan.test.ts checks the list against
 * trim on every BMP character. Matched as bytes, not decoded: a decode and a trim per character cost 100 ns each.
 */
const TRIMMED_UTF8 = new Set(
  [0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a]
    .concat([0x2028, 0x2029, 0x202f, 0x205f, 0x3000, 0xfeff])
    .map(utf8Number),
);

/** A BMP character's UTF-8 bytes, big-endian in one number (2 bytes from U+0080, 3 from U+0800). */
function utf8Number(codePoint: number): number {
  if (codePoint < 0x800) return ((0xc0 | (codePoint >> 6)) << 8) | (0x80 | (codePoint & 0x3f));
  return ((0xe0 | (codePoint >> 12)) << 16) | ((0x80 | ((codePoint >> 6) & 0x3f)) << 8) | (0x80 | (codePoint & 0x3f));
}

/**
 * Bytes of the whitespace character at `at` (0: none). Only a valid encoding matches, as only a valid sequence decodes
 * to a whitespace character; `at` is where a character starts (the line's start, or just after one taken off).
 */
function leadingWhitespaceBytes(input: Buffer, at: number, end: number): number {
  const byte = input[at] ?? 0;
  if (byte < 0x80) return isTrimmedAscii(byte) ? 1 : 0;
  if (at + 2 <= end && TRIMMED_UTF8.has((byte << 8) | (input[at + 1] ?? 0))) return 2;
  if (at + 3 <= end && TRIMMED_UTF8.has((byte << 16) | ((input[at + 1] ?? 0) << 8) | (input[at + 2] ?? 0))) return 3;
  return 0;
}

/**
 * Bytes of the whitespace character that ends at `end` (0: none). Its first byte is a lead byte (never a
 * continuation byte), so a decoder of the whole line reads the same character there whatever bytes come before.
 */
function trailingWhitespaceBytes(input: Buffer, start: number, end: number): number {
  const byte = input[end - 1] ?? 0;
  if (byte < 0x80) return isTrimmedAscii(byte) ? 1 : 0;
  if (end - 2 >= start && TRIMMED_UTF8.has(((input[end - 2] ?? 0) << 8) | byte)) return 2;
  if (end - 3 >= start && TRIMMED_UTF8.has(((input[end - 3] ?? 0) << 16) | ((input[end - 2] ?? 0) << 8) | byte)) {
    return 3;
  }
  return 0;
}

/** Tab, LF, VT, FF, CR, space: the ASCII characters String.prototype.trim removes. */
function isTrimmedAscii(byte: number): boolean {
  return byte === 0x20 || (byte >= 0x09 && byte <= 0x0d);
}

/** The whitespace JSON.parse skips between tokens (tab, LF, CR, space): narrower than trim's. */
function isWhitespace(byte: number): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;
}

function isDigit(byte: number): boolean {
  return byte >= 0x30 && byte <= 0x39;
}

function isHexDigit(byte: number): boolean {
  return isDigit(byte) || (byte >= 0x41 && byte <= 0x46) || (byte >= 0x61 && byte <= 0x66);
}

/** `"`, `\`, `/`, b, f, n, r, t after a backslash. */
function isSimpleEscape(byte: number): boolean {
  return (
    byte === QUOTE ||
    byte === BACKSLASH ||
    byte === 0x2f ||
    byte === 0x62 ||
    byte === 0x66 ||
    byte === 0x6e ||
    byte === 0x72 ||
    byte === 0x74
  );
}
