// Streams that do not break: a stream that fails after its first content chunk (cut, stall, in-band error) is
// continued on the next candidate, and the client gets the whole answer exactly once, as one stream (the first
// stream's chunk id, a marker on the first spliced chunk). Driven by the two clients people actually use: the
// official OpenAI SDK and the Vercel AI SDK (`@ai-sdk/openai-compatible`), plus raw SSE where bytes matter.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { jsonSchema, streamText } from "ai";
import OpenAI from "openai";
import { stringify } from "yaml";
import { countTextTokens, estimateChatPrompt } from "../../src/limits/token-estimate.ts";
import type { RequestRecord } from "../../src/observability/request-record.ts";
import { statsOf } from "../helpers/e2e.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import {
  chatChunk,
  chatStream,
  chatUsageChunk,
  type MockStep,
  rateLimited,
  type SseScript,
  startMockUpstream,
} from "../helpers/mock-upstream.ts";
import { readTimed, strictSseData, waitUntil } from "../helpers/sse-client.ts";
import { CHAT_ROUTE, MODEL, sentBody, startTwoProviders, type TwoProviders } from "../helpers/two-providers.ts";

const PRIMARY_ID = "chatcmpl-primary";
const BACKUP_ID = "chatcmpl-backup";
const PROMPT = "Count from zero to fifty-nine, one word each.";
/** The answer: 60 words; the primary delivers the first 40 before it breaks. */
const WORDS = Array.from({ length: 60 }, (_, index) => (index === 0 ? "Word0" : ` word${index}`));
const FULL_TEXT = WORDS.join("");
const DELIVERED = WORDS.slice(0, 40).join("");
const REST = WORDS.slice(40);

// ---------------------------------------------------------------------------------------------------------------
// Upstream scripts

/** The role chunk and the first 40 words, without a finish_reason. */
function firstForty(): SseScript[] {
  return chatStream(WORDS.slice(0, 40), MODEL, { id: PRIMARY_ID }).slice(0, 41);
}

const cutAfterForty: MockStep = { kind: "sse", events: firstForty(), end: "destroy" };
const stallAfterForty: MockStep = { kind: "sse", events: firstForty(), end: "hang" };

/** Words 41-60 with a finish_reason, as a provider continuing a prefill streams them. */
function continuationStep(usage?: { prompt_tokens: number; completion_tokens: number }): MockStep {
  return {
    kind: "sse",
    events: chatStream(REST, MODEL, { id: BACKUP_ID, ...(usage === undefined ? {} : { usage }) }),
  };
}

/** A fresh answer to the original request (replay): all of `words`, from the start. */
function freshAnswer(words = WORDS, usage?: { prompt_tokens: number; completion_tokens: number }): MockStep {
  return {
    kind: "sse",
    events: chatStream(words, MODEL, { id: BACKUP_ID, ...(usage === undefined ? {} : { usage }) }),
  };
}

const PREFILL_REJECTION_MESSAGE = "Assistant message prefill is not supported by this model";
const rejectsPrefill: MockStep = {
  kind: "json",
  status: 400,
  body: { error: { message: PREFILL_REJECTION_MESSAGE, type: "invalid_request_error", param: null, code: null } },
};

// ---------------------------------------------------------------------------------------------------------------
// Clients

interface ContinuationMarker {
  provider: string;
  model: string;
  afterChars: number;
  reason: string;
  mode: "prefill" | "replay";
}

/** What a client made of a streamed answer. */
interface ClientRun {
  readonly text: string;
  /** The chunk objects as parsed by the client (the AI SDK: its raw chunks), error events left out. */
  readonly chunks: Record<string, unknown>[];
  readonly error: { code: unknown; type: unknown; message: string } | undefined;
  readonly usage: { prompt: number | undefined; completion: number | undefined; total: number | undefined } | undefined;
  readonly headers: Headers | undefined;
}

type ClientName = "openai" | "ai-sdk";
const CLIENTS: readonly ClientName[] = ["openai", "ai-sdk"];

interface RunOptions {
  readonly includeUsage?: boolean;
}

function runClient(name: ClientName, scene: TwoProviders, options: RunOptions = {}): Promise<ClientRun> {
  return name === "openai" ? runOpenAi(scene, options) : runAiSdk(scene, options);
}

async function runOpenAi(scene: TwoProviders, options: RunOptions): Promise<ClientRun> {
  const { data: stream, response } = await scene.client.chat.completions
    .create({
      model: MODEL,
      messages: [{ role: "user", content: PROMPT }],
      stream: true,
      ...(options.includeUsage === true ? { stream_options: { include_usage: true } } : {}),
    })
    .withResponse();
  let text = "";
  const chunks: Record<string, unknown>[] = [];
  let error: ClientRun["error"];
  let usage: ClientRun["usage"];
  try {
    for await (const chunk of stream) {
      chunks.push(chunk as unknown as Record<string, unknown>);
      text += chunk.choices[0]?.delta.content ?? "";
      if (chunk.usage !== undefined && chunk.usage !== null) {
        usage = {
          prompt: chunk.usage.prompt_tokens,
          completion: chunk.usage.completion_tokens,
          total: chunk.usage.total_tokens,
        };
      }
    }
  } catch (thrown) {
    assert.ok(thrown instanceof OpenAI.APIError, `expected an APIError, got ${String(thrown)}`);
    error = { code: thrown.code, type: thrown.type, message: thrown.message };
  }
  return { text, chunks, error, usage, headers: response.headers };
}

