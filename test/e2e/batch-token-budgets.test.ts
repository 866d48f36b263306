// A batch line is planned with its prompt's token estimate and its `max_tokens`, as its own pipeline plans it: a line
// over what is left of a model's `tpm` waits off its slot, unsent and without a record, until the window has room;
// a line larger than the whole `tpm` is answered at once with the 413 a live request gets. The runner's plan counted
// no tokens before: such a line was sent into the pipeline, refused 429 by its own budget check, and left a 429
// record at each try.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { ManualClock } from "../../src/clock.ts";
import { estimateChatPrompt } from "../../src/limits/token-estimate.ts";
import { CHAT_ENDPOINT, type EndpointSpec } from "../../src/pipeline/endpoints.ts";
import {
  createBatch,
  isFinished,
  linesOf,
  sentContents,
  serverWithKeys,
  UPSTREAM_ID,
  upload,
  waitForBatch,
  waitForCompleted,
} from "../helpers/batches-scene.ts";
import { CHAT_ROUTE, errorOf, openAiClient, postChat, send, useGateway, useMock } from "../helpers/e2e.ts";
import type { TestGateway } from "../helpers/gateway.ts";
import { chatCompletion, type MockUpstream, type RecordedRequest } from "../helpers/mock-upstream.ts";

const START_MS = Date.UTC(2026, 0, 1, 12);
/** Each line's `max_tokens`: counted against the budget with its prompt (`count_max_tokens`, on by default). */
const MAX_TOKENS = 20;

/** A prompt of about 45 tokens by the gateway's estimate, told apart by its id. */
function promptOf(id: string): string {
  return `${id} ${"lorem ipsum dolor sit amet ".repeat(8)}`;
}

function messagesOf(content: string): { role: "user"; content: string }[] {
  return [{ role: "user", content }];
}

/** The tokens a line counts against a budget: its prompt as the gateway estimates it, and its `max_tokens`. */
function lineTokens(content: string, maxTokens = MAX_TOKENS): number {
  return estimateChatPrompt(messagesOf(content), undefined).promptTokens + maxTokens;
}

function tightLine(customId: string, content: string, maxTokens = MAX_TOKENS): string {
  return JSON.stringify({
    custom_id: customId,
    method: "POST",
    url: "/v1/chat/completions",
    body: { model: "tight", messages: messagesOf(content), max_tokens: maxTokens },
  });
}

function contentOf(request: RecordedRequest): string {
  return (request.body as { messages: { content: string }[] }).messages.at(-1)?.content ?? "";
}

/**
 * The mock answers with the usage the gateway reserved (the prompt's estimate, `max_tokens` of output), so the
 * window's count after an answer is what its plan counted, and no prompt calibration is learned.
 */
function answeringWithEstimate(mock: MockUpstream): void {
  mock.setDefault(CHAT_ROUTE, (request) => {
    const content = contentOf(request);
    const usage = {
      prompt_tokens: estimateChatPrompt(messagesOf(content), undefined).promptTokens,
      completion_tokens: MAX_TOKENS,
    };
    return { kind: "json", body: chatCompletion(`echo: ${content.split(" ")[0]}`, UPSTREAM_ID, usage) };
  });
}

function tightYaml(mock: MockUpstream, tpm: number, concurrency: number, budget = "tpm"): string {
  return `providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha
    models:
      tight: { id: ${UPSTREAM_ID}, limits: { ${budget}: ${tpm} } }
batches:
  concurrency: ${concurrency}
`;
}

interface BatchRecord {
  batchId?: string;
  status: number;
  errorCode?: string;
}

async function batchRecords(gateway: TestGateway, batchId: string, apiKey?: string): Promise<BatchRecord[]> {
  const headers: Record<string, string> = apiKey === undefined ? {} : { authorization: `Bearer ${apiKey}` };
  const listed = await send(gateway, "GET", "/v1/gateway/requests?limit=100", { headers });
  return (listed.json as { data: BatchRecord[] }).data.filter((record) => record.batchId === batchId);
}

