// A non-streamed attempt: the answer read whole through one undici handler (buffered-call.ts), bounded by its
// status (`max_response_bytes` for a success, `max_error_body_bytes` for an error, nothing of a redirect), then
// classified: an error status, an error inside a 200, a body that is not a JSON object, or the answer (text to
// speech: the audio's bytes, never decoded as text; image generation and edits: its `data`, passed on as it came).

import { firstChoice } from "../chat-choice.ts";
import { isRecord, parseJsonRecord } from "../is-record.ts";
import type { HeaderMap } from "../limits/header-map.ts";
import type { Deployment } from "../providers/catalog.ts";
import { withEstimatedUsage } from "../streaming/estimated-usage.ts";
import type { TokenUsage } from "../streaming/relay-types.ts";
import { takeUpstreamGatewayField } from "../streaming/upstream-gateway-field.ts";
import { readUsage, unreportedAnswerUsage } from "./answer-usage.ts";
import {
  type AttemptContext,
  type AttemptResult,
  errorStatusFailure,
  failed,
  isRedirect,
  isSuccess,
  redirectFailure,
  sendFailure,
  startHeadersTimer,
  withReportedSeconds,
} from "./attempt-context.ts";
import { type BufferedResponse, bufferedCall } from "./buffered-call.ts";
import { classifyErrorInSuccess } from "./classify-response.ts";
import { completeToolCalls, isNamedCall } from "./complete-tool-calls.ts";
import type { Effect } from "./effects.ts";
import { embeddingsForClient, missingEmbeddings, oversizedFloats } from "./embeddings-answer.ts";
import type { JsonResult } from "./forward-types.ts";
import { failureLesson, lessonFromVerdict, lessonsFromHeaders } from "./lessons.ts";
import { readRerankAnswer } from "./rerank-dialect.ts";
import { missingResponsesOutput } from "./responses-answer.ts";
import { requestOptions, type UpstreamCall } from "./upstream-request.ts";

/**
 * A non-streamed call: the answer is read whole (bounded: `max_response_bytes` for a success, `max_error_body_bytes`
 * for an error, nothing of a redirect) by one undici handler, then classified.
 */
export async function jsonAttempt(
  context: AttemptContext,
  call: UpstreamCall,
  headersTimeoutMs: number,
): Promise<AttemptResult> {
  const { clock, limits } = context;
  const sentAtMs = clock.now();
  let headersMs = 0;
  const headersTimer = startHeadersTimer(context, headersTimeoutMs);
  let response: BufferedResponse;
  try {
    response = await bufferedCall(context.dispatcher, requestOptions(call), {
      signal: call.signal,
      maxBodyBytes: (status, headers) =>
        isRedirect(status) || isEventStream(status, headers)
          ? 0
          : isSuccess(status)
            ? limits.maxResponseBytes
            : limits.maxErrorBodyBytes,
      isBinary: context.request.isBinaryAnswer === true,
      onRequestStart: context.onSent,
      onHeaders: () => {
        headersTimer.stop();
        headersMs = clock.now() - sentAtMs;
      },
    });
  } catch (error) {
    if ((error as { code?: unknown } | null)?.code === "UND_ERR_BODY_TIMEOUT" && !context.request.signal.aborted) {
      const idleMs = context.deployment.provider.settings.streamIdleTimeoutMs;
      return failed(
        failureLesson("timeout", `the response body went silent for stream_idle_timeout_ms (${idleMs} ms)`),
        undefined,
        undefined,
        headersMs,
      );
    }
    return sendFailure(error, context, headersTimer, headersTimeoutMs);
  } finally {
    headersTimer.stop();
    // The answer was read to its end or the call aborted: the connection is free again.
    context.releaseSlot();
  }
  const { statusCode, headers, text, bytes, isTruncated } = response;
  if (isRedirect(statusCode)) return redirectFailure(statusCode, headersMs);
  if (isEventStream(statusCode, headers)) {
    return failed(
      failureLesson("bad_response", `HTTP ${statusCode} with an event stream to a non-stream request`),
      statusCode,
      undefined,
      headersMs,
    );
  }
  if (!isSuccess(statusCode)) return errorStatusFailure(context, statusCode, headers, text, headersMs);
  if (isTruncated) {
    return failed(
      failureLesson(
        "bad_response",
        `the response body is larger than max_response_bytes (${limits.maxResponseBytes} bytes)`,
      ),
      statusCode,
    );
  }
  const headerEffects = lessonsFromHeaders(headers, context.deployment.provider.settings, sentAtMs);
  if (bytes !== undefined) return binaryAnswer(context, statusCode, headers, bytes, headerEffects, headersMs, call);
  // An audio request that asked for plain text (`response_format: text`, `srt`, `vtt`) takes it; any other 2xx must
  // be the JSON answer. A proxy's or captive portal's HTML page, a binary body, or text to a client that asked for
  // JSON (the SDKs parse it) was passed on as a transcript, with no failover.
  if (call.isTextAsked === true && isPlainTextType(headers)) {
    return textAnswer(context, statusCode, headers, text, headerEffects, headersMs);
  }
  return jsonAnswer(context, statusCode, headers, text, headerEffects, headersMs, call.endpointPath);
}

