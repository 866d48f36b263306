// A moderation request in its candidate's way (providers/moderation-api.ts), and the answer read back into OpenAI's
// moderation object: `{ id: "modr-...", model, results: [{ flagged, categories, category_scores,
// category_applied_input_types }] }`, one result per input.
//   native       `<base_url>/moderations`, the client's body with the model's id: OpenAI's answer passed on as it came
//                once its `results` are checked; Mistral's (its own categories, no `flagged`) gets `flagged` added.
//   llama_guard  one chat completion per input (`/chat/completions`, the input as the user's message: the model's
//                chat template wraps it in Llama Guard's prompt), whose `safe` or `unsafe\nS1,S10` verdict is turned
//                into OpenAI's categories (HAZARD_CATEGORIES; docs/protocols.md "Moderations").
import { randomUUID } from "node:crypto";
import { isRecord, parseJsonRecord } from "../is-record.ts";
import { estimateTextInputs } from "../limits/token-estimate.ts";
import { applyBodyRules } from "../providers/body-rules.ts";
import type { Deployment } from "../providers/catalog.ts";
import {
  LLAMA_GUARD_MAX_TOKENS,
  LLAMA_GUARD_TEMPLATE_TOKENS,
  type ModerationApi,
  moderationApiOf,
} from "../providers/moderation-api.ts";
import type { TokenUsage } from "../streaming/relay-types.ts";
import { tokenCount } from "../streaming/stream-event.ts";
import { REASONING_EFFORT_FIELD } from "./upstream-request.ts";

/** One upstream call of a moderation attempt. */
export interface ModerationCall {
  /** Below the provider's base URL. */
  readonly endpointPath: string;
  readonly payload: string;
  /**
   * A Llama Guard call's prompt, estimated as the request's is (its input's text, and the template the model wraps it
   * in: LLAMA_GUARD_TEMPLATE_TOKENS): what its provider counted when it took the call in without reporting usage
   * (moderation-attempt.ts unreportedPromptTokens).
   */
  readonly promptTokens?: number;
}

export interface ModerationCalls {
  readonly api: ModerationApi;
  /** Native: one call; Llama Guard: one per input, in the inputs' order. */
  readonly calls: readonly ModerationCall[];
}

/** OpenAI's moderation categories (omni-moderation's), each a key of every translated result. */
export const OPENAI_CATEGORIES = [
  "harassment",
  "harassment/threatening",
  "hate",
  "hate/threatening",
  "illicit",
  "illicit/violent",
  "self-harm",
  "self-harm/intent",
  "self-harm/instructions",
  "sexual",
  "sexual/minors",
  "violence",
  "violence/graphic",
] as const;

type OpenAiCategory = (typeof OPENAI_CATEGORIES)[number];

/**
 * The MLCommons hazard taxonomy that Llama Guard 3 and 4 answer in (S1-S14), as OpenAI's categories. A hazard with no
 * OpenAI counterpart (defamation, specialized advice, privacy, intellectual property, elections) sets none: the
 * result is still `flagged`, and its code is in `x_gateway_hazard_codes`. docs/protocols.md keeps this table.
 */
export const HAZARD_CATEGORIES: Readonly<Record<string, readonly OpenAiCategory[]>> = {
  S1: ["violence", "illicit", "illicit/violent"], // violent crimes
  S2: ["illicit"], // non-violent crimes
  S3: ["sexual", "illicit"], // sex-related crimes
  S4: ["sexual", "sexual/minors"], // child sexual exploitation
  S5: [], // defamation
  S6: [], // specialized advice
  S7: [], // privacy
  S8: [], // intellectual property
  S9: ["violence", "illicit", "illicit/violent"], // indiscriminate weapons
  S10: ["hate"], // hate
  S11: ["self-harm"], // suicide and self-harm
  S12: ["sexual"], // sexual content
  S13: [], // elections
  S14: ["illicit"], // code interpreter abuse
};

/** One input as the client gave it: its text or its parts, and the kinds of content it holds. */
interface ModerationInput {
  readonly content: string | readonly unknown[];
  readonly types: readonly ("text" | "image")[];
}

/**
 * The inputs a validated `input` holds (pipeline/request-body.ts): a text is one, an array of texts one each, an
 * array of parts (OpenAI's multimodal form) one.
 */