/** The first word of each prompt the mock got: which lines were sent, in order. */
function sentIds(mock: MockUpstream): string[] {
  return sentContents(mock).map((content) => content?.split(" ")[0] ?? "");
}

/** Waits until the mock got `count` chat requests (a line re-planned after a wait looks again within 5 s). */
async function waitForSent(mock: MockUpstream, count: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (sentIds(mock).length < count) {
    if (Date.now() > deadline) assert.fail(`sent ${JSON.stringify(sentIds(mock))}, waited for ${count}`);
    await sleep(25);
  }
}

describe("batch lines counted against token budgets before they are sent", () => {
  test("2 lines fit the minute's tpm: the others wait unsent, without a 429 record, and run once the minute passed", async (t) => {
    const mock = await useMock(t);
    answeringWithEstimate(mock);
    const ids = ["l-1", "l-2", "l-3", "l-4", "l-5"];
    const tokens = lineTokens(promptOf("l-1"));
    for (const id of ids) assert.equal(lineTokens(promptOf(id)), tokens, "every line costs the same");
    // Two whole lines and a third's prompt: two lines fit a minute with their `max_tokens`, never three. A plan that
    // counted the third's prompt alone would see room for it and send it (its pipeline then refused it: a 429).
    const tpm = 2 * tokens + (tokens - MAX_TOKENS);
    assert.ok(3 * tokens > tpm, "three lines with their max_tokens do not fit");
    const clock = new ManualClock(START_MS);
    // Four slots: the lines held back are held by their plan, not by a lack of slots.
    const gateway = await useGateway(t, tightYaml(mock, tpm, 4), { clock });
    const client = openAiClient(gateway);
    const file = await upload(client, ids.map((id) => tightLine(id, promptOf(id))).join("\n"));
    const batch = await createBatch(client, file.id);

    await waitForBatch(client, batch.id, (kept) => (kept.request_counts?.completed ?? 0) >= 2);
    // Long enough for a held line to be planned again (every 5 s at most) and for a wrongly sent one to arrive.
    await sleep(1_500);
    assert.deepEqual(sentIds(mock), ["l-1", "l-2"], "the third line onwards waits for the minute, unsent");
    let records = await batchRecords(gateway, batch.id);
    assert.deepEqual(
      records.map((record) => record.status),
      [200, 200],
      "one record per line sent; none for the lines held back (the old runner left a 429 record per try)",
    );
    const stats = (await (await fetch(`${gateway.url}/stats`)).json()) as { queued_requests: number };
    assert.equal(stats.queued_requests, 0, "no line waits in the live route queue");

    clock.advance(60_000);
    await waitForSent(mock, 4);
    await sleep(1_000);
    assert.deepEqual(sentIds(mock), ["l-1", "l-2", "l-3", "l-4"], "two more in the next minute, in line order");
    clock.advance(60_000);
    const done = await waitForCompleted(client, batch.id, 5, 15_000);
    assert.equal(done.error_file_id, null);
    assert.deepEqual(
      (await linesOf(client, done.output_file_id)).map((line) => line.custom_id),
      ids,
    );
    assert.deepEqual(sentIds(mock), ids, "each line sent once");
    records = await batchRecords(gateway, batch.id);
    assert.deepEqual(
      records.map((record) => record.status),
      [200, 200, 200, 200, 200],
      "one record per line, none a 429",
    );
  });

  test("tpd: the line over what is left of the day waits unsent, without a record, and runs once the day turned", async (t) => {
    const mock = await useMock(t);
    answeringWithEstimate(mock);
    const ids = ["d-1", "d-2", "d-3"];
    const tokens = lineTokens(promptOf("d-1"));
    const clock = new ManualClock(Date.UTC(2026, 0, 1, 23, 58));
    const gateway = await useGateway(t, tightYaml(mock, 2 * tokens + (tokens - MAX_TOKENS), 4, "tpd"), { clock });
    const client = openAiClient(gateway);
    const file = await upload(client, ids.map((id) => tightLine(id, promptOf(id))).join("\n"));
    const batch = await createBatch(client, file.id);
    await waitForBatch(client, batch.id, (kept) => (kept.request_counts?.completed ?? 0) >= 2);
    await sleep(1_500);
    assert.deepEqual(sentIds(mock), ["d-1", "d-2"], "d-3 waits for the next day, unsent");
    assert.deepEqual(
      (await batchRecords(gateway, batch.id)).map((record) => record.status),
      [200, 200],
    );
    // The day's budget resets at midnight UTC (docs/limits.md "Day and month windows").
    clock.set(Date.UTC(2026, 0, 2));
    await waitForCompleted(client, batch.id, 3, 15_000);
    assert.deepEqual(sentIds(mock), ids);
    assert.deepEqual(
      (await batchRecords(gateway, batch.id)).map((record) => record.status),
      [200, 200, 200],
    );
  });

  test("a named client's own tpm: the line over it waits unsent, without a 429 record, until the minute passed", async (t) => {
    const mock = await useMock(t);
    answeringWithEstimate(mock);
    const ids = ["c-1", "c-2", "c-3"];
    const prompt = lineTokens(promptOf("c-1")) - MAX_TOKENS;
    // The client is charged each line's prompt up front, then what it used (the prompt and 20 of output): two lines
    // fit either way, never a third.
    const tpm = 3 * prompt - 1;
    assert.ok(2 * (prompt + MAX_TOKENS) <= tpm);
    const clock = new ManualClock(START_MS);
    const gateway = await useGateway(
      t,
      `${serverWithKeys(`{ key: sk-team, name: team, limits: { tpm: ${tpm} } }`)}providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha
    models:
      tight: { id: ${UPSTREAM_ID} }
batches:
  concurrency: 4
`,
      { clock },
    );
    const client = openAiClient(gateway, "sk-team");
    const file = await upload(client, ids.map((id) => tightLine(id, promptOf(id))).join("\n"));
    const batch = await createBatch(client, file.id);
    await waitForBatch(client, batch.id, (kept) => (kept.request_counts?.completed ?? 0) >= 2);
    await sleep(1_500);
    assert.deepEqual(sentIds(mock), ["c-1", "c-2"], "c-3 waits for the client's minute, unsent");
    assert.deepEqual(
      (await batchRecords(gateway, batch.id, "sk-team")).map((record) => record.status),
      [200, 200],
      "no 429 record of the client's budget",
    );
    clock.advance(60_000);
    await waitForCompleted(client, batch.id, 3, 15_000);
    assert.deepEqual(sentIds(mock), ids);
    assert.deepEqual(
      (await batchRecords(gateway, batch.id, "sk-team")).map((record) => record.status),
      [200, 200, 200],
    );
  });

  test("a line larger than the whole tpm ends in the error file with the 413 a live request gets; the others run", async (t) => {
    const mock = await useMock(t);
    answeringWithEstimate(mock);
    const small = promptOf("s-1");
    const tpm = lineTokens(small) * 2;
    const huge = `h-1 ${"lorem ipsum dolor sit amet ".repeat(60)}`;
    assert.ok(lineTokens(huge) > tpm, "its prompt alone is over the whole minute");
    // Its prompt fits, but not with the output it asks for: counted as the live door counts it.
    const greedy = promptOf("g-1");
    const greedyMaxTokens = tpm;
    const clock = new ManualClock(START_MS);
    const gateway = await useGateway(t, tightYaml(mock, tpm, 2), { clock });

    const live = await postChat(gateway, { model: "tight", messages: messagesOf(huge), max_tokens: MAX_TOKENS });
    assert.equal(live.status, 413);
    const liveError = errorOf(live);
    assert.equal(liveError.code, "request_too_large");

    const client = openAiClient(gateway);
    const lines = [
      tightLine("h-1", huge),
      tightLine("s-1", small),
      tightLine("g-1", greedy, greedyMaxTokens),
      tightLine("s-2", promptOf("s-2")),
    ];
    const batch = await createBatch(client, (await upload(client, lines.join("\n"))).id);
    // Within a few seconds, with no minute passing: neither too-large line waits for a window that never has room.
    const done = await waitForBatch(client, batch.id, isFinished, 10_000);
    assert.equal(done.status, "completed");
    assert.deepEqual(done.request_counts, { total: 4, completed: 2, failed: 2 });
    const errors = (await linesOf(client, done.error_file_id)) as {
      custom_id: string;
      response: { status_code: number; body: { error: { code: string; type: string } } };
    }[];
    assert.deepEqual(
      errors.map((line) => [line.custom_id, line.response.status_code, line.response.body.error.code]),
      [
        ["h-1", 413, "request_too_large"],
        ["g-1", 413, "request_too_large"],
      ],
    );
    assert.equal(errors[0]?.response.body.error.type, liveError.type);
    assert.deepEqual(
      (await linesOf(client, done.output_file_id)).map((line) => line.custom_id),
      ["s-1", "s-2"],
    );
    assert.deepEqual(sentIds(mock), ["s-1", "s-2"], "the too-large lines never reached the upstream");
  });

  test("a /v1/responses line is planned on its translated chat body: the second waits for the minute, unsent", async (t) => {
    const mock = await useMock(t);
    // The usage the gateway reserved for the chat body it sent (the Responses door's translation).
    mock.setDefault(CHAT_ROUTE, (request) => {
      const body = request.body as { messages: unknown[]; tools?: unknown; max_tokens?: number };
      const content = contentOf(request);
      const usage = {
        prompt_tokens: estimateChatPrompt(body.messages, body.tools).promptTokens,
        completion_tokens: body.max_tokens ?? MAX_TOKENS,
      };
      return { kind: "json", body: chatCompletion(`echo: ${content.split(" ")[0]}`, UPSTREAM_ID, usage) };
    });
    // A line is about 45 prompt tokens and 60 of output: one fits 150 a minute, never two. The raw Responses body
    // has no `messages`: counted on it, a line had no prompt (the plan saw room for both).
    const maxOutputTokens = 60;
    const clock = new ManualClock(START_MS);
    const gateway = await useGateway(t, tightYaml(mock, 150, 2), { clock });
    const client = openAiClient(gateway);
    const ids = ["r-1", "r-2"];
    const lines = ids.map((id) =>
      JSON.stringify({
        custom_id: id,
        method: "POST",
        url: "/v1/responses",
        body: { model: "tight", input: promptOf(id), max_output_tokens: maxOutputTokens },
      }),
    );
    const batch = await client.batches.create({
      input_file_id: (await upload(client, lines.join("\n"))).id,
      endpoint: "/v1/responses",
      completion_window: "24h",
    });
    await waitForBatch(client, batch.id, (kept) => (kept.request_counts?.completed ?? 0) >= 1);
    await sleep(1_500);
    assert.deepEqual(sentIds(mock), ["r-1"], "r-2 waits for the minute, unsent");
    assert.deepEqual(
      (await batchRecords(gateway, batch.id)).map((record) => record.status),
      [200],
      "no 429 record for the line held back",
    );
    clock.advance(60_000);
    const done = await waitForCompleted(client, batch.id, 2, 15_000);
    assert.deepEqual(
      (await linesOf(client, done.output_file_id)).map((line) => line.custom_id),
      ids,
    );
    assert.deepEqual(sentIds(mock), ids);
    assert.deepEqual(
      (await batchRecords(gateway, batch.id)).map((record) => record.status),
      [200, 200],
    );
  });
});

