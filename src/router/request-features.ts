// What a request asks of a candidate beyond a model, as names a refusal can be tied to: the body's own parameters
// (`tools`, `tool_choice`, `logprobs`, `seed`, `stop`, ...) by their key, and three capabilities read from their
// values (`images` in the messages, `json_schema` or `json_object` as `response_format`). A candidate that refused
// one of them is ranked last for later requests carrying it (limits/refused-features.ts, docs/routing.md "Fit").

import { InvalidRequestError } from "../errors/gateway-error.ts";
import type { FeatureSizes } from "../limits/refused-features.ts";

/** A feature named by a body key, or one of the capabilities below. */
export type RequestFeature = string;

/** The request's messages hold an image part. */
export const IMAGES_FEATURE = "images";
/** `response_format: { type: "json_schema" }` */
export const JSON_SCHEMA_FEATURE = "json_schema";
/** A streamed transcription (`stream: true`): not every transcription model streams (pipeline/handle-request.ts). */
export const STREAM_FEATURE = "stream";
/**
 * An embeddings batch's inputs, refused for their number (Google's "at most 100 requests can be in one batch"): a
 * sized lesson (its `minEntries`) that the chunking reads (pipeline/embeddings-chunks.ts), never a feature a request
 * lists (every embeddings request carries `input`): no candidate is ranked last for it.
 */
export const INPUTS_FEATURE = "input";
/** `response_format: { type: "json_object" }` (JSON mode) */
export const JSON_OBJECT_FEATURE = "json_object";

/**
 * Keys every request of its endpoint carries (or the gateway's own, never sent as they came): no refusal is about
 * them being there, and a candidate ranked last for every request would be no lesson at all.
 */
// `voice`: every speech request names one (a voice a provider does not have is a refusal of that request, not of a
// feature the next speech request would not carry). `size`: the same for an image request's size (a model refusing
// `1792x1024` takes `1024x1024`). `query` and `documents`: every rerank request carries them, `image` (or `image[]`)
// every image edit.
const NOT_FEATURES = new Set([
  "model",
  "models",
  "messages",
  "prompt",
  "input",
  "file",
  "image",
  "image[]",
  "voice",
  "size",
  "query",
  "documents",
  "stream",
]);
/** The gateway's own extensions (`x_gateway_reasoning_effort`) are translated per candidate, not sent as named. */
const GATEWAY_PREFIX = "x_gateway_";
/** A body's keys beyond this many are not looked at: a hostile body with thousands must not cost a plan more. */
const MAX_FEATURES = 64;

/**
 * The features of a request body (as the gateway received it, in Chat Completions form): each top-level key with a
 * value (null is "not set"), plus the capabilities its values ask for. `hasImages`: the prompt estimate's own finding
 * (limits/token-estimate.ts), so that images are recognised exactly where the vision fit check sees them.
 */
export function requestFeatures(
  body: Readonly<Record<string, unknown>>,
  hasImages: boolean,
): readonly RequestFeature[] {
  const features: RequestFeature[] = [];
  for (const [key, value] of Object.entries(body)) {
    if (features.length >= MAX_FEATURES) break;
    if (value === undefined || value === null || NOT_FEATURES.has(key) || key.startsWith(GATEWAY_PREFIX)) continue;
    features.push(key);
  }
  if (hasImages) features.push(IMAGES_FEATURE);
  const format = responseFormatFeature(body.response_format);
  if (format !== undefined) features.push(format);
  return features;
}

const NO_SIZES: FeatureSizes = new Map();

/**
 * How many entries each array-valued feature of a body holds (`stop`, `tools`): a lesson about a size (a `stop` of more
 * than 4 refused) holds only for requests at least that large (limits/refused-features.ts). Any other value counts as
 * one entry, so only arrays are listed.
 */