async function runAiSdk(scene: TwoProviders, options: RunOptions): Promise<ClientRun> {
  const provider = createOpenAICompatible({
    name: "gateway",
    baseURL: scene.gateway.baseUrl,
    apiKey: "x",
    includeUsage: options.includeUsage === true,
  });
  const result = streamText({
    model: provider.chatModel(MODEL),
    prompt: PROMPT,
    maxRetries: 0,
    includeRawChunks: true,
    // Errors are read from the stream below; the default handler would only log them.
    onError: () => {},
  });
  let text = "";
  const chunks: Record<string, unknown>[] = [];
  const errors: unknown[] = [];
  let usage: ClientRun["usage"];
  for await (const part of result.fullStream) {
    if (part.type === "text-delta") text += part.text;
    else if (part.type === "raw") {
      const raw = part.rawValue as Record<string, unknown>;
      if (raw.error === undefined) chunks.push(raw);
    } else if (part.type === "error") errors.push(part.error);
    else if (part.type === "finish") {
      usage = {
        prompt: part.totalUsage.inputTokens,
        completion: part.totalUsage.outputTokens,
        total: part.totalUsage.totalTokens,
      };
    }
  }
  // The gateway's error event comes first; the SDK may add its own "ended without a finish reason" after it.
  const first = errors[0] as { code?: unknown; type?: unknown; message?: unknown } | undefined;
  const error =
    first === undefined ? undefined : { code: first.code, type: first.type, message: String(first.message) };
  const response = await Promise.resolve(result.response).catch(() => undefined);
  return {
    text,
    chunks,
    error,
    usage: options.includeUsage === true ? usage : undefined,
    headers: response?.headers === undefined ? undefined : new Headers(response.headers),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Assertions

/** The messages the client sent, as the primary received them. */
function originalMessages(scene: TwoProviders): unknown[] {
  const messages = sentBody(scene.primary, 0).messages;
  assert.ok(Array.isArray(messages));
  return messages;
}

function assertPrefillRequest(scene: TwoProviders, index: number): void {
  const messages = sentBody(scene.backup, index).messages;
  assert.deepEqual(
    messages,
    [...originalMessages(scene), { role: "assistant", content: DELIVERED }],
    "the continuation request is the original messages plus the delivered text as an assistant message",
  );
}

function assertReplayRequest(scene: TwoProviders, index: number): void {
  assert.deepEqual(
    sentBody(scene.backup, index).messages,
    originalMessages(scene),
    "the replay request is the original request, without a prefill",
  );
}

/**
 * One answer for the client: every chunk carries the first stream's id, exactly one chunk (the first spliced
 * one, after the delivered text) carries the continuation marker, and the backup's own role chunk is not seen.
 */
function assertSpliced(run: ClientRun, expected: { mode: "prefill" | "replay"; reason: RegExp }): void {
  for (const chunk of run.chunks) assert.equal(chunk.id, PRIMARY_ID, "continuation chunks keep the first stream's id");
  const marked = run.chunks
    .map((chunk, index) => ({ index, marker: chunk.x_gateway as { continuation?: ContinuationMarker } | undefined }))
    .filter((entry) => entry.marker !== undefined);
  assert.equal(marked.length, 1, "exactly one chunk carries the continuation marker");
  const [{ index, marker } = { index: -1, marker: undefined }] = marked;
  const continuation = marker?.continuation;
  assert.ok(continuation !== undefined);
  assert.deepEqual(
    { ...continuation, reason: "" },
    { provider: "beta", model: MODEL, afterChars: DELIVERED.length, reason: "", mode: expected.mode },
  );
  assert.match(continuation.reason, expected.reason);
  // Before the marker: the primary's role chunk and its 40 words; the marked chunk carries word 41.
  const textBefore = run.chunks
    .slice(0, index)
    .map((chunk) => contentOf(chunk))
    .join("");
  assert.equal(textBefore, DELIVERED);
  assert.equal(contentOf(run.chunks[index]), REST[0]);
  const roleChunks = run.chunks.filter(
    (chunk) => (chunk.choices as { delta?: { role?: string } }[] | undefined)?.[0]?.delta?.role !== undefined,
  );
  assert.equal(roleChunks.length, 1, "only the first stream's role chunk reaches the client");
}

function contentOf(chunk: Record<string, unknown> | undefined): string {
  const choice = (chunk?.choices as { delta?: { content?: unknown } }[] | undefined)?.[0];
  return typeof choice?.delta?.content === "string" ? choice.delta.content : "";
}

function decisionsOf(scene: TwoProviders): RequestRecord[] {
  const decisions: RequestRecord[] = [];
  scene.gateway.runtime.onRecord((decision) => decisions.push(decision));
  return decisions;
}

// ---------------------------------------------------------------------------------------------------------------

describe("before the first token: a slow upstream is skipped", () => {
  for (const client of CLIENTS) {
    test(`first_token_timeout_ms: the next candidate serves the stream, the client sees only it (${client})`, async (t) => {
      const scene = await startTwoProviders(t, { primary: { first_token_timeout_ms: 300 } });
      scene.primary.enqueue(CHAT_ROUTE, {
        kind: "sse",
        // Silent far longer than the bound below: a gateway without the first-token timeout waits all of it.
        events: [{ data: chatChunk("", MODEL, { id: PRIMARY_ID, role: true }) }, { delayMs: 30_000 }, ...firstForty()],
      });
      scene.backup.enqueue(CHAT_ROUTE, freshAnswer(["served", " by", " beta"]));
      const startedAtMs = performance.now();
      const run = await runClient(client, scene);
      const elapsedMs = performance.now() - startedAtMs;
      assert.equal(run.error, undefined);
      assert.equal(run.text, "served by beta");
      // Well above the 300 ms timeout (a loaded machine's delays), far below alpha's 30 s of silence.
      assert.ok(elapsedMs < 10_000, `the fast candidate answered after ${Math.round(elapsedMs)} ms`);
      assert.ok(run.chunks.length > 0);
      for (const chunk of run.chunks) {
        assert.equal(chunk.id, BACKUP_ID, "nothing of the slow stream reached the client");
        assert.equal(chunk.x_gateway, undefined, "a failover before the first token is not a continuation");
      }
      assert.equal(run.headers?.get("x-gateway-provider"), "beta");
      assert.equal(run.headers?.get("x-gateway-attempts"), "2");
      assertReplayRequest(scene, 0);
      await waitUntil(() => scene.primary.activeRequests() === 0, "the slow upstream call to be aborted");
    });
  }
});

describe("a stream that breaks mid-answer is continued with a prefill", () => {
  for (const client of CLIENTS) {
    test(`cut after 40 of 60 words: the client gets the 60 words exactly once (${client})`, async (t) => {
      const scene = await startTwoProviders(t);
      const decisions = decisionsOf(scene);
      scene.primary.enqueue(CHAT_ROUTE, cutAfterForty);
      scene.backup.enqueue(CHAT_ROUTE, continuationStep());
      const run = await runClient(client, scene);
      assert.equal(run.error, undefined, `unexpected error: ${run.error?.message}`);
      assert.equal(run.text, FULL_TEXT);
      assert.equal(scene.backup.requests.length, 1);
      assertPrefillRequest(scene, 0);
      assertSpliced(run, { mode: "prefill", reason: /connection broke|closed the stream/ });
      // The stream commits to alpha: the headers name it, the switch shows only in the marker.
      assert.equal(run.headers?.get("x-gateway-provider"), "alpha");
      await waitUntil(() => decisions.length === 1, "the routing decision");
      assert.equal(decisions[0]?.status, 200);
    });

    test(`stall (stream_idle_timeout_ms) after 40 words: continued promptly, 60 words once (${client})`, async (t) => {
      const scene = await startTwoProviders(t, { primary: { stream_idle_timeout_ms: 300 } });
      scene.primary.enqueue(CHAT_ROUTE, stallAfterForty);
      scene.backup.enqueue(CHAT_ROUTE, continuationStep());
      const startedAtMs = performance.now();
      const run = await runClient(client, scene);
      const elapsedMs = performance.now() - startedAtMs;
      assert.equal(run.error, undefined, `unexpected error: ${run.error?.message}`);
      assert.equal(run.text, FULL_TEXT);
      // Alpha stalls forever: without the idle timeout nothing would continue it. The bound is for "promptly", with
      // room for a loaded machine's delays.
      assert.ok(elapsedMs < 10_000, `the continued answer took ${Math.round(elapsedMs)} ms`);
      assertPrefillRequest(scene, 0);
      assertSpliced(run, { mode: "prefill", reason: /stream_idle_timeout_ms \(300 ms\)/ });
      // The stalled upstream call is hung up, not left open until the upstream gives up.
      await waitUntil(() => scene.primary.activeRequests() === 0, "the stalled upstream call to be aborted");
    });
  }

  test("an in-band error event mid-stream is continued too (openai)", async (t) => {
    const scene = await startTwoProviders(t);
    scene.primary.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: [
        ...firstForty(),
        { data: { error: { message: "Upstream overloaded", type: "server_error", code: 500 } } },
      ],
      end: "hang",
    });
    scene.backup.enqueue(CHAT_ROUTE, continuationStep());
    const run = await runClient("openai", scene);
    assert.equal(run.error, undefined);
    assert.equal(run.text, FULL_TEXT);
    assertPrefillRequest(scene, 0);
    assertSpliced(run, { mode: "prefill", reason: /error event: Upstream overloaded/ });
    await waitUntil(() => scene.primary.activeRequests() === 0, "the failed upstream call to be aborted");
  });

  test("OpenRouter's mid-stream failure (an error beside choices, finish_reason `error`, then [DONE]) is continued (openai)", async (t) => {
    // https://openrouter.ai/docs/api-reference/errors ("Errors during streaming"): the stream then ends normally,
    // so the failure chunk looked like the answer's end and half an answer was a success.
    const scene = await startTwoProviders(t);
    scene.primary.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: [
        ...firstForty(),
        {
          data: {
            id: PRIMARY_ID,
            object: "chat.completion.chunk",
            created: 1,
            model: "primary-model",
            provider: "openai",
            error: { code: "server_error", message: "Provider disconnected unexpectedly" },
            choices: [{ index: 0, delta: { content: "" }, finish_reason: "error" }],
          },
        },
      ],
    });
    scene.backup.enqueue(CHAT_ROUTE, continuationStep());
    const run = await runClient("openai", scene);
    assert.equal(run.error, undefined, `unexpected error: ${run.error?.message}`);
    assert.equal(run.text, FULL_TEXT);
    assertPrefillRequest(scene, 0);
    assertSpliced(run, { mode: "prefill", reason: /error event: Provider disconnected unexpectedly/ });
  });

  test("raw SSE: one [DONE], strict framing, the marker on the first spliced chunk only", async (t) => {
    const scene = await startTwoProviders(t);
    scene.primary.enqueue(CHAT_ROUTE, cutAfterForty);
    scene.backup.enqueue(CHAT_ROUTE, continuationStep());
    const answer = await scene.postChat({ stream: true, messages: [{ role: "user", content: PROMPT }] });
    assert.equal(answer.statusCode, 200);
    const { text } = await readTimed(answer.body);
    const data = strictSseData(text);
    assert.equal(data.at(-1), "[DONE]");
    assert.equal(data.filter((payload) => payload === "[DONE]").length, 1);
    const chunks = data.slice(0, -1).map((payload) => JSON.parse(payload) as Record<string, unknown>);
    // role + 40 words from alpha, then 20 words and the finish chunk from beta.
    assert.equal(chunks.length, 1 + 40 + 20 + 1);
    assertSpliced(
      { text: "", chunks, error: undefined, usage: undefined, headers: undefined },
      {
        mode: "prefill",
        reason: /connection broke|closed the stream/,
      },
    );
    assert.equal(chunks.map(contentOf).join(""), FULL_TEXT);
    const last = chunks.at(-1) as { choices: { finish_reason: string | null }[] };
    assert.equal(last.choices[0]?.finish_reason, "stop");
  });
});

