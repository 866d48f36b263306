// A Llama Guard moderation of N inputs is N upstream chat calls: the deployment's request budgets count each of them
// (reserved up front, so a model with `rpm: 5` is never asked for more than five calls a minute), the tokens of the
// calls that answered are counted even when a later one fails, and the calls run a few at a time within the budgets.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import { Redis } from "ioredis";
import { leasesKey } from "../../src/state/redis-keys.ts";
import { recordsOf, rowOf, send, statsOf, useGateway, useMock } from "../helpers/e2e.ts";
import { chatCompletion, type RecordedRequest } from "../helpers/mock-upstream.ts";
import { chatCalls, GUARD, guardScene, nativeAnswer } from "../helpers/moderation-scene.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../helpers/redis-server.ts";

const CHAT = "POST /v1/chat/completions";
const MODERATIONS = "POST /v1/moderations";

/** `guard` on p0 (Llama Guard, with `guardExtra` in its model entry), and on p1 a native moderation model. */
function scene(t: TestContext, guardExtra: string, providerExtra = "") {
  return guardScene(t, { guardExtra, providerExtra });
}

/** A Llama Guard answer after `delayMs`, counting the calls in flight at the mock (`peak`: the most at once). */
function countingCalls(delayMs: number) {
  const counter = { inFlight: 0, peak: 0 };
  const step = {
    kind: "handler" as const,
    handle: async (_request: unknown, response: import("node:http").ServerResponse) => {
      counter.inFlight += 1;
      counter.peak = Math.max(counter.peak, counter.inFlight);
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      counter.inFlight -= 1;
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify(chatCompletion("safe", GUARD)));
    },
  };
  return { counter, step };
}

/**
 * A Llama Guard answer that reads its input: `unsafe\nS1` for an input starting with `bad`, else `safe`; the input
 * `<kind>-<n>` answers after (6 - n) x `stepMs`, so later inputs answer first. Counts the calls in flight.
 */
function outOfOrderCalls(stepMs: number) {
  const counter = { inFlight: 0, peak: 0 };
  const step = {
    kind: "handler" as const,
    handle: async (request: RecordedRequest, response: import("node:http").ServerResponse) => {
      counter.inFlight += 1;
      counter.peak = Math.max(counter.peak, counter.inFlight);
      const body = request.body as { messages: { content: string }[] };
      const input = body.messages[0]?.content ?? "";
      await new Promise((resolve) => setTimeout(resolve, (6 - Number(input.split("-")[1])) * stepMs));
      counter.inFlight -= 1;
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify(chatCompletion(input.startsWith("bad") ? "unsafe\nS1" : "safe", GUARD)));
    },
  };
  return { counter, step };
}

const MIXED_INPUTS = ["safe-0", "bad-1", "safe-2", "bad-3", "safe-4"];

/** Each result's flag and hazard codes, in the answer's order. */
function verdictsOf(json: unknown): [boolean, readonly string[]][] {
  const { results } = json as { results: { flagged: boolean; x_gateway_hazard_codes: string[] }[] };
  return results.map((result) => [result.flagged, result.x_gateway_hazard_codes]);
}

const MIXED_VERDICTS = [
  [false, []],
  [true, ["S1"]],
  [false, []],
  [true, ["S1"]],
  [false, []],
];

