// The relay's own bookkeeping, with scripted segments: every segment it opened is settled exactly once, also when
// the consumer closes the relay while a continuation is streaming.
import assert from "node:assert/strict";
import { test } from "node:test";
import { chunk, opened, readToEnd, readUntil, relayOptions } from "../../test/helpers/scripted-relay.ts";
import type { OpenedStream } from "./opened-stream.ts";
import { relayStream } from "./relay-stream.ts";
import type { ContinuationSegment, RelaySegment, SegmentEnd } from "./relay-types.ts";

test("closed while a continuation streams: the continuation is settled (its slot freed), the first segment too", async () => {
  const ends: { segment: string; end: SegmentEnd }[] = [];
  const first: RelaySegment = {
    stream: opened([chunk("Hel")], "end"),
    isUsageInjected: false,
    finish: (end) => ends.push({ segment: "first", end }),
  };
  const continuationStream = opened([chunk("lo")], "hang");
  const continuation: ContinuationSegment = {
    stream: continuationStream,
    isUsageInjected: false,
    provider: "beta",
    model: "beta-m",
    mode: "prefill",
    repeatsText: "",
    finish: (end) => ends.push({ segment: "continuation", end }),
  };
  const relay = relayStream(first, relayOptions({ continuation: { next: async () => continuation } }));
  await readUntil(relay, '"lo"');
  // The consumer stops here (a write that threw), with the continuation still streaming.
  await relay.return(undefined as never);
  assert.deepEqual(
    ends.map(({ segment, end }) => [segment, end.outcome]),
    [
      ["continuation", "client_aborted"],
      ["first", "stream_cut"],
    ],
  );
  assert.equal(continuationStream.controller.signal.aborted, true, "the continuation's upstream was hung up on");
  // What each segment delivered before the close: its provider generated (and billed) it, so its estimate counts it
  // (pipeline/segment-usage.ts). Before, the continuation's was lost ("" counts nothing).
  assert.deepEqual(
    ends.map(({ segment, end }) => [segment, end.text]),
    [
      ["continuation", "lo"],
      ["first", "Hel"],
    ],
  );
});

test("closed while the first segment streams: it is settled with the text it delivered", async () => {
  const ends: SegmentEnd[] = [];
  const stream = opened([chunk("Hel"), chunk("lo")], "hang");
  const relay = relayStream({ stream, isUsageInjected: false, finish: (end) => ends.push(end) }, relayOptions());
  await readUntil(relay, '"lo"');
  await relay.return(undefined as never);
  assert.deepEqual(
    ends.map((end) => [end.outcome, end.text]),
    [["client_aborted", "Hello"]],
  );
});

test("closed while the first segment reasons: it is settled with the reasoning it delivered", async () => {
  const ends: SegmentEnd[] = [];
  const thought = (reasoning_content: string): string =>
    `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", choices: [{ index: 0, delta: { reasoning_content } }] })}\n\n`;
  const stream = opened([thought("Let me"), thought(" think")], "hang");
  const relay = relayStream({ stream, isUsageInjected: false, finish: (end) => ends.push(end) }, relayOptions());
  await readUntil(relay, '" think"');
  // The consumer stops here (a write that threw): its provider generated (and billed) the reasoning, so its estimate
  // counts it (pipeline/segment-usage.ts). Before, a segment closed while it reasoned was settled with none.
  await relay.return(undefined as never);
  assert.deepEqual(
    ends.map((end) => [end.outcome, end.text, end.reasoning]),
    [["client_aborted", "", "Let me think"]],
  );
});

function continuationOf(
  name: string,
  stream: OpenedStream,
  ends: { segment: string; end: SegmentEnd }[],
  mode: "prefill" | "replay" = "prefill",
  repeatsText = "",
): ContinuationSegment & { isEnded: boolean } {
  const segment = {
    stream,
    isUsageInjected: false,
    provider: name,
    model: `${name}-m`,
    mode,
    repeatsText,
    isEnded: false,
    ended: () => {
      segment.isEnded = true;
    },
    finish: (end: SegmentEnd) => ends.push({ segment: name, end }),
  };
  return segment;
}