describe("a /v1/responses line that waits is translated again when it is sent", () => {
  test("lines of one conversation: the one held back for the minute is sent with the turn answered meanwhile, each turn added once", async (t) => {
    const mock = await useMock(t);
    mock.setDefault(CHAT_ROUTE, (request) => {
      const body = request.body as { messages: unknown[]; tools?: unknown; max_tokens?: number };
      const usage = {
        prompt_tokens: estimateChatPrompt(body.messages, body.tools).promptTokens,
        completion_tokens: body.max_tokens ?? MAX_TOKENS,
      };
      return { kind: "json", body: chatCompletion(`echo: ${contentOf(request).split(" ")[0]}`, UPSTREAM_ID, usage) };
    });
    const clock = new ManualClock(START_MS);
    // A line alone is about 45 prompt tokens and 100 of output: 145 of 270 a minute, never two. The second line with
    // the first's turn in its conversation is about 254: it fits a fresh minute.
    const gateway = await useGateway(t, tightYaml(mock, 270, 2), { clock });
    const client = openAiClient(gateway);
    const conversation = await client.conversations.create({});
    const ids = ["c-1", "c-2"];
    const lines = ids.map((id) =>
      JSON.stringify({
        custom_id: id,
        method: "POST",
        url: "/v1/responses",
        body: { model: "tight", input: promptOf(id), max_output_tokens: 100, conversation: conversation.id },
      }),
    );
    const batch = await client.batches.create({
      input_file_id: (await upload(client, lines.join("\n"))).id,
      endpoint: "/v1/responses",
      completion_window: "24h",
    });
    await waitForBatch(client, batch.id, (kept) => (kept.request_counts?.completed ?? 0) >= 1);
    await sleep(1_000);
    assert.deepEqual(sentIds(mock), ["c-1"], "c-2 waits for the minute, unsent");
    clock.advance(60_000);
    await waitForCompleted(client, batch.id, 2, 15_000);
    // Translated when it was first tried (before c-1's answer joined the conversation), then dropped: sent as that
    // translation, c-2 would have gone without c-1's turn.
    const second = mock.requests.filter((request) => request.path === "/v1/chat/completions")[1];
    const sentTexts = JSON.stringify((second?.body as { messages?: unknown[] } | undefined)?.messages);
    assert.match(sentTexts, /c-1 lorem/, "c-1's input in c-2's conversation");
    assert.match(sentTexts, /echo: c-1/, "c-1's answer in c-2's conversation");
    const items: string[] = [];
    for await (const item of client.conversations.items.list(conversation.id, { order: "asc" })) {
      items.push(
        `${item.type}:${
          JSON.stringify(item)
            .match(/(c-\d) lorem|echo: (c-\d)/)
            ?.slice(1)
            .join("") ?? ""
        }`,
      );
    }
    assert.deepEqual(items, ["message:c-1", "message:c-1", "message:c-2", "message:c-2"], "each turn added once");
  });
});