describe("moderation budgets", () => {
  test("concurrency: 3 runs 5 inputs 3 at a time (not 1), concurrency: 1 one at a time; the results keep the inputs' order when later inputs answer first", async (t) => {
    for (const [concurrency, peak] of [
      [3, 3],
      [1, 1],
    ] as const) {
      const { gateway, guardMock } = await scene(t, `, limits: { concurrency: ${concurrency} }`);
      const { counter, step } = outOfOrderCalls(30);
      guardMock.enqueue(CHAT, ...MIXED_INPUTS.map(() => step));
      const answer = await send(gateway, "POST", "/v1/moderations", { body: { model: "guard", input: MIXED_INPUTS } });
      assert.equal(answer.status, 200, answer.text);
      assert.equal((answer.json as { model: string }).model, GUARD);
      assert.equal(chatCalls(guardMock), 5);
      assert.equal(counter.peak, peak, `calls in flight at once under concurrency: ${concurrency}`);
      assert.deepEqual(verdictsOf(answer.json), MIXED_VERDICTS);
      // Every call's slot is given back: the deployment has nothing in flight once the answer is out.
      const row = rowOf(await statsOf(gateway), "p0/guard") as unknown as { concurrency: { in_flight: number } };
      assert.equal(row.concurrency.in_flight, 0);
    }
  });

  test("concurrency: 3 and a failure at input 1 of 5: no call starts after it, the request fails over, and only the calls sent are counted", async (t) => {
    const { gateway, guardMock, nativeMock } = await scene(t, ", limits: { concurrency: 3, rpm: 100 }");
    const { counter, step: slowSafe } = countingCalls(300);
    const failing = {
      kind: "handler" as const,
      handle: async (request: RecordedRequest, response: import("node:http").ServerResponse) => {
        const body = request.body as { messages: { content: string }[] };
        if (body.messages[0]?.content !== "b") return slowSafe.handle(request, response);
        await new Promise((resolve) => setTimeout(resolve, 10));
        response.writeHead(500, { "content-type": "application/json" });
        response.end(JSON.stringify({ error: { message: "boom", type: "server_error" } }));
      },
    };
    guardMock.enqueue(CHAT, ...Array.from({ length: 5 }, () => failing));
    nativeMock.enqueue(MODERATIONS, { kind: "json", body: nativeAnswer(5) });
    const answer = await send(gateway, "POST", "/v1/moderations", {
      body: { model: "guard", input: ["a", "b", "c", "d", "e"] },
    });
    assert.equal(answer.status, 200, answer.text);
    assert.equal((answer.json as { model: string }).model, "omni-moderation-latest");
    // Inputs 0 to 2 went out at once; input 1's failure came first: inputs 3 and 4 were never sent.
    assert.equal(chatCalls(guardMock), 3);
    assert.equal(counter.peak, 2, "the two slow calls beside the failed one");
    const { records } = await recordsOf(gateway, "moderations");
    assert.deepEqual(
      records[0]?.attempts.map((attempt) => [attempt.provider, attempt.outcome]),
      [
        ["p0", "server_error"],
        ["p1", "success"],
      ],
    );
    const row = rowOf(await statsOf(gateway), "p0/guard") as unknown as {
      budgets: { windows: { unit: string; window: string; used: number }[] }[];
      concurrency: { in_flight: number };
    };
    const minute = row.budgets
      .flatMap((scope) => scope.windows)
      .find((window) => window.unit === "requests" && window.window === "minute");
    assert.equal(minute?.used, 3, "the two calls never sent are given back");
    assert.equal(row.concurrency.in_flight, 0);
  });

  test("concurrency: 3 holds for two moderations at once: their calls share the 3 (never 6 in flight)", async (t) => {
    const { gateway, guardMock, nativeMock } = await scene(t, ", limits: { concurrency: 3 }");
    const { counter, step } = countingCalls(80);
    guardMock.enqueue(CHAT, ...Array.from({ length: 8 }, () => step));
    nativeMock.enqueue(MODERATIONS, { kind: "json", body: nativeAnswer(4) });
    const inputs = ["a", "b", "c", "d"];
    // Whichever reserves second finds the first's calls holding the 3 (then it goes to p1) or shares the 3 with them.
    const answers = await Promise.all([
      send(gateway, "POST", "/v1/moderations", { body: { model: "guard", input: inputs } }),
      send(gateway, "POST", "/v1/moderations", { body: { model: "guard", input: inputs } }),
    ]);
    for (const answer of answers) {
      assert.equal(answer.status, 200, answer.text);
      assert.equal((answer.json as { results: unknown[] }).results.length, 4);
    }
    const onGuard = answers.filter((answer) => (answer.json as { model: string }).model === GUARD).length;
    assert.equal(chatCalls(guardMock), onGuard * 4);
    assert.ok(counter.peak <= 3, `${counter.peak} calls in flight to a model with concurrency: 3`);
    assert.equal(counter.peak, 3, "the calls still overlap up to the limit");
  });

  test("with Redis, concurrency: 3 counts the calls of two gateways together: 3 in flight at most, fleet-wide", {
    skip: isRedisInstalled() ? false : REDIS_MISSING,
  }, async (t) => {
    const redis = await useRedisServer(t);
    const guardMock = await useMock(t);
    const nativeMock = await useMock(t);
    const yaml = `providers:
  - name: p0
    base_url: ${guardMock.baseUrl}
    api_key: sk-p0-secret
    retries: 0
    models:
      guard: { id: "${GUARD}", priority: 100, limits: { concurrency: 3 } }
  - name: p1
    base_url: ${nativeMock.baseUrl}
    api_key: sk-p1-secret
    retries: 0
    models:
      guard: { id: "omni-moderation-latest", priority: 10 }
state:
  redis_url: ${redis.url}
  redis_key_prefix: "fleet:"
  redis_command_timeout_ms: 2000
`;
    const gateways = [await useGateway(t, yaml), await useGateway(t, yaml)];
    const { counter, step } = countingCalls(150);
    guardMock.enqueue(CHAT, ...Array.from({ length: 8 }, () => step));
    nativeMock.enqueue(MODERATIONS, ...gateways.map(() => ({ kind: "json" as const, body: nativeAnswer(4) })));
    const inputs = ["a", "b", "c", "d"];
    const answers = await Promise.all(
      gateways.map((gateway) => send(gateway, "POST", "/v1/moderations", { body: { model: "guard", input: inputs } })),
    );
    for (const answer of answers) assert.equal(answer.status, 200, answer.text);
    const onGuard = answers.filter((answer) => (answer.json as { model: string }).model === GUARD).length;
    assert.ok(onGuard >= 1, "at least one gateway's moderation was served by the Llama Guard model");
    assert.equal(chatCalls(guardMock), onGuard * 4);
    // Each gateway alone would let 3 of its own calls in flight: 6 at once without Redis's leases for them.
    assert.ok(counter.peak <= 3, `${counter.peak} calls in flight, from two gateways, to a model with concurrency: 3`);
    assert.equal(counter.peak, 3, "the calls still overlap up to the limit");
    // Every call's lease is removed once it has ended (the reservations' too): nothing holds a slot afterwards.
    const admin = new Redis(redis.url, { lazyConnect: true });
    await admin.connect();
    t.after(() => admin.disconnect());
    const leases = leasesKey("fleet:", "deployment:p0/guard");
    const deadline = Date.now() + 5_000;
    while ((await admin.zcard(leases)) > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(await admin.zcard(leases), 0);
  });

  test("rpm: 5 counts every Llama Guard call: 3 inputs fit, the next 3 do not (they go to the next candidate), 6 never fit", async (t) => {
    const { gateway, guardMock, nativeMock } = await scene(t, ", limits: { rpm: 5 }");
    guardMock.enqueue(
      CHAT,
      ...Array.from({ length: 3 }, () => ({ kind: "json" as const, body: chatCompletion("safe", GUARD) })),
    );
    const first = await send(gateway, "POST", "/v1/moderations", { body: { model: "guard", input: ["a", "b", "c"] } });
    assert.equal(first.status, 200, first.text);
    assert.equal((first.json as { model: string }).model, GUARD);
    assert.equal(chatCalls(guardMock), 3);

    // 3 of 5 spent: three more calls would be 6 in the minute. The request fails over before any is sent.
    nativeMock.enqueue(MODERATIONS, { kind: "json", body: nativeAnswer(3) });
    const second = await send(gateway, "POST", "/v1/moderations", { body: { model: "guard", input: ["d", "e", "f"] } });
    assert.equal(second.status, 200, second.text);
    assert.equal((second.json as { model: string }).model, "omni-moderation-latest");
    assert.equal(chatCalls(guardMock), 3);

    // Six inputs never fit a budget of five a minute: the Llama Guard candidate is passed over for good.
    nativeMock.enqueue(MODERATIONS, { kind: "json", body: nativeAnswer(6) });
    const six = await send(gateway, "POST", "/v1/moderations", {
      body: { model: "guard", input: ["1", "2", "3", "4", "5", "6"] },
    });
    assert.equal(six.status, 200, six.text);
    assert.equal((six.json as { model: string }).model, "omni-moderation-latest");
    assert.equal(chatCalls(guardMock), 3);

    // /stats shows the three calls in the deployment's minute.
    const stats = (await send(gateway, "GET", "/stats")).json as {
      deployments: {
        provider: string;
        budgets: { scope: string; windows: { unit: string; window: string; used: number }[] }[];
      }[];
    };
    const windows = stats.deployments.find((row) => row.provider === "p0")?.budgets.flatMap((scope) => scope.windows);
    assert.deepEqual(
      windows?.filter((window) => window.unit === "requests").map((window) => [window.window, window.used]),
      [["minute", 3]],
    );
  });

  test("tpm reserves every Llama Guard call's prompt, the template the model wraps it in and its max_tokens 64: `tpm: 1000` holds one call, not three (those go to the next candidate)", async (t) => {
    const { gateway, guardMock, nativeMock } = await scene(t, ", limits: { tpm: 1000 }");
    // Three one-token inputs: 3 + 3 x (338 + 64) = 1209 tokens asked for, more than the minute's 1000. The template
    // (Llama Guard's task and hazard list, ~200 tokens a provider counts per call) was left out until 2026-12-07:
    // 3 + 3 x 64 = 195 fitted, and three calls charged ~600 prompt tokens went out on a reservation of 3.
    nativeMock.enqueue(MODERATIONS, { kind: "json", body: nativeAnswer(3) });
    const three = await send(gateway, "POST", "/v1/moderations", { body: { model: "guard", input: ["a", "b", "c"] } });
    assert.equal(three.status, 200, three.text);
    assert.equal((three.json as { model: string }).model, "omni-moderation-latest");
    assert.equal(
      chatCalls(guardMock),
      0,
      "no Llama Guard call is sent when their prompts and outputs do not fit the tpm",
    );
    const { records } = await recordsOf(gateway, "moderations");
    const skips = (records[0] as unknown as { skips: { provider: string; reason: string }[] }).skips;
    const skip = skips.find((skipped) => skipped.provider === "p0");
    assert.match(skip?.reason ?? "", /tpm budget \(0\/1000 tokens, needs 1209\)/);

    // One input: 1 + 338 + 64 fits; the answer's usage (the template and the input, as a provider counts them) then
    // replaces the estimate.
    guardMock.enqueue(CHAT, {
      kind: "json",
      body: chatCompletion("safe", GUARD, { prompt_tokens: 202, completion_tokens: 1 }),
    });
    const one = await send(gateway, "POST", "/v1/moderations", { body: { model: "guard", input: "a" } });
    assert.equal(one.status, 200, one.text);
    assert.equal((one.json as { model: string }).model, GUARD);
    assert.equal(chatCalls(guardMock), 1);
  });

  test("a Llama Guard moderation that needs more calls than the only candidate's rpm allows is refused with the reason, nothing sent", async (t) => {
    const guardMock = await useMock(t);
    const gateway = await useGateway(
      t,
      `providers:
  - name: p0
    base_url: ${guardMock.baseUrl}
    api_key: sk-p0-secret
    models:
      guard: { id: "${GUARD}", limits: { rpm: 2 } }
`,
    );
    const refused = await send(gateway, "POST", "/v1/moderations", {
      body: { model: "guard", input: ["a", "b", "c"] },
    });
    assert.ok(refused.status === 413 || refused.status === 429, refused.text);
    assert.match(refused.text, /needs 3/);
    assert.equal(chatCalls(guardMock), 0);
  });

  test("with a queue, a Llama Guard moderation whose calls do not fit yet waits until they all do (rps: 5, 3 spent, 3 more)", async (t) => {
    const guardMock = await useMock(t);
    const gateway = await useGateway(
      t,
      `routing:
  queue_timeout_ms: 5000
providers:
  - name: p0
    base_url: ${guardMock.baseUrl}
    api_key: sk-p0-secret
    models:
      guard: { id: "${GUARD}", limits: { rps: 5 } }
`,
    );
    guardMock.enqueue(
      CHAT,
      ...Array.from({ length: 6 }, () => ({ kind: "json" as const, body: chatCompletion("safe", GUARD) })),
    );
    const first = await send(gateway, "POST", "/v1/moderations", { body: { model: "guard", input: ["a", "b", "c"] } });
    assert.equal(first.status, 200, first.text);
    const second = await send(gateway, "POST", "/v1/moderations", { body: { model: "guard", input: ["d", "e", "f"] } });
    assert.equal(second.status, 200, second.text);
    assert.equal(chatCalls(guardMock), 6);
    // Queued until the first three left the second's window: never 6 calls within one second.
    const times = guardMock.requests.map((recorded) => recorded.receivedAtMs);
    const [firstCall, fourthCall] = [times[0], times[3]];
    assert.ok(firstCall !== undefined && fourthCall !== undefined);
    assert.ok(fourthCall - firstCall >= 900, `the 4th call came ${fourthCall - firstCall} ms after the 1st`);
  });

  test("a later call's failure keeps the earlier calls' tokens: the record's attempt and /stats count them", async (t) => {
    // One call at a time (a `concurrency` limit), so the failing call is the third.
    const { gateway, guardMock, nativeMock } = await scene(t, ", limits: { concurrency: 1 }");
    guardMock.enqueue(
      CHAT,
      { kind: "json", body: chatCompletion("safe", GUARD, { prompt_tokens: 40, completion_tokens: 2 }) },
      { kind: "json", body: chatCompletion("safe", GUARD, { prompt_tokens: 30, completion_tokens: 2 }) },
      { kind: "json", status: 500, body: { error: { message: "boom", type: "server_error" } } },
    );
    nativeMock.enqueue(MODERATIONS, { kind: "json", body: nativeAnswer(3) });
    const answer = await send(gateway, "POST", "/v1/moderations", { body: { model: "guard", input: ["a", "b", "c"] } });
    assert.equal(answer.status, 200, answer.text);
    assert.equal(chatCalls(guardMock), 3);
    const { records } = await recordsOf(gateway, "moderations");
    const attempts = (records[0]?.attempts ?? []) as { provider: string; outcome: string; tokensIn?: number }[];
    assert.deepEqual(
      attempts.map((attempt) => [attempt.provider, attempt.outcome, attempt.tokensIn]),
      [
        ["p0", "server_error", 70],
        ["p1", "success", undefined],
      ],
    );
    const row = rowOf(await statsOf(gateway), "p0/guard");
    assert.equal(row.tokens_in, 70);
    assert.equal(row.tokens_out, 4);
  });

  test("a later call's failure keeps what the earlier calls' rate-limit headers said: 0 requests left parks the model", async (t) => {
    // One call at a time, so the call that fails comes after the one that answered.
    const { gateway, guardMock, nativeMock } = await scene(t, ", limits: { concurrency: 1 }");
    guardMock.enqueue(
      CHAT,
      {
        kind: "json",
        body: chatCompletion("safe", GUARD),
        headers: {
          "x-ratelimit-limit-requests": "30",
          "x-ratelimit-remaining-requests": "0",
          "x-ratelimit-reset-requests": "20s",
        },
      },
      { kind: "json", status: 500, body: { error: { message: "boom", type: "server_error" } } },
    );
    nativeMock.enqueue(MODERATIONS, { kind: "json", body: nativeAnswer(2) }, { kind: "json", body: nativeAnswer(2) });
    const first = await send(gateway, "POST", "/v1/moderations", { body: { model: "guard", input: ["a", "b"] } });
    assert.equal(first.status, 200, first.text);
    assert.equal(chatCalls(guardMock), 2);
    // The provider said none are left for 20 s: the Llama Guard model waits that long, whatever the 500 said.
    const cooldown = rowOf(await statsOf(gateway), "p0/guard").cooldown;
    assert.ok(cooldown !== null, "the answered call's '0 requests left' parks the model");
    assert.equal(cooldown.source, "provider");
    assert.ok(cooldown.remaining_ms > 15_000 && cooldown.remaining_ms <= 20_000, String(cooldown.remaining_ms));
    const second = await send(gateway, "POST", "/v1/moderations", { body: { model: "guard", input: ["c", "d"] } });
    assert.equal(second.status, 200, second.text);
    assert.equal((second.json as { model: string }).model, "omni-moderation-latest");
    assert.equal(chatCalls(guardMock), 2, "nothing more is sent to the model the provider says is spent");
  });

  test("max_in_flight: 2 holds for two moderations at once: each parallel call takes a slot of its own (never 4 in flight)", async (t) => {
    const { gateway, guardMock } = await scene(t, "", "    max_in_flight: 2\n");
    const { counter, step } = countingCalls(80);
    guardMock.enqueue(CHAT, ...Array.from({ length: 8 }, () => step));
    const inputs = ["a", "b", "c", "d"];
    const answers = await Promise.all([
      send(gateway, "POST", "/v1/moderations", { body: { model: "guard", input: inputs } }),
      send(gateway, "POST", "/v1/moderations", { body: { model: "guard", input: inputs } }),
    ]);
    for (const answer of answers) {
      assert.equal(answer.status, 200, answer.text);
      assert.equal((answer.json as { model: string }).model, GUARD);
    }
    assert.equal(chatCalls(guardMock), 8);
    assert.ok(counter.peak <= 2, `${counter.peak} calls in flight to a provider with max_in_flight: 2`);
    assert.equal(counter.peak, 2, "the two requests' calls still overlap up to the limit");
  });

  test("a concurrency learned from the provider's 429 (GitHub Models' UserConcurrentRequests) bounds the calls in flight: 2 at a time", async (t) => {
    const { gateway, guardMock, nativeMock } = await scene(t, "");
    // One call, refused as too many in flight ("2 per 0s"): the limit is learned, the request served by the next.
    guardMock.enqueue(CHAT, {
      kind: "text",
      status: 429,
      headers: { "content-type": "application/json", "x-ratelimit-type": "UserConcurrentRequests" },
      body: JSON.stringify({
        error: {
          code: "RateLimitReached",
          message: "Rate limit of 2 per 0s exceeded for UserConcurrentRequests. Please wait 0 seconds before retrying.",
        },
      }),
    });
    nativeMock.enqueue(MODERATIONS, { kind: "json", body: nativeAnswer(1) });
    const refused = await send(gateway, "POST", "/v1/moderations", { body: { model: "guard", input: "a" } });
    assert.equal(refused.status, 200, refused.text);
    assert.equal((refused.json as { model: string }).model, "omni-moderation-latest");
    const row = rowOf(await statsOf(gateway), "p0/guard") as unknown as { concurrency: { limit: number } | null };
    assert.equal(row.concurrency?.limit, 2);

    const { counter, step } = countingCalls(40);
    guardMock.enqueue(CHAT, ...Array.from({ length: 6 }, () => step));
    const answer = await send(gateway, "POST", "/v1/moderations", {
      body: { model: "guard", input: ["1", "2", "3", "4", "5", "6"] },
    });
    assert.equal(answer.status, 200, answer.text);
    assert.equal((answer.json as { model: string }).model, GUARD);
    assert.equal(chatCalls(guardMock), 7);
    // The budgets count the attempt as one request in flight and each call beside it as one more: 2 at a time, never
    // the 4 it would run without the limit.
    assert.equal(counter.peak, 2);
  });

  test("20 inputs against a 50 ms upstream take a few rounds, not 20 in turn; a `concurrency: 1` model gets one at a time, max_in_flight: 2 two", async (t) => {
    const { gateway, guardMock } = await scene(t, "");
    let inFlight = 0;
    let maxInFlight = 0;
    const slow = {
      kind: "handler" as const,
      handle: async (_request: unknown, response: import("node:http").ServerResponse) => {
        inFlight += 1;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await new Promise((resolve) => setTimeout(resolve, 50));
        inFlight -= 1;
        response.writeHead(200, { "content-type": "application/json" });
        response.end(JSON.stringify(chatCompletion("safe", GUARD)));
      },
    };
    const inputs = Array.from({ length: 20 }, (_, index) => `input ${index}`);
    guardMock.enqueue(CHAT, ...inputs.map(() => slow));
    const startedAtMs = performance.now();
    const answer = await send(gateway, "POST", "/v1/moderations", { body: { model: "guard", input: inputs } });
    const elapsedMs = performance.now() - startedAtMs;
    assert.equal(answer.status, 200, answer.text);
    assert.equal((answer.json as { results: unknown[] }).results.length, 20);
    // Four at a time, seen by the upstream itself: the proof that the calls overlap. The time (5 rounds, ~250 ms,
    // against 1 s in turn) is only reported: a loaded CI machine read 955 ms for the overlapped calls.
    assert.equal(maxInFlight, 4);
    t.diagnostic(`20 Llama Guard calls of 50 ms: ${Math.round(elapsedMs)} ms`);

    const serial = await scene(t, ", limits: { concurrency: 1 }");
    inFlight = 0;
    maxInFlight = 0;
    serial.guardMock.enqueue(CHAT, ...inputs.slice(0, 5).map(() => slow));
    const one = await send(serial.gateway, "POST", "/v1/moderations", {
      body: { model: "guard", input: inputs.slice(0, 5) },
    });
    assert.equal(one.status, 200, one.text);
    assert.equal(maxInFlight, 1);

    // A provider's max_in_flight bounds them too (the attempt holds one of its slots for all of its calls).
    const capped = await scene(t, "", "    max_in_flight: 2\n");
    inFlight = 0;
    maxInFlight = 0;
    capped.guardMock.enqueue(CHAT, ...inputs.slice(0, 6).map(() => slow));
    const two = await send(capped.gateway, "POST", "/v1/moderations", {
      body: { model: "guard", input: inputs.slice(0, 6) },
    });
    assert.equal(two.status, 200, two.text);
    assert.equal(maxInFlight, 2);
  });
});