export function moderationInputs(input: unknown): readonly ModerationInput[] {
  if (typeof input === "string") return [{ content: input, types: ["text"] }];
  const items = Array.isArray(input) ? (input as readonly unknown[]) : [];
  if (typeof items[0] === "string") return items.map((text) => ({ content: text as string, types: ["text"] }));
  const types: ("text" | "image")[] = [];
  if (items.some((part) => isRecord(part) && part.type === "text")) types.push("text");
  if (items.some((part) => isRecord(part) && part.type === "image_url")) types.push("image");
  return [{ content: items, types }];
}

/**
 * The calls one candidate is sent, or undefined for a model the gateway calls in no way (the router leaves those out:
 * router/unserved-skip.ts).
 */
export function moderationCalls(
  body: Readonly<Record<string, unknown>>,
  deployment: Deployment,
): ModerationCalls | undefined {
  const api = moderationApiOf(deployment.model);
  if (api === undefined) return undefined;
  if (api === "native") {
    // The gateway's own fields stay here, as buildPayload leaves them out.
    const { models: _fallbacks, [REASONING_EFFORT_FIELD]: _effort, ...rest }: Record<string, unknown> = body;
    if (deployment.body !== undefined) applyBodyRules(rest, deployment.body);
    rest.model = deployment.model.id;
    return { api, calls: [{ endpointPath: "/moderations", payload: JSON.stringify(rest) }] };
  }
  // Only the input goes: Llama Guard is told nothing else (a client's `temperature` or the door's other fields are no
  // chat parameters), and its answer must be the verdict, so sampling is off.
  const calls = moderationInputs(body.input).map((input) => ({
    endpointPath: "/chat/completions",
    promptTokens: estimateTextInputs(inputText(input.content)).total + LLAMA_GUARD_TEMPLATE_TOKENS,
    payload: JSON.stringify({
      model: deployment.model.id,
      messages: [{ role: "user", content: input.content }],
      temperature: 0,
      max_tokens: LLAMA_GUARD_MAX_TOKENS,
    }),
  }));
  return { api, calls };
}

/** An input's text as the request's estimate counts it (pipeline/endpoints.ts moderationTexts): parts' texts joined. */
function inputText(content: ModerationInput["content"]): string {
  if (typeof content === "string") return content;
  return content
    .flatMap((part) => (isRecord(part) && part.type === "text" && typeof part.text === "string" ? [part.text] : []))
    .join("\n");
}

export type ModerationAnswer =
  | { readonly ok: true; readonly bodyText: string; readonly usage: TokenUsage | undefined }
  | { readonly ok: false; readonly missing: string };

/**
 * A native 2xx answer: its `results` must be one object with `categories` per input. Passed on as it came when it is
 * already OpenAI's shape; else `flagged` (any category true: Mistral's results have none), `id` and `model` are added.
 */
export function readNativeModeration(
  json: Record<string, unknown>,
  request: Readonly<Record<string, unknown>>,
  deployment: Deployment,
  bodyText: string,
): ModerationAnswer {
  const expected = moderationInputs(request.input).length;
  const results = json.results;
  if (!Array.isArray(results)) return { ok: false, missing: "no `results` array" };
  if (results.length !== expected) {
    return { ok: false, missing: `${results.length} results for ${expected} inputs` };
  }
  if (!results.every((result) => isRecord(result) && isRecord(result.categories))) {
    return { ok: false, missing: "a result without a `categories` object" };
  }
  const usage = usageOf(json.usage);
  const isComplete =
    typeof json.id === "string" &&
    typeof json.model === "string" &&
    json.model !== "" &&
    results.every((result) => typeof result.flagged === "boolean");
  if (isComplete) return { ok: true, bodyText, usage };
  const answer = {
    ...json,
    id: typeof json.id === "string" ? json.id : moderationId(),
    model: typeof json.model === "string" && json.model !== "" ? json.model : deployment.model.id,
    // A `flagged` of another type (`"true"`, null) is replaced, not kept: spread after the computed one, it won.
    results: results.map((result: Record<string, unknown>) =>
      typeof result.flagged === "boolean"
        ? result
        : {
            ...result,
            flagged: Object.values(result.categories as Record<string, unknown>).some((value) => value === true),
          },
    ),
  };
  return { ok: true, bodyText: JSON.stringify(answer), usage };
}

