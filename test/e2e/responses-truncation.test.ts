// `truncation: "auto"` on POST /v1/responses (docs/protocols.md "Truncation"), with the openai SDK as the client and
// the mock upstream behind the gateway: a conversation longer than the model's context has its oldest items left out
// of what goes upstream (never the instructions, never a function call without its output) until it fits; `disabled`
// (the default) is still refused, and a candidate whose context holds the whole conversation is preferred to
// truncating it for a smaller one.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import { finished } from "../helpers/background-steps.ts";
import { isFinished, linesOf, upload, waitForBatch } from "../helpers/batches-scene.ts";
import {
  badRequest,
  chatRequests,
  oneProviderScene,
  openAiClient,
  serveEveryChat,
  useGateway,
  useMock,
  words,
} from "../helpers/e2e.ts";
import type { MockUpstream } from "../helpers/mock-upstream.ts";

function sentMessages(mock: MockUpstream, index: number): { role: string; content: unknown; tool_calls?: unknown }[] {
  return ((chatRequests(mock)[index]?.body ?? {}) as { messages?: [] }).messages ?? [];
}

/** `m` with a 500-token window; answers of two words (prompts under 256 tokens teach no calibration). */
async function smallWindow(t: TestContext) {
  const scene = await oneProviderScene(t, { keys: ", context: 500" });
  serveEveryChat(scene.mock, "Noted here.");
  return scene;
}

describe("responses API: truncation", () => {
  test("auto: a chain past the context loses its oldest items, instructions kept; disabled: still a 400", async (t) => {
    const { mock, client } = await smallWindow(t);
    const first = await client.responses.create({ model: "m", input: words("cat", 200) });
    const second = await client.responses.create({
      model: "m",
      previous_response_id: first.id,
      input: words("dog", 200),
    });
    const next = { model: "m", instructions: "Be brief.", previous_response_id: second.id, input: words("fox", 200) };

    const refused = await badRequest(client.responses.create(next));
    assert.equal(refused.code, "no_capable_model");
    assert.equal(refused.param, "input");
    assert.equal(chatRequests(mock).length, 2);

    const truncated = await client.responses.create({ ...next, truncation: "auto" });
    assert.equal(truncated.status, "completed");
    assert.equal(truncated.truncation, "auto");
    assert.deepEqual(
      sentMessages(mock, 2).map((message) => [message.role, message.content]),
      [
        ["system", "Be brief."],
        ["assistant", "Noted here."],
        ["user", words("dog", 200)],
        ["assistant", "Noted here."],
        ["user", words("fox", 200)],
      ],
    );
    // What is kept is the whole conversation: the next turn truncates it again, from its own start.
    const items = await client.responses.inputItems.list(truncated.id, { order: "asc" });
    assert.equal(items.data.length, 5);
  });

  test("auto: a function call and its output are left out together, never one without the other", async (t) => {
    const { mock, client } = await smallWindow(t);
    const response = await client.responses.create({
      model: "m",
      instructions: "Be brief.",
      truncation: "auto",
      input: [
        { role: "user", content: words("cat", 50) },
        // Its call alone is most of the prompt: leaving out the call but not its output would fit, and be an
        // orphan tool message that chat providers refuse.
        {
          type: "function_call",
          call_id: "call_1",
          name: "lookup",
          arguments: JSON.stringify({ q: words("dog", 350) }),
        },
        { type: "function_call_output", call_id: "call_1", output: "found" },
        { role: "user", content: words("fox", 250) },
      ],
    });
    assert.equal(response.status, "completed");
    assert.deepEqual(
      sentMessages(mock, 0).map((message) => [message.role, message.content]),
      [
        ["system", "Be brief."],
        ["user", words("fox", 250)],
      ],
    );
  });

  test("auto: nothing fits even with only the last item left: the 400 as with disabled", async (t) => {
    const { mock, client } = await smallWindow(t);
    const refused = await badRequest(
      client.responses.create({
        model: "m",
        truncation: "auto",
        input: [
          { role: "user", content: "hi" },
          { role: "user", content: words("fox", 600) },
        ],
      }),
    );
    assert.equal(refused.code, "no_capable_model");
    assert.equal(chatRequests(mock).length, 0);
  });

  test("auto: a candidate whose context holds the whole conversation is taken before truncating for a smaller one", async (t) => {
    const small = await useMock(t);
    const large = await useMock(t);
    serveEveryChat(small, "Small.");
    serveEveryChat(large, "Large.");
    const gateway = await useGateway(
      t,
      `providers:
  - name: small
    base_url: ${small.baseUrl}
    api_key: sk-small
    models:
      m: { id: small-m, context: 500, priority: 10 }
  - name: large
    base_url: ${large.baseUrl}
    api_key: sk-large
    models:
      m: { id: large-m, context: 5000, priority: 1 }
`,
    );
    const client = openAiClient(gateway);
    const input = [
      { role: "user" as const, content: words("cat", 300) },
      { role: "user" as const, content: words("fox", 300) },
    ];
    const response = await client.responses.create({ model: "m", truncation: "auto", input });
    assert.equal(response.output_text, "Large.");
    assert.equal(chatRequests(small).length, 0);
    assert.equal(sentMessages(large, 0).length, 2);
  });

  test("auto in background mode: the run truncates as the request would", async (t) => {
    const { mock, client } = await smallWindow(t);
    const queued = await client.responses.create({
      model: "m",
      background: true,
      truncation: "auto",
      input: [
        { role: "user", content: words("cat", 300) },
        { role: "user", content: words("fox", 300) },
      ],
    });
    const done = await finished(client, queued.id);
    assert.equal(done.status, "completed", JSON.stringify(done.error));
    assert.deepEqual(
      sentMessages(mock, 0).map((message) => message.content),
      [words("fox", 300)],
    );
  });

  test("auto on a batch's /v1/responses line: truncated as on the door (its facts estimated again)", async (t) => {
    const { mock, client } = await smallWindow(t);
    const line = (customId: string, truncation: "auto" | "disabled") =>
      JSON.stringify({
        custom_id: customId,
        method: "POST",
        url: "/v1/responses",
        body: {
          model: "m",
          truncation,
          input: [
            { role: "user", content: words("cat", 300) },
            { role: "user", content: words("fox", 300) },
          ],
        },
      });
    const file = await upload(client, [line("auto", "auto"), line("disabled", "disabled")].join("\n"));
    const batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: "/v1/responses",
      completion_window: "24h",
    });
    const done = await waitForBatch(client, batch.id, isFinished);
    const statuses = new Map(
      [...(await linesOf(client, done.output_file_id)), ...(await linesOf(client, done.error_file_id))].map((row) => [
        row.custom_id,
        (row.response as { status_code?: number } | null)?.status_code,
      ]),
    );
    assert.equal(statuses.get("auto"), 200);
    assert.equal(statuses.get("disabled"), 400);
    assert.deepEqual(
      sentMessages(mock, 0).map((message) => message.content),
      [words("fox", 300)],
    );
  });
});
