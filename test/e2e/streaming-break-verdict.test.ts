// When a stream segment breaks, its deployment's availability and health learn it at the break, not when the answer
// another upstream continues ends (docs/streaming.md "Continuation"): the answer's settlement waits for the
// continuation (what the broken segment is charged depends on it), the verdict on the upstream that broke does not.
// Before, a first segment cut while a continuation streamed for minutes left its deployment looking healthy all that
// time: its circuit stayed closed and new requests kept going to the upstream that had just broken.
import assert from "node:assert/strict";
import type { ServerResponse } from "node:http";
import { describe, test } from "node:test";
import type { RequestRecord } from "../../src/observability/request-record.ts";
import { rowOf, statsOf } from "../helpers/e2e.ts";
import { chatChunk, chatCompletion, chatStream, type MockStep } from "../helpers/mock-upstream.ts";
import { waitUntil } from "../helpers/sse-client.ts";
import { CHAT_ROUTE, MODEL, startTwoProviders } from "../helpers/two-providers.ts";

const WORDS = Array.from({ length: 6 }, (_, index) => ` word${index}`);

const cutAfterThree: MockStep = {
  kind: "sse",
  events: chatStream(WORDS.slice(0, 3), MODEL).slice(0, 4),
  end: "destroy",
};

/** A continuation that sends its first word, then the rest once `released` resolves. */
function slowContinuation(released: Promise<void>): MockStep {
  const sse = (chunk: unknown): string => `data: ${JSON.stringify(chunk)}\n\n`;
  return {
    kind: "handler",
    handle: async (_recorded, response: ServerResponse) => {
      response.writeHead(200, { "content-type": "text/event-stream" });
      response.write(sse(chatChunk(WORDS[3] as string, MODEL, { role: true })));
      await released;
      for (const word of WORDS.slice(4)) response.write(sse(chatChunk(word, MODEL)));
      response.end(`${sse(chatChunk("", MODEL, { finishReason: "stop" }))}data: [DONE]\n\n`);
    },
  };
}

describe("a broken segment's verdict", () => {
  test("learned at the break: the circuit opens while the continuation streams, and the failure counts once", async (t) => {
    // failure_threshold 1: the cut alone opens alpha's circuit.
    const scene = await startTwoProviders(t, { cooldowns: { failure_threshold: 1 } });
    const records: RequestRecord[] = [];
    scene.gateway.runtime.onRecord((record) => records.push(record));
    let release = (): void => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    t.after(release);
    scene.primary.enqueue(CHAT_ROUTE, cutAfterThree, { kind: "json", body: chatCompletion("from alpha", MODEL) });
    scene.backup.enqueue(CHAT_ROUTE, slowContinuation(released), {
      kind: "json",
      body: chatCompletion("from beta", MODEL),
    });

    const stream = await scene.client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "Count." }],
      stream: true,
    });
    let text = "";
    const read = (async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    })();
    await waitUntil(() => text.includes(WORDS[3] as string), "the continuation's first word");

    // Beta is still streaming the answer. Alpha broke: before, it looked healthy until the answer ended.
    const during = rowOf(await statsOf(scene.gateway), `alpha/${MODEL}`);
    assert.deepEqual([during.circuit, during.failures], ["open", 1]);
    const other = await scene.client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "Hi." }],
    });
    assert.equal(
      other.choices[0]?.message.content,
      "from beta",
      "a new request is not sent to the upstream that broke",
    );

    release();
    await read;
    assert.equal(text, WORDS.join(""));
    await waitUntil(() => records.length === 2, "both request records");
    const after = rowOf(await statsOf(scene.gateway), `alpha/${MODEL}`);
    assert.deepEqual([after.circuit, after.failures], ["open", 1], "the cut counted once, not again at the settlement");
    const continued = records.find((record) => record.attempts.length > 1);
    assert.deepEqual(
      continued?.attempts.map((attempt) => [attempt.provider, attempt.outcome]),
      [
        ["alpha", "stream_cut"],
        ["beta", "success"],
      ],
    );
  });
});