/** `text/plain`, `text/vtt`, `application/x-subrip` (SubRip's registered-by-use type): not HTML, not JSON. */
function isPlainTextType(headers: HeaderMap): boolean {
  const essence = String(headers["content-type"] ?? "")
    .split(";")[0]
    ?.trim()
    .toLowerCase();
  if (essence === undefined) return false;
  return (essence.startsWith("text/") && essence !== "text/html") || essence === "application/x-subrip";
}

/** A 2xx plain-text answer of an audio request: the transcript as the provider wrote it, with its content type. */
function textAnswer(
  context: AttemptContext,
  statusCode: number,
  headers: HeaderMap,
  bodyText: string,
  headerEffects: readonly Effect[],
  headersMs: number,
): AttemptResult {
  const answer = { bodyText, bytes: undefined, contentType: utf8ContentType(String(headers["content-type"])) };
  return answered(context, statusCode, answer, headerEffects, headersMs, { promptTokens: 0, completionTokens: 0 });
}

/**
 * The type a text answer is sent with: the body was read as UTF-8 and is written as UTF-8, so a `charset` the
 * provider named (`iso-8859-1`) would mislabel it; said as `utf-8` instead, and added where none was named.
 */
function utf8ContentType(contentType: string): string {
  const [mediaType = "", ...parameters] = contentType.split(";");
  const kept = parameters.map((parameter) => parameter.trim()).filter((parameter) => !/^charset=/i.test(parameter));
  return [mediaType.trim(), ...kept, "charset=utf-8"].join("; ");
}

/**
 * A 2xx answer to a request answered with bytes (text to speech): the audio, passed on with the provider's content
 * type. A JSON object is never one, whatever its type says (an error in a 200 from a host that names no type, or
 * labels its error `audio/mpeg`): an error (`{"error":...}`) is classified as any other, any other JSON is a
 * `bad_response`. So is a body typed as anything but audio (`audio/*`, `application/ogg`, `application/octet-stream`,
 * or untyped): a proxy's HTML page, and an SVG or XHTML document, which the gateway would otherwise serve from its own
 * origin under that type (a browser runs its scripts). An empty body is none either. Either way the next candidate
 * is tried. No usage: the provider reports none, and the reservation keeps the estimate of `input`.
 */