const finished = `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", choices: [{ index: 0, delta: {}, finish_reason: "stop" }] })}\n\ndata: [DONE]\n\n`;

test("a continuation that broke is settled as continued once the next one opened, its slot freed at once", async () => {
  // Its charge depends on it (pipeline/segment-charge.ts): before, it was settled at once, never `isContinued`, and
  // kept its whole reservation as the floor though the next segment finished the answer.
  const ends: { segment: string; end: SegmentEnd }[] = [];
  const beta = continuationOf("beta", opened([chunk("lo")], "end"), ends);
  const gamma = continuationOf("gamma", opened([chunk(" there"), finished], "end"), ends);
  const queue = [beta, gamma];
  const relay = relayStream(
    {
      stream: opened([chunk("Hel")], "end"),
      isUsageInjected: false,
      finish: (end) => ends.push({ segment: "alpha", end }),
    },
    relayOptions({
      continuation: {
        next: async () => {
          assert.equal(ends.length, 0, "nothing settled before it is known whether another continues it");
          if (queue[0] === gamma) assert.equal(beta.isEnded, true, "beta's slot is free while the next is sought");
          return queue.shift();
        },
      },
    }),
  );
  const ended = await readToEnd(relay);
  assert.equal(ended.isSuccess, true);
  assert.deepEqual(
    ends.map(({ segment, end }) => [segment, end.outcome, end.text, end.isContinued]),
    [
      ["beta", "stream_cut", "lo", true],
      ["gamma", "success", " there", undefined],
      ["alpha", "stream_cut", "Hel", true],
    ],
  );
});

test("a replay closed while it streams: the repeated start it generated is its end's dropped text", async () => {
  const ends: { segment: string; end: SegmentEnd }[] = [];
  const replay = continuationOf(
    "beta",
    opened([chunk("He"), chunk("llo"), chunk(" you")], "hang"),
    ends,
    "replay",
    "Hel",
  );
  const relay = relayStream(
    {
      stream: opened([chunk("Hel")], "end"),
      isUsageInjected: false,
      finish: (end) => ends.push({ segment: "alpha", end }),
    },
    relayOptions({ continuation: { next: async () => replay } }),
  );
  await readUntil(relay, '" you"');
  await relay.return(undefined as never);
  assert.deepEqual(
    ends.map(({ segment, end }) => [segment, end.outcome, end.text, end.droppedText]),
    [
      ["beta", "client_aborted", "lo you", "Hel"],
      ["alpha", "stream_cut", "Hel", undefined],
    ],
  );
});

test("a replay that diverges in an event that repeated part of the delivered text counts that text once", async () => {
  // The event repeats " wo" of "Hello world", then finishes: the fresh answer ended before it repeated the rest. Its
  // " wo" is part of the repetition matched so far; before, it was counted again as the diverging event's text.
  const ends: { segment: string; end: SegmentEnd }[] = [];
  const stopped = `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", choices: [{ index: 0, delta: { content: " wo" }, finish_reason: "stop" }] })}\n\n`;
  const replay = continuationOf("beta", opened([chunk("Hello"), stopped], "hang"), ends, "replay", "Hello world");
  let asked = 0;
  const relay = relayStream(
    {
      stream: opened([chunk("Hello world")], "end"),
      isUsageInjected: false,
      finish: (end) => ends.push({ segment: "alpha", end }),
    },
    relayOptions({ continuation: { next: async () => (asked++ === 0 ? replay : undefined) } }),
  );
  await readToEnd(relay);
  assert.deepEqual(
    ends.map(({ segment, end }) => [segment, end.outcome, end.text, end.droppedText]),
    [
      ["beta", "stream_diverged", "", "Hello wo"],
      ["alpha", "stream_cut", "Hello world", undefined],
    ],
  );
});

