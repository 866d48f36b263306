// The answer cache's steps in the pipeline (answer-cache.ts holds the cache): which requests may be answered from
// it and kept in it, the lookup before planning, and the answer given again.

import { NotCachedError } from "../errors/gateway-error.ts";
import { isRecord, parseJsonRecord } from "../is-record.ts";
import type { StreamChunk, TokenUsage } from "../streaming/relay-types.ts";
import type { JsonResult, StreamResult } from "../upstream/forward-types.ts";
import { type CachedAnswer, type CacheSettings, cacheKey } from "./answer-cache.ts";
import { answerFingerprint } from "./answer-fingerprint.ts";
import { answerText } from "./answer-text.ts";
import type { EndpointSpec } from "./endpoints.ts";
import {
  type JsonAnswer,
  type PipelineRequest,
  publish,
  publishOrHold,
  type RequestContext,
  type StreamAnswer,
  type StreamEnding,
} from "./pipeline-types.ts";

/** The request's key in the answer cache, when its answer may be kept (answer-cache.ts). */
export function answerCacheKey(
  snapshot: PipelineRequest["snapshot"],
  endpoint: EndpointSpec,
  body: PipelineRequest["body"],
  context: RequestContext,
): string | undefined {
  if (!snapshot.config.cache.enabled) return undefined;
  // A native Responses call's answer carries its own ids (kept ones would repeat them).
  if (context.native !== undefined || context.cacheDirective?.mode === "no-store") return undefined;
  if (!endpoint.isCacheable) return undefined;
  return cacheKey(answerFingerprint(snapshot), endpoint.name, context.client, body, context.cacheDirective?.namespace);
}

/**
 * The kept answer to the same request, unless the client asked for a fresh one (`Cache-Control: no-cache`) or one
 * kept more recently (`max-age`, cache-control.ts). A promise only when the cache is shared (Redis).
 */
export function lookUpAnswer(request: PipelineRequest): CachedAnswer | undefined | Promise<CachedAnswer | undefined> {
  const { runtime, snapshot, cacheKey: key, context } = request;
  const directive = context.cacheDirective;
  if (key === undefined || directive?.mode === "no-cache") return undefined;
  const looked = runtime.answers.get(key, snapshot.config.cache, runtime.clock.now(), directive?.maxAgeMs);
  if (!(looked instanceof Promise)) return noted(request, looked);
  const noting = looked.then((cached) => noted(request, cached));
  // An early head due after it settled says the hit (then it is the hit's own head) or the miss; one due before goes
  // out at its time, saying neither (stream-keepalive.ts tracksLookup: the keep-alive interval is not exceeded).
  context.earlyCommit?.tracksLookup(noting);
  return noting;
}

/**
 * `Cache-Control: only-if-cached` without a kept answer to give: a 504 in the caller's protocol, and nothing sent
 * upstream (RFC 9111 §5.2.1.7). Also when the request could not be looked up at all (the cache off, an endpoint
 * whose answers are not kept, `no-cache` or `no-store` with it), which the message says.
 */
export function notCachedError(request: PipelineRequest): NotCachedError {
  const { snapshot, endpoint, cacheKey: key, context } = request;
  const why = !snapshot.config.cache.enabled
    ? "the answer cache is off (cache.enabled)"
    : !endpoint.isCacheable
      ? `answers of ${endpoint.name} requests are not kept`
      : context.cacheDirective?.skippedBecause !== undefined
        ? context.cacheDirective.skippedBecause
        : context.cacheDirective?.mode === "no-store" || context.cacheDirective?.mode === "no-cache"
          ? `Cache-Control: ${context.cacheDirective.mode} came with it, so no kept answer may be given`
          : key === undefined
            ? "this request's answers are not kept"
            : "the answer cache holds no answer for this request";
  return new NotCachedError(`Cache-Control: only-if-cached, but ${why}; nothing was sent upstream.`);
}

function noted(request: PipelineRequest, cached: CachedAnswer | undefined): CachedAnswer | undefined {
  request.record.cache(cached === undefined ? "miss" : "hit");
  // A miss is what the answer will say (keepingStream), known now: a head sent before the answer says it too.
  if (cached === undefined) request.context.earlyCommit?.knows({ "x-gateway-cache": "miss" });
  return cached;
}

