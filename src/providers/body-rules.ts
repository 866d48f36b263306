// What the config changes in the body a provider or model is sent (`body:` on a provider, a `known_models` entry or a
// model; docs/configuration.md "Request body rules"): fields filled in when the client left them out (`defaults`),
// fields always set (`override`), fields removed (`drop`). A provider that refuses a parameter (o1-style models and
// `temperature`, a host without `logprobs`) or a model that wants one (a reasoning model's recommended
// `temperature`) is then served without failing over, and the user need not wait for the gateway to learn it.
//
// The levels merge provider -> known model -> model, field by field: a field a level names (in `defaults`, `override`
// or `drop`) is decided by the most specific level that names it, whatever the earlier ones said of it. Applied to
// each attempt's body in this order: drop, then defaults where the field is absent (or null), then override. The output limit is one setting under two names (`max_tokens`, and
// `max_completion_tokens`, which newer OpenAI models take): a default for either fills in only when the body has
// neither, so that a client's own limit is never joined by a second, conflicting one.
import { applyResponsesRules, type ResponsesBodyRules, responsesRulesOf } from "./responses-body-rules.ts";

/** A level as written and validated (config/provider-schema.ts `bodyRulesSchema`). */
export interface RawBodyRules {
  readonly defaults?: Readonly<Record<string, unknown>> | undefined;
  readonly override?: Readonly<Record<string, unknown>> | undefined;
  readonly drop?: readonly string[] | undefined;
}

export interface BodyRules {
  readonly defaults: Readonly<Record<string, unknown>>;
  readonly override: Readonly<Record<string, unknown>>;
  readonly drop: readonly string[];
  /**
   * The output tokens a request may ask for under these rules, from the client's own `max_completion_tokens ??
   * max_tokens` (0: none). Conservative: where the rules may leave several values in the body (the client's under
   * one name, a default under the other) the largest counts, so that budgets and the context fit never count fewer
   * tokens than the provider may reserve.
   */
  readonly outputTokens: (requested: number) => number;
  /** The same rules for a `responses_api: native` provider's Responses body (responses-body-rules.ts). */
  readonly responses: ResponsesBodyRules;
}

/** Chat's output limit, under its two names: `max_tokens`, and `max_completion_tokens`, which newer OpenAI models take. */
export const OUTPUT_FIELDS = ["max_completion_tokens", "max_tokens"] as const;

/**
 * The merged rules of the levels, or undefined when no level says anything (the common case: no work per request).
 * `generatesText`: false for a model that answers no text (an embedding model): an output limit is then neither
 * filled in nor set nor counted. A provider's `defaults: { max_tokens }` meant for its chat models otherwise went to
 * its embeddings endpoint too, and its 4096 counted as output in the embedding model's context fit and budgets: a
 * long input was refused as not fitting, and every embeddings request charged tokens no provider reserves.
 */
export function mergeBodyRules(
  levels: readonly (RawBodyRules | undefined)[],
  { generatesText = true }: { readonly generatesText?: boolean } = {},
): BodyRules | undefined {
  const defaults: Record<string, unknown> = {};
  const override: Record<string, unknown> = {};
  const drop: string[] = [];
  let isEmpty = true;
  for (const level of levels) {
    if (level === undefined) continue;
    // A field a level names is decided by that level alone: a model's `drop: [temperature]` (it refuses one) under
    // a provider's `defaults: { temperature }` was dropped and then filled in again by the provider's default, and
    // a model's default of a field the provider overrides was never sent.
    for (const field of [
      ...Object.keys(level.defaults ?? {}),
      ...Object.keys(level.override ?? {}),
      ...(level.drop ?? []),
    ]) {
      delete defaults[field];
      delete override[field];
      const dropped = drop.indexOf(field);
      if (dropped !== -1) drop.splice(dropped, 1);
    }
    for (const [field, value] of Object.entries(level.defaults ?? {})) {
      if (!generatesText && isOutputField(field)) continue;
      defaults[field] = value;
      isEmpty = false;
    }
    for (const [field, value] of Object.entries(level.override ?? {})) {
      if (!generatesText && isOutputField(field)) continue;
      override[field] = value;
      isEmpty = false;
    }
    for (const field of level.drop ?? []) {
      if (!drop.includes(field)) drop.push(field);
      isEmpty = false;
    }
  }
  if (isEmpty) return undefined;
  return {
    defaults,
    override,
    drop,
    outputTokens: outputTokensUnder(defaults, override, drop),
    responses: responsesRulesOf({
      defaults: withoutOutputFields(defaults),
      override: withoutOutputFields(override),
      drop: drop.filter((field) => !isOutputField(field)),
      outputDefault: largestTokens(defaults),
      outputOverride: largestTokens(override),
      isOutputDropped: OUTPUT_FIELDS.every((field) => drop.includes(field)),
    }),
  };
}

function withoutOutputFields(fields: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(fields).filter(([field]) => !isOutputField(field)));
}

/**
 * Applies the rules to a body the caller owns (the attempt's shallow copy). Values are shared with the frozen
 * config, not copied: the body is serialised and thrown away, nothing writes into it.
 *
 * `api: "responses"`: the body is a Responses request going to a `responses_api: native` provider, and gets the
 * rules in its names (responses-body-rules.ts): a rule's `max_tokens` / `max_completion_tokens` sets its
 * `max_output_tokens` instead, with the value the budgets and the context fit count (the larger where both names are
 * given), and both names dropped drop it; `reasoning_effort` is `reasoning.effort`; a chat-only field is left out.
 */