describe("a candidate the plan left out for the moment may continue", () => {
  test("beta cooling down when the stream started, ready when alpha broke: beta continues it (openai)", async (t) => {
    const scene = await startTwoProviders(t);
    const decisions = decisionsOf(scene);
    // Beta asked by its own name answers 429 with a short retry hint: it cools down for 400 ms.
    scene.backup.enqueue(CHAT_ROUTE, rateLimited({ headers: { "retry-after-ms": "400" } }));
    await assert.rejects(
      scene.client.chat.completions.create({ model: `beta/${MODEL}`, messages: [{ role: "user", content: "hi" }] }),
      (error: unknown) => error instanceof OpenAI.APIError && error.status === 429,
    );
    // The stream's plan: alpha, with beta left out (cooling). Alpha breaks after 40 words, 700 ms in.
    scene.primary.enqueue(CHAT_ROUTE, { kind: "sse", events: [...firstForty(), { delayMs: 700 }], end: "destroy" });
    scene.backup.enqueue(CHAT_ROUTE, continuationStep());
    const run = await runClient("openai", scene);
    assert.equal(run.error, undefined, `unexpected error: ${run.error?.message}`);
    assert.equal(run.text, FULL_TEXT);
    assertPrefillRequest(scene, 1);
    assertSpliced(run, { mode: "prefill", reason: /connection broke|closed the stream/ });
    await waitUntil(() => decisions.length === 2, "the routing decisions");
    const record = decisions[1];
    assert.deepEqual(
      record?.skips.map((skip) => `${skip.deploymentKey} ${skip.phase} ${skip.cause}`),
      [`beta/${MODEL} plan cooldown`],
    );
    assert.equal(record?.continuations[0]?.provider, "beta");
    assert.equal(record?.status, 200);
  });
});

