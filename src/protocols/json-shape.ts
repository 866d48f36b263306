// The shape of a JSON text (its nesting, the members of its widest object) read in one cheap pass before JSON.parse:
// the bounds of config/request-bounds.ts hold for a live request's body (server/json-body.ts) and for each line of a
// batch's input file (protocols/batches/batch-objects.ts) alike.

/**
 * Whether `text` nests objects and arrays deeper than `maxDepth`. One pass; strings are skipped with indexOf
 * (native speed: a 1 MB message costs well under a millisecond), so brackets inside them do not count.
 */
export function isJsonDeeperThan(text: string, maxDepth: number): boolean {
  return jsonShapeOverBounds(text, maxDepth, Number.POSITIVE_INFINITY) === "deep";
}

/**
 * What of the body's shape passes a bound, in the one pass isJsonDeeperThan describes: its nesting (`deep`), or the
 * members of one object (`wide`: the colons at that object's own level, a member's name being a string).
 */
export function jsonShapeOverBounds(text: string, maxDepth: number, maxMembers: number): "deep" | "wide" | undefined {
  // The member count of each open object, -1 for an open array (its colons are its objects' own).
  const members: number[] = [];
  const length = text.length;
  for (let index = 0; index < length; index++) {
    const code = text.charCodeAt(index);
    if (code === 34) {
      index = closingQuote(text, index + 1);
      if (index < 0) return undefined; // unterminated string: JSON.parse reports it
    } else if (code === 123 || code === 91) {
      members.push(code === 123 ? 0 : -1);
      if (members.length > maxDepth) return "deep";
    } else if (code === 125 || code === 93) members.pop();
    else if (code === 58) {
      const top = members.length - 1;
      const count = members[top];
      if (count === undefined || count < 0) continue; // not JSON: JSON.parse reports it
      if (count + 1 > maxMembers) return "wide";
      members[top] = count + 1;
    }
  }
  return undefined;
}

/** Index of the quote that ends the string starting at `from`, or -1. */
function closingQuote(text: string, from: number): number {
  let quote = text.indexOf('"', from);
  while (quote >= 0) {
    let backslashes = 0;
    while (text.charCodeAt(quote - 1 - backslashes) === 92) backslashes++;
    if (backslashes % 2 === 0) return quote;
    quote = text.indexOf('"', quote + 1);
  }
  return -1;
}
