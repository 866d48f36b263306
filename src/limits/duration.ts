// Go-style duration strings ("1m30s", "9m38.016s", "120ms") as providers print them in rate-limit headers and
// error messages; OpenAI and Groq format their reset times with Go's time.Duration.String().

const MS_PER_UNIT: ReadonlyMap<string, number> = new Map([
  ["ns", 1e-6],
  ["us", 1e-3],
  ["\u00b5s", 1e-3], // micro sign, as Go prints it
  ["\u03bcs", 1e-3], // Greek mu, which Go also accepts
  ["ms", 1],
  ["s", 1_000],
  ["m", 60_000],
  ["h", 3_600_000],
]);

const CHAR_0 = 48;
const CHAR_9 = 57;
const CHAR_DOT = 46;
const CHAR_PLUS = 43;
const CHAR_MINUS = 45;

/**
 * Milliseconds in a Go-style duration ("1h2m", "6m0s", "0.5s", "17ms"), or in a bare number of seconds ("30",
 * "33011.38": Cerebras and Together send plain seconds). Rounded to whole milliseconds. A leading sign is allowed
 * (callers clamp). `undefined` for anything else; never throws.
 */
export function parseDurationMs(text: string): number | undefined {
  const source = text.trim();
  const length = source.length;
  let index = 0;
  let sign = 1;
  const first = source.charCodeAt(0);
  if (first === CHAR_PLUS || first === CHAR_MINUS) {
    sign = first === CHAR_MINUS ? -1 : 1;
    index = 1;
  }
  if (index >= length) return undefined;

  let totalMs = 0;
  let componentCount = 0;
  while (index < length) {
    const numberStart = index;
    let digitCount = 0;
    while (index < length && isDigit(source.charCodeAt(index))) {
      index++;
      digitCount++;
    }
    if (index < length && source.charCodeAt(index) === CHAR_DOT) {
      index++;
      while (index < length && isDigit(source.charCodeAt(index))) {
        index++;
        digitCount++;
      }
    }
    if (digitCount === 0) return undefined;
    const value = Number(source.slice(numberStart, index));

    const unitStart = index;
    while (index < length) {
      const code = source.charCodeAt(index);
      if (isDigit(code) || code === CHAR_DOT) break;
      index++;
    }
    if (unitStart === index) {
      // A unitless number counts as seconds only when it is the whole text: "1m30" is garbage, not 1m30s.
      if (componentCount !== 0 || index !== length) return undefined;
      totalMs = value * 1_000;
      componentCount = 1;
      break;
    }
    const msPerUnit = MS_PER_UNIT.get(source.slice(unitStart, index));
    if (msPerUnit === undefined) return undefined;
    totalMs += value * msPerUnit;
    componentCount++;
  }

  if (!Number.isFinite(totalMs)) return undefined;
  const roundedMs = Math.round(totalMs);
  return roundedMs === 0 ? 0 : sign * roundedMs;
}

function isDigit(code: number): boolean {
  return code >= CHAR_0 && code <= CHAR_9;
}
