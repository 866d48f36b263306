// An embeddings batch's chunk answers (embeddings-chunks.ts) as one: each chunk's answer parsed once with what its
// usage counts, the vectors joined in the client's order, the usage summed field by field.
import { isRecord } from "../is-record.ts";
import type { Deployment } from "../providers/catalog.ts";
import type { TokenUsage } from "../streaming/relay-types.ts";
import type { AttemptReport, JsonResult } from "../upstream/forward-types.ts";

/** A chunk's answer, parsed once, and what its usage counts. */
export interface ChunkAnswer {
  readonly json: Record<string, unknown>;
  /** Its first input's position in the batch. */
  readonly start: number;
  /** The deployment that answered it. */
  readonly deployment: Deployment;
  /** The attempt that answered it. */
  readonly attempt: AttemptReport | undefined;
  /** Its provider's `usage` object; undefined when it sent none. */
  readonly reported: Record<string, unknown> | undefined;
  /** What the record counts: the attempt's usage, or, none reported, the prompt as its deployment was charged it. */
  readonly tokens: TokenUsage;
  /** `tokens` is an estimate: this gateway's (no `usage`), or an upstream gateway's (its `usage_estimated`). */
  readonly isEstimated: boolean;
}

export function chunkAnswerOf(
  result: JsonResult,
  attempt: AttemptReport | undefined,
  promptTokens: number,
  start: number,
): ChunkAnswer {
  const { deployment } = result;
  // Each answer was checked by its attempt (json-attempt.ts): a JSON object with one entry per input.
  const json = JSON.parse(result.bodyText) as Record<string, unknown>;
  const reported = isRecord(json.usage) ? json.usage : undefined;
  if (reported === undefined) {
    // The attempt read no usage as 0 tokens, and its deployment kept the reservation (segment-charge.ts answerCharge):
    // the reservation's prompt, the calibrated estimate of the chunk, is what it cost.
    const estimate = attempt?.reservedPromptTokens ?? promptTokens;
    const tokens = { promptTokens: estimate, completionTokens: 0 };
    return { json, start, deployment, attempt, reported, tokens, isEstimated: true };
  }
  const tokens = attempt?.usage ?? { promptTokens: 0, completionTokens: 0 };
  return { json, start, deployment, attempt, reported, tokens, isEstimated: result.isUsageEstimated === true };
}

/**
 * The batch's usage: every chunk's tokens summed, an estimate when any chunk's is. Undefined when no chunk reported
 * usage: the batch is then counted as one sent whole without a usage report is (its reservation), not by estimates
 * alone. A chunk without usage among chunks with one is counted by its estimate: before 2026-12-07 it counted 0 and
 * the batch's usage said fewer tokens than the chunks cost.
 */
export function joinedUsage(
  answers: readonly ChunkAnswer[],
): { readonly tokens: TokenUsage; readonly isEstimated: boolean } | undefined {
  if (answers.every((answer) => answer.reported === undefined)) return undefined;
  const tokens = { promptTokens: 0, completionTokens: 0 };
  for (const answer of answers) {
    tokens.promptTokens += answer.tokens.promptTokens;
    tokens.completionTokens += answer.tokens.completionTokens;
  }
  return { tokens, isEstimated: answers.some((answer) => answer.isEstimated) };
}

/**
 * The record's attempt of each chunk counted by its estimate says so, with that estimate: the record's tokens are then
 * its attempts' sum, and the token metrics count each chunk on the deployment that answered it, the estimate as
 * `estimated` (token-metrics.ts). Its budgets were charged when it ended (its reservation: no usage to read).
 */
export function countEstimatedAttempts(answers: readonly ChunkAnswer[], attempts: AttemptReport[]): void {
  for (const { attempt, reported, tokens } of answers) {
    const index = attempt === undefined || reported !== undefined ? -1 : attempts.indexOf(attempt);
    if (index >= 0) attempts[index] = { ...(attempt as AttemptReport), usage: tokens, isUsageEstimated: true };
  }
}

/**
 * The chunks' answers as one: the first's fields, every vector with its index from the batch's start, and `usage` the
 * chunks' summed (usageFields), marked `x_gateway.usage_estimated` when any chunk's is an estimate.
 */
export function joinedAnswer(
  answers: readonly ChunkAnswer[],
  usage: ReturnType<typeof joinedUsage>,
): Record<string, unknown> {
  const data: unknown[] = [];
  for (const { json, start } of answers) {
    // Put in index order by its attempt (embeddingsForClient), indexes right or all absent (missingEmbeddings).
    for (const [position, entry] of (json.data as Record<string, unknown>[]).entries()) {
      data.push({ ...entry, index: start + position });
    }
  }
  // The first chunk's mark (an upstream gateway's estimate) said nothing of the others: the mark is the batch's.
  const { x_gateway: _firstMark, ...head } = answers[0]?.json ?? {};
  if (usage === undefined) return { ...head, data };
  const mark = usage.isEstimated ? { x_gateway: { usage_estimated: true } } : {};
  return { ...head, data, usage: usageFields(answers), ...mark };
}

/**
 * The `usage` objects of the chunks that reported one, summed field by field: numbers added, nested objects
 * (`prompt_tokens_details`) summed the same way, anything else as the first chunk holding it had it. A chunk without
 * usage adds its estimate to `prompt_tokens` and `total_tokens` (those the others reported; both when neither). Until
 * 2026-12-07 only top-level numbers were summed (nested fields dropped) and a chunk without usage added nothing.
 */
function usageFields(answers: readonly ChunkAnswer[]): Record<string, unknown> {
  let sum: Record<string, unknown> = {};
  for (const { reported } of answers) if (reported !== undefined) sum = addedFields(sum, reported);
  const estimated = answers.filter((answer) => answer.reported === undefined);
  if (estimated.length === 0) return sum;
  const tokens = estimated.reduce((total, answer) => total + answer.tokens.promptTokens, 0);
  const counted = PROMPT_COUNT_FIELDS.filter((field) => typeof sum[field] === "number");
  const fields = counted.length === 0 ? PROMPT_COUNT_FIELDS : counted;
  return addedFields(sum, Object.fromEntries(fields.map((field) => [field, tokens])));
}

/** The fields of an embeddings usage that count its prompt (an embeddings call has no output). */
const PROMPT_COUNT_FIELDS = ["prompt_tokens", "total_tokens"] as const;

function addedFields(total: Record<string, unknown>, more: Record<string, unknown>): Record<string, unknown> {
  const sum: Record<string, unknown> = { ...total };
  for (const [key, value] of Object.entries(more)) {
    // An upstream's `__proto__` key (JSON.parse makes it an own one) is no count: assigned, it became the sum's
    // prototype, and a field it held was read as reported (a chunk's estimate added to a `total_tokens` none sent).
    if (key === "__proto__") continue;
    const held = sum[key];
    if (held === undefined) sum[key] = value;
    else if (typeof held === "number" && typeof value === "number") sum[key] = held + value;
    else if (isRecord(held) && isRecord(value)) sum[key] = addedFields(held, value);
  }
  return sum;
}