test("a replay that diverges at its first differing event counts the repetition and that event's text", async () => {
  const ends: { segment: string; end: SegmentEnd }[] = [];
  const replay = continuationOf("beta", opened([chunk("Hel"), chunk("p me")], "hang"), ends, "replay", "Hello");
  let asked = 0;
  const relay = relayStream(
    {
      stream: opened([chunk("Hello")], "end"),
      isUsageInjected: false,
      finish: (end) => ends.push({ segment: "alpha", end }),
    },
    relayOptions({ continuation: { next: async () => (asked++ === 0 ? replay : undefined) } }),
  );
  await readToEnd(relay);
  assert.deepEqual(
    ends.map(({ segment, end }) => [segment, end.outcome, end.droppedText]),
    [
      ["beta", "stream_diverged", "Help me"],
      ["alpha", "stream_cut", undefined],
    ],
  );
});

test("the client leaves while the next continuation is sought: the broken one is settled, not as continued", async () => {
  // Its settlement waits for whether another continues it: it must not wait for ever when none will.
  const ends: { segment: string; end: SegmentEnd }[] = [];
  const client = new AbortController();
  const beta = continuationOf("beta", opened([chunk("lo")], "end"), ends);
  const relay = relayStream(
    {
      stream: opened([chunk("Hel")], "end"),
      isUsageInjected: false,
      finish: (end) => ends.push({ segment: "alpha", end }),
    },
    relayOptions({
      signal: client.signal,
      continuation: {
        next: async (_failure, bound) => {
          if (beta.isEnded) {
            // Beta broke: the client leaves while its successor is being opened.
            client.abort();
            assert.equal(bound.signal.aborted, true, "the search ends with the client");
            return undefined;
          }
          return beta;
        },
      },
    }),
  );
  const ended = await readToEnd(relay);
  assert.equal(ended.isClientGone, true);
  assert.equal(beta.isEnded, true);
  assert.deepEqual(
    ends.map(({ segment, end }) => [segment, end.outcome, end.text, end.isContinued]),
    [
      ["beta", "stream_cut", "lo", undefined],
      ["alpha", "stream_cut", "Hel", true],
    ],
  );
});

test("the client leaves as a continuation opens: it is settled abandoned, with the output it generated meanwhile", async () => {
  // Its first content waits in the opened stream's pending events: generated (and billed), never relayed.
  const ends: { segment: string; end: SegmentEnd }[] = [];
  const client = new AbortController();
  const stream = opened([], "hang");
  stream.pendingEvents.push({ data: chunk("lo, wor").slice(6, -2) });
  const beta = continuationOf("beta", stream, ends);
  const first = { stream: opened([chunk("Hel")], "end"), isUsageInjected: false, finish: () => {} };
  const next = async () => {
    client.abort();
    return beta;
  };
  const relay = relayStream(first, relayOptions({ signal: client.signal, continuation: { next } }));
  await readToEnd(relay);
  assert.equal(stream.controller.signal.aborted, true, "hung up on");
  const end = ends[0]?.end;
  assert.deepEqual(
    [end?.outcome, end?.text, end?.droppedText, end?.hasAddedNothing],
    ["client_aborted", "", "lo, wor", true],
  );
});

test("events a prefill continuation held, released after the segment ended, count as what it generated", async () => {
  // The client leaves while a batch is on its way: the batch is still rendered, its first event releases the held
  // ones ("Hel", "lo": they repeated the delivered text), and the segment, ended, stops after the first of them. The
  // rest were generated (billed) and never relayed: before, they were counted nowhere (droppedText undefined).
  const ends: { segment: string; end: SegmentEnd }[] = [];
  const client = new AbortController();
  const encode = (text: string) => new TextEncoder().encode(text);
  async function* body(): AsyncGenerator<Uint8Array> {
    yield encode(chunk("Hel") + chunk("lo"));
    client.abort();
    yield encode(chunk("!!"));
  }
  const beta = continuationOf("beta", { ...opened([], "end"), iterator: body() }, ends);
  const first = { stream: opened([chunk("Hello world")], "end"), isUsageInjected: false, finish: () => {} };
  const relay = relayStream(first, relayOptions({ signal: client.signal, continuation: { next: async () => beta } }));
  while ((await relay.next()).done !== true);
  const end = ends[0]?.end;
  assert.deepEqual([end?.outcome, end?.text, end?.droppedText], ["client_aborted", "Hel", "lo!!"]);
});

