// "Did you mean `base_url`?" for a name that is not known but close to one that is: an unknown config key, an
// unknown preset, a misspelled override variable. Pure; no dependency for thirty lines of edit distance.

/** Case, `_` and `-` do not count: `baseUrl`, `Base-URL` and `base_url` are the same name misspelled. */
function normalised(name: string): string {
  return name.toLowerCase().replace(/[_-]/g, "");
}

/**
 * Edit distance where swapping two neighbouring letters is one edit (`modles` -> `models`), as typing errs:
 * the "optimal string alignment" Damerau-Levenshtein distance.
 */
export function editDistance(a: string, b: string): number {
  let previousRow: number[] = [];
  let row = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const beforePrevious = previousRow;
    previousRow = row;
    row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min((previousRow[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (previousRow[j - 1] ?? 0) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, (beforePrevious[j - 2] ?? 0) + 1);
      }
      row[j] = best;
    }
  }
  return row[b.length] ?? 0;
}

/** How many edits still read as a typo of a name this long: one in a short name, up to three in a long one. */
function allowedEdits(length: number): number {
  return length <= 4 ? 1 : length <= 9 ? 2 : 3;
}

/** The known names closest to `name` (at most three, in their given order), or none when none is close. */
export function closestNames(name: string, known: readonly string[]): string[] {
  const wanted = normalised(name);
  let best = Number.POSITIVE_INFINITY;
  let closest: string[] = [];
  for (const candidate of new Set(known)) {
    if (candidate === name) continue;
    const distance = editDistance(wanted, normalised(candidate));
    if (distance > allowedEdits(Math.max(wanted.length, 1))) continue;
    if (distance < best) {
      best = distance;
      closest = [candidate];
    } else if (distance === best) {
      closest.push(candidate);
    }
  }
  return closest.slice(0, 3);
}

/** `; did you mean "base_url"?` (or `"a" or "b"`), or "" when no known name is close. */
export function didYouMean(name: string, known: readonly string[]): string {
  const closest = closestNames(name, known);
  return closest.length === 0 ? "" : `; did you mean ${closest.map((candidate) => `"${candidate}"`).join(" or ")}?`;
}
