// A tool call's streamed arguments, let through only as far as they stay the beginning of one JSON object. The
// Anthropic SDK's MessageStream parses a tool_use block's `input_json_delta` pieces as they come (a partial JSON
// parser that completes what is open) and throws at anything else, losing the whole answer: a model's brace too
// many after a whole object, arguments that are no object (`Paris`), a line break written raw inside a string.
// Anthropic's own arguments are always one object; a chat provider's are whatever the model wrote.

const WHITESPACE = " \t\n\r";
const ESCAPED = '"\\/bfnrtu';
const HEX_DIGIT = /^[0-9a-fA-F]$/;
const DIGIT = /^[0-9]$/;

/** The parts of a number (JSON's grammar), and the ones it may end in. */
type NumberPart = "sign" | "zero" | "integer" | "point" | "fraction" | "exponent" | "exponentSign" | "exponentDigits";
const NUMBER_ENDS: ReadonlySet<NumberPart> = new Set(["zero", "integer", "fraction", "exponentDigits"]);

type Expected =
  | "start"
  | "keyOrEnd"
  | "key"
  | "colon"
  | "value"
  | "valueOrEnd"
  | "afterValue"
  | "done"
  | "string"
  | "escape"
  | "unicode"
  | "literal"
  | "number"
  | "broken";

export class JsonObjectPrefix {
  #expected: Expected = "start";
  /** The open objects and arrays, innermost last. */
  readonly #containers: ("{" | "[")[] = [];
  #isKey = false;
  #unicodeLeft = 0;
  #literalLeft = "";
  #number: NumberPart = "sign";
  /** How many characters were accepted, and how many up to the end of the last whole value (or `{`, `[`). */
  #acceptedLength = 0;
  #wholeLength = 0;
  /** The character being accepted ends a whole value or opens an object or array. */
  #isWholeAfter = false;