describe("a continuation waits for a candidate at its limit", () => {
  test("beta at its 1 rps when alpha breaks: beta continues once it has room, within max_wait_for_better_ms (openai)", async (t) => {
    const scene = await startTwoProviders(t, { backupModel: { limits: { rps: 1 } } });
    const decisions = decisionsOf(scene);
    // Beta asked by its own name (its default answer): its one request of this second.
    await scene.client.chat.completions.create({ model: `beta/${MODEL}`, messages: [{ role: "user", content: "hi" }] });
    scene.primary.enqueue(CHAT_ROUTE, cutAfterForty);
    scene.backup.enqueue(CHAT_ROUTE, continuationStep());
    const startedAtMs = performance.now();
    const run = await runClient("openai", scene);
    assert.equal(run.error, undefined, `unexpected error: ${run.error?.message}`);
    assert.equal(run.text, FULL_TEXT);
    assert.ok(performance.now() - startedAtMs < 2_000, "waited for beta's room, not longer");
    assertPrefillRequest(scene, 1);
    await waitUntil(() => decisions.length === 2, "the routing decisions");
    assert.equal(decisions[1]?.continuations[0]?.provider, "beta");
    // Left out of the plan, then passed over once more when asked to continue, before its room came.
    assert.deepEqual(
      decisions[1]?.skips.map((skip) => `${skip.deploymentKey} ${skip.phase} ${skip.cause}`),
      [`beta/${MODEL} plan budget`, `beta/${MODEL} continuation attempt`],
    );
  });
});

