// An embeddings answer in the encoding its client asked for. OpenAI's SDKs ask for `encoding_format: "base64"` unless
// told otherwise and decode every `embedding` as base64 of little-endian float32s, whatever came: many hosts (LM
// Studio, Infinity, Ollama behind LiteLLM, older LocalAI) ignore the field and answer floats, which the Node SDK
// turned into a quarter as many garbage numbers (`Buffer.from(array, "base64")` takes each float as one byte), so a
// vector store saw 256 dimensions for 1024, silently. The reverse (base64 to a client that asked for floats, as a
// provider's `defaults: { encoding_format: base64 }` brings) handed a string to code expecting numbers.
import { isRecord } from "../is-record.ts";
import type { Verdict } from "./classify-response.ts";

const FLOAT32_BYTES = 4;
/**
 * Base64 (or base64url) text, padded or not: what a host's base64 embedding is. `Buffer.from` skips any other
 * character, so a string such as `"[1.25, 2.5, 3.75, 4.125, 5.5, 6.0]"` (a proxy that stringified the list) read as
 * 12 bytes: three made-up floats handed on as the vector.
 */
const BASE64_TEXT = /^[A-Za-z0-9+/_-]+={0,2}$/;
/** About the characters one float32 takes as JSON text (`-0.012345678901234567,`): what a decoded vector costs. */
const FLOAT_JSON_CHARS = 20;

/**
 * Rewrites `answer.data[*].embedding` in place into the client's encoding (`base64`, else floats: OpenAI's default)
 * and says whether anything changed. Another format a host defines (`int8`, `binary`) is passed on as it came, and
 * so is an embedding that is neither a list of numbers nor base64 of whole float32s.
 */
function reencodeEmbeddings(answer: Record<string, unknown>, clientFormat: unknown): boolean {
  if (clientFormat !== undefined && clientFormat !== null && clientFormat !== "float" && clientFormat !== "base64") {
    return false;
  }
  const isBase64Asked = clientFormat === "base64";
  const data = answer.data;
  if (!Array.isArray(data)) return false;
  let isChanged = false;
  for (const entry of data) {
    if (!isRecord(entry)) continue;
    const { embedding } = entry;
    if (isBase64Asked && Array.isArray(embedding) && embedding.every((value) => typeof value === "number")) {
      entry.embedding = float32Base64(embedding);
      isChanged = true;
    } else if (!isBase64Asked && typeof embedding === "string") {
      const floats = base64Float32s(embedding);
      if (floats === undefined) continue;
      entry.embedding = floats;
      isChanged = true;
    }
  }
  return isChanged;
}

/**
 * The answer as its client reads it: `data` in `index` order (clients pair vectors with their texts by position:
 * LangChain, the AI SDK, a vector store's loader; a host answering a batch in parallel may list them as they finished)
 * and each `embedding` in the encoding asked for. Whether anything changed.
 */
export function embeddingsForClient(answer: Record<string, unknown>, clientFormat: unknown): boolean {
  const isSorted = sortByIndex(answer);
  return reencodeEmbeddings(answer, clientFormat) || isSorted;
}

/**
 * Puts `data` in `index` order when its indexes are exactly 0 to n-1 and not already in order. Another set (none;
 * repeated or out of range, which missingEmbeddings refuses before this) is left as it came.
 */
function sortByIndex(answer: Record<string, unknown>): boolean {
  const data = answer.data;
  if (!Array.isArray(data) || data.length < 2) return false;
  const sorted: unknown[] = new Array(data.length);
  let isInOrder = true;
  for (const [position, entry] of data.entries()) {
    const index = isRecord(entry) ? entry.index : undefined;
    if (!Number.isInteger(index) || (index as number) < 0 || (index as number) >= data.length) return false;
    if (sorted[index as number] !== undefined) return false;
    sorted[index as number] = entry;
    if (index !== position) isInOrder = false;
  }
  if (isInOrder) return false;
  answer.data = sorted;
  return true;
}

/**
 * Why base64 embeddings cannot be decoded for a float client: their floats as JSON would be larger than an upstream
 * answer may be (`max_response_bytes`), about five times the base64. A host answering the cap's worth of base64 made
 * the gateway build a 250 MB answer and block its event loop for seconds; OpenAI's own float answer of that size is a
 * `bad_response` too. Undefined: nothing to decode, or it fits.
 */
export function oversizedFloats(data: unknown, clientFormat: unknown, maxBytes: number): string | undefined {
  if (!Array.isArray(data) || (clientFormat !== undefined && clientFormat !== null && clientFormat !== "float")) {
    return undefined;
  }
  let floats = 0;
  for (const entry of data) {
    const embedding = isRecord(entry) ? entry.embedding : undefined;
    if (typeof embedding === "string") floats += Math.floor((embedding.length * 3) / 4 / FLOAT32_BYTES);
  }
  const bytes = floats * FLOAT_JSON_CHARS;
  return bytes <= maxBytes
    ? undefined
    : `${floats} base64 floats, about ${bytes} bytes as JSON, over max_response_bytes (${maxBytes})`;
}

