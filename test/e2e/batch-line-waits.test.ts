// A batch line that must wait gives its batch-runner slot back, whatever it waits for: a pause after a 5xx from every
// candidate, or a limit the pipeline's own plan sees (a token budget the runner's plan did not count until 2026-12-06:
// batch-token-budgets.test.ts) that put it in the live route queue. The old runner held the slot through both, and with the route queue every other line
// waited too (no line starts while a request waits there): a batch stalled behind one waiting line.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  chatLine,
  createBatch,
  isFinished,
  linesOf,
  providersYaml,
  sentContents,
  UPSTREAM_ID,
  upload,
  waitForBatch,
  waitForCompleted,
} from "../helpers/batches-scene.ts";
import { CHAT_ROUTE, openAiClient, useGateway, useMock } from "../helpers/e2e.ts";
import { chatCompletion, type RecordedRequest } from "../helpers/mock-upstream.ts";

function contentOf(request: RecordedRequest): string {
  return (request.body as { messages: { content: string }[] }).messages.at(-1)?.content ?? "";
}

describe("batch lines that wait hold no slot", () => {
  test("a line in its 5xx pause: the batch's other lines are served meanwhile, then its retry succeeds", async (t) => {
    const mock = await useMock(t);
    const others = ["ok-2", "ok-3", "ok-4"];
    // `flaky` fails until every other line was served: only a runner that serves them during its pause sees it heal.
    mock.setDefault(CHAT_ROUTE, (request) => {
      const content = contentOf(request);
      const served = new Set(mock.requests.map(contentOf));
      if (content === "f-1" && !others.every((id) => served.has(id))) {
        return { kind: "json", status: 503, body: { error: { message: "overloaded", type: "server_error" } } };
      }
      return { kind: "json", body: chatCompletion(`echo: ${content}`, UPSTREAM_ID) };
    });
    const gateway = await useGateway(
      t,
      `${providersYaml(mock)}  - name: beta
    base_url: ${mock.baseUrl}
    api_key: sk-beta
    retries: 0
    models:
      flaky: { id: vendor/flaky }
batches:
  concurrency: 1
`,
    );
    const client = openAiClient(gateway);
    const lines = [chatLine("f-1", "f-1", "flaky"), ...others.map((id) => chatLine(id, id))];
    const batch = await createBatch(client, (await upload(client, lines.join("\n"))).id);
    const done = await waitForCompleted(client, batch.id, 4, 20_000);
    // With one slot, the old runner slept in it: f-1 three times (its 3 tries), then the error file, then the others.
    assert.deepEqual(sentContents(mock), ["f-1", ...others, "f-1"], "the others during f-1's pause, then its retry");
    assert.deepEqual(
      (await linesOf(client, done.output_file_id)).map((line) => line.custom_id),
      ["f-1", ...others],
      "in line order",
    );
  });

  test("a line the pipeline's plan finds over a token budget does not wait in the route queue: the others run", async (t) => {
    const mock = await useMock(t);
    // The prompt's tokens as the gateway estimates them, so what it learns from the answers keeps the estimate.
    mock.setDefault(CHAT_ROUTE, (request) => {
      const content = contentOf(request);
      const isTight = content.startsWith("tight");
      const usage = { prompt_tokens: isTight ? 60 : 10, completion_tokens: 1 };
      return { kind: "json", body: chatCompletion(`echo: ${content.slice(0, 10)}`, UPSTREAM_ID, usage) };
    });
    // 60 tokens a line under a 100-token minute: t-1 fits, t-2 waits for the minute. The old runner's plan counted no
    // tokens (it saw room) and sent t-2, whose pipeline queued it for the minute (`queue_timeout_ms`): its slot, and
    // every other line (none starts while a request waits), with it. Its plan counts them now: t-2 waits unsent.
    const tightText = (id: string): string => `tight ${id} ${"lorem ipsum dolor sit amet ".repeat(9)}`;
    const gateway = await useGateway(
      t,
      `${providersYaml(mock, { moreModels: "      tight: { id: vendor/tight, limits: { tpm: 100 } }\n" })}routing:
  queue_timeout_ms: 120000
  total_timeout_ms: 120000
batches:
  concurrency: 2
`,
    );
    const client = openAiClient(gateway);
    const lines = [
      chatLine("t-1", tightText("1"), "tight"),
      chatLine("t-2", tightText("2"), "tight"),
      chatLine("m-3", "m-3"),
      chatLine("m-4", "m-4"),
      chatLine("m-5", "m-5"),
    ];
    const batch = await createBatch(client, (await upload(client, lines.join("\n"))).id);
    const served = await waitForBatch(client, batch.id, (kept) => (kept.request_counts?.completed ?? 0) >= 4, 20_000);
    assert.equal(served.status, "in_progress", "t-2 still waits for the minute");
    assert.deepEqual(
      sentContents(mock)
        .map((content) => content?.split(" ").slice(0, 2).join(" "))
        .sort(),
      ["m-3", "m-4", "m-5", "tight 1"],
      "t-2 never sent: it waits off its slot",
    );
    const stats = (await (await fetch(`${gateway.url}/stats`)).json()) as { queued_requests: number };
    assert.equal(stats.queued_requests, 0, "no batch line waits in the live route queue");
    await client.batches.cancel(batch.id);
    const cancelled = await waitForBatch(client, batch.id, isFinished);
    assert.equal(cancelled.status, "cancelled");
    assert.deepEqual(cancelled.request_counts, { total: 5, completed: 4, failed: 0 });
  });
});