describe("a cut stream nobody else can continue", () => {
  for (const client of CLIENTS) {
    test(`alpha's connection breaks, beta is down: alpha itself continues it, 60 words once (${client})`, async (t) => {
      const scene = await startTwoProviders(t);
      const decisions = decisionsOf(scene);
      scene.backup.setDefault(CHAT_ROUTE, { kind: "json", status: 500, body: { error: { message: "down" } } });
      scene.primary.enqueue(CHAT_ROUTE, cutAfterForty, continuationStep());
      const run = await runClient(client, scene);
      assert.equal(run.error, undefined, `unexpected error: ${run.error?.message}`);
      assert.equal(run.text, FULL_TEXT);
      // Beta was asked first (and failed); alpha, asked last, got the original messages plus the delivered text.
      assert.equal(scene.backup.requests.length, 1);
      assert.deepEqual(sentBody(scene.primary, 1).messages, [
        ...originalMessages(scene),
        { role: "assistant", content: DELIVERED },
      ]);
      await waitUntil(() => decisions.length === 1, "the routing decision");
      assert.equal(decisions[0]?.status, 200);
      assert.equal(decisions[0]?.continuations[0]?.provider, "alpha");
      assert.equal(decisions[0]?.continuations[0]?.mode, "prefill");
    });
  }

  test("alpha at concurrency 1: the broken stream's slot is free for alpha to continue it itself", async (t) => {
    // A local model served one request at a time (Ollama, llama.cpp): the cut stream is over, so its slot must
    // not stand in the way of its own continuation.
    const scene = await startTwoProviders(t, { primaryModel: { limits: { concurrency: 1 } } });
    const decisions = decisionsOf(scene);
    scene.backup.setDefault(CHAT_ROUTE, { kind: "json", status: 500, body: { error: { message: "down" } } });
    scene.primary.enqueue(CHAT_ROUTE, cutAfterForty, continuationStep());
    const run = await runClient("openai", scene);
    assert.equal(run.error, undefined, `unexpected error: ${run.error?.message}`);
    assert.equal(run.text, FULL_TEXT);
    assert.equal(scene.primary.requests.length, 2);
    await waitUntil(() => decisions.length === 1, "the routing decision");
    assert.equal(decisions[0]?.continuations[0]?.provider, "alpha");
  });

  test("while beta continues alpha's broken stream, alpha (concurrency 1) serves other requests", async (t) => {
    const scene = await startTwoProviders(t, { primaryModel: { limits: { concurrency: 1 } } });
    scene.primary.enqueue(CHAT_ROUTE, cutAfterForty);
    // Beta's continuation pauses after its first word: alpha's one slot is asked for meanwhile.
    const rest = chatStream(REST, MODEL, { id: BACKUP_ID });
    scene.backup.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: [...rest.slice(0, 2), { delayMs: 1000 }, ...rest.slice(2)],
    });
    const stream = await scene.client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: PROMPT }],
      stream: true,
    });
    let text = "";
    let otherProvider: string | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      if (otherProvider === undefined && text === DELIVERED + REST[0]) {
        const other = await scene.client.chat.completions
          .create({ model: MODEL, messages: [{ role: "user", content: "hi" }] })
          .withResponse();
        otherProvider = other.response.headers.get("x-gateway-provider");
      }
    }
    assert.equal(text, FULL_TEXT);
    assert.equal(otherProvider, "alpha", "alpha's broken stream holds no slot while beta continues it");
  });

  test("a stall is not continued by the candidate that stalled", async (t) => {
    const scene = await startTwoProviders(t, { primary: { stream_idle_timeout_ms: 300 } });
    scene.backup.setDefault(CHAT_ROUTE, { kind: "json", status: 500, body: { error: { message: "down" } } });
    scene.primary.enqueue(CHAT_ROUTE, stallAfterForty, continuationStep());
    const run = await runClient("openai", scene);
    assert.equal(run.error?.code, "upstream_timeout");
    assert.equal(scene.primary.requests.length, 1);
  });
});

describe("a fallback that rejects the prefill replays the answer", () => {
  for (const client of CLIENTS) {
    test(`a 400 to the prefill: retried without it, the fresh answer spliced, the rejection remembered (${client})`, async (t) => {
      const scene = await startTwoProviders(t);
      scene.primary.enqueue(CHAT_ROUTE, cutAfterForty, cutAfterForty);
      scene.backup.enqueue(CHAT_ROUTE, rejectsPrefill, freshAnswer(), freshAnswer());

      const first = await runClient(client, scene);
      assert.equal(first.error, undefined, `unexpected error: ${first.error?.message}`);
      assert.equal(first.text, FULL_TEXT);
      assert.equal(scene.backup.requests.length, 2);
      assertPrefillRequest(scene, 0);
      assertReplayRequest(scene, 1);
      assertSpliced(first, { mode: "replay", reason: /connection broke|closed the stream/ });

      // Learned: the next cut stream goes straight to the replay, without a prefill request first.
      const second = await runClient(client, scene);
      assert.equal(second.error, undefined, `unexpected error: ${second.error?.message}`);
      assert.equal(second.text, FULL_TEXT);
      assert.equal(scene.primary.requests.length, 2, "alpha served the second request too, and was cut again");
      assert.equal(scene.backup.requests.length, 3);
      assertReplayRequest(scene, 2);
      assertSpliced(second, { mode: "replay", reason: /connection broke|closed the stream/ });
      assert.equal(scene.backup.pendingSteps(), 0);
    });

    test(`a fresh answer that diverges: one stream_interrupted error naming the cut, not the 400 (${client})`, async (t) => {
      const scene = await startTwoProviders(t);
      const decisions = decisionsOf(scene);
      // Alpha's connection broke, so it is asked last, whatever beta's replay did: it fails too.
      scene.primary.enqueue(CHAT_ROUTE, cutAfterForty, {
        kind: "json",
        status: 500,
        body: { error: { message: "down" } },
      });
      const otherWords = ["Something", " else", " entirely", " and", " longer", " than", " that"];
      scene.backup.enqueue(CHAT_ROUTE, rejectsPrefill, freshAnswer(otherWords));
      const run = await runClient(client, scene);
      assert.equal(run.text, DELIVERED, "nothing of the diverging answer reached the client");
      assert.ok(run.error !== undefined, "the client must see an error, not a normal end");
      assert.equal(run.error.code, "stream_interrupted");
      assert.equal(run.error.type, "upstream_error");
      assert.match(run.error.message, /failed after it had started: the upstream (connection broke|closed the stream)/);
      assert.doesNotMatch(run.error.message, /prefill|400|does not start with|diverge/i);
      for (const chunk of run.chunks) assert.equal(chunk.x_gateway, undefined, "nothing was spliced");
      assert.equal(scene.backup.requests.length, 2);
      assertPrefillRequest(scene, 0);
      assertReplayRequest(scene, 1);
      assert.equal(scene.primary.pendingSteps(), 0, "alpha, whose connection broke, was asked last");
      await waitUntil(() => scene.backup.activeRequests() === 0, "the diverging upstream call to be aborted");
      await waitUntil(() => decisions.length === 1, "the routing decision");
      assert.equal(decisions[0]?.status, 502);
    });
  }

  for (const client of CLIENTS) {
    test(`prefill: false on the fallback: replayed directly, no prefill request (${client})`, async (t) => {
      const scene = await startTwoProviders(t, { backupModel: { prefill: false } });
      scene.primary.enqueue(CHAT_ROUTE, cutAfterForty);
      scene.backup.enqueue(CHAT_ROUTE, freshAnswer());
      const run = await runClient(client, scene);
      assert.equal(run.error, undefined, `unexpected error: ${run.error?.message}`);
      assert.equal(run.text, FULL_TEXT);
      assert.equal(scene.backup.requests.length, 1);
      assertReplayRequest(scene, 0);
      assertSpliced(run, { mode: "replay", reason: /connection broke|closed the stream/ });
    });
  }
});