/** A kept answer given again: no plan, no attempt, no upstream tokens (its body still carries the first `usage`). */
export function cachedAnswer(request: PipelineRequest, cached: CachedAnswer): JsonAnswer {
  request.record.headersSent();
  if (request.snapshot.config.log.content) {
    const responseText = answerText(cached.bodyText);
    if (responseText !== undefined) request.record.content({ responseText });
  }
  const releaseRecord = publishOrHold(request, cached.status);
  const headers = hitHeaders(request, cached);
  return { kind: "json", api: cached.api, status: cached.status, bodyText: cached.bodyText, headers, releaseRecord };
}

/** A kept stream given again: its chunks as they were first sent, at once, then its end. */
export function cachedStream(request: PipelineRequest, cached: CachedAnswer): StreamAnswer | undefined {
  const chunks = keptChunks(cached.bodyText);
  if (chunks === undefined) return undefined;
  request.record.headersSent();
  request.record.firstTokenSent();
  const usage = usageOf(chunks);
  // Published once replayed (or cancelled), unless the door holds the record to say whether it kept the answer.
  let isRecordHeld = false;
  const settle = (): void => {
    if (!isRecordHeld) publish(request, cached.status, "success");
  };
  async function* replay(): AsyncGenerator<readonly StreamChunk[], StreamEnding, void> {
    try {
      yield chunks as readonly StreamChunk[];
    } finally {
      settle();
    }
    return { isSuccess: true, error: undefined, usage };
  }
  return {
    kind: "stream",
    api: cached.api,
    headers: hitHeaders(request, cached),
    events: replay(),
    // What the kept answer's usage said, else the plain estimate: no deployment serves it.
    promptTokensEstimate: usage?.promptTokens ?? request.prompt.promptTokens,
    cancel: async () => settle(),
    // A kept answer has no upstream to end.
    endAnswer: () => {},
    holdRecord() {
      isRecordHeld = true;
      return (outcome) => {
        if (outcome?.isAnswerNotKept === true) request.record.answerNotKept();
        publish(request, cached.status, "success");
      };
    },
  };
}

/**
 * Keeps a stream's chunks as the client gets them, once it has ended well: not one that failed, was cut short by the
 * client, or had to be continued on another upstream (its chunks say so), nor one larger than a tenth of the cache.
 */
export function keepingStream(request: PipelineRequest, answer: StreamAnswer, result: StreamResult): StreamAnswer {
  const { runtime, snapshot, cacheKey: key } = request;
  if (key === undefined) return answer;
  const headers =
    request.context.cacheDirective?.mode === "no-cache"
      ? answer.headers
      : { ...answer.headers, "x-gateway-cache": "miss" };
  // `x-gateway-cache-ttl: 0`: nothing will be kept, so the chunks are not collected either (up to a tenth of the
  // cache's bytes per stream, for nothing).
  // An answer under an output limit the gateway chose (upstream/affordable-retry.ts) is not the request's to give again.
  if (request.context.cacheDirective?.storeTtlMs === 0 || result.isOutputLimitChosen === true) {
    return { ...answer, headers };
  }
  const maxChars = snapshot.config.cache.maxBytes / 10;
  const inner = answer.events;
  async function* keeping(cacheKey: string): AsyncGenerator<readonly StreamChunk[], StreamEnding, void> {
    let kept: string[] | undefined = [];
    let chars = 0;
    for (;;) {
      const next = await inner.next();
      if (next.done === true) {
        if (kept !== undefined && next.value.isSuccess && !request.record.isContinued && isWorthKeeping(request)) {
          const nowMs = runtime.clock.now();
          runtime.answers.put(
            cacheKey,
            keptAnswer(request, result, "sse", JSON.stringify(kept), nowMs),
            snapshot.config.cache,
            nowMs,
          );
        }
        return next.value;
      }
      if (kept !== undefined) {
        for (const chunk of next.value) {
          kept.push(chunk.data);
          chars += chunk.data.length;
        }
        if (chars > maxChars) kept = undefined;
      }
      yield next.value;
    }
  }
  return { ...answer, headers, events: keeping(key) };
}

function keptChunks(bodyText: string): StreamChunk[] | undefined {
  let data: unknown;
  try {
    data = JSON.parse(bodyText);
  } catch {
    return undefined;
  }
  if (!Array.isArray(data)) return undefined;
  const chunks: StreamChunk[] = [];
  for (const text of data) {
    if (typeof text !== "string") return undefined;
    const json = parseJsonRecord(text);
    if (json === undefined) return undefined;
    chunks.push({ data: text, json });
  }
  return chunks;
}

