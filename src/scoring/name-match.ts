// Matching provider model ids to leaderboard row names. The rules are in docs/scoring.md ("Name matching"); the
// table of real ids in name-match.test.ts is the specification.
import { normaliseModelName } from "../providers/model-names.ts";

/** A name taken apart: the keys each matching level looks up, and the tokens that levels may relax. */
export interface ParsedName {
  /** Tokens in their order: `llama-3.1-405b`. */
  readonly exactKey: string;
  /** The same tokens sorted, so `claude-4-sonnet` and `claude-sonnet-4` agree. */
  readonly tokenKey: string;
  /** Sorted tokens without snapshot and soft tokens: what the snapshots of one model share. Sizes stay. */
  readonly familyKey: string;
  /** Tokens naming one snapshot: dates (`20240806`, `0125`, `2507`), revisions (`001`), patch versions (`v0.3`). */
  readonly snapshot: string;
  readonly soft: string;
  /** The name carried a reasoning-effort or thinking-budget qualifier (`(high)`, `-thinking-32k`, `-xhigh`). */
  readonly isQualified: boolean;
}

export interface ParseNameOptions {
  /**
   * The board writes run settings as plain suffixes (LiveBench: `-medium-effort`, `-base`, `-thinking-auto`), so
   * `medium`, `base` and `auto` at the end are settings, not part of the name (unlike `Mistral Medium`).
   */
  readonly hasSettingSuffixes?: boolean;
}

/** Tokens that say nothing about which weights answer: `-chat`, `-api`, `-hf`. */
const NOISE_TOKENS = new Set(["instruct", "chat", "it", "api", "hf"]);
/** Tokens that mark a pre-release or an alias of the same model: relaxed at the family level only. */
const SOFT_WORDS = new Set(["preview", "exp", "experimental", "latest", "beta"]);
const EFFORT_SUFFIXES = new Set(["high", "low", "xhigh", "minimal", "highthinking", "effort"]);
const DEFAULT_MODE_SUFFIXES = new Set(["nothinking"]);
const QUALIFIER_TEXT = /think|reason|effort|\bhigh\b|\blow\b|\bmedium\b|\d+k\b/;
const DEFAULT_MODE_TEXT = /\bno[ -]?think|\bdefault\b|\bchat\b/;
const DATE_TEXT = /^(\d{4}-\d{2}-\d{2}|\d{8}|\d{2}-\d{4}|\d{4}|\d{2}-\d{2})$/;

export function parseModelName(name: string, options: ParseNameOptions = {}): ParsedName {
  let isQualified = false;
  let text = name.replace(/\(([^)]*)\)/g, (_whole, inner: string) => {
    const content = inner.trim().toLowerCase();
    // `Claude Opus 4 (20250514)`, `DeepSeek V3 (0324)`: a date in brackets is part of the name.
    if (DATE_TEXT.test(content)) return `-${content}`;
    if (QUALIFIER_TEXT.test(content) && !DEFAULT_MODE_TEXT.test(content)) isQualified = true;
    return " ";
  });
  // Aider appends run notes after a comma: `Qwen3 235B A22B diff, no think, Alibaba API`.
  const commaAt = text.indexOf(",");
  if (commaAt >= 0) {
    const notes = text.slice(commaAt).toLowerCase();
    if (QUALIFIER_TEXT.test(notes) && !DEFAULT_MODE_TEXT.test(notes)) isQualified = true;
    text = text.slice(0, commaAt);
  }

  const merged = normaliseModelName(text)
    .replace(/(?<=^|-)((?:19|20)\d{2})-(\d{2})-(\d{2})(?=-|$)/g, "$1$2$3")
    .replace(/(?<=^|-)(\d{2})-((?:19|20)\d{2})(?=-|$)/g, "$2$1")
    .replace(/(?<=^|-)(\d{2})-(\d{2})(?=-|$)/g, "$1$2");

  const tokens = merged.split("-").filter((token) => token.length > 0 && !NOISE_TOKENS.has(token));
  if (stripSettingSuffixes(tokens, options.hasSettingSuffixes === true)) isQualified = true;

  const snapshot: string[] = [];
  const soft: string[] = [];
  const family: string[] = [];
  for (const token of tokens) {
    if (isContextToken(token) || SOFT_WORDS.has(token)) soft.push(token);
    else if (isDateToken(token) || /^v0\.\d+$/.test(token)) snapshot.push(token);
    else family.push(token);
  }
  return {
    exactKey: tokens.join("-"),
    tokenKey: [...tokens].sort().join(" "),
    familyKey: family.sort().join(" "),
    snapshot: snapshot.sort().join(" "),
    soft: soft.sort().join(" "),
    isQualified,
  };
}

