// Which feature of a request an `unsupported` refusal (classify-response.ts `refusalOf`) is about, when it can be
// told: from the error's `param`, else from what its message names. Pure. Undefined when the refusal cannot be tied
// to exactly one feature the request carries: then nothing is learned (a wrong lesson would rank a candidate last
// for requests it serves).
import {
  IMAGES_FEATURE,
  JSON_OBJECT_FEATURE,
  JSON_SCHEMA_FEATURE,
  type RequestFeature,
} from "../router/request-features.ts";

/** What a refusal says (classify-response.ts UpstreamErrorFields): its words and the parameter it names. */
interface RefusalWords {
  readonly message: string;
  readonly param?: string | undefined;
}

/**
 * Words that name a capability without naming its key, as refusals word it: Ollama's "<model> does not support
 * tools", "tool calling is not supported with this model", "function calling", "image input is not supported",
 * "this model does not support vision", "structured outputs", "JSON mode".
 */
const DESCRIBED: readonly { readonly feature: RequestFeature; readonly words: RegExp }[] = [
  // Not `tool_choice` nor `parallel_tool_calls`: keys of their own, learned by their name.
  { feature: "tools", words: /\btools?\b|\btool[ -]?(?:calls?|calling|use)\b|\bfunction[ -]?call/i },
  { feature: IMAGES_FEATURE, words: /\bimages?\b|image_url|\bvision\b|multi-?modal/i },
  { feature: JSON_SCHEMA_FEATURE, words: /json[_ ]schema|structured[ _-]outputs?/i },
  { feature: JSON_OBJECT_FEATURE, words: /json[_ ]object|json mode/i },
];

/**
 * The feature a refusal is about, among `features` (router/request-features.ts), in order of how sure the tie is:
 * 1. the error's `param` (`tools`, `tools[0].function`, `response_format`, `messages[0].content[1].image_url`);
 * 2. one feature named in quotes or backticks (`'logprobs' is not supported with this model`, vLLM's
 *    `'loc': ('body', 'parallel_tool_calls')`, "response_format `json_schema` is not supported by llama-3.1-8b-instant");
 * 3. one feature named as a bare word ("Unrecognized request argument supplied: seed") or described in words
 *    ("does not support tools", "image input is not supported").
 * Each step counts only when it points at exactly one feature: "'tools' and 'tool_choice' are not supported"
 * teaches nothing rather than half of it.
 */
export function refusedFeature(error: RefusalWords, features: readonly RequestFeature[]): RequestFeature | undefined {
  if (features.length === 0) return undefined;
  const carried = new Set(features);
  const fromParam = error.param === undefined ? undefined : featureOfParam(error.param, carried);
  if (fromParam !== undefined) return fromParam;
  const message = error.message;
  const quoted = new Set<RequestFeature>();
  for (const match of message.matchAll(/['"`]([A-Za-z_][A-Za-z0-9_.[\]]*)['"`]/g)) {
    const feature = featureOfParam(match[1] ?? "", carried);
    if (feature !== undefined) quoted.add(feature);
  }
  if (quoted.size === 1) return only(quoted);
  if (quoted.size > 1) return undefined;
  // A key named and a capability described count together: "This model does not support tools" names `tools` and
  // describes it, one feature; "Image input is not supported for user messages" names `user` and describes
  // images, two, and teaches nothing.
  const mentioned = new Set<RequestFeature>();
  for (const { feature, words } of DESCRIBED) {
    if (carried.has(feature) && words.test(message)) mentioned.add(feature);
  }
  for (const feature of features) {
    if (namesWord(message, feature)) mentioned.add(feature === "response_format" ? formatOf(carried) : feature);
  }
  return mentioned.size === 1 ? only(mentioned) : undefined;
}

/** A param path's feature: its first segment when the request carries it, images for an image part of a message. */
function featureOfParam(param: string, carried: ReadonlySet<RequestFeature>): RequestFeature | undefined {
  const head = param.split(/[.[]/, 1)[0] ?? "";
  if (head === "response_format" && carried.has(head)) return formatOf(carried);
  if (head === "messages") return carried.has(IMAGES_FEATURE) && /image/i.test(param) ? IMAGES_FEATURE : undefined;
  return carried.has(head) ? head : undefined;
}

/** A refusal of `response_format` is about the format asked for: a model may take JSON mode and not a schema. */
function formatOf(carried: ReadonlySet<RequestFeature>): RequestFeature {
  if (carried.has(JSON_SCHEMA_FEATURE)) return JSON_SCHEMA_FEATURE;
  if (carried.has(JSON_OBJECT_FEATURE)) return JSON_OBJECT_FEATURE;
  return "response_format";
}

/** The word stands alone: not a part of a longer key (`tools` in `tools_extra`, `stop` in `stop_sequences`). */
function namesWord(message: string, word: string): boolean {
  let from = 0;
  for (;;) {
    const at = message.indexOf(word, from);
    if (at < 0) return false;
    const before = message[at - 1];
    const after = message[at + word.length];
    if (!isWordCharacter(before) && !isWordCharacter(after)) return true;
    from = at + 1;
  }
}

function isWordCharacter(character: string | undefined): boolean {
  return character !== undefined && /[A-Za-z0-9_]/.test(character);
}

function only(set: ReadonlySet<RequestFeature>): RequestFeature {
  for (const value of set) return value;
  throw new Error("only() of an empty set");
}
