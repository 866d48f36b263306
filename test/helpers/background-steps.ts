// What the Responses background-mode e2e tests share: the one-provider config, the mock upstream's steps that hang
// or stream slowly, and the SDK-side waits and readers (polling to the end, reading a stream to its first delta or
// its end).
import assert from "node:assert/strict";
import type { ServerResponse } from "node:http";
import type { TestContext } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import OpenAI from "openai";
import type { ResponseStreamEvent, Response as SdkResponse } from "openai/resources/responses/responses";
import { CHAT_ROUTE, VENDOR_MODEL_ID } from "./e2e.ts";
import type { TestGateway } from "./gateway.ts";
import { type GatewayProcess, startGatewayProcess } from "./gateway-process.ts";
import { chatStream, type MockUpstream } from "./mock-upstream.ts";

export const UPSTREAM_ID = VENDOR_MODEL_ID;

/** Polls until the response leaves queued / in_progress (bounded). */
export async function finished(sdk: OpenAI, id: string, timeoutMs = 10_000): Promise<SdkResponse> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const response = await sdk.responses.retrieve(id);
    if (response.status !== "queued" && response.status !== "in_progress") return response;
    if (Date.now() > deadline) assert.fail(`response ${id} still ${response.status} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

export type HandlerStep = { kind: "handler"; handle: (r: unknown, res: ServerResponse) => void };

/**
 * A step that writes `start` (nothing by default), then never ends; `closed` resolves once the gateway hangs up on
 * it.
 */
export function hangingStep(start: (response: ServerResponse) => void = () => {}): {
  step: HandlerStep;
  closed: Promise<void>;
} {
  let onClosed = (): void => {};
  const closed = new Promise<void>((resolve) => {
    onClosed = resolve;
  });
  return {
    step: {
      kind: "handler",
      handle: (_request, response) => {
        response.on("close", onClosed);
        start(response);
      },
    },
    closed,
  };
}

/** A chat stream started (its first chunks carrying `text`), then nothing more, as a slow model. */
export function slowStreamStep(text: string): { step: HandlerStep; closed: Promise<void> } {
  return hangingStep((response) => {
    response.writeHead(200, { "content-type": "text/event-stream" });
    for (const event of chatStream([text], UPSTREAM_ID).slice(0, 2)) {
      if ("data" in event) response.write(`data: ${JSON.stringify(event.data)}\n\n`);
    }
  });
}

/** Reads a background stream up to its first text delta, then drops it (as a client would); returns the id. */
export async function idAtFirstDelta(stream: AsyncIterable<ResponseStreamEvent>): Promise<string> {
  let id = "";
  for await (const event of stream) {
    if (event.type === "response.created") id = event.response.id;
    if (event.type === "response.output_text.delta") break;
  }
  return id;
}

/** Starts a streamed background response on `sdk` and reads it up to its first text delta; returns its id. */
export async function startStreamedRun(sdk: OpenAI): Promise<string> {
  return idAtFirstDelta(await sdk.responses.create({ model: "m", input: "x", background: true, stream: true }));
}

/** Runs a streamed background response on `sdk` to its end: its id and every event it sent, in order. */
export async function streamedRun(sdk: OpenAI): Promise<{ id: string; events: ResponseStreamEvent[] }> {
  const stream = await sdk.responses.create({ model: "m", input: "x", background: true, stream: true });
  let id = "";
  const events: ResponseStreamEvent[] = [];
  for await (const event of stream) {
    if (event.type === "response.created") id = event.response.id;
    events.push(event);
  }
  return { id, events };
}

/**
 * A gateway process (config `yaml`, over `mock`) running a streamed background response that sent "Half " and then
 * hangs, waited past a heartbeat so that its delta is in the shared state; for tests that pause or kill the process.
 * `isUpstreamClosed()` says whether the run has hung up on its upstream call.
 */
export async function slowRunInProcess(
  t: TestContext,
  mock: MockUpstream,
  yaml: string,
): Promise<{ running: GatewayProcess; sdk: OpenAI; id: string; isUpstreamClosed: () => boolean }> {
  const running = await startGatewayProcess(t, yaml);
  const slow = slowStreamStep("Half ");
  let isUpstreamClosed = false;
  void slow.closed.then(() => {
    isUpstreamClosed = true;
  });
  mock.enqueue(CHAT_ROUTE, slow.step);
  const sdk = new OpenAI({ baseURL: `${running.url}/v1`, apiKey: "x", maxRetries: 0 });
  const id = await startStreamedRun(sdk);
  await sleep(1_300); // past a heartbeat: the delta is kept
  return { running, sdk, id, isUpstreamClosed: () => isUpstreamClosed };
}

/** The sequence numbers a replay of `id` from after `startingAfter` sends, in the order it sends them. */
export async function replayedSequenceNumbers(sdk: OpenAI, id: string, startingAfter: number): Promise<number[]> {
  const replayed: number[] = [];
  for await (const event of await sdk.responses.retrieve(id, { stream: true, starting_after: startingAfter })) {
    replayed.push(event.sequence_number);
  }
  return replayed;
}

/** Follows a stream to its end: the text of its deltas and the type of its last event. */
export async function followedText(
  stream: AsyncIterable<ResponseStreamEvent>,
): Promise<{ text: string; lastType: string }> {
  let text = "";
  let lastType = "";
  for await (const event of stream) {
    if (event.type === "response.output_text.delta") text += event.delta;
    lastType = event.type;
  }
  return { text, lastType };
}

/**
 * Reads a followed stream to its end, and what the SDK raised there (undefined: it ended without an error): the text
 * deltas and every event's type before it.
 */
export async function followedToFailure(
  stream: AsyncIterable<ResponseStreamEvent>,
): Promise<{ text: string; types: string[]; failure: unknown }> {
  let text = "";
  const types: string[] = [];
  try {
    for await (const event of stream) {
      if (event.type === "response.output_text.delta") text += event.delta;
      types.push(event.type);
    }
  } catch (failure) {
    return { text, types, failure };
  }
  return { text, types, failure: undefined };
}

export async function waitFor(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/**
 * A chat stream whose words all come at once, then held before its end (the finish chunk and `[DONE]`) until
 * `release()`: the test decides when the run's answer is complete.
 */
export function heldStreamStep(words: string[]): { step: HandlerStep; release: () => void } {
  let release = (): void => {};
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const chunks = chatStream(words, UPSTREAM_ID).flatMap((event) => ("data" in event ? [event.data] : []));
  const ending = chunks.splice(-1);
  return {
    step: {
      kind: "handler",
      handle: (_request, response) => {
        response.writeHead(200, { "content-type": "text/event-stream" });
        for (const chunk of chunks) response.write(`data: ${JSON.stringify(chunk)}\n\n`);
        void released.then(() => {
          for (const chunk of ending) response.write(`data: ${JSON.stringify(chunk)}\n\n`);
          response.end("data: [DONE]\n\n");
        });
      },
    },
    release,
  };
}

/** A replayed stream's event types, and the response of its last event (the response as the stream ended it). */
export async function replayedEnding(
  stream: AsyncIterable<ResponseStreamEvent>,
): Promise<{ types: string[]; last: SdkResponse | undefined }> {
  const types: string[] = [];
  let last: SdkResponse | undefined;
  for await (const event of stream) {
    types.push(event.type);
    if ("response" in event) last = event.response;
  }
  return { types, last };
}

/**
 * A cancel made on `other` right after a heartbeat of the run `id` (held by `held` on `runner`), then the answer let
 * complete: the run's final save comes before any heartbeat could see the cancel, and the cancel must win, in the
 * response and in its kept events (ending `response.incomplete`, never `response.completed`, each event once).
 */
export async function assertCancelWinsOverFinalSave(
  runner: TestGateway,
  other: OpenAI,
  id: string,
  held: { release: () => void },
): Promise<void> {
  assert.equal((await other.responses.cancel(id)).status, "cancelled");
  held.release();
  await waitFor(() => runner.runtime.backgroundRuns.size === 0, "the run to end");
  assert.equal((await other.responses.retrieve(id)).status, "cancelled");
  const { types, last } = await replayedEnding(
    await other.responses.retrieve(id, { stream: true, starting_after: -1 }),
  );
  assert.equal(types.includes("response.completed"), false, `the kept events: ${types.join(", ")}`);
  assert.equal(types.at(-1), "response.incomplete");
  assert.equal(last?.status, "cancelled");
  assert.equal(types.filter((type) => type === "response.created").length, 1, "each event once");
}