describe("a fresh answer that diverges hands over to the next candidate", () => {
  test("alpha cut, beta's replay ends early, gamma continues with a prefill: the full text once", async (t) => {
    const [alpha, beta, gamma] = await Promise.all([startMockUpstream(), startMockUpstream(), startMockUpstream()]);
    const provider = (name: string, baseUrl: string, priority: number, model: Record<string, unknown> = {}) => ({
      name,
      base_url: baseUrl,
      api_key: `sk-${name}`,
      retries: 0,
      models: { [MODEL]: { priority, ...model } },
    });
    const gateway = await startTestGateway(
      stringify({
        providers: [
          provider("alpha", alpha.baseUrl, 100),
          provider("beta", beta.baseUrl, 50, { prefill: false }),
          provider("gamma", gamma.baseUrl, 1),
        ],
      }),
    );
    t.after(async () => {
      await Promise.all([alpha.close(), beta.close(), gamma.close()]);
      await gateway.close();
    });
    alpha.enqueue(CHAT_ROUTE, cutAfterForty);
    beta.enqueue(CHAT_ROUTE, freshAnswer(WORDS.slice(0, 10)));
    gamma.enqueue(CHAT_ROUTE, continuationStep());
    const client = new OpenAI({ baseURL: gateway.baseUrl, apiKey: "x", maxRetries: 0 });
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: PROMPT }],
      stream: true,
    });
    let text = "";
    const markers: unknown[] = [];
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      const marker = (chunk as unknown as { x_gateway?: unknown }).x_gateway;
      if (marker !== undefined) markers.push(marker);
    }
    assert.equal(text, FULL_TEXT);
    assert.equal(beta.requests.length, 1);
    assert.equal(gamma.requests.length, 1);
    const gammaBody = gamma.requests[0]?.body as { messages?: unknown[] } | undefined;
    assert.deepEqual(gammaBody?.messages?.at(-1), {
      role: "assistant",
      content: DELIVERED,
    });
    // Only what reached the client is marked: gamma's splice, after the original failure.
    assert.equal(markers.length, 1);
    const marker = markers[0] as { continuation: ContinuationMarker };
    assert.equal(marker.continuation.provider, "gamma");
    assert.equal(marker.continuation.mode, "prefill");
    assert.equal(marker.continuation.afterChars, DELIVERED.length);
  });
});

describe("endings that need no continuation", () => {
  for (const client of CLIENTS) {
    test(`a single malformed event is skipped: the stream completes, nothing is continued (${client})`, async (t) => {
      const scene = await startTwoProviders(t);
      const events = chatStream(WORDS, MODEL, { id: PRIMARY_ID });
      // A chunk with its line cut off, between words 30 and 31.
      events.splice(31, 0, { raw: 'data: {"id":"chatcmpl-primary","choices":[{"delta":{"content":" wo\n\n' });
      scene.primary.enqueue(CHAT_ROUTE, { kind: "sse", events });
      const run = await runClient(client, scene);
      assert.equal(run.error, undefined, `unexpected error: ${run.error?.message}`);
      assert.equal(run.text, FULL_TEXT);
      assert.equal(scene.backup.requests.length, 0, "a skipped event is not a failure to rescue");
      for (const chunk of run.chunks) assert.equal(chunk.x_gateway, undefined);
    });
  }

  const withoutDone: readonly { name: string; end: "close-without-done" | "hang" }[] = [
    { name: "closes cleanly", end: "close-without-done" },
    { name: "stays open", end: "hang" },
  ];
  for (const { name, end } of withoutDone) {
    test(`finish_reason and usage but no [DONE], the upstream ${name}: finalised at once with the usage`, async (t) => {
      // A long idle timeout: finalising must not wait for it (the bound below is a third of it, for a loaded machine).
      const scene = await startTwoProviders(t, { primary: { stream_idle_timeout_ms: 30_000 } });
      const usage = { prompt_tokens: 17, completion_tokens: 60 };
      scene.primary.enqueue(CHAT_ROUTE, {
        kind: "sse",
        events: chatStream(WORDS, MODEL, { id: PRIMARY_ID, usage }),
        end,
      });
      const startedAtMs = performance.now();
      const answer = await scene.postChat({
        stream: true,
        stream_options: { include_usage: true },
        messages: [{ role: "user", content: PROMPT }],
      });
      const { text } = await readTimed(answer.body);
      const elapsedMs = performance.now() - startedAtMs;
      assert.ok(elapsedMs < 10_000, `the stream was finalised after ${Math.round(elapsedMs)} ms`);
      const data = strictSseData(text);
      assert.equal(data.at(-1), "[DONE]");
      const usageChunk = JSON.parse(data.at(-2) ?? "null") as ReturnType<typeof chatUsageChunk>;
      assert.deepEqual(usageChunk, chatUsageChunk(MODEL, usage, { id: PRIMARY_ID }), "the usage chunk as sent");
      assert.equal(scene.backup.requests.length, 0, "a finished answer is not continued");
      await waitUntil(() => scene.primary.activeRequests() === 0, "the upstream call to be closed");

      // The official SDK ends normally, with the usage.
      scene.primary.enqueue(CHAT_ROUTE, {
        kind: "sse",
        events: chatStream(WORDS, MODEL, { id: PRIMARY_ID, usage }),
        end,
      });
      const run = await runClient("openai", scene, { includeUsage: true });
      assert.equal(run.error, undefined);
      assert.equal(run.text, FULL_TEXT);
      assert.deepEqual(run.usage, { prompt: 17, completion: 60, total: 77 });
      assert.equal(scene.backup.requests.length, 0);
    });
  }

  test("a finish_reason then silence (no usage asked, none sent): finished, not continued", async (t) => {
    const scene = await startTwoProviders(t, { primary: { stream_idle_timeout_ms: 300, inject_stream_usage: false } });
    scene.primary.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: chatStream(WORDS, MODEL, { id: PRIMARY_ID }),
      end: "hang",
    });
    scene.backup.enqueue(CHAT_ROUTE, continuationStep());
    const run = await runClient("openai", scene);
    assert.equal(run.error, undefined, `unexpected error: ${run.error?.message}`);
    assert.equal(run.text, FULL_TEXT, "the finished answer, without anything appended");
    assert.equal(scene.backup.requests.length, 0, "a finished answer is not continued");
  });
});

