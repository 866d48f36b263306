// One line of the embedded request log (file-request-log.ts): how it is written and read, and how a query keeps
// the newest of the lines it scans.
//
// A line: `startedAtMs \t status \t id \t models \t providers \t latestStartMs \t record JSON \n`. JSON.stringify
// escapes every control character, so a record never holds a tab or a newline; the other fields are cleaned of them.
// Lines are in finish order, answers in start order: `latestStartMs`, the latest start of this line and every line
// before it, tells a query when no line further back can be among the newest it has found (the query in
// file-request-log.ts). Lines of earlier versions lack that field (their record JSON follows the providers at
// once); a query reads past them.
import type { StoredRequest } from "./request-log.ts";

/** Between names in the models and providers fields. */
const NAME_SEPARATOR = "\x1f";
const NAME_SEPARATOR_BYTE = 0x1f;
const TAB = 0x09;
const OPENING_BRACE = 0x7b;

/**
 * Where a line's fields are: the numbers are read at once, the text fields only when a query asks (decoding every
 * line's names cost more than the rest of a scan), the record's JSON only when the line matches.
 */
export interface LineHead {
  readonly startedAtMs: number;
  readonly status: number;
  /** The latest start of this line and every line before it; undefined on lines of earlier versions. */
  readonly latestStartMs: number | undefined;
  /**
   * Where the id, models, providers and JSON fields start; each ends one byte before the next starts, except the
   * providers, which end at `providersEnd` (the tab before `latestStartMs`, or before the JSON on an earlier line).
   */
  readonly idStart: number;
  readonly modelsStart: number;
  readonly providersStart: number;
  readonly providersEnd: number;
  readonly jsonStart: number;
}

export function lineOf(row: StoredRequest, latestStartMs: number): string {
  const models = row.models.map(cleanField).join(NAME_SEPARATOR);
  const providers = row.providers.map(cleanField).join(NAME_SEPARATOR);
  const id = cleanField(row.id);
  return `${row.startedAtMs}\t${row.status}\t${id}\t${models}\t${providers}\t${latestStartMs}\t${row.json}\n`;
}

/**
 * The best `limit` lines seen so far by start time, newest first; a line's JSON is decoded only when it enters.
 * A line that ties with a kept one goes after it (it was seen later, so it finished earlier).
 */
export class NewestByStart {
  readonly #limit: number;
  readonly #kept: { startedAtMs: number; json: string }[] = [];

  constructor(limit: number) {
    this.#limit = limit;
  }

  isFull(): boolean {
    return this.#kept.length >= this.#limit;
  }

  /** The start of the last kept line (call only when full). */
  oldestStartMs(): number {
    return this.#kept[this.#kept.length - 1]?.startedAtMs ?? Number.POSITIVE_INFINITY;
  }

  offer(startedAtMs: number, json: () => string): void {
    // The first kept line that started before this one: this one goes there.
    let low = 0;
    let high = this.#kept.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if ((this.#kept[middle] as { startedAtMs: number }).startedAtMs >= startedAtMs) low = middle + 1;
      else high = middle;
    }
    if (low >= this.#limit) return;
    this.#kept.splice(low, 0, { startedAtMs, json: json() });
    if (this.#kept.length > this.#limit) this.#kept.pop();
  }

  texts(): string[] {
    return this.#kept.map((item) => item.json);
  }
}

/** Names and ids come from clients and upstreams: none may split a line or a field. */
export function cleanField(value: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the separators are control characters
  return /[\t\n\r\x1f]/.test(value) ? value.replace(/[\t\n\r\x1f]/g, " ") : value;
}

export function headOf(line: Buffer): LineHead | undefined {
  const t1 = line.indexOf(TAB);
  const t2 = t1 === -1 ? -1 : line.indexOf(TAB, t1 + 1);
  const t3 = t2 === -1 ? -1 : line.indexOf(TAB, t2 + 1);
  const t4 = t3 === -1 ? -1 : line.indexOf(TAB, t3 + 1);
  const t5 = t4 === -1 ? -1 : line.indexOf(TAB, t4 + 1);
  if (t5 === -1) return undefined;
  const startedAtMs = digitsAt(line, 0, t1);
  const status = digitsAt(line, t1 + 1, t2);
  if (startedAtMs === undefined || status === undefined) return undefined;
  // A line of an earlier version: the record's JSON (an object) follows the providers at once.
  const isEarlier = line[t5 + 1] === OPENING_BRACE;
  const t6 = isEarlier ? t5 : line.indexOf(TAB, t5 + 1);
  const latestStartMs = isEarlier || t6 === -1 ? undefined : digitsAt(line, t5 + 1, t6);
  if (!isEarlier && latestStartMs === undefined) return undefined;
  return {
    startedAtMs,
    status,
    latestStartMs,
    idStart: t2 + 1,
    modelsStart: t3 + 1,
    providersStart: t4 + 1,
    providersEnd: t5,
    jsonStart: t6 + 1,
  };
}

/** The non-negative integer written in `line[start, end)`, or undefined when it is not one. */
function digitsAt(line: Buffer, start: number, end: number): number | undefined {
  if (end <= start) return undefined;
  let value = 0;
  for (let at = start; at < end; at++) {
    const digit = (line[at] as number) - 0x30;
    if (digit < 0 || digit > 9) return undefined;
    value = value * 10 + digit;
  }
  return value;
}

/** Whether the separator-delimited names in `line[start, end)` include `name` (bytes, whole names only). */
export function hasName(line: Buffer, start: number, end: number, name: Buffer): boolean {
  for (let from = start; from <= end; ) {
    const separator = line.indexOf(NAME_SEPARATOR_BYTE, from);
    const to = separator === -1 || separator > end ? end : separator;
    if (to - from === name.length && name.equals(line.subarray(from, to))) return true;
    from = to + 1;
  }
  return false;
}

/**
 * A line has no field of its own for the client's name (lines of earlier versions would lack it): the record's
 * JSON says it, as `"client":"<name>",` right before its `"candidates":[`. That is the record's first
 * `"candidates":`, since only strings, numbers and booleans come before it (record-builder.ts `finish`) and a
 * string's quotes are escaped in JSON; what a client sent (`content`) comes after it, so a client's text cannot
 * pass for a name.
 */
export function clientMarker(client: string): { readonly prefix: Buffer } {
  return { prefix: Buffer.from(`"client":${JSON.stringify(client)},`) };
}

const CANDIDATES = Buffer.from('"candidates":');

export function hasClient(line: Buffer, head: LineHead, marker: { readonly prefix: Buffer }): boolean {
  const candidatesAt = line.indexOf(CANDIDATES, head.jsonStart);
  const prefixAt = candidatesAt - marker.prefix.length;
  return (
    prefixAt >= head.jsonStart && line.compare(marker.prefix, 0, marker.prefix.length, prefixAt, candidatesAt) === 0
  );
}

export function jsonOf(line: Buffer, head: LineHead): string {
  return line.toString("utf8", head.jsonStart);
}
