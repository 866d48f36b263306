// A rerank request in its provider's dialect (`rerank_api`), and the answer read back into the one shape the
// `/v1/rerank` door gives: `{ model, results: [{ index, relevance_score, document? }], usage? }`.
//   cohere  Cohere, Jina, Together, vLLM, Infinity, SiliconFlow: `<base_url>/rerank`, the client's body as it came
//           (an object document holding only `text` sent as that text: vLLM, Infinity and Cohere v2 take strings
//           only), the answer passed on as it came once its `results` are checked.
//   voyage  Voyage AI: `top_n` is `top_k`, documents are strings, the answer's list is `data` (documents as strings).
//   nvidia  an NVIDIA NIM reranker: `<base_url>/ranking`, `query: {text}`, `passages: [{text}]`; the answer's
//           `rankings` hold a `logit` each, all of them: the gateway sorts, cuts to `top_n`, turns each logit into a
//           0..1 score (the logistic function, a one-label cross-encoder's usual activation) and adds the documents
//           when asked.
import { isRecord } from "../is-record.ts";
import { applyBodyRules } from "../providers/body-rules.ts";
import type { Deployment } from "../providers/catalog.ts";
import type { TokenUsage } from "../streaming/relay-types.ts";
import { tokenCount } from "../streaming/stream-event.ts";
import { REASONING_EFFORT_FIELD } from "./upstream-request.ts";

export interface RerankCall {
  /** Below the provider's base URL. */
  readonly endpointPath: string;
  readonly payload: string;
}

/** The body one candidate is sent, and where: the client's body with the model's id and rules, in its dialect. */
export function rerankCall(body: Readonly<Record<string, unknown>>, deployment: Deployment): RerankCall {
  // The gateway's own fields, as buildPayload leaves them out (a reranker has no reasoning effort; a strict host
  // refuses a field it does not know).
  const { models: _fallbacks, [REASONING_EFFORT_FIELD]: _effort, ...rest }: Record<string, unknown> = body;
  // The rules are written in the door's names (`top_n`), as the client's body is: translated with it below.
  if (deployment.body !== undefined) applyBodyRules(rest, deployment.body);
  rest.model = deployment.model.id;
  const documents = Array.isArray(rest.documents) ? (rest.documents as readonly unknown[]) : [];
  const api = deployment.provider.settings.rerankApi;
  if (api === "voyage") {
    const { top_n: topN, ...voyage } = rest;
    voyage.documents = documents.map(textOf);
    if (topN !== undefined) voyage.top_k = topN;
    return { endpointPath: "/rerank", payload: JSON.stringify(voyage) };
  }
  if (api === "nvidia") {
    // A NIM takes neither: it answers every passage's logit, cut and completed by readRerankAnswer.
    const { top_n: _topN, return_documents: _returnDocuments, query, ...nvidia } = rest;
    nvidia.query = { text: query };
    delete nvidia.documents;
    nvidia.passages = documents.map((document) => ({ text: textOf(document) }));
    return { endpointPath: "/ranking", payload: JSON.stringify(nvidia) };
  }
  rest.documents = documents.map((document) =>
    isRecord(document) && Object.keys(document).length === 1 ? textOf(document) : document,
  );
  return { endpointPath: "/rerank", payload: JSON.stringify(rest) };
}

function textOf(document: unknown): string {
  return typeof document === "string" ? document : String((document as { text?: unknown }).text);
}

export type RerankAnswer =
  | {
      readonly ok: true;
      /** The answer in the door's shape; undefined: the provider's body is it (the `cohere` dialect). */
      readonly bodyText: string | undefined;
      /** The tokens the provider counted, when it says; undefined keeps the estimate (Cohere bills search units). */
      readonly usage: TokenUsage | undefined;
    }
  | { readonly ok: false; readonly missing: string };

/**
 * A 2xx JSON object answering a rerank request, read in the candidate's dialect: the door's answer, or what it lacks
 * to be one (a list of results whose every entry has an `index` of a document sent and a numeric score).
 */