describe("usage after a continuation covers the whole answer", () => {
  for (const client of CLIENTS) {
    test(`prefill: prompt of the original request, completion = delivered part + continuation (${client})`, async (t) => {
      const scene = await startTwoProviders(t);
      scene.primary.enqueue(CHAT_ROUTE, cutAfterForty);
      // The backup counts the prefill as prompt; the client's prompt was only the original messages.
      scene.backup.enqueue(CHAT_ROUTE, continuationStep({ prompt_tokens: 9 + 40, completion_tokens: 20 }));
      const run = await runClient(client, scene, { includeUsage: true });
      assert.equal(run.error, undefined, `unexpected error: ${run.error?.message}`);
      assert.equal(run.text, FULL_TEXT);
      const prompt = estimateChatPrompt(originalMessages(scene), undefined).promptTokens;
      const completion = countTextTokens(DELIVERED) + 20;
      assert.deepEqual(run.usage, { prompt, completion, total: prompt + completion });
    });

    test(`replay: the fresh answer's own usage, which covers the whole text (${client})`, async (t) => {
      const scene = await startTwoProviders(t, { backupModel: { prefill: false } });
      scene.primary.enqueue(CHAT_ROUTE, cutAfterForty);
      scene.backup.enqueue(CHAT_ROUTE, freshAnswer(WORDS, { prompt_tokens: 9, completion_tokens: 60 }));
      const run = await runClient(client, scene, { includeUsage: true });
      assert.equal(run.error, undefined, `unexpected error: ${run.error?.message}`);
      assert.equal(run.text, FULL_TEXT);
      assert.deepEqual(run.usage, { prompt: 9, completion: 60, total: 69 });
    });
  }

  test("usage the client did not ask for stays out of a continued stream, whichever upstream was asked for it", async (t) => {
    // alpha is not asked for usage, beta is (the gateway adds it to count tokens): beta's usage chunk is the
    // gateway's, not the client's.
    const scene = await startTwoProviders(t, { primary: { inject_stream_usage: false } });
    scene.primary.enqueue(CHAT_ROUTE, cutAfterForty);
    scene.backup.enqueue(CHAT_ROUTE, continuationStep({ prompt_tokens: 49, completion_tokens: 20 }));
    const answer = await scene.postChat({ stream: true, messages: [{ role: "user", content: PROMPT }] });
    const data = strictSseData((await readTimed(answer.body)).text);
    assert.equal(data.at(-1), "[DONE]");
    assert.equal(data.length, 1 + 40 + 20 + 1 + 1);
    for (const payload of data.slice(0, -1)) {
      assert.equal((JSON.parse(payload) as { usage?: unknown }).usage, undefined, `usage leaked: ${payload}`);
    }
    assert.equal(sentBody(scene.primary, 0).stream_options, undefined);
    assert.deepEqual(sentBody(scene.backup, 0).stream_options, { include_usage: true });
    // The gateway still learnt beta's usage.
    await waitUntil(() => scene.backup.activeRequests() === 0, "the continuation to end");
    const beta = (await statsOf(scene.gateway)).get(`beta/${MODEL}`);
    assert.equal(beta?.tokens_out, 20);
  });
});