describe("a batch line's facts are made once", () => {
  test("the runner's look parses and estimates a line; its pipeline plans on those facts, not made again", async (t) => {
    const mock = await useMock(t);
    answeringWithEstimate(mock);
    // A spy on the chat door's estimate (a real object of the gateway's, put back after): how often each line's
    // messages are walked. The old pipeline estimated every line twice: once for its runner's look, once for its plan.
    const estimates = new Map<string, number>();
    const original = CHAT_ENDPOINT.estimate;
    const spied = CHAT_ENDPOINT as { estimate: EndpointSpec["estimate"] };
    spied.estimate = (body) => {
      const first = (body.messages as { content: string }[] | undefined)?.[0]?.content.split(" ")[0] ?? "";
      estimates.set(first, (estimates.get(first) ?? 0) + 1);
      return original(body);
    };
    t.after(() => {
      spied.estimate = original;
    });
    const clock = new ManualClock(START_MS);
    const gateway = await useGateway(t, tightYaml(mock, 100_000, 2), { clock });
    const client = openAiClient(gateway);
    const ids = ["e-1", "e-2", "e-3"];
    const batch = await createBatch(
      client,
      (await upload(client, ids.map((id) => tightLine(id, promptOf(id))).join("\n"))).id,
    );
    const done = await waitForCompleted(client, batch.id, 3);
    assert.deepEqual(
      (await linesOf(client, done.output_file_id)).map((line) => line.custom_id),
      ids,
    );
    assert.deepEqual(
      ids.map((id) => estimates.get(id)),
      [1, 1, 1],
      "each line estimated once (the old pipeline: twice)",
    );
  });
});