export function binaryAnswer(
  context: AttemptContext,
  statusCode: number,
  headers: HeaderMap,
  bytes: Buffer,
  headerEffects: readonly Effect[],
  headersMs: number,
  call: UpstreamCall,
): AttemptResult {
  const contentType = headers["content-type"] === undefined ? "" : String(headers["content-type"]);
  // Sniffed when untyped, or when small enough to be an error (`max_error_body_bytes`): raw `pcm` may start with `{`,
  // and decoding megabytes of it as text only to fail to parse costs milliseconds.
  const isSniffed = contentType === "" || bytes.byteLength <= context.limits.maxErrorBodyBytes;
  if (contentType.includes("json") || (isSniffed && isJsonObject(bytes))) {
    return jsonAnswer(
      context,
      statusCode,
      headers,
      bytes.toString("utf8"),
      headerEffects,
      headersMs,
      call.endpointPath,
    );
  }
  const mediaType = contentType.split(";")[0]?.trim().toLowerCase() ?? "";
  if (!isAudioType(mediaType) || bytes.byteLength === 0) {
    const what = bytes.byteLength === 0 ? "an empty body" : `a ${mediaType} body`;
    return failed(failureLesson("bad_response", `HTTP ${statusCode} with ${what} instead of audio`), statusCode);
  }
  const answer = { bodyText: "", bytes, contentType: contentType === "" ? "application/octet-stream" : contentType };
  return answered(context, statusCode, answer, headerEffects, headersMs, undefined);
}

/** The media types an audio answer comes with: any `audio/*`, Ogg's, raw bytes, or none (sent as raw bytes). */
export function isAudioType(mediaType: string): boolean {
  return (
    mediaType === "" ||
    mediaType.startsWith("audio/") ||
    mediaType === "application/ogg" ||
    mediaType === "application/octet-stream"
  );
}

/**
 * A body that is a JSON object (an error in a 200). Only then parsed: no audio format starts with `{` but raw `pcm`,
 * which (almost) never parses.
 */
function isJsonObject(bytes: Buffer): boolean {
  return bytes[0] === 0x7b && parseJsonRecord(bytes.toString("utf8")) !== undefined;
}

/**
 * A 2xx event stream answering a request that asked for none: refused as soon as its headers arrive. Read as a
 * JSON body it was never an answer, and an upstream keeping it open held the call for the whole total_timeout_ms.
 */
function isEventStream(statusCode: number, headers: HeaderMap): boolean {
  return isSuccess(statusCode) && String(headers["content-type"] ?? "").includes("text/event-stream");
}

function jsonAnswer(
  context: AttemptContext,
  statusCode: number,
  headers: HeaderMap,
  bodyText: string,
  headerEffects: readonly Effect[],
  headersMs: number,
  endpointPath: string,
): AttemptResult {
  const { deployment, clock } = context;
  let json: unknown;
  try {
    json = JSON.parse(bodyText);
  } catch {
    return failed(failureLesson("bad_response", "HTTP 200 with a body that is not JSON"), statusCode);
  }
  const inBandError = classifyErrorInSuccess(json, headers, clock.now());
  if (inBandError !== undefined) {
    return failed(lessonFromVerdict(inBandError, deployment.provider.settings, clock.now()), statusCode, inBandError);
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    // `null`, `[1,2,3]`, `"text"`: valid JSON, but no answer any client could use.
    return failed(
      failureLesson("bad_response", `HTTP ${statusCode} with a JSON body that is not an object`),
      statusCode,
    );
  }
  if (context.request.isRerank === true) {
    return rerankAnswer(context, statusCode, json as Record<string, unknown>, bodyText, headerEffects, headersMs);
  }
  const { input, encoding_format: format } = context.request.body;
  const missing =
    missingAnswer(json as Record<string, unknown>, endpointPath, input) ??
    (endpointPath === "/embeddings"
      ? oversizedFloats((json as Record<string, unknown>).data, format, context.limits.maxResponseBytes)
      : undefined);
  if (missing !== undefined) {
    // A 200 without the answer (`"message": null`, no choice 0): useless to any client; the next candidate may do.
    return failed(failureLesson("bad_response", `HTTP ${statusCode} without an answer: ${missing}`), statusCode);
  }
  const isUsageMissing = !isRecord((json as { usage?: unknown }).usage);
  const foreign = takeUpstreamGatewayField(json as Record<string, unknown>, !isUsageMissing);
  const isReencoded = endpointPath === "/embeddings" && embeddingsForClient(json as Record<string, unknown>, format);
  // Tool calls completed first: arguments sent as an object become the string the client gets and the estimate counts.
  const isCompleted = endpointPath === "/chat/completions" && completeToolCalls(json as Record<string, unknown>);
  // Without a usage report, a door that estimates usage counts the estimate, marked. Only a chat answer's client is
  // told it: a native Responses answer goes as it came, as its stream does (until 2026-12-07 it counted 0 tokens).
  const estimated =
    context.request.estimatesUsage === true
      ? unreportedAnswerUsage(json as Record<string, unknown>, context.promptTokens, context.request.body)
      : undefined;
  const isEstimateTold = estimated !== undefined && context.api === "chat";
  const body = isEstimateTold ? withEstimatedUsage(json as Record<string, unknown>, estimated) : json;
  const isRewritten = foreign !== undefined || isReencoded || isEstimateTold || isCompleted;
  const text = isRewritten ? JSON.stringify(body) : bodyText;
  const answerText = isAudioPath(endpointPath) ? text : ensureModelField(body, text, deployment, endpointPath);
  const isUsageEstimated = foreign?.isUsageEstimated === true || estimated !== undefined;
  const answer = { bodyText: answerText, bytes: undefined, contentType: undefined, isUsageEstimated };
  const result = answered(context, statusCode, answer, headerEffects, headersMs, estimated ?? readUsage(json));
  return isAudioPath(endpointPath) ? withReportedSeconds(result, json, context) : result;
}