/** Removes run settings written as trailing tokens; true when a non-default setting (effort, budget) was removed. */
function stripSettingSuffixes(tokens: string[], hasSettingSuffixes: boolean): boolean {
  let isQualified = false;
  for (;;) {
    const last = tokens.at(-1) ?? "";
    const beforeLast = tokens.at(-2) ?? "";
    if (tokens.length <= 1) return isQualified;
    if (EFFORT_SUFFIXES.has(last) || (hasSettingSuffixes && last === "medium")) {
      tokens.pop();
      isQualified = true;
    } else if (DEFAULT_MODE_SUFFIXES.has(last) || (hasSettingSuffixes && last === "base")) {
      tokens.pop();
    } else if (last === "thinking" && beforeLast === "no") {
      tokens.splice(-2, 2);
    } else if (beforeLast === "thinking" && (/^\d+k$/.test(last) || (hasSettingSuffixes && last === "auto"))) {
      // `-thinking-64k`, `-thinking-auto`: a thinking budget, where plain `-thinking` names a model of its own.
      tokens.splice(-2, 2);
      isQualified = true;
    } else {
      return isQualified;
    }
  }
}

function isContextToken(token: string): boolean {
  if (/^\d+k$/.test(token)) return true;
  if (!/^\d{4,7}$/.test(token)) return false;
  const value = Number(token);
  return value >= 1024 && (value & (value - 1)) === 0;
}

/**
 * 20240806, 202408 (from `08-2024`), MMDD (`0125`, `1206`), YYMM for 2023-2029 (`2507`, `2411`), and Google's
 * revision numbers (`001`, `002`).
 */
export function isDateToken(token: string): boolean {
  if (/^(19|20)\d{6}$/.test(token)) return true;
  if (/^(19|20)\d{2}(0[1-9]|1[0-2])$/.test(token)) return true;
  if (/^(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])$/.test(token)) return true;
  if (/^2[3-9](0[1-9]|1[0-2])$/.test(token)) return true;
  return /^00\d$/.test(token);
}

export interface NamedRow {
  /** The row's name as the board shows it. */
  readonly name: string;
  /** The name to match on, when the board's display name carries notes (Aider); defaults to `name`. */
  readonly matchName?: string;
  /** Other ids of the same row (a Hugging Face repo, the `--model` an Aider run used); exact levels only. */
  readonly aliases?: readonly string[];
}

export type MatchLevel = "exact" | "tokens" | "alias" | "family";

export interface NameMatch<Row> {
  readonly level: MatchLevel;
  /** One row, or several that share the key (snapshots, effort variants); callers average them. */
  readonly rows: readonly Row[];
}

interface Entry<Row> {
  readonly row: Row;
  readonly parsed: ParsedName;
}

export interface NameIndex<Row extends NamedRow> {
  readonly options: ParseNameOptions;
  /** Every row, in the order indexed. */
  readonly rows: readonly Row[];
  readonly exact: ReadonlyMap<string, readonly Entry<Row>[]>;
  readonly tokens: ReadonlyMap<string, readonly Entry<Row>[]>;
  readonly aliases: ReadonlyMap<string, readonly Entry<Row>[]>;
  readonly family: ReadonlyMap<string, readonly Entry<Row>[]>;
}

/** A row's name parsed for the index, and the token keys of its aliases: the expensive half of indexing. */
export interface ParsedRowName {
  readonly parsed: ParsedName;
  readonly aliasKeys: readonly string[];
}

export function parseRowName(row: NamedRow, options: ParseNameOptions = {}): ParsedRowName {
  return {
    parsed: parseModelName(row.matchName ?? row.name, options),
    aliasKeys: (row.aliases ?? []).map((alias) => parseModelName(alias).tokenKey),
  };
}

/** Parses every row name once, so a lookup is a few map reads and a filter over a handful of rows. */
export function buildNameIndex<Row extends NamedRow>(
  rows: readonly Row[],
  options: ParseNameOptions = {},
): NameIndex<Row> {
  return assembleNameIndex(
    rows,
    rows.map((row) => parseRowName(row, options)),
    options,
  );
}