export function readRerankAnswer(
  json: Record<string, unknown>,
  deployment: Deployment,
  request: Readonly<Record<string, unknown>>,
): RerankAnswer {
  const documents = Array.isArray(request.documents) ? (request.documents as readonly unknown[]) : [];
  const api = deployment.provider.settings.rerankApi;
  const listName = api === "voyage" ? "data" : api === "nvidia" ? "rankings" : "results";
  const list = json[listName];
  if (!Array.isArray(list)) return { ok: false, missing: `no \`${listName}\` array` };
  const scoreName = api === "nvidia" ? "logit" : "relevance_score";
  const isEntry = (entry: unknown): entry is Record<string, unknown> =>
    isRecord(entry) &&
    Number.isInteger(entry.index) &&
    (entry.index as number) >= 0 &&
    (entry.index as number) < documents.length &&
    Number.isFinite(entry[scoreName]);
  if (!list.every(isEntry)) {
    return { ok: false, missing: `an entry of \`${listName}\` without a document's \`index\` and a \`${scoreName}\`` };
  }
  // Every reranker scores at least one document of those sent, and each at most once: an empty list or a document
  // listed twice (a NIM's duplicate was also sorted, cut and scored twice) is no ranking a client can use.
  if (list.length === 0) return { ok: false, missing: `an empty \`${listName}\`` };
  if (new Set(list.map((entry) => entry.index)).size !== list.length) {
    return { ok: false, missing: `a document listed twice in \`${listName}\`` };
  }
  const usage = usageOf(json.usage);
  if (api === "cohere") return { ok: true, bodyText: undefined, usage };
  const results =
    api === "voyage"
      ? list.map(({ index, relevance_score: score, document }) => ({
          index,
          relevance_score: score,
          ...(typeof document === "string" ? { document: { text: document } } : {}),
        }))
      : nimResults(list, documents, asSent(request, deployment));
  const model = typeof json.model === "string" && json.model !== "" ? json.model : deployment.model.id;
  const answer = { model, results, ...(isRecord(json.usage) ? { usage: json.usage } : {}) };
  return { ok: true, bodyText: JSON.stringify(answer), usage };
}

/**
 * The client's body under the deployment's rules, as rerankCall read it: a NIM is sent neither `top_n` nor
 * `return_documents`, so the answer is cut and completed here by the values the rules gave them (a provider's
 * `defaults: { top_n: 5 }` was ignored: every passage came back).
 */
function asSent(request: Readonly<Record<string, unknown>>, deployment: Deployment): Record<string, unknown> {
  const body = { ...request };
  if (deployment.body !== undefined) applyBodyRules(body, deployment.body);
  return body;
}

/** A NIM's rankings as results: best first, `top_n` of them, each logit as a 0..1 score, the documents when asked. */
function nimResults(
  rankings: readonly Record<string, unknown>[],
  documents: readonly unknown[],
  request: Readonly<Record<string, unknown>>,
): Record<string, unknown>[] {
  const sorted = [...rankings].sort((a, b) => (b.logit as number) - (a.logit as number));
  const topN = typeof request.top_n === "number" ? request.top_n : sorted.length;
  return sorted.slice(0, topN).map(({ index, logit }) => ({
    index,
    relevance_score: 1 / (1 + Math.exp(-(logit as number))),
    ...(request.return_documents === true ? { document: { text: textOf(documents[index as number]) } } : {}),
  }));
}

/**
 * The tokens a rerank answer says it used: the largest of `prompt_tokens`, `total_tokens` (Jina, Together, vLLM,
 * Voyage, a NIM) and `input_tokens`, all of them input (a reranker writes nothing; some hosts say `prompt_tokens: 0`
 * next to the real total). None, or 0: undefined, and the estimate stands.
 */
function usageOf(usage: unknown): TokenUsage | undefined {
  if (!isRecord(usage)) return undefined;
  const tokens = Math.max(
    tokenCount(usage.prompt_tokens) ?? 0,
    tokenCount(usage.total_tokens) ?? 0,
    tokenCount(usage.input_tokens) ?? 0,
  );
  return tokens === 0 ? undefined : { promptTokens: tokens, completionTokens: 0 };
}
