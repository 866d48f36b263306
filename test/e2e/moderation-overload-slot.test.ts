// A Llama Guard moderation's parallel call answered 529 overloaded while the attempt's other call is still out: the
// slot that call took (max_in_flight, call-slots.ts anotherSlot) must not pass to a request waiting for it before the
// attempt is recorded, as the attempt's own slot does not (upstream/held-slot.ts): the waiting request would be sent
// to the provider that has just asked for a pause, a second 529 (the overload-slot-race case, for moderations).
import assert from "node:assert/strict";
import type { ServerResponse } from "node:http";
import { describe, test } from "node:test";
import { send, type useGateway } from "../helpers/e2e.ts";
import type { RecordedRequest } from "../helpers/mock-upstream.ts";
import { chatCalls, guardScene, nativeAnswer } from "../helpers/moderation-scene.ts";

const OVERLOADED_BODY = { type: "error", error: { type: "overloaded_error", message: "Overloaded" } };

type Gateway = Awaited<ReturnType<typeof useGateway>>;

/** Polls /stats until `count` requests wait for a slot of `provider` (3 s at most). */
async function waitingForSlot(gateway: Gateway, provider: string, count: number): Promise<void> {
  const deadline = performance.now() + 3000;
  for (;;) {
    const stats = (await send(gateway, "GET", "/stats")).json as {
      providers: { name: string; waiting_for_slot: number }[];
    };
    if (stats.providers.find((row) => row.name === provider)?.waiting_for_slot === count) return;
    if (performance.now() > deadline) throw new Error(`${count} requests never waited for ${provider}'s slot`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A gate a mock handler waits at until `open()`. */
function gate(): { wait: () => Promise<void>; open: () => void } {
  const waiting: (() => void)[] = [];
  let isOpen = false;
  return {
    wait: () => (isOpen ? Promise.resolve() : new Promise<void>((resolve) => waiting.push(resolve))),
    open: () => {
      isOpen = true;
      for (const resolve of waiting.splice(0)) resolve();
    },
  };
}

describe("max_in_flight and a moderation's parallel call answered overloaded", () => {
  test("the request waiting for the slot the 529'd call held is not sent to that provider: it fails over", async (t) => {
    const { gateway, guardMock, nativeMock } = await guardScene(t, {
      providerExtra: "    timeout_ms: 5000\n    max_in_flight: 2\n",
    });
    const slow = gate();
    const busy = gate();
    const counter = { inFlight: 0, peak: 0 };
    guardMock.setDefault("POST /v1/chat/completions", {
      kind: "handler",
      handle: async (request: RecordedRequest, response: ServerResponse) => {
        counter.inFlight += 1;
        counter.peak = Math.max(counter.peak, counter.inFlight);
        const input = (request.body as { messages: { content: string }[] }).messages[0]?.content ?? "";
        // Input `slow` (the attempt's own slot) answers safe once let go; every other call is answered overloaded,
        // `busy` once let go.
        if (input.includes("slow")) await slow.wait();
        else if (input.includes("busy")) await busy.wait();
        counter.inFlight -= 1;
        if (input.includes("slow")) {
          response.writeHead(200, { "content-type": "application/json" });
          response.end(JSON.stringify({ choices: [{ index: 0, message: { role: "assistant", content: "safe" } }] }));
          return;
        }
        response.writeHead(529, { "content-type": "application/json" });
        response.end(JSON.stringify(OVERLOADED_BODY));
      },
    });
    nativeMock.setDefault("POST /v1/moderations", (request) => ({
      kind: "json",
      body: nativeAnswer(((request.body as { input: unknown[] }).input ?? []).length),
    }));
    const first = send(gateway, "POST", "/v1/moderations", { body: { model: "guard", input: ["slow", "busy"] } });
    await guardMock.waitForRequests(2);
    const second = send(gateway, "POST", "/v1/moderations", { body: { model: "guard", input: ["other"] } });
    await waitingForSlot(gateway, "p0", 1);
    busy.open();
    // Time for the waiting request to be sent wherever the slot takes it, while the attempt's other call is out.
    await new Promise((resolve) => setTimeout(resolve, 300));
    slow.open();
    const answers = await Promise.all([first, second]);
    for (const answer of answers) {
      assert.equal(answer.status, 200, answer.text);
      assert.equal((answer.json as { model: string }).model, "omni-moderation-latest");
    }
    assert.equal(
      chatCalls(guardMock),
      2,
      "one 529 only: the waiting request was not sent to the provider that had just answered overloaded",
    );
    assert.ok(counter.peak <= 2, `${counter.peak} calls in flight to a provider with max_in_flight: 2`);
  });
});
