// Parameter counts (billions) for the parameter term: configured, from BigCodeBench's size column, or parsed
// from the model id. Unknown stays undefined and is scored as neutral (docs/scoring.md).

/**
 * The total parameter count, in billions, written in a model id: `70b` -> 70, `1.5b` -> 1.5, `405B` -> 405,
 * `8x7b` -> 56 (experts times expert size, as BigCodeBench counts Mixtral), `30b-a3b` -> 30 (the total; `a3b`
 * is the active share), `135m` -> 0.135, Gemma's `e2b` -> 2 (effective size) when nothing else is given. When
 * an id lists experts (`17b-16e`) the `17b` is the active size and the total is not in the id; it is returned as
 * a lower bound. Several sizes (`deepseek-r1-distill-llama-70b`) give the largest. Undefined when none is found.
 */
export function parseParamsB(id: string): number | undefined {
  let largest: number | undefined;
  let effective: number | undefined;
  for (const token of id.toLowerCase().split(/[-_/:\s@]+/)) {
    const size = tokenSizeB(token);
    if (size !== undefined) largest = Math.max(largest ?? 0, size);
    const effectiveMatch = /^e(\d+(?:\.\d+)?)b$/.exec(token);
    if (effectiveMatch?.[1] !== undefined) effective = Number(effectiveMatch[1]);
  }
  return largest ?? effective;
}

function tokenSizeB(token: string): number | undefined {
  const experts = /^(\d+)x(\d+(?:\.\d+)?)b$/.exec(token);
  if (experts?.[1] !== undefined && experts[2] !== undefined) return Number(experts[1]) * Number(experts[2]);
  const billions = /^(\d+(?:\.\d+)?)b$/.exec(token);
  if (billions?.[1] !== undefined) return Number(billions[1]);
  // Millions need two digits: a lone `1m` is usually a context window (`glm-4-9b-chat-1m`).
  const millions = /^(\d{2,4})m$/.exec(token);
  if (millions?.[1] !== undefined) return Number(millions[1]) / 1000;
  return undefined;
}

export type ParamsSource = "config" | "bigcodebench" | "parsed";

export interface ResolvedParams {
  readonly valueB: number;
  readonly source: ParamsSource;
}

export interface ParamsInput {
  readonly modelId: string;
  /** Config `params_b`: the operator knows best. */
  readonly configParamsB?: number | undefined;
  /** BigCodeBench's `size` for the matched row (total parameters). */
  readonly bigCodeBenchSizeB?: number | undefined;
}

/** Precedence: config `params_b` > BigCodeBench `size` > parsed from the id. Undefined when all are unknown. */
export function resolveParamsB(input: ParamsInput): ResolvedParams | undefined {
  if (isPositive(input.configParamsB)) return { valueB: input.configParamsB, source: "config" };
  if (isPositive(input.bigCodeBenchSizeB)) return { valueB: input.bigCodeBenchSizeB, source: "bigcodebench" };
  const parsed = parseParamsB(input.modelId);
  return parsed === undefined ? undefined : { valueB: parsed, source: "parsed" };
}

function isPositive(value: number | undefined): value is number {
  return value !== undefined && Number.isFinite(value) && value > 0;
}