/** A Llama Guard verdict: the hazard codes it names (none: `safe`), or what makes it no verdict. */
export type LlamaGuardVerdict =
  | { readonly ok: true; readonly codes: readonly string[] }
  | { readonly ok: false; readonly missing: string };

/**
 * Llama Guard's answer: `safe`, or `unsafe` and the hazard codes on the next line (`unsafe\nS1,S10`), or the same as
 * Cloudflare's JSON (structuredVerdict). Anything else
 * (an empty answer, a sentence, a code outside S1-S14, `unsafe` naming none) is no verdict: the candidate failed.
 */
export function readLlamaGuardVerdict(content: unknown): LlamaGuardVerdict {
  if (typeof content !== "string") return { ok: false, missing: "no text in choice 0's message" };
  const structured = structuredVerdict(content);
  if (structured !== undefined) return structured;
  const match = /^(safe|unsafe)(?![a-z])([\s\S]*)$/i.exec(content.trim());
  const shown = JSON.stringify(content.slice(0, 64));
  if (match === null) return { ok: false, missing: `an answer that is not Llama Guard's verdict: ${shown}` };
  const rest = (match[2] ?? "").trim();
  if (match[1]?.toLowerCase() === "safe") {
    return rest === "" ? { ok: true, codes: [] } : { ok: false, missing: `text after \`safe\`: ${shown}` };
  }
  const codes = rest.split(/[\s,]+/).filter((code) => code !== "");
  if (codes.length === 0) return { ok: false, missing: "`unsafe` without a hazard code" };
  const normalized = codes.map((code) => code.toUpperCase());
  const unknown = normalized.find((code) => HAZARD_CATEGORIES[code] === undefined);
  if (unknown !== undefined) return { ok: false, missing: `a hazard code outside S1-S14: ${shown}` };
  return { ok: true, codes: [...new Set(normalized)] };
}

/**
 * Cloudflare's Workers AI answers its Llama Guard in JSON (`{"safe": false, "categories": ["S1"]}`): read as the same
 * verdict, when the text is such an object. Undefined: not that form.
 */
function structuredVerdict(content: string): LlamaGuardVerdict | undefined {
  if (!content.trimStart().startsWith("{")) return undefined;
  const json = parseJsonRecord(content);
  if (json === undefined || typeof json.safe !== "boolean") return undefined;
  if (json.safe) return { ok: true, codes: [] };
  return readLlamaGuardVerdict(`unsafe\n${Array.isArray(json.categories) ? json.categories.join(",") : ""}`);
}

/** Llama Guard's verdicts, one per input, as OpenAI's moderation object. */
export function llamaGuardAnswer(
  verdicts: readonly (readonly string[])[],
  request: Readonly<Record<string, unknown>>,
  deployment: Deployment,
): string {
  const inputs = moderationInputs(request.input);
  const results = verdicts.map((codes, index) => {
    const flaggedCategories = new Set(codes.flatMap((code) => HAZARD_CATEGORIES[code] ?? []));
    const types = inputs[index]?.types ?? ["text"];
    const categories: Record<string, boolean> = {};
    const scores: Record<string, number> = {};
    const applied: Record<string, readonly string[]> = {};
    for (const category of OPENAI_CATEGORIES) {
      const isFlagged = flaggedCategories.has(category);
      categories[category] = isFlagged;
      // Llama Guard gives no probabilities: a category it named scores 1, the others 0.
      scores[category] = isFlagged ? 1 : 0;
      applied[category] = types;
    }
    return {
      flagged: codes.length > 0,
      categories,
      category_scores: scores,
      category_applied_input_types: applied,
      x_gateway_hazard_codes: codes,
    };
  });
  return JSON.stringify({ id: moderationId(), model: deployment.model.id, results });
}

/** OpenAI's moderation ids: `modr-` and a random part. */
function moderationId(): string {
  return `modr-${randomUUID().replaceAll("-", "")}`;
}

/** The tokens a native answer says it used (Mistral reports `usage`; OpenAI's moderation answer has none). */
function usageOf(usage: unknown): TokenUsage | undefined {
  if (!isRecord(usage)) return undefined;
  const prompt = tokenCount(usage.prompt_tokens) ?? tokenCount(usage.total_tokens) ?? 0;
  return prompt === 0
    ? undefined
    : { promptTokens: prompt, completionTokens: tokenCount(usage.completion_tokens) ?? 0 };
}