/** A 2xx that is the answer: JSON text, plain text with its type (a transcript), or bytes with theirs (audio). */
function answered(
  context: AttemptContext,
  statusCode: number,
  answer: Pick<JsonResult, "bodyText" | "bytes" | "contentType" | "isUsageEstimated">,
  headerEffects: readonly Effect[],
  headersMs: number,
  usage: TokenUsage | undefined,
): AttemptResult {
  const json: JsonResult = {
    kind: "json",
    status: statusCode,
    ...answer,
    deployment: context.deployment,
    api: context.api,
  };
  // No usage (audio bytes): the provider reports none, and the reservation keeps its estimate.
  if (usage === undefined) return { ok: true, json, status: statusCode, effects: headerEffects, headersMs };
  return { ok: true, json, status: statusCode, effects: headerEffects, usage, headersMs };
}

/**
 * A rerank answer, read in the candidate's dialect (rerank-dialect.ts): without a list of results it is a
 * `bad_response` and the next candidate is tried; a translated one is sent in the door's shape.
 */
function rerankAnswer(
  context: AttemptContext,
  statusCode: number,
  json: Record<string, unknown>,
  bodyText: string,
  headerEffects: readonly Effect[],
  headersMs: number,
): AttemptResult {
  const { deployment } = context;
  const answer = readRerankAnswer(json, deployment, context.request.body);
  if (!answer.ok) {
    return failed(failureLesson("bad_response", `HTTP ${statusCode} without an answer: ${answer.missing}`), statusCode);
  }
  // The rerank endpoint path: ensureModelField leaves out only image answers.
  const text = answer.bodyText ?? ensureModelField(json, bodyText, deployment, "/rerank");
  const result = { bodyText: text, bytes: undefined, contentType: undefined };
  return answered(context, statusCode, result, headerEffects, headersMs, answer.usage);
}

/**
 * What a 2xx body lacks to be an answer of its endpoint, or undefined: chat needs `choices` with a first choice
 * (`firstChoice`, the one the protocol adapters read) holding a `message` object whose `content` is text, parts or
 * absent and whose `tool_calls`, if any, are a list of calls with a function name; legacy completions a first
 * choice object; embeddings one `data` entry per input (missingEmbeddings), image generation and edits one of
 * images (missingImages); a transcription or translation (JSON) its `text`; speech is never answered in JSON; a native
 * Responses call its `output` (missingResponsesOutput).
 */
