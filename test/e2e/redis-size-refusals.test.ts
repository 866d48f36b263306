// A size refusal (`stop` of too many entries) learned on two replicas at once, each from a request of its own size,
// is shared through one real Redis: each replica adopts the other's lesson, and keeps the more conservative start of
// the two (limits/refused-features.ts `adopt`), so neither sends a `stop` the other learned is refused.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import {
  CHAT_ROUTE,
  chatRequests,
  openAiClient,
  rowOf,
  serveEveryChat,
  statsOf,
  useGateway,
  useMock,
} from "../helpers/e2e.ts";
import { gate } from "../helpers/gates.ts";
import type { TestGateway } from "../helpers/gateway.ts";
import type { MockUpstream, RecordedRequest } from "../helpers/mock-upstream.ts";
import { isRedisInstalled, REDIS_MISSING } from "../helpers/redis-server.ts";
import { redisStateYaml, twoReplicas } from "../helpers/replica-scenes.ts";

const skip = isRedisInstalled() ? false : REDIS_MISSING;

/** OpenAI's refusal of a `stop` of 5, which states the limit (4): the lesson starts at 5 entries. */
const STATED = {
  error: {
    message:
      "Invalid 'stop': array too long. Expected an array with maximum length 4, but got an array with length 5 instead.",
    type: "invalid_request_error",
    param: "stop",
    code: "array_above_max_length",
  },
};
/** The same refusal without a limit stated: the lesson starts at the number of entries sent. */
const UNSTATED = { error: { ...STATED.error, message: "Invalid 'stop': array too long." } };

function stopCount(request: RecordedRequest): number {
  const stop = (request.body as { stop?: unknown } | undefined)?.stop;
  return Array.isArray(stop) ? stop.length : 0;
}

function providersYaml(first: MockUpstream, second: MockUpstream): (state: string) => string {
  return (state) => `providers:
  - name: first
    base_url: ${first.baseUrl}
    api_key: sk-first-key
    retries: 0
    models:
      m: { id: first-m }
  - name: second
    base_url: ${second.baseUrl}
    api_key: sk-second-key
    models:
      m: { id: second-m }
${state}`;
}

/** The `stop` lesson each replica holds about `first/m`: its start (min_entries), once both agree on `expected`. */
async function startsBecome(gateways: readonly TestGateway[], expected: number): Promise<(number | undefined)[]> {
  let starts: (number | undefined)[] = [];
  for (let tries = 0; tries < 60; tries++) {
    starts = [];
    for (const gateway of gateways) {
      const lesson = rowOf(await statsOf(gateway), "first/m").refused_features.find((seen) => seen.feature === "stop");
      starts.push((lesson as { min_entries?: number } | undefined)?.min_entries);
    }
    if (starts.every((start) => start === expected)) break;
    await sleep(50);
  }
  return starts;
}

function ask(gateway: TestGateway, entries: number) {
  const stop = Array.from({ length: entries }, (_, index) => `S${index}`);
  return openAiClient(gateway).chat.completions.create({
    model: "m",
    messages: [{ role: "user", content: "Hi" }],
    stop,
  });
}

describe("size refusals shared between replicas", { skip }, () => {
  test("two replicas learning at once keep the lower start of the two lessons", async (t: TestContext) => {
    const first = await useMock(t);
    const second = await useMock(t);
    serveEveryChat(second, "second here");
    // Both refusals are held until both requests arrived: each replica learns before it hears the other's lesson.
    const bothArrived = gate();
    let arrived = 0;
    first.setDefault(CHAT_ROUTE, (request) => ({
      kind: "handler",
      handle: async (_request, response) => {
        arrived++;
        if (arrived === 2) bothArrived.open();
        await bothArrived.promise;
        response.writeHead(400, { "content-type": "application/json" });
        response.end(JSON.stringify(stopCount(request) === 5 ? STATED : UNSTATED));
      },
    }));
    const { redis, a, b } = await twoReplicas(t, providersYaml(first, second), "size-lessons:");
    const answers = await Promise.all([ask(a, 5), ask(b, 8)]);
    assert.deepEqual(
      answers.map((answer) => answer.choices[0]?.message.content),
      ["second here", "second here"],
      "both failed over",
    );
    // a learned "5 and more" (the stated limit), b "8 and more" (as many as it sent): both sizes were refused.
    assert.deepEqual(await startsBecome([a, b], 5), [5, 5], "each replica's start of the shared lesson");
    // Neither replica sends 6 entries to the provider that refused 5.
    for (const gateway of [a, b]) {
      assert.equal((await ask(gateway, 6)).choices[0]?.message.content, "second here");
    }
    assert.equal(chatRequests(first).length, 2, "the refusing provider was not asked again");
    // A replica started later loads the stored lesson: the lower start too, whichever replica wrote last.
    const c = await useGateway(t, providersYaml(first, second)(redisStateYaml(redis.url, "size-lessons:")));
    assert.deepEqual(await startsBecome([c], 5), [5], "the stored lesson's start");
  });
});