describe("streams that cannot be continued soundly end with a clean error", () => {
  const toolCallChunk = (argumentsPart: string, first: boolean) => ({
    id: PRIMARY_ID,
    object: "chat.completion.chunk",
    created: 1767225600,
    model: MODEL,
    choices: [
      {
        index: 0,
        delta: {
          ...(first ? { role: "assistant", content: null } : {}),
          tool_calls: [
            first
              ? {
                  index: 0,
                  id: "call_1",
                  type: "function",
                  function: { name: "get_weather", arguments: argumentsPart },
                }
              : { index: 0, function: { arguments: argumentsPart } },
          ],
        },
        logprobs: null,
        finish_reason: null,
      },
    ],
  });

  for (const client of CLIENTS) {
    test(`a tool-call stream cut mid-call: stream_interrupted, no continuation (${client})`, async (t) => {
      const scene = await startTwoProviders(t, { primaryModel: { tools: true }, backupModel: { tools: true } });
      scene.primary.enqueue(CHAT_ROUTE, {
        kind: "sse",
        events: [{ data: toolCallChunk("", true) }, { data: toolCallChunk('{"city":', false) }],
        end: "destroy",
      });
      let run: ClientRun;
      if (client === "openai") {
        const stream = await scene.client.chat.completions.create({
          model: MODEL,
          messages: [{ role: "user", content: "Weather in Paris?" }],
          tools: [{ type: "function", function: { name: "get_weather", parameters: { type: "object" } } }],
          stream: true,
        });
        let error: ClientRun["error"];
        try {
          for await (const _chunk of stream) {
            // drain
          }
        } catch (thrown) {
          assert.ok(thrown instanceof OpenAI.APIError);
          error = { code: thrown.code, type: thrown.type, message: thrown.message };
        }
        run = { text: "", chunks: [], error, usage: undefined, headers: undefined };
      } else {
        const provider = createOpenAICompatible({ name: "gateway", baseURL: scene.gateway.baseUrl, apiKey: "x" });
        const result = streamText({
          model: provider.chatModel(MODEL),
          prompt: "Weather in Paris?",
          tools: { get_weather: { description: "weather", inputSchema: jsonObjectSchema() } },
          maxRetries: 0,
          onError: () => {},
        });
        const errors: unknown[] = [];
        for await (const part of result.fullStream) if (part.type === "error") errors.push(part.error);
        const first = errors[0] as { code?: unknown; type?: unknown; message?: unknown } | undefined;
        run = {
          text: "",
          chunks: [],
          error:
            first === undefined ? undefined : { code: first.code, type: first.type, message: String(first.message) },
          usage: undefined,
          headers: undefined,
        };
      }
      assert.ok(run.error !== undefined, "the client must see an error");
      assert.equal(run.error.code, "stream_interrupted");
      assert.equal(scene.backup.requests.length, 0, "a half-written tool call is not continued");
    });
  }

  test("n > 1: stream_interrupted, no continuation (openai)", async (t) => {
    const scene = await startTwoProviders(t);
    const choiceChunk = (index: number, content: string) => ({
      ...chatChunk(content, MODEL, { id: PRIMARY_ID }),
      choices: [{ index, delta: { content }, logprobs: null, finish_reason: null }],
    });
    scene.primary.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: [{ data: choiceChunk(0, "One") }, { data: choiceChunk(1, "Two") }, { data: choiceChunk(0, " more") }],
      end: "destroy",
    });
    const stream = await scene.client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: PROMPT }],
      n: 2,
      stream: true,
    });
    const texts = ["", ""];
    await assert.rejects(
      (async () => {
        for await (const chunk of stream) {
          for (const choice of chunk.choices) texts[choice.index] += choice.delta.content ?? "";
        }
      })(),
      (thrown: unknown) => {
        assert.ok(thrown instanceof OpenAI.APIError);
        assert.equal(thrown.code, "stream_interrupted");
        return true;
      },
    );
    assert.deepEqual(texts, ["One more", "Two"]);
    assert.equal(scene.backup.requests.length, 0, "n > 1 is not continued");
  });
});

describe("/stats after a continuation", () => {
  test("the cut attempt counts as a failure of the first candidate, the continuation as a success", async (t) => {
    const scene = await startTwoProviders(t);
    scene.primary.enqueue(CHAT_ROUTE, cutAfterForty);
    scene.backup.enqueue(CHAT_ROUTE, continuationStep({ prompt_tokens: 49, completion_tokens: 20 }));
    const run = await runClient("openai", scene, { includeUsage: true });
    assert.equal(run.text, FULL_TEXT);
    await waitUntil(() => scene.backup.activeRequests() === 0, "the continuation to end");
    const stats = await statsOf(scene.gateway);
    const alpha = stats.get(`alpha/${MODEL}`);
    const beta = stats.get(`beta/${MODEL}`);
    assert.equal(alpha?.successes, 0);
    assert.equal(alpha?.failures, 1);
    assert.equal(beta?.successes, 1);
    assert.equal(beta?.failures, 0);
    // The continuation's own usage, as the backup reported it.
    assert.equal(beta?.tokens_in, 49);
    assert.equal(beta?.tokens_out, 20);
  });
});

describe("a client that leaves during a continuation", () => {
  test("the continuation call is aborted and beta is not penalised; alpha's cut still counts", async (t) => {
    const scene = await startTwoProviders(t);
    const decisions = decisionsOf(scene);
    scene.primary.enqueue(CHAT_ROUTE, cutAfterForty);
    scene.backup.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: chatStream(REST, MODEL, { id: BACKUP_ID, delayMs: 100 }),
    });
    const stream = await scene.client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: PROMPT }],
      stream: true,
    });
    let text = "";
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      if (text.includes(REST[2] ?? "")) break;
    }
    assert.equal(text, DELIVERED + REST.slice(0, 3).join(""));
    await waitUntil(() => scene.backup.activeRequests() === 0, "the continuation call to be aborted", 5000);
    await waitUntil(() => decisions.length === 1, "the routing decision");
    assert.equal(decisions[0]?.status, 499);
    const stats = await statsOf(scene.gateway);
    assert.deepEqual(
      [stats.get(`alpha/${MODEL}`)?.failures, stats.get(`beta/${MODEL}`)?.failures],
      [1, 0],
      "alpha cut the stream; beta did nothing wrong",
    );
  });
});

/** A JSON schema for the AI SDK's tool definition, without pulling in zod on the test side. */
function jsonObjectSchema() {
  return jsonSchema<{ city?: string }>({ type: "object", properties: { city: { type: "string" } } });
}