export function featureSizesOf(body: Readonly<Record<string, unknown>>): FeatureSizes {
  let sizes: Map<string, number> | undefined;
  // Counted as requestFeatures counts them, so that every feature it lists is sized.
  let features = 0;
  for (const [key, value] of Object.entries(body)) {
    if (features >= MAX_FEATURES) break;
    if (value === undefined || value === null || NOT_FEATURES.has(key) || key.startsWith(GATEWAY_PREFIX)) continue;
    features++;
    if (!Array.isArray(value)) continue;
    sizes ??= new Map();
    sizes.set(key, value.length);
  }
  return sizes ?? NO_SIZES;
}

/** `json_schema` or `json_object` for a `response_format` that asks for one; undefined for text or none. */
export function responseFormatFeature(responseFormat: unknown): RequestFeature | undefined {
  if (responseFormat === null || typeof responseFormat !== "object") return undefined;
  const type = (responseFormat as { type?: unknown }).type;
  return type === JSON_SCHEMA_FEATURE || type === JSON_OBJECT_FEATURE ? type : undefined;
}

/** The features a route explanation's `tools=true`, `vision=true` and `json_schema=true` stand for. */
export function featuresOfNeeds(needs: {
  readonly needsTools?: boolean | undefined;
  readonly needsVision?: boolean | undefined;
  readonly needsJsonSchema?: boolean | undefined;
}): readonly RequestFeature[] {
  return [
    ...(needs.needsTools === true ? ["tools"] : []),
    ...(needs.needsVision === true ? [IMAGES_FEATURE] : []),
    ...(needs.needsJsonSchema === true ? ["response_format", JSON_SCHEMA_FEATURE] : []),
  ];
}

/** The capabilities a route explanation can be asked about, by the name `GET /v1/gateway/route` gives each. */
export type ExplainedNeedName = "tools" | "vision" | "json_schema";

/** A route explanation's capability questions, as `explainRoute` takes them. */
export interface ExplainedNeeds {
  readonly needsTools?: true;
  readonly needsVision?: true;
  readonly needsJsonSchema?: true;
}

/**
 * What a route explanation's `tools=true`, `vision=true` and `json_schema=true` (`llm-gateway route --tools --vision
 * --json-schema`) ask for; `isAsked` says, by name, whether each was given. One reading for both, so that the command
 * line shows the lessons about tools, images and json_schema the HTTP explanation shows.
 */
export function explainedNeeds(isAsked: (name: ExplainedNeedName) => boolean): ExplainedNeeds {
  return {
    ...(isAsked("tools") ? { needsTools: true } : {}),
    ...(isAsked("vision") ? { needsVision: true } : {}),
    ...(isAsked("json_schema") ? { needsJsonSchema: true } : {}),
  };
}

/** The request parameters a route explanation is asked about, as `explainRoute` takes them. */
export interface ExplainedParameters {
  readonly parameters: readonly string[];
  readonly parameterSizes: FeatureSizes;
}

/**
 * A route explanation's `parameters` (`GET /v1/gateway/route?parameters=seed,stop:6`, `llm-gateway route
 * --parameters seed,stop:6`): the names, and how many entries each holds; one given without a number holds as many
 * as any lesson is about (every lesson about it is shown). Without the sizes a route explanation showed every lesson,
 * also one about more entries than the request would carry. One parser for both, so they read a list alike.
 */
export function explainedParameters(list: string): ExplainedParameters {
  const parameters: string[] = [];
  const parameterSizes = new Map<string, number>();
  for (const item of list.split(",")) {
    const [name = "", entries] = item.split(":");
    if (name === "") continue;
    const count = entries === undefined ? Number.POSITIVE_INFINITY : Number(entries);
    if (!(Number.isInteger(count) && count > 0) && count !== Number.POSITIVE_INFINITY) {
      throw new InvalidRequestError(
        `\`parameters\` takes body keys, an array's with its number of entries: e.g. seed,stop:6`,
        { param: "parameters", code: "invalid_value" },
      );
    }
    parameters.push(name);
    parameterSizes.set(name, count);
  }
  return { parameters, parameterSizes };
}