test("an answer no upstream reported usage for: estimated for every book, sent as a usage chunk only when asked", async () => {
  const event = (fields: Record<string, unknown>) =>
    `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", ...fields })}\n\n`;
  const finish = event({ choices: [{ index: 0, delta: {}, finish_reason: "stop" }] });
  const reported = event({ choices: [], usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 } });
  async function relay(texts: readonly string[], isSentToClient: boolean, isUsageInjected: boolean) {
    const ends: SegmentEnd[] = [];
    const first: RelaySegment = { stream: opened(texts, "end"), isUsageInjected, finish: (end) => ends.push(end) };
    const options = { shouldStripUsage: isUsageInjected, countTokens: (text: string) => text.length };
    const relayed = relayStream(
      first,
      relayOptions({ ...options, usageEstimate: { promptTokens: 3, isSentToClient } }),
    );
    const sent: string[] = [];
    let next = await relayed.next();
    for (; next.done !== true; next = await relayed.next()) sent.push(...next.value.map((item) => item.data));
    return { result: next.value, end: ends[0], usageSent: sent.filter((data) => data.includes('"usage"')) };
  }
  const estimate = { promptTokens: 3, completionTokens: 5 };
  const silent = [chunk("ab"), chunk("cde"), finish, "data: [DONE]\n\n"];
  const unasked = await relay(silent, false, true);
  assert.deepEqual([unasked.result.usage, unasked.result.isUsageEstimated], [estimate, true]);
  assert.deepEqual(unasked.end?.estimatedUsage, estimate, "the first segment's attempt counts the same estimate");
  assert.deepEqual(unasked.usageSent, [], "a client that did not ask is sent no usage");
  const asked = await relay(silent, true, false);
  assert.deepEqual([asked.result.usage, asked.end?.estimatedUsage], [estimate, estimate]);
  assert.equal(asked.usageSent.length, 1);
  assert.ok(asked.usageSent[0]?.includes('"usage_estimated":true'));
  // The gateway asked for usage itself and got it (stripped from the client's stream): that report, no estimate.
  const stripped = await relay([chunk("ab"), chunk("cde"), finish, reported, "data: [DONE]\n\n"], false, true);
  assert.deepEqual(
    [stripped.result.usage, stripped.result.isUsageEstimated],
    [{ promptTokens: 5, completionTokens: 2 }, undefined],
  );
  assert.equal(stripped.end?.estimatedUsage, undefined);
  assert.deepEqual(stripped.usageSent, []);
});

test("max_stream_duration_ms runs out while the consumer takes nothing (a client reading nothing): client_aborted", async () => {
  const ends: SegmentEnd[] = [];
  const first = { stream: opened([chunk("Hel")], "hang"), isUsageInjected: false, finish: ends.push.bind(ends) };
  const relay = relayStream(first, relayOptions({ maxDurationMs: 50 }));
  assert.equal((await relay.next()).done, false);
  await new Promise((resolve) => setTimeout(resolve, 100)); // the writer waits for a drain: nothing is pulled
  await readToEnd(relay);
  assert.deepEqual([ends[0]?.outcome, ends[0]?.isLeftUnread], ["client_aborted", true], "the client's hold-up");
});

test("the writer is told to send before each wait for the upstream, after the batch was taken, never after the last", async () => {
  // onUpstreamWait lets the door hand its socket what it wrote before the relay's pull of the upstream (its promise jobs
  // ran before Node's corked write went out: the first byte waited for them). After the segment's end it is not
  // called, so a stream's last batch and the door's end of the response still leave in one write.
  const steps: string[] = [];
  const relay = relayStream(
    {
      stream: opened([chunk("Hel"), chunk("lo"), "data: [DONE]\n\n"], "end"),
      isUsageInjected: false,
      finish: () => steps.push("finished"),
    },
    relayOptions({ onUpstreamWait: () => steps.push("wait") }),
  );
  for (let next = await relay.next(); next.done !== true; next = await relay.next()) {
    steps.push(`batch of ${next.value.length}`);
  }
  // The third batch is the finish the relay adds after a `[DONE]` whose answer had none.
  assert.deepEqual(steps, ["wait", "batch of 1", "wait", "batch of 1", "wait", "batch of 1", "finished"]);
});