/** The usage the kept stream reported (its usage chunk, when the client asked for one). */
function usageOf(chunks: readonly StreamChunk[]): TokenUsage | undefined {
  for (let index = chunks.length - 1; index >= 0; index--) {
    const usage = chunks[index]?.json.usage;
    if (!isRecord(usage)) continue;
    const { prompt_tokens: promptTokens, completion_tokens: completionTokens } = usage;
    if (typeof promptTokens === "number" && typeof completionTokens === "number") {
      return { promptTokens, completionTokens };
    }
  }
  return undefined;
}

/** Keeps a successful answer for the same request (`cache.enabled`); the answer says it was a miss when looked up. */
export function keepAnswer(request: PipelineRequest, result: JsonResult, headers: Record<string, string>): void {
  const { runtime, snapshot, cacheKey: key } = request;
  if (key === undefined) return;
  if (request.context.cacheDirective?.mode !== "no-cache") headers["x-gateway-cache"] = "miss";
  // An answer under an output limit the gateway chose (upstream/affordable-retry.ts) is not the request's to give again,
  // nor part of one (a chunked embeddings batch answered in part: `x-gateway-partial: allow`).
  if (result.status !== 200 || result.isOutputLimitChosen === true || result.isPartial === true) return;
  if (!isWorthKeeping(request)) return;
  const nowMs = runtime.clock.now();
  runtime.answers.put(key, keptAnswer(request, result, "json", result.bodyText, nowMs), snapshot.config.cache, nowMs);
}

/**
 * Not kept: an answer its request asked to keep for 0 s (`x-gateway-cache-ttl: 0`), nor, in this process's memory,
 * one whose request was served on a config that a reload or a discovery refresh has since replaced with one that
 * decides answers otherwise (or turned the cache off): its key carries the old fingerprint, so no request would ever get it, and the memory
 * it held would wait for `ttl_ms` (the swap dropped the others: gateway-runtime.ts). A shared row is kept: replicas
 * still on that config may give it. One pointer comparison per answer while the config is unchanged.
 */
function isWorthKeeping(request: PipelineRequest): boolean {
  const { runtime, snapshot } = request;
  if (request.context.cacheDirective?.storeTtlMs === 0) return false;
  if (runtime.answers.isShared || snapshot === runtime.snapshot) return true;
  // A reload turned the cache off: nothing looks it up any more, so nothing would ever expire the answer either.
  const current = runtime.snapshot;
  return current.config.cache.enabled && answerFingerprint(snapshot) === answerFingerprint(current);
}

function keptAnswer(
  request: PipelineRequest,
  result: JsonResult | StreamResult,
  form: CachedAnswer["form"],
  bodyText: string,
  nowMs: number,
): Omit<CachedAnswer, "bytes"> {
  const { deployment } = result;
  const keptForMs = ownTtlMs(request.context.cacheDirective?.storeTtlMs, request.snapshot.config.cache);
  return {
    api: result.api,
    form,
    bodyText,
    status: 200,
    provider: deployment.provider.settings.name,
    model: deployment.model.id,
    cost: deployment.cost,
    storedAtMs: nowMs,
    ...(keptForMs === undefined ? {} : { keptForMs }),
  };
}

/** The request's own time to live when it is shorter than the cache's: a caller can shorten it, never lengthen it. */
function ownTtlMs(storeTtlMs: number | undefined, settings: CacheSettings): number | undefined {
  return storeTtlMs !== undefined && storeTtlMs < settings.ttlMs ? storeTtlMs : undefined;
}

/**
 * What a kept answer is given with: who first answered it, and how old it is. `x-gateway-cost` is what this answer
 * cost, and a hit called no model: `free`, also when a paid model first answered (its record has no `servedBy`).
 */
function hitHeaders(request: PipelineRequest, cached: CachedAnswer): Record<string, string> {
  const ageS = Math.max(0, Math.floor((request.runtime.clock.now() - cached.storedAtMs) / 1000));
  return {
    "x-gateway-provider": cached.provider,
    "x-gateway-model": cached.model,
    "x-gateway-attempts": "0",
    "x-gateway-cost": "free",
    "x-gateway-cache": "hit",
    age: String(ageS),
  };
}