  /**
   * The part of `text` that, after what was accepted before, keeps the whole the beginning of one JSON object (with
   * nothing after it but white space; white space before it is left out); from the first character that cannot,
   * nothing more is accepted. A control character inside a string (JSON.parse refuses a raw line break there) is
   * accepted as its escape.
   */
  accept(text: string): string {
    let accepted = "";
    for (const char of text) {
      const kept = this.#expected === "broken" ? undefined : this.#step(char);
      if (kept === undefined) {
        this.#expected = "broken";
        break;
      }
      accepted += kept;
      this.#acceptedLength += kept.length;
      if (this.#isWholeAfter) this.#wholeLength = this.#acceptedLength;
      this.#isWholeAfter = false;
    }
    return accepted;
  }

  /** Whether the object was closed: what was accepted is one whole object (white space may follow). */
  get isClosed(): boolean {
    return this.#containers.length === 0 && this.#wholeLength > 0;
  }

  /**
   * What the SDK's MessageStream makes of the arguments sent (`accepted`: all this accepted, joined), as JSON: cut
   * back to the end of the last whole value (a member whose value is cut off, a key alone, a number that may go on,
   * a comma are left out) and every object and array still open closed. `""` before any `{`.
   */
  wholePrefix(accepted: string): string {
    let closers = "";
    // No object or array opened or closed after the last whole value: those open then are the ones open now.
    for (let index = this.#containers.length - 1; index >= 0; index--) {
      closers += this.#containers[index] === "{" ? "}" : "]";
    }
    return accepted.slice(0, this.#wholeLength) + closers;
  }

  /** The character as it is kept, or undefined when it cannot come here. */
  #step(char: string): string | undefined {
    switch (this.#expected) {
      case "string":
        return this.#stringCharacter(char);
      case "escape":
        if (!ESCAPED.includes(char)) return undefined;
        this.#unicodeLeft = char === "u" ? 4 : 0;
        this.#expected = char === "u" ? "unicode" : "string";
        return char;
      case "unicode":
        if (!HEX_DIGIT.test(char)) return undefined;
        this.#unicodeLeft -= 1;
        if (this.#unicodeLeft === 0) this.#expected = "string";
        return char;
      case "literal":
        if (char !== this.#literalLeft[0]) return undefined;
        this.#literalLeft = this.#literalLeft.slice(1);
        if (this.#literalLeft === "") this.#endValue();
        return char;
      case "number": {
        if (this.#numberCharacter(char)) return char;
        if (!NUMBER_ENDS.has(this.#number)) return undefined;
        this.#expected = "afterValue";
        const kept = this.#step(char);
        // Whole once a character that may follow it is accepted: the SDK drops a number the text ends with.
        if (kept !== undefined) this.#wholeLength = this.#acceptedLength;
        return kept;
      }
      case "start":
        // White space before the object is not sent: the SDK parses what it got, and JSON.parse("") throws for " ".
        return WHITESPACE.includes(char) ? "" : this.#token(char);
      default:
        return WHITESPACE.includes(char) ? char : this.#token(char);
    }
  }

  /** A character between tokens, not white space. */
  #token(char: string): string | undefined {
    switch (this.#expected) {
      case "start":
        return char === "{" ? this.#open(char) : undefined;
      case "keyOrEnd":
        return char === "}" ? this.#close(char) : this.#key(char);
      case "key":
        return this.#key(char);
      case "colon":
        if (char !== ":") return undefined;
        this.#expected = "value";
        return char;
      case "valueOrEnd":
        return char === "]" ? this.#close(char) : this.#value(char);
      case "value":
        return this.#value(char);
      case "afterValue":
        if (char === "}" || char === "]") return this.#close(char);
        if (char !== ",") return undefined;
        this.#expected = this.#containers.at(-1) === "{" ? "key" : "value";
        return char;
      default:
        return undefined;
    }
  }

  #key(char: string): string | undefined {
    if (char !== '"') return undefined;
    this.#isKey = true;
    this.#expected = "string";
    return char;
  }

  #value(char: string): string | undefined {
    if (char === "{" || char === "[") return this.#open(char);
    if (char === '"') {
      this.#isKey = false;
      this.#expected = "string";
      return char;
    }
    const literal = { t: "rue", f: "alse", n: "ull" }[char];
    if (literal !== undefined) {
      this.#literalLeft = literal;
      this.#expected = "literal";
      return char;
    }
    this.#number = "sign";
    if (char !== "-" && !this.#numberCharacter(char)) return undefined;
    this.#expected = "number";
    return char;
  }

  #endValue(): void {
    this.#expected = "afterValue";
    this.#isWholeAfter = true;
  }

  #open(char: "{" | "["): string {
    this.#containers.push(char);
    this.#isWholeAfter = true;
    this.#expected = char === "{" ? "keyOrEnd" : "valueOrEnd";
    return char;
  }

  #close(char: string): string | undefined {
    if (this.#containers.at(-1) !== (char === "}" ? "{" : "[")) return undefined;
    this.#containers.pop();
    this.#expected = this.#containers.length === 0 ? "done" : "afterValue";
    this.#isWholeAfter = true;
    return char;
  }

  #stringCharacter(char: string): string {
    if (char === '"') {
      if (this.#isKey) this.#expected = "colon";
      else this.#endValue();
    } else if (char === "\\") this.#expected = "escape";
    // JSON.stringify writes a control character's escape (`\n`, `\u0001`).
    else if (char < " ") return JSON.stringify(char).slice(1, -1);
    return char;
  }

  /** Whether `char` goes on the number (its part advanced); `sign` also stands for a number not begun. */
  #numberCharacter(char: string): boolean {
    const isDigit = DIGIT.test(char);
    const next = nextNumberPart(this.#number, char, isDigit);
    if (next === undefined) return false;
    this.#number = next;
    return true;
  }
}

function nextNumberPart(part: NumberPart, char: string, isDigit: boolean): NumberPart | undefined {
  switch (part) {
    case "sign":
      if (char === "0") return "zero";
      return isDigit ? "integer" : undefined;
    case "zero":
    case "integer":
      if (isDigit) return part === "integer" ? "integer" : undefined;
      if (char === ".") return "point";
      return char === "e" || char === "E" ? "exponent" : undefined;
    case "point":
    case "fraction":
      if (isDigit) return "fraction";
      return part === "fraction" && (char === "e" || char === "E") ? "exponent" : undefined;
    case "exponent":
      if (char === "+" || char === "-") return "exponentSign";
      return isDigit ? "exponentDigits" : undefined;
    case "exponentSign":
    case "exponentDigits":
      return isDigit ? "exponentDigits" : undefined;
  }
}