export function applyBodyRules(
  body: Record<string, unknown>,
  rules: BodyRules,
  api: "chat" | "responses" = "chat",
): void {
  if (api === "responses") {
    applyResponsesRules(body, rules.responses);
    return;
  }
  for (const field of rules.drop) delete body[field];
  const hasOutputLimit = OUTPUT_FIELDS.some((field) => body[field] !== undefined && body[field] !== null);
  for (const field in rules.defaults) {
    if (hasOutputLimit && isOutputField(field)) continue;
    if (isAbsent(body, field)) body[field] = rules.defaults[field];
  }
  for (const field in rules.override) body[field] = rules.override[field];
}

/**
 * Not in the body, or null. An own property only: a body is a plain object, and a field named like one of its
 * prototype's members (`toString`, `constructor`) read through it was a function, never absent, so it never filled in.
 */
function isAbsent(body: Readonly<Record<string, unknown>>, field: string): boolean {
  return !Object.hasOwn(body, field) || body[field] === undefined || body[field] === null;
}

/** The larger of the output limits `fields` gives under either chat name; undefined when it gives none. */
function largestTokens(fields: Readonly<Record<string, unknown>>): number | undefined {
  const values = OUTPUT_FIELDS.flatMap((field) => tokenValue(fields[field]) ?? []);
  return values.length === 0 ? undefined : Math.max(...values);
}

function outputTokensUnder(
  defaults: Readonly<Record<string, unknown>>,
  override: Readonly<Record<string, unknown>>,
  drop: readonly string[],
): (requested: number) => number {
  const overridden = OUTPUT_FIELDS.flatMap((field) => tokenValue(override[field]) ?? []);
  const defaulted = OUTPUT_FIELDS.flatMap((field) => (field in override ? [] : (tokenValue(defaults[field]) ?? [])));
  const overrideMax = Math.max(0, ...overridden);
  const defaultMax = Math.max(0, ...defaulted);
  // The client's value (under a name the rules do not say) is gone only when neither name survives, each dropped
  // or overridden. When one name is dropped the client's value may have been under it: then a default may apply.
  const isClientValueRemoved = OUTPUT_FIELDS.every((field) => drop.includes(field) || field in override);
  const mayDropClientValue = OUTPUT_FIELDS.some((field) => drop.includes(field));
  return (requested) => {
    if (requested <= 0) return Math.max(overrideMax, defaultMax);
    const client = isClientValueRemoved ? 0 : requested;
    return Math.max(overrideMax, client, mayDropClientValue ? defaultMax : 0);
  };
}

function isOutputField(field: string): boolean {
  return field === "max_tokens" || field === "max_completion_tokens";
}

function tokenValue(value: unknown): number | undefined {
  return typeof value === "number" && Number.isSafeInteger(value) && value > 0 ? value : undefined;
}

/** Which of the two names a body's output limit is under; undefined when it has none, or both. */
export type OutputLimitName = (typeof OUTPUT_FIELDS)[number];

export function outputLimitNameOf(body: Readonly<Record<string, unknown>>): OutputLimitName | undefined {
  // Read for every request (handle-request.ts): two reads, no list built.
  const hasCompletion = tokenValue(body.max_completion_tokens) !== undefined;
  if (hasCompletion === (tokenValue(body.max_tokens) !== undefined)) return undefined;
  return hasCompletion ? "max_completion_tokens" : "max_tokens";
}

/** What holds a deployment's body rules: its own, and (a chat model) those of legacy `/v1/completions` bodies. */
export interface RulesHolder {
  readonly body?: BodyRules | undefined;
  readonly completionsBody?: BodyRules | undefined;
}

/**
 * The rules a request's body is sent with to a deployment: a legacy completion's (catalog.ts `completionsBody`, its
 * provider's rules for that body), else the deployment's own. Planning (context fit, budget reserve, route
 * explanation) and sending must read the same: planning read the chat rules for a completion while failover sent it
 * with the completions rules, so a rule capping `max_tokens` for one only was counted for the other.
 */
export function sentRulesOf(deployment: RulesHolder, isLegacyCompletion: boolean | undefined): BodyRules | undefined {
  return isLegacyCompletion === true ? deployment.completionsBody : deployment.body;
}

/**
 * The output tokens a request asking for `requested` (0: none) may get from this deployment, its rules applied.
 * With the name the client's limit is under (`name`), exactly what the rules leave: an override of that name
 * replaces it (a client's 32000 capped at 1024 counts 1024, so a small model is not skipped as too small for it).
 * Without, conservatively (BodyRules.outputTokens).
 */
export function outputTokensFor(
  deployment: RulesHolder,
  requested: number,
  name?: OutputLimitName,
  isLegacyCompletion?: boolean,
): number {
  const rules = sentRulesOf(deployment, isLegacyCompletion);
  if (rules === undefined) return requested;
  if (name === undefined || requested <= 0) return rules.outputTokens(requested);
  const body: Record<string, unknown> = { [name]: requested };
  applyBodyRules(body, rules);
  return Math.max(0, ...OUTPUT_FIELDS.map((field) => tokenValue(body[field]) ?? 0));
}