/**
 * The index from rows whose names are already parsed (`parsedNames[i]` is `parseRowName(rows[i], options)`), as
 * the scoring-data cache keeps them: only map building, no name parsing.
 */
export function assembleNameIndex<Row extends NamedRow>(
  rows: readonly Row[],
  parsedNames: readonly ParsedRowName[],
  options: ParseNameOptions,
): NameIndex<Row> {
  const exact = new Map<string, Entry<Row>[]>();
  const tokens = new Map<string, Entry<Row>[]>();
  const family = new Map<string, Entry<Row>[]>();
  const aliasCandidates = new Map<string, Entry<Row>[]>();
  rows.forEach((row, position) => {
    const names = parsedNames[position];
    if (names === undefined) throw new Error(`name index: row ${position} has no parsed name`);
    const { parsed } = names;
    const entry: Entry<Row> = { row, parsed };
    push(exact, parsed.exactKey, entry);
    push(tokens, parsed.tokenKey, entry);
    if (parsed.familyKey !== "") push(family, parsed.familyKey, entry);
    for (const aliasKey of names.aliasKeys) {
      if (aliasKey !== parsed.tokenKey) push(aliasCandidates, aliasKey, entry);
    }
  });
  // An alias counts only when it is unambiguous (every row under it shares one name) and names no row itself:
  // Aider ran `deepseek/deepseek-chat` for V2.5, V3 and V3.2, so that id says nothing.
  const aliases = new Map<string, Entry<Row>[]>();
  for (const [key, entries] of aliasCandidates) {
    const names = new Set(entries.map((entry) => entry.parsed.tokenKey));
    if (names.size === 1 && !tokens.has(key)) aliases.set(key, entries);
  }
  return { options, rows, exact, tokens, aliases, family };
}

function push<Value>(map: Map<string, Value[]>, key: string, value: Value): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}

/**
 * Finds the rows for a model id: exact key, then the same tokens in any order, then an alias, then the family
 * (an undated id takes any snapshot; pre-release words relaxed; never a different size, version or date).
 * Undefined when nothing matches: the caller scores that as unknown.
 */
export function matchName<Row extends NamedRow>(index: NameIndex<Row>, query: string): NameMatch<Row> | undefined {
  const parsed = parseModelName(query);
  const exact = index.exact.get(parsed.exactKey);
  if (exact !== undefined) return { level: "exact", rows: rowsOf(preferSameQualifier(exact, parsed)) };
  const sameTokens = index.tokens.get(parsed.tokenKey);
  if (sameTokens !== undefined) return { level: "tokens", rows: rowsOf(preferSameQualifier(sameTokens, parsed)) };
  const alias = index.aliases.get(parsed.tokenKey);
  if (alias !== undefined) return { level: "alias", rows: rowsOf(preferSameQualifier(alias, parsed)) };
  if (parsed.familyKey === "") return undefined;
  const family = index.family.get(parsed.familyKey);
  if (family === undefined) return undefined;
  const rows = matchFamily(family, parsed);
  return rows.length === 0 ? undefined : { level: "family", rows };
}

function matchFamily<Row>(family: readonly Entry<Row>[], query: ParsedName): Row[] {
  // A dated id is one snapshot: another snapshot, or a row that does not say which, is another version. An
  // undated id (`gpt-4o`, `mistral-large-latest`) is an alias of some snapshot: any of them stands for it.
  let candidates =
    query.snapshot === "" ? [...family] : family.filter((entry) => entry.parsed.snapshot === query.snapshot);
  candidates = prefer(candidates, (entry) => entry.parsed.soft === query.soft);
  candidates = prefer(candidates, (entry) => entry.parsed.snapshot === query.snapshot);
  return rowsOf(preferSameQualifier(candidates, query));
}

/** A board's default run answers a plain id; an id that asks for an effort (`o4-mini-high`) prefers such runs. */
function preferSameQualifier<Row>(entries: readonly Entry<Row>[], query: ParsedName): Entry<Row>[] {
  return prefer(entries, (entry) => entry.parsed.isQualified === query.isQualified);
}

function rowsOf<Row>(entries: readonly Entry<Row>[]): Row[] {
  return entries.map((entry) => entry.row);
}

/** Keeps the entries that pass, unless none does. */
function prefer<Value>(values: readonly Value[], isPreferred: (value: Value) => boolean): Value[] {
  const preferred = values.filter(isPreferred);
  return preferred.length > 0 ? preferred : [...values];
}
