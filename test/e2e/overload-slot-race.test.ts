// A provider with `max_in_flight: 1`: request A holds its one slot, request B waits for it, and A is answered 529
// overloaded. B must not take the slot A gives back and go to the provider that has just asked for a pause: A's
// answer cools the candidate down before its slot passes on, so B fails over (or gets the overload answer).
// Before 2026-12-07 the slot was given back when A's error body closed, before the recorder learned the 529, and B
// was sent to the overloaded provider: a second 529 the provider asked not to get.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { CHAT_ROUTE, chatRequests, HELLO, openAiClient, send, useGateway, useMock } from "../helpers/e2e.ts";
import { chatCompletion, type MockStep, type MockUpstream } from "../helpers/mock-upstream.ts";

const OVERLOADED_BODY = { type: "error", error: { type: "overloaded_error", message: "Overloaded" } };

/** Every request to `mock` held until `release()`, then answered 529 overloaded_error (without retry-after). */
function heldOverloads(mock: MockUpstream): { release: () => void } {
  const waiting: (() => void)[] = [];
  let isReleased = false;
  const step: MockStep = {
    kind: "handler",
    handle: async (_request, response) => {
      if (!isReleased) await new Promise<void>((resolve) => waiting.push(resolve));
      response.writeHead(529, { "content-type": "application/json" });
      response.end(JSON.stringify(OVERLOADED_BODY));
    },
  };
  mock.setDefault(CHAT_ROUTE, step);
  return {
    release: () => {
      isReleased = true;
      for (const resolve of waiting.splice(0)) resolve();
    },
  };
}

/** Polls /stats until `count` requests wait for a slot of `provider` (3 s at most). */
async function waitingForSlot(gateway: Parameters<typeof send>[0], provider: string, count: number): Promise<void> {
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

async function scene(t: Parameters<typeof useMock>[0], hasSecond: boolean) {
  const busy = await useMock(t);
  const spare = await useMock(t);
  spare.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("from spare", "m") });
  const gateway = await useGateway(
    t,
    `providers:
  - name: busy
    base_url: ${busy.baseUrl}
    api_key: sk-busy
    retries: 0
    timeout_ms: 5000
    max_in_flight: 1
    models:
      m: {}
${
  hasSecond
    ? `  - name: spare
    base_url: ${spare.baseUrl}
    api_key: sk-spare
    retries: 0
    models:
      m: {}
`
    : ""
}`,
  );
  return { busy, spare, gateway, held: heldOverloads(busy) };
}

describe("max_in_flight and an overload answer", () => {
  test("the request waiting for the slot is not sent to the provider that just answered 529: it fails over", async (t) => {
    const { busy, spare, gateway, held } = await scene(t, true);
    const openai = openAiClient(gateway);
    const first = openai.chat.completions.create({ model: "m", messages: HELLO });
    await busy.waitForRequests(1);
    const second = openai.chat.completions.create({ model: "m", messages: HELLO });
    await waitingForSlot(gateway, "busy", 1);
    held.release();
    const answers = await Promise.all([first, second]);
    assert.deepEqual(
      answers.map((answer) => answer.choices[0]?.message.content),
      ["from spare", "from spare"],
    );
    assert.equal(
      chatRequests(busy).length,
      1,
      "one 529 only: the waiting request was not sent to the cooling provider",
    );
    assert.equal(chatRequests(spare).length, 2);
  });

  test("with no other candidate the waiting request gets the overload answer, without a second 529 upstream", async (t) => {
    const { busy, gateway, held } = await scene(t, false);
    const anthropic = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
    const call = () =>
      anthropic.messages.create({ model: "m", max_tokens: 10, messages: [{ role: "user", content: "hi" }] }).then(
        () => assert.fail("expected the overload answer"),
        (caught: unknown) => caught,
      );
    const first = call();
    await busy.waitForRequests(1);
    const second = call();
    await waitingForSlot(gateway, "busy", 1);
    held.release();
    for (const error of await Promise.all([first, second])) {
      assert.ok(error instanceof Anthropic.OverloadedError, String(error));
    }
    assert.equal(
      chatRequests(busy).length,
      1,
      "one 529 only: the waiting request was not sent to the cooling provider",
    );
  });
});