function missingAnswer(json: Record<string, unknown>, endpointPath: string, input: unknown): string | undefined {
  if (endpointPath === "/embeddings") return missingEmbeddings(json.data, input);
  if (isAudioPath(endpointPath)) {
    if (endpointPath === SPEECH_PATH) return "a JSON body instead of audio";
    return typeof json.text === "string" ? undefined : "no `text` string";
  }
  if (endpointPath !== "/chat/completions" && endpointPath !== "/completions") {
    // Checked here, past chat's own paths, so that a chat answer's classification does no extra comparison.
    return isImagesPath(endpointPath) ? missingImages(json.data) : missingResponsesOutput(json, endpointPath);
  }
  if (!Array.isArray(json.choices)) return "no `choices` array";
  const first = firstChoice(json.choices);
  if (first === undefined) return "no choice 0";
  if (endpointPath !== "/chat/completions") return undefined;
  const message = first.message;
  if (!isRecord(message)) return "choice 0 has no `message` object";
  // Text, a list of parts, or nothing (a tool call's answer): anything else is no answer any door can give, and the
  // Responses and Messages doors would turn it into an empty "successful" one instead of trying another candidate.
  const { content, tool_calls: toolCalls } = message;
  if (content !== undefined && content !== null && typeof content !== "string" && !Array.isArray(content)) {
    return "choice 0's `message.content` is neither text nor a list of parts";
  }
  if (toolCalls === undefined || toolCalls === null) return undefined;
  if (!Array.isArray(toolCalls)) return "choice 0's `message.tool_calls` is not a list";
  if (!toolCalls.every(isNamedCall)) return "a tool call of choice 0 has no function name";
  return undefined;
}

/**
 * Image generation and editing (`/images/generations`, `/images/edits`): the answer is `{created, data: [{url |
 * b64_json}]}`, passed on as it came.
 */
function isImagesPath(endpointPath: string): boolean {
  return endpointPath.startsWith("/images/");
}

/**
 * What an image answer's `data` lacks to hold images: a list of at least one entry, each with a `url` or a
 * `b64_json`. `data: []` or `[null]` was passed on as a success: the SDKs read no image from it, and the request
 * was counted as served (its health, its stats) instead of trying the next candidate.
 */
function missingImages(data: unknown): string | undefined {
  if (!Array.isArray(data)) return "no `data` array";
  if (data.length === 0) return "an empty `data`: no image";
  const isImage = (entry: unknown): boolean =>
    isRecord(entry) &&
    ((typeof entry.url === "string" && entry.url !== "") ||
      (typeof entry.b64_json === "string" && entry.b64_json !== ""));
  return data.every(isImage) ? undefined : "an entry of `data` without a `url` or a `b64_json`";
}

/** Text to speech: its 2xx JSON body is never an answer (binaryAnswer). */
const SPEECH_PATH = "/audio/speech";

/** `/audio/transcriptions`, `/audio/translations`, `/audio/speech` */
function isAudioPath(endpointPath: string): boolean {
  return endpointPath.startsWith("/audio/");
}

/**
 * The response's `model` names the model that answered; filled in when the upstream left it out. Not in an image
 * answer (nor a transcription's, never passed here): OpenAI's has none, and writing megabytes of base64 again to add
 * one costs milliseconds (the path is compared only once `model` is missing: a chat answer pays nothing for it).
 */
function ensureModelField(json: unknown, bodyText: string, deployment: Deployment, endpointPath: string): string {
  if (json === null || typeof json !== "object" || Array.isArray(json)) return bodyText;
  const model = (json as { model?: unknown }).model;
  if (typeof model === "string" && model !== "") return bodyText;
  if (isImagesPath(endpointPath)) return bodyText;
  return JSON.stringify({ ...(json as Record<string, unknown>), model: deployment.model.id });
}