/** Base64 of the values as little-endian float32s: what OpenAI sends for `encoding_format: "base64"`. */
function float32Base64(values: readonly number[]): string {
  const bytes = Buffer.allocUnsafe(values.length * FLOAT32_BYTES);
  values.forEach((value, index) => {
    bytes.writeFloatLE(value, index * FLOAT32_BYTES);
  });
  return bytes.toString("base64");
}

/** The float32s a base64 embedding holds, or undefined when its bytes are not whole float32s. */
function base64Float32s(text: string): number[] | undefined {
  if (!BASE64_TEXT.test(text)) return undefined;
  const bytes = Buffer.from(text, "base64");
  if (bytes.byteLength === 0 || bytes.byteLength % FLOAT32_BYTES !== 0) return undefined;
  const values: number[] = [];
  for (let offset = 0; offset < bytes.byteLength; offset += FLOAT32_BYTES) values.push(bytes.readFloatLE(offset));
  return values;
}

/**
 * What an embeddings answer lacks to be one: a `data` list with one entry per input, each holding an `embedding` (a
 * list of numbers, or a base64 string) and an `index` naming its input alone (misplacedIndex). A host that dropped inputs (`data: []` for two) or sent entries without a
 * vector was passed on as a success; clients pair vectors with their texts by position (LangChain, the AI SDK), so the
 * texts got no vectors or wrong ones. Undefined: it is one.
 */
export function missingEmbeddings(data: unknown, input: unknown): string | undefined {
  if (!Array.isArray(data)) return "no `data` array";
  const count = inputCount(input);
  if (count !== undefined && data.length !== count) {
    return `${data.length} embeddings in \`data\` for ${count} input${count === 1 ? "" : "s"}`;
  }
  const index = data.findIndex((entry) => !isRecord(entry) || !isEmbedding(entry.embedding));
  return index === -1
    ? misplacedIndex(data as readonly Record<string, unknown>[])
    : `\`data[${index}]\` has no \`embedding\``;
}

/**
 * What is wrong with the entries' `index` values: each must name one input (0 to n-1), no two the same. `[0, 0]` for
 * two texts was passed on: the second text got no vector, and a client pairing by `index` gave the first one's to
 * both. An answer whose entries all omit `index` is paired by position (what OpenAI's SDKs do with `data` anyway);
 * one that gives some entries an index and not others says nothing sure about the rest. Undefined: each is right.
 */
function misplacedIndex(data: readonly Record<string, unknown>[]): string | undefined {
  if (data.every((entry) => entry.index === undefined)) return undefined;
  const seen = new Set<number>();
  for (const [position, { index }] of data.entries()) {
    if (!Number.isInteger(index) || (index as number) < 0 || (index as number) >= data.length) {
      return `\`data[${position}].index\` is ${JSON.stringify(index) ?? "missing"}, not one of 0 to ${data.length - 1}`;
    }
    if (seen.has(index as number)) return `\`data[${position}].index\` ${index} is repeated`;
    seen.add(index as number);
  }
  return undefined;
}

/** How many embeddings an `input` asks for: a text or one list of token ids is one; else one per item. */
function inputCount(input: unknown): number | undefined {
  if (typeof input === "string") return 1;
  if (!Array.isArray(input)) return undefined;
  return input.length > 0 && input.every((item) => typeof item === "number") ? 1 : input.length;
}

function isEmbedding(embedding: unknown): boolean {
  return (
    (typeof embedding === "string" && BASE64_TEXT.test(embedding)) || (Array.isArray(embedding) && embedding.length > 0)
  );
}

/**
 * A 400/413/422 the provider gave an embeddings batch (more than one input) or token ids: the hosts differ where
 * OpenAI's reference does not (Google's endpoint takes 100 inputs, Cohere's 96, many hosts strings only), so it is
 * this candidate's refusal (`unsupported`: the next is tried, nothing learned) rather than the request's. Refused by
 * every candidate, the client still gets the first refusal as it came. A single text's refusal stays the request's.
 */
export function embeddingsRefusal(verdict: Verdict, endpointPath: string, input: unknown): Verdict {
  if (verdict.kind !== "rejected" || verdict.refusal !== "request" || endpointPath !== "/embeddings") return verdict;
  if (verdict.status !== 400 && verdict.status !== 413 && verdict.status !== 422) return verdict;
  // A refusal naming another field the client sent (`dimensions`, `encoding_format`, `user`) is about that field,
  // not the batch: every candidate would refuse it alike, so it is returned at once, not after N upstream calls.
  const { param } = verdict.error;
  if (param !== undefined && param !== "" && param !== "input" && !/^input[.[]/.test(param)) return verdict;
  const isBatch = Array.isArray(input) && (input.length > 1 || input.some((item) => typeof item !== "string"));
  return isBatch ? { ...verdict, refusal: "unsupported" } : verdict;
}
